import Foundation
import Testing
@testable import Tokenizers

/// Special tokens, BOS/EOS, empty and invalid input, decoding and metadata errors of the
/// byte-level BPE and SentencePiece tokenizers (the fixtures of Tests/Fixtures/tokenizers).
struct BPETokenizerTests {
    static func load(_ name: String) throws -> any Tokenizer { try GGUFFixtureReader.load(name) }

    /// The token spelled `text`; of several (a normal token and an added one with the same
    /// bytes), the highest id, where added tokens are.
    static func id(_ tok: any Tokenizer, _ text: String) -> Int32? {
        (0 ..< Int32(tok.vocabularySize)).last { tok.tokenBytes($0) == Array(text.utf8) }
    }

    // MARK: special tokens

    @Test func controlTokensAreParsedOnlyWhenAsked() throws {
        let tok = try Self.load("llama-bpe")
        let eot = try #require(Self.id(tok, "<|eot_id|>"))
        #expect(tok.eotTokenID == eot)
        #expect(tok.isControl(eot))
        let text = "Hello<|eot_id|> world"
        let parsed = try tok.encode(text, options: EncodeOptions(parseSpecial: true))
        #expect(parsed.filter { $0 == eot }.count == 1)
        #expect(parsed == (try tok.encode("Hello")) + [eot] + (try tok.encode(" world")))
        let plain = try tok.encode(text)
        #expect(!plain.contains(eot))
        #expect(try tok.decode(plain) == Array(text.utf8))
        // Control tokens decode to nothing; tokenBytes spells them.
        #expect(try tok.decode(parsed) == Array("Hello world".utf8))
        #expect(tok.tokenBytes(eot) == Array("<|eot_id|>".utf8))
    }

    @Test func userDefinedTokensAreAlwaysMatched() throws {
        let tok = try Self.load("llama-bpe")
        let think = try #require(Self.id(tok, "<think>"))
        #expect(!tok.isControl(think))
        for options in [EncodeOptions.plain, EncodeOptions(parseSpecial: true)] {
            let ids = try tok.encode("a<think>b", options: options)
            #expect(ids.contains(think))
            #expect(try tok.decode(ids) == Array("a<think>b".utf8))  // user-defined tokens decode to their text
        }
    }

    @Test func longestSpecialTokenWins() throws {
        // olmo's user-defined tokens are runs of 2 and 4 spaces.
        let tok = try Self.load("olmo")
        let two = try #require(Self.id(tok, "  ")), four = try #require(Self.id(tok, "    "))
        let ids = try tok.encode("a      b")  // six spaces: 4 + 2
        #expect(Array(ids.dropFirst().prefix(2)) == [four, two])
    }

    // MARK: BOS / EOS

    @Test func bosFollowsTheModel() throws {
        let llama = try Self.load("llama-bpe")
        #expect(llama.addsBOS && !llama.addsEOS)
        let bos = try #require(llama.bosTokenID)
        #expect(try llama.encode("hi", options: EncodeOptions(addSpecial: true)) == [bos] + (try llama.encode("hi")))
        #expect(try llama.encode("", options: EncodeOptions(addSpecial: true)) == [bos])
        #expect(try llama.encode("") == [])

        let gpt2 = try Self.load("gpt-2")
        #expect(!gpt2.addsBOS)
        #expect(try gpt2.encode("hi", options: .prompt) == (try gpt2.encode("hi")))

        let spm = try Self.load("spm-bytefallback")
        #expect(spm.addsBOS && spm.bosTokenID == 1 && spm.eosTokenID == 2)
        #expect(try spm.encode("") == [])
        #expect(try spm.encode("", options: EncodeOptions(addSpecial: true)) == [1])
        #expect(try spm.encode("hi", options: EncodeOptions(addSpecial: true)).first == 1)
    }

    @Test func eotAndPaddingFromMetadataOrSpelling() throws {
        let qwen = try Self.load("qwen2")
        #expect(qwen.eotTokenID == Self.id(qwen, "<|im_end|>"))  // not in the metadata: found by name
        #expect(qwen.paddingTokenID == Self.id(qwen, "<|endoftext|>"))
        #expect(AnyTokenizer(qwen).eotTokenID == qwen.eotTokenID)
    }

    // MARK: invalid UTF-8

    /// Invalid bytes are tokenized (each byte a character of its own, classed as a symbol) and
    /// decode back to the same bytes.
    @Test func invalidUTF8RoundTrips() throws {
        let inputs: [[UInt8]] = [[0xFF], [0x80, 0x80], [0x41, 0xC3], [0xE4, 0xB8], [0xED, 0xA0, 0x80, 0x20, 0x61],
                                 [0xF0, 0x9F, 0x98], [0x20, 0xFE, 0x20, 0x20, 0x31, 0x32, 0x33, 0x34], [0xC0, 0xAF, 0x27, 0x73]]
        for name in ["llama-bpe", "qwen2", "deepseek-llm", "gpt-2", "default", "starcoder", "spm-bytefallback"] {
            let tok = try Self.load(name)
            for b in inputs {
                let ids = try tok.encode(bytes: b)
                #expect(try tok.decode(ids) == b, "\(name): \(b)")
                var d = StreamingDecoder(tokenizer: AnyTokenizer(tok))
                let text = (try d.feed(ids)) + d.flush()
                // Streaming keeps SentencePiece's prefix space.
                #expect(text == String(decoding: (tok is SentencePieceTokenizer ? [0x20] : []) + b, as: UTF8.self))
            }
        }
        // Without byte fallback a character outside the vocabulary is <unk>, one per run.
        let nf = try Self.load("spm-nofallback")
        let unk = try #require((nf as? SentencePieceTokenizer)?.unknownTokenID)
        let ids = try nf.encode(bytes: [0x61, 0xFF, 0xFE, 0x62])
        #expect(ids.filter { $0 == unk }.count == 1)
    }

    @Test func invalidBytesAreSymbolsForThePreTokenizer() {
        var t = ScalarText()
        let b: [UInt8] = [0x61, 0xFF, 0x62, 0xE4, 0xB8, 0x80]
        b.withUnsafeBufferPointer { t.decode($0, 0, $0.count) }
        #expect(t.cps == [0x61, ScalarText.invalidBase + 0xFF, 0x62, 0x4E00])
        #expect(t.offsets == [0, 1, 2, 3, 6])
        #expect(t.classes[1] == CharClass.symbol)
    }

    // MARK: pre-tokenizers

    static func words(_ kind: PreTokenizerKind, _ s: String) -> [String] {
        var t = ScalarText()
        let b = Array(s.utf8)
        b.withUnsafeBufferPointer { t.decode($0, 0, $0.count) }
        var w: [Int32] = []
        PreTokenizer(kind).split(t, into: &w)
        return stride(from: 0, to: w.count, by: 2).map { i in
            String(decoding: b[Int(t.offsets[Int(w[i])]) ..< Int(t.offsets[Int(w[i + 1])])], as: UTF8.self)
        }
    }

    @Test func preTokenizerSplits() {
        #expect(Self.words(.gpt2, "Hello world's  HE'S 12345 \t\tx  ") ==
            ["Hello", " world", "'s", " ", " HE", "'", "S", " 12345", " \t", "\t", "x", "  "])
        #expect(Self.words(.llama3, "Hello world's  HE'S 12345 \t\tx  \n\n y") ==
            ["Hello", " world", "'s", " ", " HE", "'S", " ", "123", "45", " \t", "\tx", "  \n\n", " y"])
        #expect(Self.words(.qwen2, "ab12") == ["ab", "1", "2"])
        #expect(Self.words(.llama3, "(hello)\n\n...\r\n") == ["(hello", ")\n\n", "...\r\n"])
        #expect(Self.words(.default, "a+b=1234567;") == ["a", "+", "b", "=", "123", "456", "7", ";"])
        #expect(Self.words(.starcoder, "x 42") == ["x", " ", "4", "2"])
        #expect(Self.words(.deepseekLLM, "Hello 世界 123\nMüller  ") == ["Hello", " ", "世界", " ", "123", "\n", "M", "ü", "ller", "  "])
    }

    // MARK: SentencePiece decoding

    @Test func sentencePieceDecodeRemovesThePrefixSpaceOnce() throws {
        let spm = try Self.load("spm-bytefallback")
        for text in ["Hello world", " Hello", "  two", "", " ", "a\nb"] {
            #expect(try spm.decode(try spm.encode(text)) == Array(text.utf8))
            #expect(try spm.decode(try spm.encode(text, options: EncodeOptions(addSpecial: true))) == Array(text.utf8))
        }
        // The streaming path keeps every space (the first token's included).
        var d = StreamingDecoder(tokenizer: AnyTokenizer(spm))
        #expect(try d.feed(try spm.encode("Hello")) == " Hello")
    }

    // MARK: errors

    static func metadata(_ name: String) throws -> TokenizerMetadata {
        try GGUFFixtureReader.tokenizerMetadata(try GGUFFixtureReader.metadata(GGUFFixtureReader.fixtures.appendingPathComponent("\(name).gguf")))
    }

    static func key(of body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let e as TokenizerError {
            if case let .invalidMetadata(key, _, _) = e { return key }
            return "other: \(e)"
        } catch {
            return "other: \(error)"
        }
    }

    @Test func metadataErrorsNameTheKey() throws {
        let good = try Self.metadata("llama-bpe")
        #expect(Self.key { _ = try makeTokenizer(good) } == nil)

        var m = good
        m.merges = nil
        #expect(Self.key { _ = try makeTokenizer(m) } == "tokenizer.ggml.merges")
        m = good
        m.merges = (m.merges ?? []) + ["Ġzzzq Ġzzzr"]
        #expect(Self.key { _ = try makeTokenizer(m) } == "tokenizer.ggml.merges")
        m = good
        m.merges = ["nospace"]
        #expect(Self.key { _ = try makeTokenizer(m) } == "tokenizer.ggml.merges")
        m = good
        m.tokenTypes?[5] = 9
        #expect(Self.key { _ = try makeTokenizer(m) } == "tokenizer.ggml.token_type")
        m = good
        m.tokenTypes?.removeLast()
        #expect(Self.key { _ = try makeTokenizer(m) } == "tokenizer.ggml.token_type")
        m = good
        m.pre = "no-such-pre"
        #expect(Self.key { _ = try makeTokenizer(m) } == "tokenizer.ggml.pre")
        m = good
        m.model = "bert"
        #expect(Self.key { _ = try makeTokenizer(m) } == "tokenizer.ggml.model")
        m = good
        m.bosTokenID = Int32(good.tokens.count)
        #expect(Self.key { _ = try makeTokenizer(m) } == "tokenizer.ggml.bos_token_id")
        m = good
        m.bosTokenID = nil
        #expect(Self.key { _ = try makeTokenizer(m) } == "tokenizer.ggml.bos_token_id")  // add_bos_token needs it
        m = good
        m.tokens = []
        m.tokenTypes = []
        #expect(Self.key { _ = try makeTokenizer(m) } == "tokenizer.ggml.tokens")

        let spm = try Self.metadata("spm-bytefallback")
        #expect(Self.key { _ = try makeTokenizer(spm) } == nil)
        var s = spm
        s.scores?.removeLast()
        #expect(Self.key { _ = try makeTokenizer(s) } == "tokenizer.ggml.scores")
        s = spm
        if let i = s.tokenTypes?.firstIndex(of: GGMLTokenType.byte.rawValue) { s.tokens[i] = "<0xZZ>" }
        #expect(Self.key { _ = try makeTokenizer(s) } == "tokenizer.ggml.tokens")

        let e = TokenizerError.invalidMetadata(key: "tokenizer.ggml.pre", expected: "x", found: "y")
        #expect(e.description.contains("tokenizer.ggml.pre"))
    }

    @Test func decodeRejectsIDsOutsideTheVocabulary() throws {
        for name in ["gpt-2", "spm-bytefallback"] {
            let tok = try Self.load(name)
            let n = tok.vocabularySize
            #expect(throws: TokenizerError.tokenIDOutOfRange(id: Int32(n), vocabularySize: n)) { try tok.decode([Int32(n)]) }
            #expect(throws: TokenizerError.tokenIDOutOfRange(id: -1, vocabularySize: n)) { try tok.decode([-1]) }
            #expect(tok.tokenBytes(Int32(n)) == nil)
        }
    }

    @Test func byteLevelTableIsABijection() {
        let s = Set(ByteLevel.scalar)
        #expect(s.count == 256)
        for b in 0 ..< 256 { #expect(ByteLevel.byte(for: ByteLevel.scalar[b]) == UInt8(b)) }
        #expect(ByteLevel.string(for: 0x20) == "Ġ")
        #expect(ByteLevel.string(for: 0x0A) == "Ċ")
    }
}

/// SentencePiece merges one "▁"-started word at a time when no piece spans a word start; a
/// vocabulary with such a piece takes the whole-text path, with the same result elsewhere.
struct SentencePieceWordSplitTests {
    @Test func wholeTextPathAgreesWithWordPath() throws {
        var m = try BPETokenizerTests.metadata("spm-bytefallback")
        let split = try #require(try makeTokenizer(m) as? SentencePieceTokenizer)
        let splits = split.splitsAtSpaces
        #expect(splits)
        m.tokens.append("q\u{2581}z")
        m.scores?.append(-1e9)
        m.tokenTypes?.append(GGMLTokenType.normal.rawValue)
        let whole = try #require(try makeTokenizer(m) as? SentencePieceTokenizer)
        let wholeSplits = whole.splitsAtSpaces
        #expect(!wholeSplits)
        for text in ["Hello world, this is a test.", "  two  spaces\n\nand lines", "数字 123 ünïcödé 😀", "", " "] {
            #expect(try whole.encode(text) == (try split.encode(text)), "\(text.debugDescription)")
        }
    }
}
