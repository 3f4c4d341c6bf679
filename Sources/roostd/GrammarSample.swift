import ArgumentParser
import Foundation
import GGUF
import Models
import Sampling
import Tensors
import Tokenizers

/// `roostd grammar-sample`: draws documents with random logits under a grammar
/// mask, for checking the grammar against an independent JSON Schema validator
/// (Tests/python/test_grammar_json.py). A developer tool, hidden from --help.
struct GrammarSample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grammar-sample",
        abstract: "Sample documents with random logits under a JSON grammar mask (developer tool).",
        discussion: "Prints one JSON line per sample: {\"text\": ..., \"complete\": bool, \"tokens\": n}. "
            + "Logits are uniform in [0, 4) plus --close-bias for tokens that contain '\"', '}' or ']' "
            + "(so that documents end within a reasonable number of tokens), sampled at temperature 1.",
        shouldDisplay: false)

    @Option(help: "JSON Schema file.") var schema: String?
    @Flag(help: "OpenAI json_object mode: any JSON object.") var jsonObject = false
    @Option(help: "Take the vocabulary from this GGUF's tokenizer (default: a small synthetic vocabulary).")
    var vocabGguf: String?
    @Option(help: "Number of documents.") var samples: Int = 10
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Most tokens per document.") var maxTokens: Int = 2000
    @Option(help: "Logit bonus for tokens containing a quote or a closing bracket.") var closeBias: Float = 3
    @Option(help: "Nesting limit in parser frames.") var maxDepth: Int = Grammar.defaultMaxDepth
    @Flag(help: "Print mask timing to stderr.") var timing = false

    func validate() throws {
        guard (schema != nil) != jsonObject else { throw ValidationError("give exactly one of --schema FILE and --json-object") }
        guard samples >= 0, samples <= 1_000_000 else { throw ValidationError("--samples must be in 0...1000000") }
        guard maxTokens >= 1, maxTokens <= 1_000_000 else { throw ValidationError("--max-tokens must be in 1...1000000") }
        guard closeBias.isFinite else { throw ValidationError("--close-bias must be finite") }
    }

    func run() throws {
        let grammar: Grammar
        do {
            if let schema {
                guard let data = FileManager.default.contents(atPath: schema) else {
                    throw CommandFailure("\(schema): cannot read the file")
                }
                grammar = try Grammar.jsonSchema([UInt8](data), maxDepth: maxDepth)
            } else {
                grammar = Grammar.jsonObject(maxDepth: maxDepth)
            }
        } catch let e as GrammarError {
            throw CommandFailure("\(schema ?? "json_object"): \(e.description)")
        }
        let vocabulary = try loadVocabulary()
        do { try vocabulary.check(grammar) } catch { throw CommandFailure(error.description) }

        let matcher = GrammarMatcher(grammar: grammar, vocabulary: vocabulary)
        let n = vocabulary.size
        let bonus: [Float] = (0..<n).map { id in
            let b = vocabulary.tokenBytes[id]
            return b.contains(0x22) || b.contains(0x7D) || b.contains(0x5D) ? closeBias : 0
        }
        var logits = [Float](repeating: 0, count: n)
        var rng = SplitMix64(seed: seed)
        var maskSeconds: [Double] = []
        let clock = ContinuousClock()
        for _ in 0..<samples {
            matcher.reset()
            var text: [UInt8] = []
            var count = 0
            while count < maxTokens {
                for i in 0..<n { logits[i] = Float(rng.nextUnit()) * 4 + bonus[i] }
                let start = clock.now
                logits.withUnsafeMutableBufferPointer { p in
                    if let base = p.baseAddress { matcher.maskLogits(base, count: n) }
                }
                let d = clock.now - start
                maskSeconds.append(Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
                let token = draw(logits, &rng)
                do { try matcher.accept(token: token) } catch {
                    throw CommandFailure("sampled token \(token) was rejected: \(error.description)")
                }
                count += 1
                if matcher.isFinished { break }
                text += vocabulary.tokenBytes[Int(token)]
            }
            var line: [UInt8] = Array("{\"text\": ".utf8)
            OrderedJSON.serializeString(Array(String(decoding: text, as: UTF8.self).utf8), into: &line)
            line += Array(", \"complete\": \(matcher.isFinished), \"tokens\": \(count)}\n".utf8)
            FileHandle.standardOutput.write(Data(line))
        }
        if timing, !maskSeconds.isEmpty {
            let sorted = maskSeconds.sorted()
            let mean = maskSeconds.reduce(0, +) / Double(maskSeconds.count)
            let msg = String(format: "mask over %d tokens (%d trie nodes): mean %.3f ms, median %.3f ms, p99 %.3f ms, max %.3f ms, %d steps\n",
                             n, vocabulary.trieNodeCount, mean * 1e3, sorted[sorted.count / 2] * 1e3,
                             sorted[min(sorted.count - 1, sorted.count * 99 / 100)] * 1e3, (sorted.last ?? 0) * 1e3,
                             maskSeconds.count)
            FileHandle.standardError.write(Data(msg.utf8))
        }
    }

    /// Softmax draw at temperature 1 over the finite logits.
    func draw(_ logits: [Float], _ rng: inout SplitMix64) -> Int32 {
        var m = -Float.infinity
        for l in logits where l > m { m = l }
        var total = 0.0
        for l in logits where l > -.infinity { total += Foundation.exp(Double(l - m)) }
        let u = rng.nextUnit() * total
        var c = 0.0
        var last: Int32 = 0
        for (i, l) in logits.enumerated() where l > -.infinity {
            c += Foundation.exp(Double(l - m))
            last = Int32(i)
            if u < c { return last }
        }
        return last
    }

    func loadVocabulary() throws -> GrammarVocabulary {
        guard let path = vocabGguf else {
            let (tokens, eos) = GrammarVocabulary.syntheticTokens()
            do { return try GrammarVocabulary(tokens: tokens, eosTokens: [eos]) } catch {
                throw CommandFailure(error.description)
            }
        }
        let tokenizer: any Tokenizer
        do {
            tokenizer = try loadTokenizer(try GGUFFile(path: path))
        } catch {
            throw CommandFailure("\(path): \(error)")
        }
        // The bytes each token decodes to: control tokens decode to nothing.
        var tokens: [[UInt8]] = []
        tokens.reserveCapacity(tokenizer.vocabularySize)
        for id in 0..<Int32(tokenizer.vocabularySize) {
            tokens.append((try? tokenizer.decode([id])) ?? [])
        }
        // RWKV World: token 0 (<|endoftext|>) ends a document when the file names no EOS.
        let eos = tokenizer.eosTokenID ?? 0
        do { return try GrammarVocabulary(tokens: tokens, eosTokens: [eos]) } catch {
            throw CommandFailure("\(path): \(error.description)")
        }
    }
}

extension SplitMix64 {
    /// Uniform in [0, 1).
    mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }
}
