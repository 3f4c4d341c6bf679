import Tensors

extension TransformerModel: LanguageModel {
    public var architecture: Architecture { config.architecture }
    public var vocabulary: Int { config.vocabulary }
    public var contextLength: Int? { config.contextLength }

    /// KV cache bytes of a state holding `tokens` tokens (F16 keys and values, every layer).
    public func stateBytes(tokens: Int) -> Int { max(0, tokens) * kvBytesPerToken }

    public func makeSequenceState() -> any SequenceState { makeState() }

    public func workingBytes(maxTokens: Int, maxBatch: Int, threads: Int) -> Int {
        TransformerWorkspace.byteCount(config, maxTokens: maxTokens, maxBatch: maxBatch, threads: max(1, threads))
    }

    public func makeRunner(maxTokens: Int, maxBatch: Int, pool: WorkerPool,
                           allLogits: Bool) throws(ModelError) -> any ModelRunner {
        try TransformerRunner(model: self, maxTokens: maxTokens, maxBatch: maxBatch, pool: pool, allLogits: allLogits)
    }
}

/// `ModelRunner` of a transformer model: one workspace for chunks of one sequence and
/// batched decode steps. Not Sendable: one per thread of use.
public final class TransformerRunner: ModelRunner {
    public let model: TransformerModel
    public let workspace: TransformerWorkspace
    private var batchStates: [TransformerState] = []

    public init(model: TransformerModel, maxTokens: Int, maxBatch: Int, pool: WorkerPool, allLogits: Bool) throws(ModelError) {
        self.model = model
        workspace = try TransformerWorkspace(model: model, maxTokens: maxTokens, maxBatch: maxBatch, pool: pool,
                                             allLogits: allLogits)
        batchStates.reserveCapacity(workspace.maxBatch)
    }

    public var maxTokens: Int { workspace.maxTokens }
    public var maxBatch: Int { workspace.maxBatch }
    public var pool: WorkerPool { workspace.pool }

    private func transformerState(_ s: any SequenceState) throws(ModelError) -> TransformerState {
        guard let t = s as? TransformerState else { throw .stateMismatch("a \(type(of: s)) is not a transformer state") }
        guard t.fingerprint == model.fingerprint else { throw .stateMismatch("the state was made for another model") }
        return t
    }

    /// Runs `tokens` in chunks of at most `maxTokens`. Checks every token, the logits mode
    /// and the context length before the state changes; grows the state's cache once.
    public func forward(_ tokens: UnsafeBufferPointer<Int32>, state: any SequenceState,
                        logits mode: LogitsMode) throws(ModelError) {
        let s = try transformerState(state)
        let v = model.config.vocabulary
        for t in tokens where t < 0 || Int(t) >= v { throw .tokenOutOfRange(token: t, vocabulary: v) }
        if case .all = mode {
            guard workspace.allLogits else { throw .tooManyTokens(count: tokens.count, maximum: 0) }
            guard tokens.count <= workspace.maxTokens else {
                throw .tooManyTokens(count: tokens.count, maximum: workspace.maxTokens)
            }
        }
        let total = s.tokenCount + tokens.count
        guard total <= model.config.contextLength else {
            throw .contextFull(count: total, limit: model.config.contextLength)
        }
        s.reserve(total)
        var start = 0
        while start < tokens.count {
            let n = min(workspace.maxTokens, tokens.count - start)
            let last = start + n == tokens.count
            try model.forwardColumns(UnsafeBufferPointer(rebasing: tokens[start..<(start + n)]), .chunk(s), ws: workspace,
                                 logits: last ? mode : .none)
            start += n
        }
    }

    /// Convenience: `forward` on an array.
    public func forward(_ tokens: [Int32], state: any SequenceState, logits mode: LogitsMode) throws(ModelError) {
        try tokens.withUnsafeBufferPointer { (p) throws(ModelError) in try forward(p, state: state, logits: mode) }
    }

    public func logits(row: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: workspace.logits + row * model.config.vocabulary, count: model.config.vocabulary)
    }

    /// One decode step of B sequences: every projection one product over the B columns,
    /// attention per sequence over its own cache. Batch invariant (the products' columns
    /// are the gemv's bits; attention and routing are per column). Checks everything
    /// before any state changes.
    public func forwardBatch(tokens: UnsafeBufferPointer<Int32>, states: [any SequenceState],
                             computeLogits: Bool) throws(ModelError) {
        let b = tokens.count
        guard b >= 1, b <= workspace.maxBatch else {
            throw .invalidBatch("\(b) sequences; the workspace holds 1...\(workspace.maxBatch)")
        }
        guard states.count == b else { throw .invalidBatch("\(b) tokens but \(states.count) states") }
        batchStates.removeAll(keepingCapacity: true)
        defer { batchStates.removeAll(keepingCapacity: true) }
        let v = model.config.vocabulary, ctx = model.config.contextLength
        for i in 0..<b {
            let s = try transformerState(states[i])
            let t = tokens[i]
            guard t >= 0, Int(t) < v else { throw .tokenOutOfRange(token: t, vocabulary: v) }
            for j in 0..<i where batchStates[j] === s { throw .invalidBatch("sequences \(j) and \(i) share one state") }
            guard s.tokenCount + 1 <= ctx else { throw .contextFull(count: s.tokenCount + 1, limit: ctx) }
            batchStates.append(s)
        }
        for s in batchStates { s.reserve(s.tokenCount + 1) }
        try model.forwardColumns(tokens, .batch(batchStates), ws: workspace, logits: computeLogits ? .all : .none)
    }

    /// Convenience: `forwardBatch` on arrays.
    public func forwardBatch(tokens: [Int32], states: [any SequenceState], computeLogits: Bool = true) throws(ModelError) {
        try tokens.withUnsafeBufferPointer { (p) throws(ModelError) in
            try forwardBatch(tokens: p, states: states, computeLogits: computeLogits)
        }
    }

    public func batchLogits(_ i: Int) -> UnsafeBufferPointer<Float> {
        precondition(i >= 0 && i < workspace.maxBatch, "logits row \(i) outside 0..<\(workspace.maxBatch)")
        return UnsafeBufferPointer(start: workspace.logits + i * model.config.vocabulary, count: model.config.vocabulary)
    }
}
