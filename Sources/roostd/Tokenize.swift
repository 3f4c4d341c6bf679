import ArgumentParser
import Foundation
import GGUF
import Models
import Tokenizers

/// `roostd tokenize MODEL (--text S | --file F) [--json] [--special] [--bos]`: the token ids a
/// model's tokenizer (`tokenizer.ggml.*` of its GGUF; a tokenizer-only GGUF will do) gives a text.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the token ids of a text with a model's tokenizer.",
        discussion: """
            The text is read as raw bytes (--file - reads stdin); invalid UTF-8 is tokenized, not \
            rejected. Without --special, control-token text such as <|eot_id|> is tokenized as plain \
            text; with it, it becomes that token (llama.cpp's parse_special). --bos adds BOS/EOS as \
            the model's tokenizer.ggml.add_bos_token / add_eos_token say. Prints the ids separated \
            by spaces, or with --json {"model", "tokenizer", "count", "ids", "pieces"} where pieces \
            are each token's text (control tokens spelled out, bytes that are not UTF-8 on their own \
            as U+FFFD).
            """)

    @Argument(help: "The GGUF file.") var model: String
    @Option(help: "The text to tokenize.") var text: String?
    @Option(help: "A file whose bytes to tokenize (- for stdin).") var file: String?
    @Flag(help: "Parse control-token text in the input as those tokens.") var special = false
    @Flag(help: "Add BOS/EOS as the model asks.") var bos = false
    @Flag(help: "Print JSON.") var json = false

    func fail(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("roostd tokenize: \(message)\n".utf8))
        return ExitCode(1)
    }

    func run() throws {
        let input: [UInt8]
        switch (text, file) {
        case let (t?, nil): input = Array(t.utf8)
        case let (nil, path?):
            if path == "-" {
                input = [UInt8](FileHandle.standardInput.readDataToEndOfFile())
            } else {
                guard let h = FileHandle(forReadingAtPath: path) else { throw fail("\(path): cannot read file") }
                defer { try? h.close() }
                input = [UInt8](h.readDataToEndOfFile())
            }
        default: throw fail("give exactly one of --text and --file")
        }
        let gguf: GGUFFile
        do {
            gguf = try GGUFFile(path: model)
        } catch {
            let message = error.description.hasPrefix(model) ? error.description : "\(model): \(error.description)"
            throw fail(message)
        }
        let tokenizer: any Tokenizer
        do {
            tokenizer = try loadTokenizer(gguf)
        } catch {
            throw fail("\(model): \(error.description)")
        }
        let ids: [Int32]
        do {
            ids = try tokenizer.encode(bytes: input, options: EncodeOptions(addSpecial: bos, parseSpecial: special))
        } catch {
            throw fail(error.description)
        }
        var out: String
        if json {
            let pieces = ids.map { String(decoding: tokenizer.tokenBytes($0) ?? [], as: UTF8.self) }
            let object: [String: Any] = [
                "model": model,
                "tokenizer": gguf.metadata["tokenizer.ggml.model"]?.string ?? "",
                "count": ids.count,
                "ids": ids.map { Int($0) },
                "pieces": pieces,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            out = String(decoding: data, as: UTF8.self)
        } else {
            out = ids.map(String.init).joined(separator: " ")
        }
        out += "\n"
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}
