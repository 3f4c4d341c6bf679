import Foundation
import Testing
@testable import Tokenizers

/// The RWKV World tokenizer against the `rwkv` PyPI package's reference TRIE_TOKENIZER.
///
/// tools/gen_world_tokenizer_vectors.py (run here through the venv's python) writes the GGUF token
/// strings as llama.cpp's converter does, a 1.1 MB mixed corpus (prose, CJK, code, emoji, whitespace
/// runs, invalid UTF-8, all 256 bytes) with its reference ids, and a valid-UTF-8 corpus with its ids.
/// Python: $ROOST_PYTHON (exported by `make test`), else the repo's .venv/bin/python. Without python
/// or the `rwkv` package the test is skipped, unless CI=true, where it fails.
@Suite(.serialized) struct WorldTokenizerOracleTests {
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

    struct Vectors {
        let tokenizer: WorldTokenizer
        let corpus: [UInt8], corpusIDs: [Int32], corpusReplaced: [UInt8]
        let valid: [UInt8], validIDs: [Int32]
    }

    /// Runs the generator into a temporary directory and loads what it wrote.
    static func generate() throws -> Vectors {
        guard let python else {
            if required { Issue.record("CI=true but no python: set ROOST_PYTHON or run `make venv`") }
            try Test.cancel("no python (ROOST_PYTHON unset and no .venv): skipping the rwkv reference check; run `make venv`")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("roost-world-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [repoRoot.appendingPathComponent("tools/gen_world_tokenizer_vectors.py").path, "--out", dir.path]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        if p.terminationStatus == 77 {
            if required { Issue.record("CI=true but the rwkv package is missing:\n\(output)") }
            try Test.cancel("the rwkv package is not installed in \(python): skipping the reference check\n\(output)")
        }
        guard p.terminationStatus == 0 else {
            throw OracleError("gen_world_tokenizer_vectors.py failed (\(p.terminationStatus)):\n\(output)")
        }

        func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: dir.appendingPathComponent(name))) }
        func ids(_ name: String) throws -> [Int32] {
            let b = try bytes(name)
            guard b.count % 4 == 0 else { throw OracleError("\(name): \(b.count) bytes is not a multiple of 4") }
            return stride(from: 0, to: b.count, by: 4).map { i in
                Int32(bitPattern: UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24)
            }
        }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("tokens.json")))
        guard let obj = json as? [String: Any], let tokens = obj["tokens"] as? [String],
              let types = obj["token_types"] as? [NSNumber] else { throw OracleError("tokens.json: unexpected layout") }
        let tokenizer = try WorldTokenizer(ggmlTokens: tokens, tokenTypes: types.map { $0.int32Value })
        return Vectors(tokenizer: tokenizer,
                       corpus: try bytes("corpus.bin"), corpusIDs: try ids("corpus.ids"),
                       corpusReplaced: try bytes("corpus.replaced"),
                       valid: try bytes("valid.bin"), validIDs: try ids("valid.ids"))
    }

    /// Describes the first difference between two id sequences by byte offset, with context.
    static func firstMismatch(_ got: [Int32], _ want: [Int32], bytes: [UInt8], tokenizer: WorldTokenizer) -> String? {
        if got == want { return nil }
        var i = 0
        var offset = 0
        while i < min(got.count, want.count), got[i] == want[i] {
            offset += tokenizer.tokenBytes(want[i])?.count ?? 0
            i += 1
        }
        let lo = max(0, offset - 24), hi = min(bytes.count, offset + 24)
        let ctx = bytes[lo ..< hi].map { String(format: "%02x", $0) }.joined(separator: " ")
        func show(_ ids: [Int32]) -> String {
            ids[i ..< min(ids.count, i + 4)].map { id in
                "\(id)='\(RWKVTokenEscape.escape(tokenizer.tokenBytes(id) ?? []))'"
            }.joined(separator: ", ")
        }
        return "first mismatch at token \(i) (byte offset \(offset)) of \(want.count) reference tokens " +
            "(\(got.count) from Swift)\n  swift: \(show(got))\n  rwkv:  \(show(want))\n" +
            "  bytes \(lo)..<\(hi): \(ctx)\n  text: \(String(decoding: bytes[lo ..< hi], as: UTF8.self).debugDescription)"
    }

    @Test func matchesReferenceTokenizer() throws {
        let v = try Self.generate()
        #expect(v.tokenizer.vocabularySize == 65536)
        #expect(v.corpus.count >= 1_000_000)
        // Trie size: states are at most the vocabulary's total bytes; holes stay few.
        let totalBytes = (0 ..< 65536).reduce(0) { $0 + (v.tokenizer.tokenBytes(Int32($1))?.count ?? 0) }
        print("WorldTokenizer: double-array trie of \(v.tokenizer.trie.slotCount) slots for \(totalBytes) vocabulary bytes")
        #expect(v.tokenizer.trie.slotCount < 2 * totalBytes)

        let ids = try v.tokenizer.encode(bytes: v.corpus)
        if let m = Self.firstMismatch(ids, v.corpusIDs, bytes: v.corpus, tokenizer: v.tokenizer) { Issue.record("corpus: \(m)") }
        let validIDs = try v.tokenizer.encode(bytes: v.valid)
        if let m = Self.firstMismatch(validIDs, v.validIDs, bytes: v.valid, tokenizer: v.tokenizer) { Issue.record("valid: \(m)") }
        print("WorldTokenizer: \(ids.count + validIDs.count) ids compared with rwkv's TRIE_TOKENIZER over \(v.corpus.count + v.valid.count) bytes")

        // decode(encode(x)) == x, byte for byte.
        #expect(try v.tokenizer.decode(ids) == v.corpus)
        #expect(try v.tokenizer.decode(validIDs) == v.valid)

        // Streaming, one id at a time: exactly the text for valid UTF-8; otherwise Python's
        // decode(errors="replace"), and valid UTF-8 in every chunk.
        for (name, tokenIDs, expected) in [("valid", v.validIDs, v.valid), ("corpus", v.corpusIDs, v.corpusReplaced)] {
            var d = StreamingDecoder(tokenizer: v.tokenizer)
            var out: [UInt8] = []
            out.reserveCapacity(expected.count)
            var maxHeld = 0
            for id in tokenIDs {
                out += try d.feed(id).utf8
                maxHeld = max(maxHeld, d.heldByteCount)
            }
            out += d.flush().utf8
            #expect(maxHeld <= 3)
            if out != expected {
                let at = (0 ..< min(out.count, expected.count)).first { out[$0] != expected[$0] } ?? min(out.count, expected.count)
                Issue.record("\(name): streamed text differs from the expected at byte \(at) (\(out.count) vs \(expected.count) bytes)")
            }
        }
        // Swift's own replacement policy is Python's (maximal subparts).
        #expect(Array(String(decoding: v.corpus, as: UTF8.self).utf8) == v.corpusReplaced)
    }
}

struct OracleError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
