import Foundation
import GGUF
import Tensors
import Testing

@testable import Models

/// An MoE model whose routed experts live in an ExpertStore of one layer's worth of slots
/// (so experts are evicted and read again all the time) computes bitwise the logits of the
/// same model reading every expert from the mapping: prompt chunks, then greedy decode.
@Suite struct ExpertBudgetTests {
    static let cases = ["mixtral/model-q8_0.gguf", "qwen2moe/model-q8_0.gguf", "qwen3moe/model-f32.gguf",
                        "olmoe/model-q8_0.gguf", "qwen3moe-q4k/model-q4_k_m.gguf", "deepseek2-lite/model-q8_0.gguf"]

    @Test(arguments: cases)
    func logitsIdenticalWithATightBudget(_ file: String) throws {
        let path = transformerFixtureDir.appendingPathComponent(file)
        guard sharedFixturePresent(path) else { return }
        let free = try TransformerModel(path: path.path, kernels: Kernels.best)
        guard let slot = free.expertStore?.slotBytes else {
            Issue.record("\(file): no expert store")
            return
        }
        let experts = free.config.experts
        let tight = try TransformerModel(path: path.path, kernels: Kernels.best, expertBudgetBytes: experts * slot)
        #expect(tight.expertStore?.slotCount == experts)
        #expect(tight.expertStore?.isBudgeted == true)

        let pool = WorkerPool(threads: 2)
        let v = free.config.vocabulary
        var prompt: [Int32] = []
        var rng: UInt64 = 0x5eed
        for _ in 0..<24 {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            prompt.append(Int32((rng >> 33) % UInt64(v)))
        }
        let a = try TransformerRunner(model: free, maxTokens: 8, maxBatch: 1, pool: pool, allLogits: false)
        let b = try TransformerRunner(model: tight, maxTokens: 8, maxBatch: 1, pool: pool, allLogits: false)
        let sa = free.makeState(), sb = tight.makeState()
        try a.forward(prompt, state: sa, logits: .last)
        try b.forward(prompt, state: sb, logits: .last)
        #expect(Array(a.logits(row: 0)) == Array(b.logits(row: 0)), "\(file): prompt logits")
        for step in 0..<24 {
            let la = Array(a.logits(row: 0))
            var next = 0
            for i in la.indices where la[i] > la[next] { next = i }
            try a.forward([Int32(next)], state: sa, logits: .last)
            try b.forward([Int32(next)], state: sb, logits: .last)
            #expect(Array(a.logits(row: 0)) == Array(b.logits(row: 0)), "\(file): step \(step)")
        }
        let stats = try #require(tight.expertStore?.stats.total)
        // One layer's worth of slots for all layers: experts are read again and again.
        #expect(stats.misses > experts)
        #expect(stats.bytesRead >= stats.misses * tight.expertStore!.layers[tight.expertStore!.layers.firstIndex { !$0.isEmpty }!][0].byteCount)
        #expect(stats.residentBytes <= experts * slot)
    }

    @Test func aBudgetBelowOneLayerIsRefused() throws {
        let path = transformerFixtureDir.appendingPathComponent("olmoe/model-q8_0.gguf")
        guard sharedFixturePresent(path) else { return }
        let free = try TransformerModel(path: path.path, kernels: Kernels.best)
        let slot = try #require(free.expertStore?.slotBytes)
        #expect(throws: ModelError.self) {
            _ = try TransformerModel(path: path.path, kernels: Kernels.best, expertBudgetBytes: (free.config.experts - 1) * slot)
        }
    }
}
