import Foundation
import GGUF
@testable import Models
import Tensors
import Testing

/// `deepseek2` (multi-head latent attention, shared experts, leading dense blocks,
/// group-limited routing, YaRN) on the fixtures of Tests/Fixtures/transformers/deepseek2-*
/// (tiny random DeepseekV2ForCausalLM models converted by llama.cpp's converter; expected
/// logits from transformers in F32 with DeepSeek's YaRN softmax factor applied).
struct DeepSeek2Fixture: Sendable, CustomStringConvertible {
    let name: String
    let type: String
    let cache: KVCacheType
    var description: String { "\(name) \(type) (\(cache) KV cache)" }

    static let all: [DeepSeek2Fixture] = [
        DeepSeek2Fixture(name: "deepseek2-lite", type: "f16", cache: .f32),
        DeepSeek2Fixture(name: "deepseek2-lite", type: "f16", cache: .f16),
        DeepSeek2Fixture(name: "deepseek2-lite", type: "q8_0", cache: .f32),
        DeepSeek2Fixture(name: "deepseek2-lite-norope", type: "f16", cache: .f32),
        DeepSeek2Fixture(name: "deepseek2-qlora", type: "f32", cache: .f32),
        DeepSeek2Fixture(name: "deepseek2-qlora", type: "f32", cache: .f16),
        DeepSeek2Fixture(name: "deepseek2-qlora", type: "q8_0", cache: .f32),
        DeepSeek2Fixture(name: "deepseek2-qlora", type: "q4_0", cache: .f32),
    ]
}

private struct DeepSeek2Expected: Decodable {
    struct Tolerance: Decodable {
        let max_abs: Double
        let max_rel: Double
    }
    struct LlamaCpp: Decodable {
        let greedy: [Int32]
    }
    let prompt_ids: [Int32]
    let logits: [[Float]]
    let greedy_ids: [Int32]
    let greedy_top2_margins: [Float]?
    let files: [String: String]
    let recommended_tolerances: [String: Tolerance]
    let llama_cpp: [String: LlamaCpp]?
    let llama_cpp_logits: [String: [[Float]]]?
}

private func deepseekPath(_ name: String, _ type: String) throws -> (URL, DeepSeek2Expected)? {
    let dir = transformerFixtureDir.appendingPathComponent(name)
    let json = dir.appendingPathComponent("expected.json")
    guard sharedFixturePresent(json) else { return nil }
    let exp = try JSONDecoder().decode(DeepSeek2Expected.self, from: Data(contentsOf: json))
    guard let fileName = exp.files[type] else {
        Issue.record("\(name): expected.json lists no \(type) file")
        return nil
    }
    let path = dir.appendingPathComponent(fileName)
    guard sharedFixturePresent(path) else { return nil }
    return (path, exp)
}

@Suite struct DeepSeek2FixtureTests {
    /// Prompt logits within the fixture's tolerance of transformers' (F32/F16 files) and
    /// the greedy continuation identical to transformers' except past a near tie; quantized
    /// files within the fixture's recommended tolerance of transformers.
    @Test(arguments: DeepSeek2Fixture.all)
    func matchesTransformers(_ f: DeepSeek2Fixture) throws {
        guard let (path, exp) = try deepseekPath(f.name, f.type) else { return }
        let model = try TransformerModel(path: path.path, kernels: Kernels.best, kvCache: f.cache)
        #expect(model.architecture == .deepseek2)
        let pool = WorkerPool(threads: 2)
        let v = model.config.vocabulary
        let prompt = exp.prompt_ids
        let runner = try TransformerRunner(model: model, maxTokens: prompt.count, maxBatch: 1, pool: pool, allLogits: true)
        let state = model.makeState()
        try runner.forward(prompt, state: state, logits: .all)
        var maxAbs = 0.0, scale = 0.0
        var argmaxAgree = 0
        for (t, row) in exp.logits.enumerated() {
            let got = Array(runner.logits(row: t))
            #expect(got.count == row.count && row.count == v)
            for (a, b) in zip(got, row) {
                maxAbs = max(maxAbs, abs(Double(a) - Double(b)))
                scale = max(scale, abs(Double(b)))
            }
            if Ops.argmax(got, n: v) == Ops.argmax(row, n: v) { argmaxAgree += 1 }
        }
        let rel = maxAbs / max(scale, 1e-30)
        var cppAbs = 0.0, cppScale = 0.0
        if let cpp = exp.llama_cpp_logits?[f.type] {
            for (t, row) in cpp.enumerated() {
                for (a, b) in zip(runner.logits(row: t), row) {
                    cppAbs = max(cppAbs, abs(Double(a) - Double(b)))
                    cppScale = max(cppScale, abs(Double(b)))
                }
            }
        }
        var greedy: [Int32] = []
        let step = try TransformerRunner(model: model, maxTokens: 1, maxBatch: 1, pool: pool, allLogits: false)
        var next = Int32(Ops.argmax(Array(runner.logits(row: prompt.count - 1)), n: v))
        for _ in 0..<exp.greedy_ids.count {
            greedy.append(next)
            try step.forward([next], state: state, logits: .last)
            next = Int32(Ops.argmax(Array(step.logits(row: 0)), n: v))
        }
        let firstDiff = zip(greedy, exp.greedy_ids).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        let cppGreedy = exp.llama_cpp?[f.type]?.greedy
        print("fixture \(f): max abs \(maxAbs), rel \(rel), argmax \(argmaxAgree)/\(exp.logits.count), "
              + "greedy vs transformers \(firstDiff.map { "diverges at \($0)" } ?? "identical"), "
              + "vs llama.cpp \(cppGreedy.map { $0 == greedy ? "identical" : "differs" } ?? "n/a")"
              + (cppScale > 0 ? "; logits vs llama.cpp max abs \(cppAbs), rel \(cppAbs / cppScale)" : ""))
        let tol = exp.recommended_tolerances[f.type]
        switch f.type {
        case "f32", "f16":
            // F32 cache: the fixture's tolerance for the file type; an F16 cache adds
            // keys and values rounded to 11 significant bits (1e-3 relative).
            var bound = tol?.max_rel ?? 1e-4
            if f.cache == .f16 { bound = max(bound, 1e-3) }
            #expect(rel <= bound, "\(f): logits differ by \(maxAbs) (\(rel) relative, bound \(bound))")
            if let d = firstDiff {
                let margin = exp.greedy_top2_margins?[d] ?? 1
                // Near ties: F32 within 1e-2 of the top-2 margin, F16 files within their tolerance.
                let tie = f.type == "f32" && f.cache == .f32 ? 1e-2 : max(1e-2, 2 * (tol?.max_abs ?? 0))
                #expect(Double(margin) < tie, "\(f): greedy diverges at \(d) (transformers' top-2 margin \(margin))")
            }
        default:
            if let tol { #expect(maxAbs <= tol.max_abs, "\(f): logits differ by \(maxAbs), tolerance \(tol.max_abs)") }
        }
        // Without groups (V2-Lite) llama.cpp routes as V2 does: its greedy continuation on
        // the same file is ours (F16 and Q8_0 files, whose rounding moves transformers' own).
        if f.name.hasPrefix("deepseek2-lite"), f.type != "f32", let cppGreedy {
            #expect(greedy == cppGreedy, "\(f): greedy continuation differs from llama.cpp's on the same file")
        }
    }

    /// Prefill in chunks and `.all` logits bitwise equal to token-by-token decode; a batch
    /// of sequences bitwise equal to each decoded alone; serialize / restore round trip.
    @Test(arguments: ["deepseek2-qlora", "deepseek2-lite"])
    func prefillBatchAndState(_ name: String) throws {
        let type = name == "deepseek2-qlora" ? "f32" : "f16"
        guard let (path, exp) = try deepseekPath(name, type) else { return }
        for cache in [KVCacheType.f32, .f16] {
            let model = try TransformerModel(path: path.path, kernels: Kernels.best, kvCache: cache)
            let pool = WorkerPool(threads: 2)
            let v = model.config.vocabulary
            let tokens = exp.prompt_ids
            // Token by token.
            let single = try TransformerRunner(model: model, maxTokens: 1, maxBatch: 1, pool: pool, allLogits: false)
            let s1 = model.makeState()
            var rows: [[Float]] = []
            for t in tokens {
                try single.forward([t], state: s1, logits: .last)
                rows.append(Array(single.logits(row: 0)))
            }
            // All at once with every position's logits.
            let all = try TransformerRunner(model: model, maxTokens: tokens.count, maxBatch: 1, pool: pool, allLogits: true)
            let s2 = model.makeState()
            try all.forward(tokens, state: s2, logits: .all)
            for t in 0..<tokens.count { #expect(Array(all.logits(row: t)) == rows[t], "\(name) \(cache): row \(t)") }
            #expect(s2.serialized() == s1.serialized(), "\(name) \(cache): cache after prefill differs from decode")
            // Chunks of 5.
            let chunked = try TransformerRunner(model: model, maxTokens: 5, maxBatch: 1, pool: pool, allLogits: false)
            let s3 = model.makeState()
            try chunked.forward(tokens, state: s3, logits: .last)
            #expect(Array(chunked.logits(row: 0)) == rows[tokens.count - 1], "\(name) \(cache): chunked prefill")
            #expect(s3.serialized() == s1.serialized())

            // Batch: three sequences of different lengths, one step each, vs alone.
            let prefixes = [4, 9, 16]
            let states = prefixes.map { _ in model.makeState() }
            let alone = prefixes.map { _ in model.makeState() }
            for (i, n) in prefixes.enumerated() {
                try chunked.forward(Array(tokens[0..<n]), state: states[i], logits: .none)
                try chunked.forward(Array(tokens[0..<n]), state: alone[i], logits: .none)
            }
            let batch = try TransformerRunner(model: model, maxTokens: 1, maxBatch: 3, pool: pool, allLogits: false)
            let next: [Int32] = [7, 300, Int32(v - 1)]
            try batch.forwardBatch(tokens: next, states: states)
            for i in 0..<3 {
                try single.forward([next[i]], state: alone[i], logits: .last)
                #expect(Array(batch.batchLogits(i)) == Array(single.logits(row: 0)), "\(name) \(cache): batch row \(i)")
                #expect(states[i].serialized() == alone[i].serialized())
            }

            // Serialize, restore into a fresh state, continue: same logits as continuing.
            let bytes = s1.serialized()
            let restored = model.makeState()
            try restored.restore(from: bytes)
            #expect(restored.tokenCount == tokens.count)
            #expect(restored.serialized() == bytes)
            try single.forward([42], state: restored, logits: .last)
            let a = Array(single.logits(row: 0))
            try single.forward([42], state: s1, logits: .last)
            #expect(a == Array(single.logits(row: 0)))
            // A latent cache holds one row of kv_lora + rope per position and layer.
            if let m = model.config.mla {
                #expect(model.kvBytesPerToken == model.config.layers * cache.bytes(m.kvLoraRank + m.ropeDims))
            }
            // Corrupt bytes are refused.
            var bad = bytes
            bad[bad.count / 2] ^= 0x55
            #expect(throws: ModelError.self) { try restored.restore(from: bad) }
        }
    }
}

/// Broken deepseek2 files name the tensor or key at fault.
@Suite struct DeepSeek2BrokenFileTests {
    /// The qlora fixture rewritten without `skip`, with `overrides` in its metadata.
    private func rewrite(skip: String? = nil, overrides: [String: GGUFValue] = [:]) throws -> GGUFFile? {
        guard let (path, _) = try deepseekPath("deepseek2-qlora", "f32") else { return nil }
        let src = try GGUFFile(path: path.path)
        var w = try GGUFWriter()
        for (k, v) in src.metadata.pairs { w.add(k, overrides[k] ?? v) }
        for (k, v) in overrides where src.metadata[k] == nil { w.add(k, v) }
        for t in src.tensors where t.name != skip {
            try w.addTensor(name: t.name, type: t.type, dims: t.dims, data: Array(src.data(of: t)))
        }
        return try GGUFFile(bytes: w.serialize())
    }

    @Test func loadsUnchanged() throws {
        guard let f = try rewrite() else { return }
        let m = try loadLanguageModel(file: f, kernels: Kernels.best)
        #expect(m.architecture == .deepseek2)
        #expect(Architecture.deepseek2.isTransformer && !Architecture.deepseek2.isRWKV)
    }

    @Test func missingKVA() throws {
        guard let f = try rewrite(skip: "blk.1.attn_kv_a_mqa.weight") else { return }
        #expect(throws: ModelError.missingTensor(name: "blk.1.attn_kv_a_mqa.weight")) {
            _ = try TransformerModel(file: f, kernels: Kernels.best)
        }
        guard let g = try rewrite(skip: "blk.2.attn_k_b.weight") else { return }
        #expect(throws: ModelError.missingTensor(name: "blk.2.attn_k_b.weight")) {
            _ = try TransformerModel(file: g, kernels: Kernels.best)
        }
    }

    @Test func inconsistentKVLoraRank() throws {
        // key_length (48) no longer kv_lora_rank + rope.
        guard let f = try rewrite(overrides: ["deepseek2.attention.kv_lora_rank": .uint32(40)]) else { return }
        #expect(throws: ModelError.badMetadata(key: "deepseek2.attention.key_length",
                                               expected: "deepseek2.attention.kv_lora_rank + deepseek2.rope.dimension_count = 56",
                                               found: "48")) {
            _ = try TransformerModel(file: f, kernels: Kernels.best)
        }
        // Consistent keys, tensors of another rank: the tensor is named.
        guard let g = try rewrite(overrides: ["deepseek2.attention.kv_lora_rank": .uint32(40),
                                              "deepseek2.attention.key_length": .uint32(56),
                                              "deepseek2.attention.value_length": .uint32(40)]) else { return }
        do {
            _ = try TransformerModel(file: g, kernels: Kernels.best)
            Issue.record("loaded a model whose attn_kv_a_mqa does not match kv_lora_rank")
        } catch {
            guard case let .wrongShape(tensor, _, _) = error else { Issue.record("\(error)"); return }
            #expect(tensor == "blk.0.attn_kv_a_mqa.weight")
        }
        // q LoRA tensors without the key.
        guard let h = try rewrite(overrides: ["deepseek2.attention.q_lora_rank": .uint32(0)]) else { return }
        #expect(throws: ModelError.self) { _ = try TransformerModel(file: h, kernels: Kernels.best) }
        // Sigmoid gating (V3) is refused by name.
        guard let s = try rewrite(overrides: ["deepseek2.expert_gating_func": .uint32(2)]) else { return }
        #expect(throws: ModelError.badMetadata(key: "deepseek2.expert_gating_func", expected: "1 (softmax, DeepSeek-V2)",
                                               found: "2")) {
            _ = try TransformerModel(file: s, kernels: Kernels.best)
        }
    }
}

/// DeepSeek-V2's group-limited routing: groups ranked by their best expert (not by the
/// sum of the two best, V3's rule, which llama.cpp applies to deepseek2 files).
@Suite struct DeepSeek2RoutingTests {
    private func route(_ probs: [Float], k: Int, groups: Int, used: Int, normalize: Bool = false,
                       scale: Float = 1) -> ([Int32], [Float]) {
        var logits = probs.map { logf($0) }
        var experts = [Int32](repeating: -1, count: k)
        var weights = [Float](repeating: 0, count: k)
        logits.withUnsafeMutableBufferPointer { l in
            experts.withUnsafeMutableBufferPointer { e in
                weights.withUnsafeMutableBufferPointer { w in
                    guard let lb = l.baseAddress, let eb = e.baseAddress, let wb = w.baseAddress else { return }
                    routeGroupLimited(lb, n: probs.count, k: k, groups: groups, groupsUsed: used, normalize: normalize,
                                      scale: scale, experts: eb, weights: wb)
                }
            }
        }
        return (experts, weights)
    }

    @Test func groupsRankedByTheirBestExpert() {
        // Groups of 2: best 0.30 / 0.15 / 0.25 / 0.06, sums of the two best 0.32 / 0.30 / 0.26 / 0.12.
        let p: [Float] = [0.30, 0.02, 0.15, 0.15, 0.25, 0.01, 0.06, 0.06]
        // V2 keeps groups 0 and 2 -> experts 0, 4 (V3's sums would keep 0 and 1 -> 0, 2).
        let (e, w) = route(p, k: 2, groups: 4, used: 2, scale: 2)
        #expect(e == [0, 4])
        #expect(abs(w[0] - 0.60) < 1e-5 && abs(w[1] - 0.50) < 1e-5)
        // One group: both experts from group 0; renormalized.
        let (e1, w1) = route(p, k: 2, groups: 4, used: 1, normalize: true)
        #expect(e1 == [0, 1])
        #expect(abs(w1[0] - 0.30 / 0.32) < 1e-5 && abs(w1[1] - 0.02 / 0.32) < 1e-5)
        // No groups: plain top-k.
        let (e2, _) = route(p, k: 3, groups: 1, used: 1)
        #expect(e2 == [0, 4, 2])
    }

    /// The latent row (kv_lora + rope = 48 floats here) must be whole Q8_0 blocks.
    @Test func q8CacheNeedsWholeBlocks() throws {
        guard let (path, _) = try deepseekPath("deepseek2-qlora", "f32") else { return }
        #expect(throws: ModelError.kvCacheUnsupported(type: "q8_0", headSize: 48)) {
            _ = try TransformerModel(path: path.path, kernels: Kernels.best, kvCache: .q8_0)
        }
    }
}
