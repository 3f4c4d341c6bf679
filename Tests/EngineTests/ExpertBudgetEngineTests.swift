import Foundation
import Logging
import Models
import Testing

@testable import Engine

/// Tests/Fixtures/transformers/mixtral/model-f32.gguf: a tiny MoE model (2 layers of 8 experts).
let mixtralFixture = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/transformers/mixtral/model-f32.gguf").path

private func engine(files: [String], budget: Int = Int.max, limits: SchedulerLimits = SchedulerLimits()) throws -> InferenceEngine {
    try InferenceEngine(configuration: EngineConfiguration(modelFiles: files, threads: 2, limits: limits,
                                                           memoryBudgetBytes: budget),
                        logger: { var l = Logger(label: "test"); l.logLevel = .critical; return l }())
}

@Suite struct ExpertBudgetEngineTests {
    @Test func anMoEModelOverTheBudgetLoadsWithAStoreAndAnswersAsWithout() async throws {
        let size = ((try? FileManager.default.attributesOfItem(atPath: mixtralFixture))?[.size] as? Int) ?? 0
        try #require(size > 0, "fixture missing: \(mixtralFixture)")
        func answer(_ e: InferenceEngine) async throws -> [String] {
            let (text, reason, usage) = try await run(e, GenerationRequest(
                model: "model-f32", prompt: .tokens([2, 3, 4, 5, 6, 7, 8, 9]), sampling: .greedy, maxTokens: 24,
                principal: me))
            return [text, reason.rawValue, String(usage.completionTokens)]
        }
        let free = try engine(files: [mixtralFixture])
        defer { free.shutdown() }
        let expected = try await answer(free)
        #expect(free.listModels().first?.experts == nil)

        // Just under the file: the dense part, the working memory (one sequence, prompt chunks
        // of 8 tokens) and one layer's experts fit.
        let tight = try engine(files: [mixtralFixture], budget: size - 4096,
                               limits: SchedulerLimits(maxActive: 1, prefillChunk: 8))
        defer { tight.shutdown() }
        #expect(try await answer(tight) == expected)
        let experts = try #require(tight.listModels().first?.experts)
        #expect(experts.slots >= 8 && experts.slots < 16)
        #expect(experts.total.misses > 0 && experts.total.bytesRead > 0 && experts.tokens >= 8)
        #expect(experts.expertsPerLayer == [8, 8])
        #expect(experts.poolBytes == experts.slots * experts.slotBytes)

        // The working memory of the default shape (8 sequences, chunks of 64) leaves no room for
        // one layer's experts under this budget, and half the file is below the dense part
        // and one layer's experts: both refused.
        let wide = try engine(files: [mixtralFixture], budget: size - 4096)
        defer { wide.shutdown() }
        #expect(throws: EngineError.self) { _ = try wide.tokenize(model: "model-f32", text: "x") }
        let small = try engine(files: [mixtralFixture], budget: size / 2,
                               limits: SchedulerLimits(maxActive: 1, prefillChunk: 8))
        defer { small.shutdown() }
        #expect(throws: EngineError.self) { _ = try small.tokenize(model: "model-f32", text: "x") }
    }
}
