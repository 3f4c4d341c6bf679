import Logging
import Models
import Sampling
import Tensors
import Tokenizers

/// Scheduler limits of one model.
public struct SchedulerLimits: Sendable, Equatable {
    /// Sequences decoded together (continuous batching); beyond this, requests wait in the queue.
    public var maxActive: Int
    /// Requests that may wait; beyond this, `queueFull`.
    public var maxQueue: Int
    /// Prompt tokens run per sequence per scheduler round, so a long prompt does not stall the others.
    public var prefillChunk: Int
    /// States kept for prefix reuse by stateless requests.
    public var prefixCacheEntries: Int

    public init(maxActive: Int = 8, maxQueue: Int = 64, prefillChunk: Int = 64, prefixCacheEntries: Int = 8) {
        self.maxActive = maxActive
        self.maxQueue = maxQueue
        self.prefillChunk = prefillChunk
        self.prefixCacheEntries = prefixCacheEntries
    }
}

/// Counters of one model's scheduler (read by stats and metrics).
public struct SchedulerStats: Sendable, Equatable {
    public var active = 0
    public var queued = 0
    public var promptTokens = 0
    public var generatedTokens = 0
    public var requests = 0
    /// Generation tokens/s over the last completed steps (exponentially smoothed).
    public var tokensPerSecond = 0.0
}

/// The thread that runs one model: admits queued requests, runs prompt chunks round-robin and
/// decode steps for every active sequence, samples, detokenizes and reports events.
final class ModelWorker: @unchecked Sendable {
    let model: any LanguageModel
    let tokenizer: AnyTokenizer
    let limits: SchedulerLimits
    let logger: Logger
    /// The token that ends generation: the file's EOS, or for RWKV World vocabularies that
    /// name none, token 0 (<|endoftext|>), as the World tokenizer's reference defines it.
    let endTokens: [Int32]
    private let pool: WorkerPool
    private let monitor = Monitor()
    // Guarded by monitor:
    private var queue: [GenerationSequence] = []
    private var stopping = false
    private var stopped = false
    private var statsValue = SchedulerStats()
    private var prefixCache: [PrefixEntry] = []
    /// Called on the model thread when a sequence ends (for sessions); not under the lock.
    let onFinish: @Sendable (GenerationSequence, ModelWorker) -> Void

    // Owned by the model thread:
    private var active: [GenerationSequence] = []
    private let runner: any ModelRunner
    private var batchTokens: [Int32] = []
    private var batchStates: [any SequenceState] = []
    private var batchSequences: [GenerationSequence] = []
    private var logits: [Float]

    struct PrefixEntry {
        let tokens: [Int32]
        let state: any SequenceState
        let logits: [Float]
        var lastUse: Double
    }

    init(model: any LanguageModel, tokenizer: AnyTokenizer, threads: Int, limits: SchedulerLimits, logger: Logger,
         onFinish: @escaping @Sendable (GenerationSequence, ModelWorker) -> Void) throws(EngineError) {
        self.model = model
        self.tokenizer = tokenizer
        self.limits = limits
        self.logger = logger
        self.onFinish = onFinish
        var ends: [Int32] = []
        if let eos = tokenizer.eosTokenID ?? (model.architecture.isRWKV ? 0 : nil) { ends.append(eos) }
        if let eot = tokenizer.eotTokenID, !ends.contains(eot) { ends.append(eot) }
        endTokens = ends
        pool = WorkerPool(threads: max(1, threads))
        logits = [Float](repeating: 0, count: model.vocabulary)
        do {
            runner = try model.makeRunner(maxTokens: max(1, limits.prefillChunk), maxBatch: max(1, limits.maxActive),
                                          pool: pool, allLogits: false)
        } catch {
            throw .modelUnavailable(name: model.file.path, reason: error.description)
        }
        let name = "roost-model"
        startThread(name: name) { [self] in self.run() }
    }

    var stats: SchedulerStats { monitor.withLock { statsValue } }

    /// Queues a sequence; throws `queueFull` when the queue is at its limit.
    func submit(_ seq: GenerationSequence) throws(EngineError) {
        let result: EngineError? = monitor.withLock {
            if stopping { return .shuttingDown }
            if queue.count >= limits.maxQueue && statsValue.active >= limits.maxActive {
                return .queueFull(retryAfterSeconds: 1 + queue.count / max(1, limits.maxActive))
            }
            queue.append(seq)
            statsValue.queued = queue.count
            statsValue.requests += 1
            monitor.broadcast()
            return nil
        }
        if let result { throw result }
    }

    /// Wakes the thread (a cancellation or a deadline may need handling).
    func wake() { monitor.withLock { monitor.broadcast() } }

    /// Stops the thread after cancelling everything still running; returns when it has exited.
    func shutdown() {
        monitor.withLock {
            stopping = true
            monitor.broadcast()
        }
        monitor.withLock {
            while !stopped { monitor.wait(seconds: 0.05) }
        }
    }

    var isIdle: Bool { monitor.withLock { queue.isEmpty && statsValue.active == 0 } }

    // MARK: - prefix cache (stateless requests)

    /// The longest cached prompt that `prompt` starts with: a copy of its state and, when it
    /// covers the whole prompt, its logits.
    func lookupPrefix(_ prompt: [Int32]) -> (tokens: Int, state: any SequenceState, logits: [Float]?)? {
        monitor.withLock {
            var best: Int?
            for (i, e) in prefixCache.enumerated() where e.tokens.count <= prompt.count && e.tokens.count > 0 {
                if let b = best, prefixCache[b].tokens.count >= e.tokens.count { continue }
                if prompt.starts(with: e.tokens) { best = i }
            }
            guard let b = best else { return nil }
            prefixCache[b].lastUse = monotonicSeconds()
            let e = prefixCache[b]
            return (e.tokens.count, e.state.copyState(), e.tokens.count == prompt.count ? e.logits : nil)
        }
    }

    private func storePrefix(tokens: [Int32], state: any SequenceState, logits: UnsafeBufferPointer<Float>) {
        guard limits.prefixCacheEntries > 0, !tokens.isEmpty else { return }
        let entry = PrefixEntry(tokens: tokens, state: state.copyState(), logits: Array(logits), lastUse: monotonicSeconds())
        monitor.withLock {
            prefixCache.removeAll { $0.tokens == tokens }
            if prefixCache.count >= limits.prefixCacheEntries,
               let oldest = prefixCache.indices.min(by: { prefixCache[$0].lastUse < prefixCache[$1].lastUse }) {
                prefixCache.remove(at: oldest)
            }
            prefixCache.append(entry)
        }
    }

    // MARK: - the loop

    private func run() {
        while true {
            let admitted: [GenerationSequence]? = monitor.withLock {
                while !stopping && queue.isEmpty && active.isEmpty {
                    monitor.wait(seconds: nil)
                }
                if stopping { return nil }
                var taken: [GenerationSequence] = []
                while active.count + taken.count < limits.maxActive, !queue.isEmpty {
                    taken.append(queue.removeFirst())
                }
                statsValue.queued = queue.count
                statsValue.active = active.count + taken.count
                return taken
            }
            guard let admitted else { break }
            for seq in admitted { start(seq) }
            step()
        }
        // Shutting down: everything still queued or running ends as cancelled.
        let rest = monitor.withLock { () -> [GenerationSequence] in
            let q = queue
            queue.removeAll()
            return q
        }
        for seq in active + rest where !seq.finished { finish(seq, reason: .cancelled) }
        active.removeAll()
        monitor.withLock {
            statsValue.active = 0
            statsValue.queued = 0
            stopped = true
            monitor.broadcast()
        }
    }

    private func start(_ seq: GenerationSequence) {
        seq.startTime = monotonicSeconds()
        active.append(seq)
        if seq.prompt.isEmpty {
            // The whole prompt came from the prefix cache, with its logits.
            guard let cached = seq.cachedLogits, cached.count == logits.count else {
                fail(seq, "no prompt tokens to run")
                return
            }
            for i in 0..<cached.count { logits[i] = cached[i] }
            seq.cachedLogits = nil
            promptDone(seq)
        }
    }

    /// One scheduler round: a prompt chunk for every sequence still in its prompt, one decode
    /// step for every sequence generating.
    private func step() {
        let now = monotonicSeconds()
        for seq in active where !seq.finished {
            if seq.cancel.isCancelled { finish(seq, reason: .cancelled); continue }
            if let d = seq.deadline, now > d { finish(seq, reason: .timeout); continue }
        }
        for seq in active where !seq.finished && seq.inPrefill {
            prefillChunk(seq)
        }
        decodeStep(active.filter { !$0.finished && !$0.inPrefill && $0.started && $0.pending != nil })
        let before = active.count
        active.removeAll { $0.finished }
        if active.count != before {
            monitor.withLock { statsValue.active = active.count }
        }
    }

    private func prefillChunk(_ seq: GenerationSequence) {
        let n = min(limits.prefillChunk, seq.prompt.count - seq.promptPosition)
        let last = seq.promptPosition + n == seq.prompt.count
        do {
            try seq.prompt.withUnsafeBufferPointer { (p) throws(ModelError) in
                let chunk = UnsafeBufferPointer(rebasing: p[seq.promptPosition..<(seq.promptPosition + n)])
                try runner.forward(chunk, state: seq.state, logits: last ? .last : .none)
            }
        } catch {
            fail(seq, error.description)
            return
        }
        seq.promptPosition += n
        monitor.withLock { statsValue.promptTokens += n }
        if last {
            let row = runner.logits(row: 0)
            for i in 0..<row.count { logits[i] = row[i] }
            if seq.request.session == nil {
                storePrefix(tokens: seq.promptTokens, state: seq.state, logits: row)
            }
            promptDone(seq)
        }
    }

    /// Called once the whole prompt is in (also for a prompt served from the cache with logits).
    func promptDone(_ seq: GenerationSequence) {
        seq.started = true
        seq.firstTokenTime = monotonicSeconds()
        seq.emit(.started(promptTokens: seq.promptTokens.count - seq.cachedTokens, cachedTokens: seq.cachedTokens))
        sampleAndEmit(seq)
    }

    /// One decode step for every generating sequence at once (continuous batching): the
    /// projections run as one product over the sequences, and each sequence's logits are
    /// bitwise those of decoding it alone.
    private func decodeStep(_ seqs: [GenerationSequence]) {
        guard !seqs.isEmpty else { return }
        batchTokens.removeAll(keepingCapacity: true)
        batchStates.removeAll(keepingCapacity: true)
        batchSequences.removeAll(keepingCapacity: true)
        for seq in seqs {
            guard let token = seq.pending else { continue }
            if let context = model.contextLength, seq.state.tokenCount >= context {
                // The context is full: the sampled token is the last one.
                seq.pending = nil
                finish(seq, reason: .length)
                continue
            }
            batchTokens.append(token)
            batchStates.append(seq.state)
            batchSequences.append(seq)
        }
        guard !batchTokens.isEmpty else { return }
        do {
            try batchTokens.withUnsafeBufferPointer { (p) throws(ModelError) in
                try runner.forwardBatch(tokens: p, states: batchStates, computeLogits: true)
            }
        } catch {
            for seq in batchSequences { fail(seq, error.description) }
            return
        }
        for (i, seq) in batchSequences.enumerated() {
            seq.pending = nil
            let row = runner.batchLogits(i)
            for j in 0..<row.count { logits[j] = row[j] }
            sampleAndEmit(seq)
        }
        batchStates.removeAll(keepingCapacity: true)
        batchSequences.removeAll(keepingCapacity: true)
    }

    /// Samples the next token from `logits`, emits its text, and ends the sequence on EOS, a
    /// stop string or the token limit.
    private func sampleAndEmit(_ seq: GenerationSequence) {
        let result = logits.withUnsafeMutableBufferPointer { buf -> Result<SampledToken, GrammarError> in
            guard let base = buf.baseAddress else { return .success(SampledToken(token: 0)) }
            guard let grammar = seq.grammar else { return .success(seq.sampler.sample(logits: base)) }
            do throws(GrammarError) { return .success(try seq.sampler.sample(logits: base, grammar: grammar)) } catch {
                return .failure(error)
            }
        }
        let sampled: SampledToken
        switch result {
        case .success(let s): sampled = s
        case .failure(let e):
            fail(seq, "grammar: \(e.description)")
            return
        }
        let token = sampled.token
        if endTokens.contains(token) {
            finish(seq, reason: .stop)
            return
        }
        seq.generated.append(token)
        seq.pending = token
        monitor.withLock {
            statsValue.generatedTokens += 1
        }
        var bytes: [UInt8] = []
        do { try tokenizer.appendDecoded(token, to: &bytes) } catch { bytes = [] }
        seq.generatedBytes += bytes
        if seq.wantLogprobs {
            let top = (sampled.topLogprobs ?? []).map { t in
                (token: t.token, bytes: tokenizer.tokenBytes(t.token) ?? [], logprob: t.logprob)
            }
            seq.heldInfos.append(TokenInfo(token: token, bytes: bytes, logprob: sampled.logprob ?? 0, top: top))
        }
        let text = seq.decoder.feed(bytes: bytes)
        let (out, stopped) = seq.stops.feed(text)
        if !out.isEmpty || (seq.wantLogprobs && !seq.heldInfos.isEmpty && stopped) {
            let infos = seq.heldInfos
            seq.heldInfos.removeAll()
            seq.emit(.text(out, tokens: infos))
        }
        if stopped {
            finish(seq, reason: .stop)
        } else if seq.generated.count >= seq.maxTokens {
            finish(seq, reason: .length)
        }
    }

    private func fail(_ seq: GenerationSequence, _ message: String) {
        logger.error("generation failed: \(message)")
        seq.cancel.fail(message)
        finish(seq, reason: .cancelled)
    }

    private func finish(_ seq: GenerationSequence, reason: FinishReason) {
        guard !seq.finished else { return }
        seq.finished = true
        seq.finishReason = reason
        if reason != .stop || !seq.stops.stopped {
            // Text held back for a stop that never came is final now.
            let rest = seq.stops.finish() + (reason == .stop || reason == .length ? seq.decoder.flush() : "")
            if !rest.isEmpty || !seq.heldInfos.isEmpty {
                seq.emit(.text(rest, tokens: seq.heldInfos))
                seq.heldInfos.removeAll()
            }
        }
        let end = monotonicSeconds()
        let usage = GenerationUsage(
            promptTokens: seq.promptTokens.count, cachedPromptTokens: seq.cachedTokens,
            completionTokens: seq.generated.count,
            promptSeconds: seq.started ? seq.firstTokenTime - seq.startTime : end - seq.startTime,
            generationSeconds: seq.started ? end - seq.firstTokenTime : 0,
            queueSeconds: seq.startTime > 0 ? seq.startTime - seq.submitted : end - seq.submitted)
        if usage.generationSeconds > 0 && seq.generated.count > 1 {
            let rate = Double(seq.generated.count - 1) / usage.generationSeconds
            monitor.withLock {
                statsValue.tokensPerSecond = statsValue.tokensPerSecond == 0 ? rate
                    : 0.7 * statsValue.tokensPerSecond + 0.3 * rate
            }
        }
        onFinish(seq, self)
        seq.cancel.markFinished()
        seq.emit(.finished(reason: reason, usage: usage))
    }

    /// Runs tokens through a state (on the calling thread; used to close a session's turn).
    func feed(_ tokens: [Int32], into state: any SequenceState) {
        guard !tokens.isEmpty else { return }
        do {
            try tokens.withUnsafeBufferPointer { (p) throws(ModelError) in
                try runner.forward(p, state: state, logits: .none)
            }
        } catch {
            logger.error("closing a session turn failed: \(error.description)")
        }
    }
}
