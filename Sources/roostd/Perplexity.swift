import ArgumentParser
import Foundation
import Models
import Tensors
import Tokenizers

/// `roostd perplexity MODEL --file TEXT`: perplexity of a text under the model.
struct Perplexity: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the perplexity of a text file.",
        discussion: """
            The text is tokenized with the model's tokenizer and cut into windows of --ctx \
            tokens; each window starts from the zero state and every token after its first is \
            scored (negative log-likelihood of the token given the ones before it in the window). \
            Perplexity = exp(mean NLL).
            """)

    @OptionGroup var options: ModelOptions
    @Option(help: "The text file.") var file: String
    @Option(help: "Tokens per window.") var ctx: Int = 512
    @Option(help: "Score at most this many windows (0: all).") var maxWindows: Int = 0
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard ctx >= 2, ctx <= 1 << 20 else { throw ValidationError("--ctx must be in 2...1048576") }
        guard maxWindows >= 0 else { throw ValidationError("--max-windows must be >= 0") }
    }

    func run() throws {
        let model = try options.load()
        let tokenizer: any Tokenizer
        do { tokenizer = try loadTokenizer(model.file) } catch { throw CommandFailure("\(options.model): \(error)") }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CommandFailure("\(file): cannot read the file")
        }
        let ids: [Int32]
        do { ids = try tokenizer.encode(bytes: [UInt8](data)) } catch { throw CommandFailure("\(file): \(error)") }
        guard ids.count >= 2 else { throw CommandFailure("\(file): fewer than 2 tokens; nothing to score") }
        let chunk = 64
        if let limit = model.contextLength, ctx > limit {
            throw CommandFailure("--ctx \(ctx) is longer than the model's context (\(limit) tokens)")
        }
        let runner: any ModelRunner
        do { runner = try model.makeRunner(maxTokens: chunk, maxBatch: 1, pool: options.pool(), allLogits: true) } catch {
            throw CommandFailure(error.description)
        }
        let v = model.vocabulary
        var nll = 0.0
        var scored = 0
        var windows = 0
        let start = Date()
        let state = model.makeSequenceState()
        var w = 0
        let tty = isatty(STDERR_FILENO) != 0
        while w < ids.count - 1 {
            if maxWindows > 0 && windows == maxWindows { break }
            let end = min(w + ctx, ids.count)
            state.reset()
            var pos = w
            while pos < end {
                let n = min(chunk, end - pos)
                do {
                    try ids.withUnsafeBufferPointer { (all) throws(ModelError) in
                        try runner.forward(UnsafeBufferPointer(rebasing: all[pos..<(pos + n)]), state: state,
                                           logits: .all)
                    }
                } catch {
                    throw CommandFailure(error.description)
                }
                for t in 0..<n where pos + t + 1 < end {
                    guard let row = runner.logits(row: t).baseAddress else { continue }
                    let target = Int(ids[pos + t + 1])
                    nll += Ops.logSumExp(row, n: v) - Double(row[target])
                    scored += 1
                }
                pos += n
            }
            windows += 1
            w = end
            if tty && !json {
                FileHandle.standardError.write(Data(String(format: "\r[%d/%d tokens] ppl %.4f", w, ids.count,
                                                           exp(nll / Double(max(scored, 1)))).utf8))
            }
        }
        if tty && !json { FileHandle.standardError.write(Data("\n".utf8)) }
        let seconds = Date().timeIntervalSince(start)
        let ppl = exp(nll / Double(scored))
        if json {
            let obj: [String: Any] = [
                "model": options.model, "file": file, "tokens": ids.count, "scored_tokens": scored,
                "windows": windows, "ctx": ctx, "mean_nll": nll / Double(scored), "perplexity": ppl,
                "seconds": seconds, "kernels": try options.kernels().path.name,
            ]
            let out = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            FileHandle.standardOutput.write(out + Data("\n".utf8))
        } else {
            print(String(format: "perplexity %.4f over %d scored tokens (%d windows of up to %d tokens, %d tokens in the file), %.1f s",
                         ppl, scored, windows, ctx, ids.count, seconds))
        }
    }
}
