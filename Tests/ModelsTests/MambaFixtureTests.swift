import Foundation
import GGUF
import Models
import Tensors
import Testing

/// Tests/Fixtures/transformers/mamba: a tiny random MambaForCausalLM converted by llama.cpp's
/// own convert_hf_to_gguf.py (F32, and quantized by llama.cpp to Q8_0 and Q4_0), with
/// transformers' F32 logits at every prompt position and its greedy continuation
/// (tools/make_transformer_fixtures.py; see the directory's README).
let mambaFixtureDir: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/transformers/mamba")

struct MambaExpected: Decodable {
    struct LlamaCpp: Decodable {
        let greedy: [Int32]?
    }

    let prompt_ids: [Int32]
    let logits: [[Float]]
    let greedy_ids: [Int32]
    let files: [String: String]
    let llama_cpp: [String: LlamaCpp]?
    /// llama.cpp's logits on each committed file, every prompt position.
    let llama_cpp_logits: [String: [[Float]]]?
}

/// The fixture's expected.json, or nil (a recorded failure under CI=true, else a printed skip).
func loadMambaFixture() throws -> MambaExpected? {
    let path = mambaFixtureDir.appendingPathComponent("expected.json")
    guard sharedFixturePresent(path) else { return nil }
    return try JSONDecoder().decode(MambaExpected.self, from: Data(contentsOf: path))
}

/// Prompt logits of `model` at every position, and its greedy continuation of `count` tokens.
func mambaRun(_ model: MambaModel, prompt: [Int32], greedy count: Int, pool: WorkerPool) throws
    -> (logits: [[Float]], greedy: [Int32]) {
    let ws = try MambaWorkspace(model: model, maxTokens: prompt.count, pool: pool, allLogits: true)
    let state = model.makeState()
    try model.forward(prompt, state: state, workspace: ws, logits: .all)
    let v = model.config.vocabulary
    let logits = (0..<prompt.count).map { Array(ws.logits(row: $0)) }
    var out: [Int32] = []
    var next = Int32(Ops.argmax(ws.logits + (prompt.count - 1) * v, n: v))
    for _ in 0..<count {
        out.append(next)
        try model.forward([next], state: state, workspace: ws, logits: .last)
        next = Int32(Ops.argmax(ws.logits, n: v))
    }
    return (logits, out)
}

/// max |got - want| / max |want| over every position.
func mambaRelativeError(_ got: [[Float]], _ want: [[Float]]) -> Double {
    var e = 0.0, m = 0.0
    for (g, w) in zip(got, want) {
        for (a, b) in zip(g, w) {
            e = max(e, abs(Double(a) - Double(b)))
            m = max(m, abs(Double(b)))
        }
    }
    return e / max(m, 1e-30)
}

@Suite struct MambaFixtureTests {
    /// F32: logits within 1e-3 relative of transformers (F32) at every prompt position on
    /// every kernel path, and the 32-token greedy continuation identical.
    @Test func f32MatchesTransformers() throws {
        guard let expected = try loadMambaFixture(), let name = expected.files["f32"] else { return }
        let pool = WorkerPool(threads: 2)
        for path in KernelPath.available {
            let model = try MambaModel(path: mambaFixtureDir.appendingPathComponent(name).path,
                                       kernels: try Kernels(path: path))
            #expect(model.config.vocabulary == expected.logits[0].count)
            let run = try mambaRun(model, prompt: expected.prompt_ids, greedy: expected.greedy_ids.count, pool: pool)
            let rel = mambaRelativeError(run.logits, expected.logits)
            print("mamba fixture f32 \(path): relative error \(rel) against transformers")
            #expect(rel < 1e-3, "\(path): relative error \(rel)")
            #expect(run.greedy == expected.greedy_ids, "\(path): greedy continuation differs")
        }
    }

    /// Q8_0 and Q4_0 (llama.cpp's quantizer): logits within 2e-2 and 0.25 relative of
    /// transformers' F32 logits (llama.cpp's own results on these files are at 1.04e-2 and
    /// 0.127), and the greedy continuation equal to llama.cpp's on the same file.
    @Test(arguments: [("q8_0", 2e-2), ("q4_0", 0.25)])
    func quantizedWithinTolerance(_ type: String, _ bound: Double) throws {
        guard let expected = try loadMambaFixture() else { return }
        guard let name = expected.files[type] else {
            Issue.record("fixture has no \(type) file")
            return
        }
        let model = try MambaModel(path: mambaFixtureDir.appendingPathComponent(name).path, kernels: Kernels.best)
        let run = try mambaRun(model, prompt: expected.prompt_ids, greedy: expected.greedy_ids.count,
                               pool: WorkerPool(threads: 2))
        let rel = mambaRelativeError(run.logits, expected.logits)
        print("mamba fixture \(type): relative error \(rel) against transformers F32")
        #expect(rel < bound, "\(type): relative error \(rel)")
        let want = expected.llama_cpp?[type]?.greedy
        #expect(want != nil && run.greedy == want, "\(type): greedy continuation differs from llama.cpp's")
    }

    /// Every committed file against llama.cpp's logits on the same file: within 1e-4
    /// relative on every kernel path (the same quantized weights, ggml-compatible activation
    /// quantization; only summation order differs).
    @Test func sameFileMatchesLlamaCpp() throws {
        guard let expected = try loadMambaFixture() else { return }
        guard let byFile = expected.llama_cpp_logits, !byFile.isEmpty else {
            Issue.record("fixture has no llama.cpp logits")
            return
        }
        let pool = WorkerPool(threads: 2)
        for (type, want) in byFile.sorted(by: { $0.key < $1.key }) {
            guard let name = expected.files[type] else { continue }
            for path in KernelPath.available {
                let model = try MambaModel(path: mambaFixtureDir.appendingPathComponent(name).path,
                                           kernels: try Kernels(path: path))
                let run = try mambaRun(model, prompt: expected.prompt_ids, greedy: 0, pool: pool)
                let rel = mambaRelativeError(run.logits, want)
                print("mamba fixture \(type) \(path): relative error \(rel) against llama.cpp on the same file")
                #expect(rel < 1e-4, "\(type) \(path): relative error \(rel) against llama.cpp")
            }
        }
    }
}
