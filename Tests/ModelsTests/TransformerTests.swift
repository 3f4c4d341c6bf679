import Foundation
import GGUF
import Models
import Tensors
import Testing

struct TransformerCase: CustomStringConvertible, Sendable {
    let variant: TransformerVariant
    let type: QuantType
    var cache: KVCacheType = .f16
    var description: String { "\(variant) \(type.name) \(cache) cache" }

    static let all: [TransformerCase] = TransformerVariant.allCases.flatMap { v in
        [QuantType.f32, .q8_0, .q4_0].map { TransformerCase(variant: v, type: $0) }
            + [TransformerCase(variant: v, type: .f16, cache: .f32), TransformerCase(variant: v, type: .q8_0, cache: .q8_0)]
    }

    /// The random model's spec: heads of 32 dims for a Q8_0 cache.
    static func spec(_ variant: TransformerVariant, type: QuantType = .f32, cache: KVCacheType, seed: UInt64) -> RandomTransformerSpec {
        var s = RandomTransformerSpec(variant: variant, matrixType: type, seed: seed)
        if cache == .q8_0 {
            s.heads = 4
            s.kvHeads = 2
            s.headDim = 32
        }
        return s
    }

    func load(seed: UInt64) throws -> TransformerModel {
        let r = try makeRandomTransformer(TransformerCase.spec(variant, type: type, cache: cache, seed: seed))
        return try TransformerModel(file: try GGUFFile(bytes: r.bytes), kernels: Kernels.best, kvCache: cache)
    }
}

private func floats(_ p: UnsafeBufferPointer<Float>) -> [Float] { Array(p) }

/// max |a - b| / max |b|
private func relError(_ a: [Float], _ b: [Double]) -> (abs: Double, rel: Double) {
    var e = 0.0, m = 0.0
    for (x, y) in zip(a, b) {
        e = max(e, abs(Double(x) - y))
        m = max(m, abs(y))
    }
    return (e, e / max(m, 1e-30))
}

@Suite struct TransformerTests {
    /// The model against a plain double-precision forward written from the architectures'
    /// definitions: RoPE layout, GQA, q/k norms, biases, routing and the shared expert.
    @Test(arguments: TransformerVariant.allCases, [KVCacheType.f16, .f32, .q8_0])
    func matchesReferenceForward(_ variant: TransformerVariant, _ cache: KVCacheType) throws {
        let r = try makeRandomTransformer(TransformerCase.spec(variant, cache: cache, seed: 3))
        let model = try TransformerModel(file: try GGUFFile(bytes: r.bytes), kernels: Kernels.best, kvCache: cache)
        let pool = WorkerPool(threads: 2)
        let tokens = randomTokens(12, vocabulary: model.config.vocabulary, seed: 7)
        let runner = try TransformerRunner(model: model, maxTokens: 12, maxBatch: 1, pool: pool, allLogits: true)
        let s = model.makeState()
        try runner.forward(tokens, state: s, logits: .all)
        let want = referenceLogits(r, tokens: tokens)
        let v = model.config.vocabulary
        var worst = (abs: 0.0, rel: 0.0)
        for (t, row) in want.enumerated() {
            let got = floats(runner.logits(row: t))
            #expect(got.count == v)
            let e = relError(got, row)
            if e.rel > worst.rel { worst = e }
            // Same argmax, unless the reference's top two are closer than the error.
            let sorted = row.sorted(by: >)
            let refArgmax = row.firstIndex(of: sorted[0]) ?? -1
            #expect(Ops.argmax(got, n: v) == refArgmax || sorted[0] - sorted[1] < 2 * e.abs,
                    "\(variant) \(cache) position \(t): argmax differs")
        }
        print("reference agreement \(variant) \(cache) cache: max abs \(worst.abs), rel \(worst.rel)")
        // F16 keys and values (rounding 2^-11) are the main difference; with an F32 cache,
        // float rounding only.
        let bound: Double
        switch cache {
        case .f16: bound = 2e-3
        case .f32: bound = 2e-5
        case .q8_0: bound = 2e-2
        }
        #expect(worst.rel < bound, "\(variant) \(cache): logits differ from the reference by \(worst.abs) (\(worst.rel) relative)")
    }

    /// Partial rotary dims (`rope.dimension_count` < head size), both pair layouts.
    @Test(arguments: [TransformerVariant.llama, .qwen3moe])
    func partialRotaryMatchesReference(_ variant: TransformerVariant) throws {
        let r = try makeRandomTransformer(RandomTransformerSpec(variant: variant, ropeDims: 8, seed: 12))
        let model = try TransformerModel(file: try GGUFFile(bytes: r.bytes), kernels: Kernels.best, kvCache: .f32)
        #expect(model.config.rope.dims == 8)
        let tokens = randomTokens(9, vocabulary: model.config.vocabulary, seed: 3)
        let runner = try TransformerRunner(model: model, maxTokens: 9, maxBatch: 1, pool: WorkerPool(threads: 2),
                                           allLogits: true)
        try runner.forward(tokens, state: model.makeState(), logits: .all)
        for (t, row) in referenceLogits(r, tokens: tokens).enumerated() {
            let e = relError(Array(runner.logits(row: t)), row)
            #expect(e.rel < 2e-5, "\(variant) position \(t): \(e.rel) relative")
        }
    }

    /// Prefill in chunks of any size gives bitwise the logits and cache of token-by-token
    /// decode; `.all` rows are the decode steps' logits.
    @Test(arguments: TransformerCase.all)
    func prefillMatchesDecode(_ c: TransformerCase) throws {
        let model = try c.load(seed: 5)
        let pool = WorkerPool(threads: 2)
        let v = model.config.vocabulary
        let tokens = randomTokens(21, vocabulary: v, seed: 11)
        let step = try TransformerRunner(model: model, maxTokens: 1, maxBatch: 1, pool: pool, allLogits: false)
        let one = model.makeState()
        var rows: [[Float]] = []
        for t in tokens {
            try step.forward([t], state: one, logits: .last)
            rows.append(floats(step.logits(row: 0)))
        }
        for chunk in [2, 5, 8, 21] {
            let runner = try TransformerRunner(model: model, maxTokens: chunk, maxBatch: 1, pool: pool, allLogits: true)
            let s = model.makeState()
            try runner.forward(tokens, state: s, logits: .last)
            let same = floats(runner.logits(row: 0)).map(\.bitPattern) == rows[20].map(\.bitPattern)
            #expect(same, "\(c) chunk \(chunk): last logits differ from decode")
            #expect(s.serialized() == one.serialized(), "\(c) chunk \(chunk): KV cache differs from decode")
            #expect(s.tokenCount == 21)
        }
        let runner = try TransformerRunner(model: model, maxTokens: 21, maxBatch: 1, pool: pool, allLogits: true)
        let s = model.makeState()
        try runner.forward(tokens, state: s, logits: .all)
        for t in 0..<21 {
            let same = floats(runner.logits(row: t)).map(\.bitPattern) == rows[t].map(\.bitPattern)
            #expect(same, "\(c): .all row \(t) differs from decode")
            #expect(!rows[t].contains { !$0.isFinite }, "\(c): non-finite logits")
        }
    }

    /// forwardBatch over changing sets of sequences equals single-sequence decode bitwise.
    @Test(arguments: TransformerCase.all)
    func batchMatchesSingle(_ c: TransformerCase) throws {
        let model = try c.load(seed: 6)
        let pool = WorkerPool(threads: 2)
        let v = model.config.vocabulary
        let single = try TransformerRunner(model: model, maxTokens: 4, maxBatch: 1, pool: pool, allLogits: false)
        let batch = try TransformerRunner(model: model, maxTokens: 1, maxBatch: 6, pool: pool, allLogits: false)
        let prompts = (0..<6).map { randomTokens(1 + $0 * 3, vocabulary: v, seed: UInt64(20 + $0)) }
        let reference = prompts.map { _ in model.makeState() }
        for (s, p) in zip(reference, prompts) { try single.forward(p, state: s, logits: .none) }
        let batched = reference.map { $0.copy() }
        var next = prompts.map { $0.last ?? 1 }
        let schedule: [[Int]] = [[0], [0, 1], [1, 0, 2], [2, 3, 0, 1], [3, 1], [4, 2, 3, 0, 1], [5, 4, 3, 2, 1, 0], [2], [1, 5, 4]]
        for (n, members) in schedule.enumerated() {
            let toks = members.map { next[$0] }
            try batch.forwardBatch(tokens: toks, states: members.map { batched[$0] })
            for (row, seq) in members.enumerated() {
                try single.forward([toks[row]], state: reference[seq], logits: .last)
                let want = floats(single.logits(row: 0))
                let got = floats(batch.batchLogits(row))
                #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "\(c) step \(n) seq \(seq) row \(row): logits differ")
                #expect(batched[seq].serialized() == reference[seq].serialized(), "\(c) step \(n) seq \(seq): cache differs")
                next[seq] = Int32(Ops.argmax(single.logits(row: 0).baseAddress!, n: v))
            }
        }
    }

    @Test(arguments: TransformerVariant.allCases)
    func stateSerializeCopyTruncate(_ variant: TransformerVariant) throws {
        let (model, _) = try loadRandomTransformer(RandomTransformerSpec(variant: variant, matrixType: .q8_0, seed: 8))
        let pool = WorkerPool(threads: 2)
        let v = model.config.vocabulary
        let tokens = randomTokens(14, vocabulary: v, seed: 9)
        let runner = try TransformerRunner(model: model, maxTokens: 4, maxBatch: 1, pool: pool, allLogits: false)
        let straight = model.makeState()
        try runner.forward(tokens, state: straight, logits: .last)
        let expected = floats(runner.logits(row: 0))

        // Serialize after 6 tokens, restore into a fresh state, continue.
        let first = model.makeState()
        try runner.forward(Array(tokens[0..<6]), state: first, logits: .none)
        let blob = first.serialized()
        let restored = model.makeState()
        try restored.restore(from: blob)
        #expect(restored.tokenCount == 6)
        try runner.forward(Array(tokens[6...]), state: restored, logits: .last)
        #expect(floats(runner.logits(row: 0)) == expected, "\(variant): restored state does not resume exactly")

        // Truncate (prefix reuse): 14 -> 9, then the same last 5 tokens again.
        let cut = straight.copy()
        #expect(cut.truncate(to: 9))
        #expect(!cut.truncate(to: 10))
        try runner.forward(Array(tokens[9...]), state: cut, logits: .last)
        #expect(floats(runner.logits(row: 0)) == expected, "\(variant): truncated state does not resume exactly")

        // copyState / assign through the protocol.
        let any: any SequenceState = straight
        let c2 = any.copyState()
        #expect(c2.tokenCount == 14 && c2.serialized() == straight.serialized())
        let target = model.makeState()
        try target.assign(from: c2)
        #expect(target.serialized() == straight.serialized())

        // The empty state round-trips.
        let empty = model.makeState()
        let emptyBlob = empty.serialized()
        let back = model.makeState()
        try back.restore(from: emptyBlob)
        #expect(back.tokenCount == 0 && back.serialized() == emptyBlob)
        try back.restore(from: blob)
        #expect(back.serialized() == blob)

        // Corrupt bytes, another model.
        var bad = blob
        bad[bad.count / 2] ^= 0x40
        #expect(throws: ModelError.self) { try model.makeState().restore(from: bad) }
        let (other, _) = try loadRandomTransformer(RandomTransformerSpec(variant: variant, matrixType: .q8_0, seed: 99))
        #expect(throws: ModelError.self) { try other.makeState().restore(from: blob) }
        #expect(throws: ModelError.self) { try other.makeState().assign(from: straight) }
        #expect(model.stateBytes(tokens: 10) == 10 * model.config.layers * 2 * model.config.kvWidth * 2)
        // A state of another cache type is refused.
        let r32 = try makeRandomTransformer(RandomTransformerSpec(variant: variant, matrixType: .q8_0, seed: 8))
        let m32 = try TransformerModel(file: try GGUFFile(bytes: r32.bytes), kernels: Kernels.best, kvCache: .f32)
        #expect(throws: ModelError.self) { try m32.makeState().restore(from: blob) }
        // Q8_0 caches need heads of a multiple of 32 dims.
        #expect(throws: ModelError.self) {
            _ = try TransformerModel(file: try GGUFFile(bytes: r32.bytes), kernels: Kernels.best, kvCache: .q8_0)
        }
    }

    @Test func contextFullIsATypedError() throws {
        let (model, _) = try loadRandomTransformer(RandomTransformerSpec(variant: .qwen3moe, contextLength: 16, seed: 2))
        let pool = WorkerPool(threads: 1)
        let runner = try TransformerRunner(model: model, maxTokens: 8, maxBatch: 2, pool: pool, allLogits: false)
        let s = model.makeState()
        try runner.forward(randomTokens(15, vocabulary: 128, seed: 1), state: s, logits: .last)
        #expect(throws: ModelError.contextFull(count: 17, limit: 16)) {
            try runner.forward([1, 2], state: s, logits: .last)
        }
        #expect(s.tokenCount == 15)
        try runner.forward([3], state: s, logits: .last)
        #expect(s.tokenCount == 16)
        let fresh = model.makeState()
        #expect(throws: ModelError.contextFull(count: 17, limit: 16)) {
            try runner.forwardBatch(tokens: [1, 2], states: [fresh, s])
        }
        #expect(fresh.tokenCount == 0)
        #expect(model.contextLength == 16)
    }

    @Test func loadsThroughLanguageModel() throws {
        for variant in TransformerVariant.allCases {
            let r = try makeRandomTransformer(RandomTransformerSpec(variant: variant, seed: 4))
            let m = try loadLanguageModel(file: try GGUFFile(bytes: r.bytes), kernels: Kernels.best)
            #expect(m.architecture == variant.arch)
            #expect(m.weightBytesPerToken > 0 && m.weightBytesPerToken <= m.fileWeightBytes)
            let runner = try m.makeRunner(maxTokens: 4, maxBatch: 2, pool: WorkerPool(threads: 1), allLogits: false)
            let s = m.makeSequenceState()
            try [Int32(1), 2, 3].withUnsafeBufferPointer { (p) throws(ModelError) in
                try runner.forward(p, state: s, logits: .last)
            }
            #expect(s.tokenCount == 3)
            if variant.isMoE, let t = m as? TransformerModel {
                let ranges = t.expertRanges
                #expect(ranges.count == 2 && ranges[0].count == 4)
                // Slices are disjoint and inside the file.
                let all = ranges.flatMap { $0 }.flatMap { [$0.gate, $0.up, $0.down] }.sorted { $0.lowerBound < $1.lowerBound }
                for (a, b) in zip(all, all.dropFirst()) { #expect(a.upperBound <= b.lowerBound) }
                #expect((all.last?.upperBound ?? 0) <= r.bytes.count)
            }
        }
    }
}

@Suite struct TransformerBrokenFileTests {
    private func load(_ s: RandomTransformerSpec) throws(ModelError) -> TransformerModel {
        let r: RandomTransformer
        do { r = try makeRandomTransformer(s) } catch {
            Issue.record("could not write the test model: \(error)")
            throw .corruptState("test setup")
        }
        let f: GGUFFile
        do { f = try GGUFFile(bytes: r.bytes) } catch { throw .file(error) }
        return try TransformerModel(file: f, kernels: Kernels.best)
    }

    @Test func unknownArchitecture() throws {
        var w = try GGUFWriter()
        w.add("general.architecture", .string("gpt5"))
        let f = try GGUFFile(bytes: w.serialize())
        #expect(throws: ModelError.unsupportedArchitecture(found: "gpt5")) {
            _ = try loadLanguageModel(file: f, kernels: Kernels.best)
        }
    }

    @Test func missingTensor() {
        #expect(throws: ModelError.missingTensor(name: "blk.1.attn_k.weight")) {
            _ = try load(RandomTransformerSpec(variant: .llama, skipTensor: "blk.1.attn_k.weight"))
        }
        #expect(throws: ModelError.missingTensor(name: "blk.0.attn_q.bias")) {
            _ = try load(RandomTransformerSpec(variant: .qwen2, skipTensor: "blk.0.attn_q.bias"))
        }
        #expect(throws: ModelError.missingTensor(name: "blk.0.ffn_down_exps.weight")) {
            _ = try load(RandomTransformerSpec(variant: .olmoe, skipTensor: "blk.0.ffn_down_exps.weight"))
        }
        #expect(throws: ModelError.missingTensor(name: "blk.1.attn_k_norm.weight")) {
            _ = try load(RandomTransformerSpec(variant: .qwen3moe, skipTensor: "blk.1.attn_k_norm.weight"))
        }
    }

    @Test func inconsistentHeads() {
        #expect(throws: ModelError.badMetadata(key: "llama.attention.head_count_kv",
                                               expected: "a positive divisor of llama.attention.head_count = 4", found: "3")) {
            _ = try load(RandomTransformerSpec(variant: .llama, declaredKVHeads: 3))
        }
        // Heads x head size != embedding without key_length: 6 heads of 64 / 6.
        do {
            _ = try load(RandomTransformerSpec(variant: .llama, heads: 6, kvHeads: 2, omitKeyLength: true))
            Issue.record("loaded a model whose embedding is not heads x head size")
        } catch {
            guard case let .badMetadata(key, _, _) = error else { Issue.record("\(error)"); return }
            #expect(key == "llama.attention.key_length")
        }
        // With key_length the projections' shapes decide: a lie is a wrong shape naming the tensor.
        do {
            _ = try load(RandomTransformerSpec(variant: .qwen3moe, declaredKVHeads: 1))
            Issue.record("loaded a model whose attn_k does not match head_count_kv")
        } catch {
            guard case let .wrongShape(tensor, _, _) = error else { Issue.record("\(error)"); return }
            #expect(tensor == "blk.0.attn_k.weight")
        }
    }

    @Test func inconsistentExperts() {
        #expect(throws: ModelError.badMetadata(key: "qwen2moe.expert_used_count", expected: "1...qwen2moe.expert_count = 4",
                                               found: "5")) {
            _ = try load(RandomTransformerSpec(variant: .qwen2moe, declaredExpertsUsed: 5))
        }
        #expect(throws: ModelError.badMetadata(key: "olmoe.expert_count", expected: "a positive integer", found: "0")) {
            _ = try load(RandomTransformerSpec(variant: .olmoe, declaredExperts: 0))
        }
        do {
            _ = try load(RandomTransformerSpec(variant: .mixtral, declaredExperts: 8))
            Issue.record("loaded a model whose exps tensors hold 4 experts, 8 declared")
        } catch {
            guard case let .wrongShape(tensor, expected, found) = error else { Issue.record("\(error)"); return }
            #expect(tensor == "blk.0.ffn_gate_inp.weight" || tensor == "blk.0.ffn_gate_exps.weight")
            #expect(expected.last == 8 && found.last == 4)
        }
    }
}
