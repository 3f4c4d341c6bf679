import Foundation
import Models
import Tensors
import Testing

/// The tiny trained RWKV models of ../shared/fixtures/rwkv-tiny against the logits rwkv.cpp
/// computed (see that directory's README for the check).
struct RWKVFixture: Sendable, CustomStringConvertible {
    let file: String
    let expected: String
    let bound: Float
    let argmax: Int
    let fp32: Bool

    var description: String { file }

    static let all: [RWKVFixture] = [
        RWKVFixture(file: "tiny-rwkv-7v0-834K-FP32.gguf", expected: "expected-logits-7v0-834K.json", bound: 0.001,
                    argmax: 32, fp32: true),
        RWKVFixture(file: "tiny-rwkv-7v0-834K-FP16.gguf", expected: "expected-logits-7v0-834K.json", bound: 0.005766,
                    argmax: 32, fp32: false),
        RWKVFixture(file: "tiny-rwkv-6v0-3m-Q5_1.gguf", expected: "expected-logits-6v0-3m.json", bound: 3.576909,
                    argmax: 0, fp32: false),
        RWKVFixture(file: "tiny-rwkv-6v0-3m-Q5_1-dequant-F32.gguf", expected: "expected-logits-6v0-3m.json",
                    bound: 3.576909, argmax: 0, fp32: false),
        RWKVFixture(file: "tiny-rwkv-5v2-730K-FP32.gguf", expected: "expected-logits-5v2-730K.json", bound: 0.001,
                    argmax: 112, fp32: true),
    ]
}

/// ../shared/fixtures/rwkv-tiny beside the repository.
let rwkvFixtureDir: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("shared/fixtures/rwkv-tiny")

/// True when the fixture is there; otherwise records a failure under CI=true, or prints
/// why the test is skipped.
func sharedFixturePresent(_ path: URL) -> Bool {
    if FileManager.default.fileExists(atPath: path.path) { return true }
    if ProcessInfo.processInfo.environment["CI"] == "true" {
        Issue.record("shared fixture missing: \(path.path)")
    } else {
        print("skipped: shared fixture missing: \(path.path)")
    }
    return false
}

struct ExpectedLogits: Decodable {
    let prompt_token_ids: [Int32]
    let logits: [Float]
}

@Suite struct RWKVFixtureTests {
    @Test(arguments: RWKVFixture.all)
    func logitsMatchRWKVCpp(_ fx: RWKVFixture) throws {
        let path = rwkvFixtureDir.appendingPathComponent(fx.file)
        let expectedPath = rwkvFixtureDir.appendingPathComponent("expected").appendingPathComponent(fx.expected)
        guard sharedFixturePresent(path), sharedFixturePresent(expectedPath) else { return }
        let expected = try JSONDecoder().decode(ExpectedLogits.self, from: Data(contentsOf: expectedPath))
        #expect(expected.prompt_token_ids == [34, 105, 110])
        let pool = WorkerPool(threads: 2)
        for path in KernelPath.available {
            let kernels = try Kernels(path: path)
            let model = try RWKVModel(path: rwkvFixtureDir.appendingPathComponent(fx.file).path, kernels: kernels)
            #expect(model.config.vocabulary == expected.logits.count)
            let ws = try RWKVWorkspace(model: model, maxTokens: 8, pool: pool)
            // One token at a time, and the prompt as one chunk.
            let single = model.makeState()
            for t in expected.prompt_token_ids {
                try model.forward(token: t, state: single, workspace: ws, logits: .last)
            }
            let oneByOne = Array(UnsafeBufferPointer(start: ws.logits, count: model.config.vocabulary))
            let chunked = model.makeState()
            try model.forward(expected.prompt_token_ids, state: chunked, workspace: ws, logits: .last)
            let together = Array(UnsafeBufferPointer(start: ws.logits, count: model.config.vocabulary))
            for (mode, logits) in [("one by one", oneByOne), ("chunked", together)] {
                var diffSum: Float = 0
                var maxDiff: Float = 0
                for i in 0..<logits.count {
                    diffSum += logits[i] - expected.logits[i]
                    maxDiff = max(maxDiff, abs(logits[i] - expected.logits[i]))
                }
                let argmax = logits.indices.max { logits[$0] < logits[$1] } ?? -1
                print("\(fx.file) [\(path.name), \(mode)]: diff_sum \(diffSum) (bound \(fx.bound)), max |diff| \(maxDiff), argmax \(argmax)")
                #expect(abs(diffSum) <= fx.bound * 1.05, "\(fx.file) [\(path.name), \(mode)]: diff_sum \(diffSum)")
                #expect(argmax == fx.argmax, "\(fx.file) [\(path.name), \(mode)]: argmax \(argmax)")
                if fx.fp32 { #expect(maxDiff <= 1e-4, "\(fx.file) [\(path.name), \(mode)]: max |diff| \(maxDiff)") }
            }
            // Chunking changes nothing: the kernels are batch invariant.
            let same = oneByOne == together && single.floats == chunked.floats
            #expect(same, "\(fx.file) [\(path.name)]: chunked prefill differs from token-by-token decode")
        }
    }
}
