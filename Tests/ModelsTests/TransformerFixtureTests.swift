import Foundation
import GGUF
import Models
import Tensors
import Testing

/// Tiny random Hugging Face transformers models converted by llama.cpp's own converter,
/// with transformers' F32 logits (Tests/Fixtures/transformers/<name>/expected.json, made
/// by tools/make_transformer_fixtures.py; the directory's README documents them).
struct TransformerFixture: Sendable, CustomStringConvertible {
    let name: String
    let type: String
    let cache: KVCacheType
    var description: String { "\(name) \(type) (\(cache) KV cache)" }

    static let names = ["llama", "mixtral", "qwen2", "qwen2moe", "qwen3moe", "olmoe"]
    static let all: [TransformerFixture] = names.flatMap { n in
        [TransformerFixture(name: n, type: "f32", cache: .f32), TransformerFixture(name: n, type: "f32", cache: .f16),
         TransformerFixture(name: n, type: "q8_0", cache: .f32), TransformerFixture(name: n, type: "q8_0", cache: .f16),
         TransformerFixture(name: n, type: "q4_0", cache: .f32)]
    } + ["llama-q4k", "qwen3moe-q4k"].map { TransformerFixture(name: $0, type: "q4_k_m", cache: .f32) }
        + [TransformerFixture(name: "qwen3moe", type: "f32", cache: .q8_0), TransformerFixture(name: "qwen3moe-q4k", type: "q4_k_m", cache: .q8_0)]
}

/// Tests/Fixtures/transformers (ROOST_TRANSFORMER_FIXTURES overrides).
let transformerFixtureDir: URL = {
    if let p = ProcessInfo.processInfo.environment["ROOST_TRANSFORMER_FIXTURES"], !p.isEmpty {
        return URL(fileURLWithPath: p)
    }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/transformers")
}()

private struct FixtureExpected: Decodable {
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
    /// llama.cpp's prompt logits on each committed quantized file (F32 KV cache).
    let llama_cpp_logits: [String: [[Float]]]?
}

@Suite struct TransformerFixtureTests {
    /// Logits at every prompt position within the fixture's tolerance of transformers' F32
    /// logits; the 32-token greedy continuation identical to transformers' (F32) or to
    /// llama.cpp's on the same file (quantized), except past a near tie.
    @Test(arguments: TransformerFixture.all)
    func matchesTransformers(_ f: TransformerFixture) throws {
        let dir = transformerFixtureDir.appendingPathComponent(f.name)
        let json = dir.appendingPathComponent("expected.json")
        guard sharedFixturePresent(json) else { return }
        let exp = try JSONDecoder().decode(FixtureExpected.self, from: Data(contentsOf: json))
        guard let fileName = exp.files[f.type] else {
            Issue.record("\(f): expected.json lists no \(f.type) file")
            return
        }
        let path = dir.appendingPathComponent(fileName)
        guard sharedFixturePresent(path) else { return }
        let model = try TransformerModel(path: path.path, kernels: Kernels.best, kvCache: f.cache)
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
        // Quantized files: against llama.cpp on the same file (same weight and activation
        // quantization, F32 KV cache).
        var cppAbs = 0.0, cppScale = 0.0
        if let cpp = exp.llama_cpp_logits?[f.type] {
            for (t, row) in cpp.enumerated() {
                for (a, b) in zip(runner.logits(row: t), row) {
                    cppAbs = max(cppAbs, abs(Double(a) - Double(b)))
                    cppScale = max(cppScale, abs(Double(b)))
                }
            }
        }
        let cppRel = cppAbs / max(cppScale, 1e-30)
        // Greedy continuation.
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
              + (cppScale > 0 ? "; logits vs llama.cpp max abs \(cppAbs), rel \(cppRel)" : ""))
        let tol = exp.recommended_tolerances[f.type]
        if f.type == "f32" {
            // F32 cache: the fixture's F32 tolerance; F16 cache: keys and values rounded to
            // 11 significant bits, within 1e-3 relative.
            let bound: Double
            switch f.cache {
            case .f32: bound = tol?.max_rel ?? 1e-4
            case .f16: bound = max(1e-3, tol?.max_rel ?? 0)
            // Keys and values to 8 bits per block of 32: llama.cpp with a Q8_0 cache (flash
            // attention) on qwen3moe's F32 file measured 0.0871 relative (here 0.0875).
            case .q8_0: bound = 0.1
            }
            #expect(rel <= bound, "\(f): logits differ by \(maxAbs) (\(rel) relative, bound \(bound))")
            if let d = firstDiff {
                let margin = exp.greedy_top2_margins?[d] ?? 1
                #expect(margin < 1e-2, "\(f): greedy diverges at \(d) (transformers' top-2 margin \(margin))")
            }
        } else {
            if let tol { #expect(maxAbs <= tol.max_abs, "\(f): logits differ by \(maxAbs), tolerance \(tol.max_abs)") }
            if f.cache == .f32, cppScale > 0 {
                // Same weights, same activation quantization, F32 KV cache as llama.cpp's run:
                // float rounding only (~3e-7), unless a near tie between two experts' router
                // probabilities picks the other expert (qwen2moe q8_0: 2.6e-3).
                #expect(cppRel <= 5e-3, "\(f): logits differ from llama.cpp's by \(cppAbs) (\(cppRel) relative)")
                if let cppGreedy { #expect(greedy == cppGreedy, "\(f): greedy continuation differs from llama.cpp's") }
            }
        }
    }
}
