import Foundation
import Testing
@testable import Tokenizers

/// Byte-level BPE and SentencePiece against their reference implementations.
///
/// The fixtures (Tests/Fixtures/tokenizers/NAME.gguf, with the reference's own NAME.tokenizer.json
/// or NAME.model next to them) come from `tools/gen_bpe_tokenizer_fixtures.py --fixtures`. At test
/// time the same script (`--vectors`) writes a 1.1 MB mixed corpus of documents and the `tokenizers`
/// / `sentencepiece` ids of every document, with special tokens parsed and not; every id must agree.
/// Python: $ROOST_PYTHON, else the repo's .venv/bin/python. Without python or the packages the test
/// is skipped, unless CI=true, where it fails.
@Suite(.serialized) struct BPETokenizerOracleTests {
    static let env = ProcessInfo.processInfo.environment
    static let required = env["CI"] == "true"
    static var repoRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
    static var python: String? {
        if let p = env["ROOST_PYTHON"], FileManager.default.isExecutableFile(atPath: p) { return p }
        let venv = repoRoot.appendingPathComponent(".venv/bin/python").path
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : nil
    }

    static let bpeNames = ["llama-bpe", "qwen2", "deepseek-llm", "gpt-2", "olmo", "default", "starcoder"]
    static let spmNames = ["spm-bytefallback", "spm-nofallback"]

    /// The corpus and every tokenizer's reference ids, read into memory (the files are removed).
    struct Vectors: Sendable {
        let docs: [[UInt8]]
        /// "NAME" (special tokens parsed) and "NAME.plain" -> ids per document.
        let expected: [String: [[Int32]]]

        func ids(_ name: String) -> [[Int32]]? { expected[name] }

        static func read(_ dir: URL, _ name: String) throws -> [[Int32]]? {
            let idsURL = dir.appendingPathComponent("\(name).ids"), countsURL = dir.appendingPathComponent("\(name).counts")
            guard FileManager.default.fileExists(atPath: idsURL.path) else { return nil }
            let flat = try int32s(idsURL), counts = try int32s(countsURL)
            var out: [[Int32]] = []
            var at = 0
            for c in counts {
                out.append(Array(flat[at ..< at + Int(c)]))
                at += Int(c)
            }
            return out
        }

        static func int32s(_ url: URL) throws -> [Int32] {
            let b = [UInt8](try Data(contentsOf: url))
            guard b.count % 4 == 0 else { throw OracleError("\(url.lastPathComponent): not int32s") }
            return stride(from: 0, to: b.count, by: 4).map { i in
                Int32(bitPattern: UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24)
            }
        }
    }

    /// Runs the generator once for the whole suite.
    static let vectors: Result<Vectors, Error> = Result { try generate() }

    static func generate() throws -> Vectors {
        guard let python else { throw Skip.noPython }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("roost-bpe-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [repoRoot.appendingPathComponent("tools/gen_bpe_tokenizer_fixtures.py").path, "--vectors", dir.path]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        if p.terminationStatus == 77 { throw Skip.noPackages(output) }
        guard p.terminationStatus == 0 else {
            throw OracleError("gen_bpe_tokenizer_fixtures.py --vectors failed (\(p.terminationStatus)):\n\(output)")
        }
        let corpus = [UInt8](try Data(contentsOf: dir.appendingPathComponent("corpus.bin")))
        var docs: [[UInt8]] = []
        var at = 0
        for n in try Vectors.int32s(dir.appendingPathComponent("corpus.lens")) {
            docs.append(Array(corpus[at ..< at + Int(n)]))
            at += Int(n)
        }
        var expected: [String: [[Int32]]] = [:]
        for name in bpeNames + spmNames {
            for key in [name, name + ".plain"] { expected[key] = try Vectors.read(dir, key) }
        }
        return Vectors(docs: docs, expected: expected)
    }

    enum Skip: Error {
        case noPython
        case noPackages(String)
    }

    static func loadVectors() throws -> Vectors {
        switch vectors {
        case let .success(v): return v
        case .failure(Skip.noPython):
            if required { Issue.record("CI=true but no python: set ROOST_PYTHON or run `make venv`") }
            try Test.cancel("no python (ROOST_PYTHON unset and no .venv): skipping the tokenizers/sentencepiece check")
        case let .failure(Skip.noPackages(out)):
            if required { Issue.record("CI=true but tokenizers or sentencepiece is missing:\n\(out)") }
            try Test.cancel("tokenizers or sentencepiece is not installed: skipping the reference check\n\(out)")
        case let .failure(e): throw e
        }
    }

    static func describe(_ got: [Int32], _ want: [Int32], doc: [UInt8], tokenizer: any Tokenizer) -> String {
        var i = 0
        while i < min(got.count, want.count), got[i] == want[i] { i += 1 }
        func show(_ ids: [Int32]) -> String {
            ids[max(0, i - 2) ..< min(ids.count, i + 4)].map { id in
                "\(id)=\(String(decoding: tokenizer.tokenBytes(id) ?? [], as: UTF8.self).debugDescription)"
            }.joined(separator: " ")
        }
        let text = String(decoding: doc.prefix(300), as: UTF8.self)
        return "first difference at token \(i) (\(got.count) vs \(want.count) tokens)\n  roost:  \(show(got))\n  oracle: \(show(want))\n  document: \(text.debugDescription)"
    }

    /// Compares every document; returns the number of ids compared.
    static func compare(_ name: String, _ tok: any Tokenizer, _ v: Vectors, suffix: String, options: EncodeOptions) throws -> Int {
        guard let want = v.ids(name + suffix) else { throw OracleError("no \(name)\(suffix).ids from the generator") }
        #expect(want.count == v.docs.count)
        var compared = 0, failures = 0
        for (doc, expected) in zip(v.docs, want) {
            let got = try tok.encode(bytes: doc, options: options)
            compared += expected.count
            if got != expected {
                failures += 1
                if failures <= 3 { Issue.record("\(name)\(suffix): \(describe(got, expected, doc: doc, tokenizer: tok))") }
            }
        }
        #expect(failures == 0, "\(name)\(suffix): \(failures) of \(v.docs.count) documents differ")
        return compared
    }

    @Test(arguments: bpeNames)
    func byteLevelBPEMatchesTokenizers(_ name: String) throws {
        let v = try Self.loadVectors()
        let tok = try GGUFFixtureReader.load(name)
        #expect(tok is BPETokenizer)
        let bytes = v.docs.reduce(0) { $0 + $1.count }
        #expect(bytes >= 1_000_000)
        let a = try Self.compare(name, tok, v, suffix: "", options: EncodeOptions(parseSpecial: true))
        let b = try Self.compare(name, tok, v, suffix: ".plain", options: .plain)
        print("\(name): \(a) + \(b) ids identical to tokenizers over \(bytes) bytes (\(v.docs.count) documents, special tokens parsed and not)")

        // Byte-level BPE always round-trips (special-token text is plain text here).
        var streamed: [UInt8] = []
        var decoder = StreamingDecoder(tokenizer: AnyTokenizer(tok))
        var maxHeld = 0
        for doc in v.docs {
            let ids = try tok.encode(bytes: doc)
            let back = try tok.decode(ids)
            if back != doc {
                Issue.record("\(name): decode(encode(x)) != x for \(String(decoding: doc.prefix(200), as: UTF8.self).debugDescription)")
                break
            }
            for id in ids {
                streamed += try decoder.feed(id).utf8
                maxHeld = max(maxHeld, decoder.heldByteCount)
            }
        }
        streamed += decoder.flush().utf8
        #expect(streamed == v.docs.flatMap { $0 })
        #expect(maxHeld <= 3)
    }

    @Test(arguments: spmNames)
    func sentencePieceMatchesSentencepiece(_ name: String) throws {
        let v = try Self.loadVectors()
        let tok = try GGUFFixtureReader.load(name)
        #expect(tok is SentencePieceTokenizer)
        let bytes = v.docs.reduce(0) { $0 + $1.count }
        let n = try Self.compare(name, tok, v, suffix: ".plain", options: .plain)
        print("\(name): \(n) ids identical to sentencepiece over \(bytes) bytes (\(v.docs.count) documents)")
        guard name == "spm-bytefallback" else { return }
        // Streaming, one id at a time, keeps each text's prefix space and never splits a character.
        var decoder = StreamingDecoder(tokenizer: AnyTokenizer(tok))
        var streamed: [UInt8] = [], expected: [UInt8] = []
        var maxHeld = 0
        for doc in v.docs {
            for id in try tok.encode(bytes: doc) {
                streamed += try decoder.feed(id).utf8
                maxHeld = max(maxHeld, decoder.heldByteCount)
            }
            if doc.isEmpty { continue }  // no text, no prefix space
            expected += Array((" " + String(decoding: doc, as: UTF8.self)).replacingOccurrences(of: "\u{2581}", with: " ").utf8)
        }
        streamed += decoder.flush().utf8
        #expect(streamed == expected)
        #expect(maxHeld <= 3)
        // With byte fallback every text round-trips, with and without BOS, except text that holds
        // U+2581 itself: SentencePiece spells spaces with it, so it decodes as a space.
        for doc in v.docs where !String(decoding: doc, as: UTF8.self).unicodeScalars.contains("\u{2581}") {
            for options in [EncodeOptions.plain, EncodeOptions(addSpecial: true)] {
                let back = try tok.decode(try tok.encode(bytes: doc, options: options))
                if back != doc {
                    Issue.record("\(name): decode(encode(x)) != x for \(String(decoding: doc.prefix(200), as: UTF8.self).debugDescription)")
                    return
                }
            }
        }
    }
}
