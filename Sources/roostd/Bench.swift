import ArgumentParser
import Foundation
import GGUF
import Models
import Tensors

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `roostd bench MODEL`: prompt and generation speed, peak RSS, and generation speed as a
/// fraction of the memory-bandwidth floor measured in the same run. The JSON keys are
/// the contract of ../shared/DESIGN.md (tools read them).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure prompt and generation speed of a model.",
        discussion: """
            The prompt is --prompt-tokens pseudo-random tokens (fixed seed) processed in chunks of \
            --chunk tokens; then --gen-tokens tokens are generated greedily one at a time. The read \
            bandwidth is probed with the same threads before the run; the floor for one token is \
            (weight bytes read per token) / (read bandwidth), and floor_fraction is generation \
            tokens/s divided by the floor's tokens/s. See docs/PERFORMANCE.md.

            With --batch N, generation is measured again with N sequences stepped together \
            (one batched decode step feeds one token to each; the weights are read once per \
            step): batch_gen_tokens_per_s is the aggregate tokens/s of the N sequences and \
            batch_speedup its ratio to the single-sequence generation tokens/s of the same run. \
            See docs/BENCHMARKS.md.

            With --tokens-file, the prompt and the generated tokens come from the file
            instead (teacher forcing): two engines, or two runs with different settings, see
            exactly the same tokens, and for MoE models the same routing.

            With --memory-budget, --expert-policy chooses which resident expert makes room
            for a read: `frequency` (default: the lowest use count, decayed by 0.9 per
            token) or `lru` (the least recently used), and --prefetch-threshold when guesses
            of the next layer's experts are read ahead. See docs/EXPERT_STORE.md.
            """)

    @OptionGroup var options: ModelOptions
    @Option(help: "Prompt tokens.") var promptTokens: Int = 512
    @Option(help: "Generated tokens.") var genTokens: Int = 64
    @Option(help: "Prompt tokens per forward call.") var chunk: Int = 128
    @Option(help: "Runs; the best of each phase is reported.") var repeats: Int = 1
    @Option(help: "Also measure generation with this many sequences stepped together (1...64).") var batch: Int?
    @Option(help: ArgumentHelp("Memory the run may use (MoE models: dense weights, state, scratch and resident experts; the routed experts live in a buffer pool of what is left). Bytes, KiB/MiB/GiB, KB/MB/GB or N%.",
                               valueName: "size")) var memoryBudget: String?
    @Option(help: ArgumentHelp("Which resident expert makes room for a read, with --memory-budget: frequency (decayed use count) or lru.",
                               valueName: "policy")) var expertPolicy: ExpertEvictionPolicy = .frequency
    @Option(help: ArgumentHelp("With --memory-budget: a layer's guessed next experts are read ahead while at least this share of its recent guesses were right (0: always, 2: never).",
                               valueName: "share")) var prefetchThreshold: Double = ExpertStore.defaultPrefetchThreshold
    @Option(help: ArgumentHelp("A fixed token stream: whitespace-separated token ids; the first --prompt-tokens are the prompt, the next --gen-tokens are fed one by one as the generated tokens.",
                               valueName: "file")) var tokensFile: String?
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard promptTokens >= 1, promptTokens <= 1 << 20 else { throw ValidationError("--prompt-tokens must be in 1...1048576") }
        guard genTokens >= 1, genTokens <= 1 << 20 else { throw ValidationError("--gen-tokens must be in 1...1048576") }
        guard chunk >= 1, chunk <= 4096 else { throw ValidationError("--chunk must be in 1...4096") }
        guard repeats >= 1, repeats <= 100 else { throw ValidationError("--repeats must be in 1...100") }
        guard prefetchThreshold.isFinite, prefetchThreshold >= 0 else { throw ValidationError("--prefetch-threshold must be 0 or more") }
        if let batch { guard batch >= 1, batch <= 64 else { throw ValidationError("--batch must be in 1...64") } }
    }

    func run() throws {
        let loadStart = monotonicSeconds()
        let kernels = try options.kernels()
        let budget = try memoryBudget.map { try SizeParser.bytes($0, what: "--memory-budget") }
        var expertBudget: Int?
        if let budget { expertBudget = try expertBudgetBytes(total: budget) }
        let model: any LanguageModel
        do { model = try loadLanguageModel(path: options.model, kernels: kernels, expertBudgetBytes: expertBudget,
                                             expertOptions: ExpertStoreOptions(policy: expertPolicy,
                                                                               prefetchThreshold: prefetchThreshold)) } catch {
            throw CommandFailure("\(options.model): \(error.description)")
        }
        let loadSeconds = monotonicSeconds() - loadStart
        let pool = options.pool()
        let progress = isatty(STDERR_FILENO) != 0 && !json
        func say(_ s: String) { if progress { FileHandle.standardError.write(Data((s + "\n").utf8)) } }

        say("probing memory read bandwidth with \(pool.threads) thread(s)...")
        let bandwidth = try probeBandwidth(pool: pool)

        if let limit = model.contextLength, promptTokens + genTokens > limit {
            throw CommandFailure("--prompt-tokens + --gen-tokens = \(promptTokens + genTokens) is more than the model's context (\(limit) tokens)")
        }
        let runner: any ModelRunner
        do { runner = try model.makeRunner(maxTokens: chunk, maxBatch: 1, pool: pool, allLogits: false) } catch {
            throw CommandFailure(error.description)
        }
        let v = model.vocabulary
        var rng = SplitMix64(seed: 0x62656e6368)
        var prompt = (0..<promptTokens).map { _ in Int32(rng.next() % UInt64(v)) }
        var forced: [Int32]?
        if let tokensFile {
            let stream = try readTokenStream(tokensFile, vocabulary: v, needed: promptTokens + genTokens)
            prompt = Array(stream[0..<promptTokens])
            forced = Array(stream[promptTokens..<(promptTokens + genTokens)])
        }
        let state = model.makeSequenceState()
        func forward(_ tokens: [Int32]) throws {
            do {
                try tokens.withUnsafeBufferPointer { (p) throws(ModelError) in try runner.forward(p, state: state, logits: .last) }
            } catch { throw CommandFailure(error.description) }
        }
        // Warm-up: touch the weights and wake the threads.
        try forward(Array(prompt.prefix(min(chunk, 8))))
        var bestPrompt = Double.infinity, bestGen = Double.infinity, bestBatch = Double.infinity
        var generated: [Int32] = []
        var expertFigures: ExpertFigures?
        let batchRun = try batch.map { n in try BatchedGeneration(model: model, pool: pool, prompt: prompt, chunk: chunk,
                                                                   sequences: n) }
        for r in 0..<repeats {
            say("run \(r + 1)/\(repeats): prompt of \(promptTokens) tokens...")
            state.reset()
            let t0 = monotonicSeconds()
            try forward(prompt)
            bestPrompt = min(bestPrompt, monotonicSeconds() - t0)
            say("run \(r + 1)/\(repeats): generating \(genTokens) tokens...")
            generated.removeAll(keepingCapacity: true)
            var one: [Int32] = [0]
            let before = model.expertStore?.stats
            let t1 = monotonicSeconds()
            for i in 0..<genTokens {
                let next = forced?[i] ?? Int32(argmax(runner.logits(row: 0)))
                generated.append(next)
                one[0] = next
                do {
                    try one.withUnsafeBufferPointer { (p) throws(ModelError) in try runner.forward(p, state: state, logits: .last) }
                } catch { throw CommandFailure(error.description) }
            }
            let seconds = monotonicSeconds() - t1
            if seconds < bestGen, let before, let after = model.expertStore?.stats {
                let expertBytes = model.expertStore?.layers.first { !$0.isEmpty }?.first?.byteCount ?? 0
                expertFigures = ExpertFigures(before: before, after: after, tokens: genTokens, totalBudget: budget,
                                              expertBytes: expertBytes)
            }
            bestGen = min(bestGen, seconds)
            if let batchRun {
                // Right after the single-sequence run, so both see the same machine load.
                say("run \(r + 1)/\(repeats): \(batchRun.sequences) sequences x \(genTokens) tokens together...")
                bestBatch = min(bestBatch, try batchRun.run(steps: genTokens))
            }
        }
        let promptRate = Double(promptTokens) / bestPrompt
        let genRate = Double(genTokens) / bestGen
        let batchRate = batch.map { Double($0 * genTokens) / bestBatch }
        let bytesPerToken = model.weightBytesPerToken
        let floorRate = bandwidth / Double(bytesPerToken)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let peakRSS = Int(usage.ru_maxrss) * 1024
        let quant = dominantType(model.file)
        if json {
            var obj: [String: Any] = [
                "model": options.model, "arch": model.architecture.rawValue, "quant": quant,
                "threads": pool.threads, "kernels": kernels.path.name,
                "prompt_tokens": promptTokens, "gen_tokens": genTokens, "chunk": chunk,
                "prompt_tokens_per_s": promptRate, "gen_tokens_per_s": genRate,
                "peak_rss_bytes": peakRSS, "weight_bytes_per_token": bytesPerToken,
                "read_bandwidth_bytes_per_s": bandwidth.rounded(), "floor_tokens_per_s": floorRate,
                "floor_fraction": genRate / floorRate, "load_seconds": loadSeconds,
                "file_bytes": model.file.fileSize, "state_bytes": state.byteCount,
                "final_argmax": argmax(runner.logits(row: 0)),
            ]
            if let tokensFile { obj["tokens_file"] = tokensFile }
            if let expertFigures { obj["experts"] = expertFigures.json }
            if let batch, let batchRate {
                obj["batch"] = batch
                obj["batch_gen_tokens_per_s"] = batchRate
                obj["batch_speedup"] = batchRate / genRate
            }
            let out = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .prettyPrinted])
            FileHandle.standardOutput.write(out + Data("\n".utf8))
        } else {
            let mb = { (b: Double) in String(format: "%.1f MB", b / 1e6) }
            var lines: [String] = []
            lines.append("model        \(options.model) (\(model.architecture.rawValue), \(quant), \(shape(model)))")
            lines.append("kernels      \(kernels.path.name), \(pool.threads) thread(s); loaded in \(String(format: "%.2f", loadSeconds)) s")
            lines.append(String(format: "prompt       %d tokens in %.3f s: %.1f tokens/s (chunks of %d)", promptTokens, bestPrompt, promptRate, chunk))
            lines.append(String(format: "generation   %d tokens in %.3f s: %.2f tokens/s", genTokens, bestGen, genRate))
            lines.append("weights/token \(mb(Double(bytesPerToken))); read bandwidth \(String(format: "%.1f GB/s", bandwidth / 1e9))")
            lines.append(String(format: "floor        %.2f tokens/s; generation at %.0f%% of the floor", floorRate, 100 * genRate / floorRate))
            lines.append("peak RSS     \(mb(Double(peakRSS))); state \(state.byteCount) bytes")
            if let f = expertFigures {
                lines.append(f.line)
            }
            if let batch, let batchRate {
                lines.append(String(format: "batch        %d sequences together: %.2f tokens/s in all, %.2fx one sequence",
                                    batch, batchRate, batchRate / genRate))
            }
            print(lines.joined(separator: "\n"))
        }
    }

    /// What a total budget leaves for resident experts: the budget minus the weights that
    /// are not routed experts (`*_exps` tensors), the state of the run and a scratch
    /// allowance. Refuses a budget below the dense part, naming the minimum.
    private func expertBudgetBytes(total: Int) throws -> Int? {
        let file: GGUFFile
        do { file = try GGUFFile(path: options.model) } catch { throw CommandFailure("\(options.model): \(error.description)") }
        let experts = file.tensors.filter { $0.name.hasSuffix("_exps.weight") }.reduce(0) { $0 + $1.byteCount }
        guard experts > 0 else { return nil }
        let dense = file.tensors.reduce(0) { $0 + $1.byteCount } - experts
        let scratch = 64 << 20
        let left = total - dense - scratch
        guard left > 0 else {
            throw CommandFailure("--memory-budget \(total) bytes is below what the model needs besides its routed experts: \(dense + scratch) bytes (dense weights \(dense), scratch \(scratch)); add room for at least one layer's experts")
        }
        return left
    }

    /// The weight type holding most bytes of the 2-D tensors ("q8_0", "f16", ...).
    private func dominantType(_ file: GGUFFile) -> String {
        var bytes: [String: Int] = [:]
        for t in file.tensors where t.dims.count >= 2 {
            let name = QuantType(ggmlType: t.type.rawValue)?.name ?? t.type.name.lowercased()
            bytes[name, default: 0] += t.byteCount
        }
        return bytes.max { $0.value < $1.value }?.key ?? "unknown"
    }

    /// Median read bandwidth over a 256 MiB (or 4x last-level cache) buffer.
    private func probeBandwidth(pool: WorkerPool) throws -> Double {
        let bytes = max(256 << 20, 4 * (SystemCPU.lastLevelCacheBytes ?? 0))
        do { return try MemoryBandwidth.probe(bytes: bytes, pool: pool, minRounds: 7, minSeconds: 0) } catch {
            throw CommandFailure(error.description)
        }
    }
}

/// Generation with `sequences` sequences stepped together by `forwardBatch`. Every
/// sequence starts from the prompt's state with its own first token, then continues
/// greedily.
private struct BatchedGeneration {
    let model: any LanguageModel
    let sequences: Int
    let runner: any ModelRunner
    let start: any SequenceState
    let states: [any SequenceState]
    let first: Int

    init(model: any LanguageModel, pool: WorkerPool, prompt: [Int32], chunk: Int, sequences n: Int) throws {
        self.model = model
        sequences = n
        do {
            runner = try model.makeRunner(maxTokens: chunk, maxBatch: n, pool: pool, allLogits: false)
            start = model.makeSequenceState()
            let (r, s) = (runner, start)
            try prompt.withUnsafeBufferPointer { (p) throws(ModelError) in try r.forward(p, state: s, logits: .last) }
            first = argmax(runner.logits(row: 0))
        } catch { throw CommandFailure(error.description) }
        let s = start
        states = (0..<n).map { _ in s.copyState() }
    }

    /// Seconds for `steps` batched steps (`steps * sequences` tokens).
    func run(steps: Int) throws -> Double {
        let v = model.vocabulary
        var tokens = [Int32](repeating: 0, count: sequences)
        for i in 0..<sequences {
            do { try states[i].assign(from: start) } catch { throw CommandFailure(error.description) }
            tokens[i] = Int32((first + i) % v)
        }
        let t0 = monotonicSeconds()
        for _ in 0..<steps {
            do {
                try tokens.withUnsafeBufferPointer { (p) throws(ModelError) in
                    try runner.forwardBatch(tokens: p, states: states, computeLogits: true)
                }
            } catch { throw CommandFailure(error.description) }
            for i in 0..<sequences { tokens[i] = Int32(argmax(runner.batchLogits(i))) }
        }
        return monotonicSeconds() - t0
    }
}

/// The index of the first largest value.
func argmax(_ x: UnsafeBufferPointer<Float>) -> Int {
    guard let base = x.baseAddress else { return 0 }
    return Ops.argmax(base, n: x.count)
}

/// "12 layers x 768" from the file's `{arch}.block_count` and `{arch}.embedding_length`.
func shape(_ model: any LanguageModel) -> String {
    let arch = model.architecture.rawValue
    let layers = model.file.metadata["\(arch).block_count"]?.int
    let width = model.file.metadata["\(arch).embedding_length"]?.int
    guard let layers, let width else { return "\(model.file.tensors.count) tensors" }
    return "\(layers) layers x \(width)"
}

/// The token ids of a whitespace-separated file: at least `needed`, each in the vocabulary.
func readTokenStream(_ path: String, vocabulary: Int, needed: Int) throws -> [Int32] {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw CommandFailure("\(path): cannot read the file")
    }
    var ids: [Int32] = []
    for (i, word) in String(decoding: data, as: UTF8.self).split(whereSeparator: { $0.isWhitespace }).enumerated() {
        guard let id = Int32(word), id >= 0, Int(id) < vocabulary else {
            throw CommandFailure("\(path): item \(i + 1) '\(word.prefix(20))' is not a token id in 0..<\(vocabulary)")
        }
        ids.append(id)
        if ids.count == needed { break }
    }
    guard ids.count >= needed else {
        throw CommandFailure("\(path): \(ids.count) token ids; --prompt-tokens + --gen-tokens need \(needed)")
    }
    return ids
}

/// The expert store's figures over the best generation run.
struct ExpertFigures {
    let delta: ExpertLayerStats
    let layers: [ExpertLayerStats]
    let tokens: Int
    let resident: Int
    let storeBudget: Int
    let totalBudget: Int?
    /// Bytes of one routed expert (its three slices).
    let expertBytes: Int

    init(before: ExpertStoreStats, after: ExpertStoreStats, tokens: Int, totalBudget: Int?, expertBytes: Int) {
        func minus(_ a: ExpertLayerStats, _ b: ExpertLayerStats) -> ExpertLayerStats {
            var d = ExpertLayerStats()
            d.hits = a.hits - b.hits
            d.misses = a.misses - b.misses
            d.prefetched = a.prefetched - b.prefetched
            d.prefetchUsed = a.prefetchUsed - b.prefetchUsed
            d.bytesRead = a.bytesRead - b.bytesRead
            d.stallSeconds = a.stallSeconds - b.stallSeconds
            d.residentBytes = a.residentBytes
            return d
        }
        layers = zip(after.layers, before.layers).map { minus($0, $1) }
        delta = minus(after.total, before.total)
        self.tokens = max(1, tokens)
        resident = after.total.residentBytes
        storeBudget = after.budgetBytes
        self.totalBudget = totalBudget
        self.expertBytes = expertBytes
    }

    var json: [String: Any] {
        let n = Double(tokens)
        return [
            "hit_rate": delta.hitRate, "prefetch_accuracy": delta.prefetchAccuracy,
            "disk_bytes_per_token": Double(delta.bytesRead) / n, "stall_s_per_token": delta.stallSeconds / n,
            "resident_bytes": resident, "budget_bytes": totalBudget ?? 0, "expert_pool_bytes": storeBudget,
            "routed_bytes_per_token": Double(delta.requests * expertBytes) / n,
            "prefetch_wasted_bytes_per_token": Double(delta.prefetchWasted * expertBytes) / n,
            "layers": layers.enumerated().filter { $0.element.requests > 0 }.map { (i, l) in
                ["layer": i, "hit_rate": l.hitRate, "prefetch_accuracy": l.prefetchAccuracy,
                 "disk_bytes_per_token": Double(l.bytesRead) / n, "stall_s_per_token": l.stallSeconds / n,
                 "resident_bytes": l.residentBytes] as [String: Any]
            },
        ]
    }

    var line: String {
        String(format: "experts      hit rate %.3f, prefetch accuracy %.3f, %.1f MB read and %.1f ms stalled per token, %.1f MB resident",
               delta.hitRate, delta.prefetchAccuracy, Double(delta.bytesRead) / Double(tokens) / 1e6,
               1000 * delta.stallSeconds / Double(tokens), Double(resident) / 1e6)
    }
}

extension ExpertEvictionPolicy: ExpressibleByArgument {}
