import ArgumentParser
import Foundation
import Models
import Tensors

/// Shared options of the commands that load a model.
struct ModelOptions: ParsableArguments {
    @Argument(help: "The GGUF model file.") var model: String
    @Option(help: "Compute threads (default: the CPUs this process may use).") var threads: Int?

    func validate() throws {
        if let threads, threads < 1 || threads > 1024 { throw ValidationError("--threads must be in 1...1024") }
    }

    /// The kernels ROOST_KERNELS selects (or the fastest).
    func kernels() throws -> Kernels {
        do { return try Kernels.select(environment: ProcessInfo.processInfo.environment) } catch {
            throw CommandFailure(error.description)
        }
    }

    func load() throws -> any LanguageModel {
        let k = try kernels()
        do { return try loadLanguageModel(path: model, kernels: k) } catch {
            throw CommandFailure("\(model): \(error.description)")
        }
    }

    func pool() -> WorkerPool { WorkerPool(threads: threads) }
}

/// An error message for stderr and exit code 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// `roostd logits MODEL --tokens 1,2,3`: the logits after the last token, from the zero
/// state.
struct Logits: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the logits after a token sequence, from the zero state.",
        discussion: "The tokens go through the model in chunks of --chunk tokens (1: one at a time); "
            + "the result does not depend on the chunk size. ROOST_KERNELS selects the kernel path.")

    @OptionGroup var options: ModelOptions
    @Option(help: "Comma-separated token ids.") var tokens: String
    @Option(help: "Tokens per forward call.") var chunk: Int = 64
    @Option(help: "Print only the N largest logits (0: all).") var top: Int = 0
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard chunk >= 1, chunk <= 4096 else { throw ValidationError("--chunk must be in 1...4096") }
        guard top >= 0 else { throw ValidationError("--top must be >= 0") }
    }

    func run() throws {
        let ids = try parseTokens(tokens)
        let model = try options.load()
        let pool = options.pool()
        let logits: [Float]
        do {
            let runner = try model.makeRunner(maxTokens: chunk, maxBatch: 1, pool: pool, allLogits: false)
            let state = model.makeSequenceState()
            try ids.withUnsafeBufferPointer { (p) throws(ModelError) in try runner.forward(p, state: state, logits: .last) }
            logits = Array(runner.logits(row: 0))
        } catch {
            throw CommandFailure(error.description)
        }
        let v = model.vocabulary
        var order = Array(0..<v)
        if top > 0 {
            order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
            order = Array(order.prefix(top))
        }
        if json {
            let values: [Any]
            if top > 0 {
                values = order.map { ["token": $0, "logit": Double(logits[$0])] as [String: Any] }
            } else {
                values = logits.map { Double($0) }
            }
            let obj: [String: Any] = [
                "model": options.model, "arch": model.architecture.rawValue, "kernels": try options.kernels().path.name,
                "tokens": ids.map { Int($0) }, "vocabulary": v,
                "argmax": firstArgmax(logits),
                "logits": values,
            ]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        } else {
            var out = ""
            for i in order { out += "\(i)\t\(logits[i])\n" }
            FileHandle.standardOutput.write(Data(out.utf8))
        }
    }
}

/// "1,2, 3" -> [1, 2, 3]
func parseTokens(_ text: String) throws -> [Int32] {
    var out: [Int32] = []
    for item in text.split(separator: ",") {
        let s = item.trimmingCharacters(in: .whitespaces)
        guard let v = Int32(s), v >= 0 else { throw ValidationError("--tokens: '\(s)' is not a token id") }
        out.append(v)
    }
    guard !out.isEmpty else { throw ValidationError("--tokens: no token given") }
    return out
}

/// The index of the first largest value (0 for an empty array).
func firstArgmax(_ x: [Float]) -> Int {
    var best = 0
    for i in x.indices where x[i] > x[best] { best = i }
    return best
}
