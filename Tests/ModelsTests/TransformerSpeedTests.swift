import Foundation
import Models
import Tensors
import Testing

/// Decode and prefill speed of a transformer GGUF named by ROOST_TRANSFORMER_BENCH (not
/// part of the normal run: skipped without the variable). Prints tokens/s.
@Suite struct TransformerSpeedTests {
    @Test func decodeSpeed() throws {
        guard let path = ProcessInfo.processInfo.environment["ROOST_TRANSFORMER_BENCH"], !path.isEmpty else { return }
        let model = try TransformerModel(path: path, kernels: Kernels.best)
        let pool = WorkerPool()
        let runner = try TransformerRunner(model: model, maxTokens: 64, maxBatch: 4, pool: pool, allLogits: false)
        let v = model.config.vocabulary
        let prompt = randomTokens(64, vocabulary: v, seed: 1)
        let state = model.makeState()
        let t0 = Date()
        try runner.forward(prompt, state: state, logits: .last)
        let prefill = Date().timeIntervalSince(t0)
        var next = Int32(Ops.argmax(runner.logits(row: 0).baseAddress!, n: v))
        let n = 32
        let t1 = Date()
        for _ in 0..<n {
            try runner.forward([next], state: state, logits: .last)
            next = Int32(Ops.argmax(runner.logits(row: 0).baseAddress!, n: v))
        }
        let decode = Date().timeIntervalSince(t1)
        let bytes = Double(model.weightBytesPerToken)
        print("bench \(path): threads \(pool.threads), prefill \(Double(prompt.count) / prefill) tok/s, "
              + "decode \(Double(n) / decode) tok/s, \(bytes / 1e6) MB/token -> \(bytes * Double(n) / decode / 1e9) GB/s")
    }
}
