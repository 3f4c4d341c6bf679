import Testing
@testable import Tokenizers

/// The 256-token byte vocabulary of ../shared/fixtures/rwkv-tiny: token i is
/// `repr(bytes([i]))[2:-1]` in Python.
func tinyByteTokenStrings() -> [String] {
    (0 ..< 256).map { i -> String in
        switch i {
        case 0x09: return "\\t"
        case 0x0A: return "\\n"
        case 0x0D: return "\\r"
        case 0x5C: return "\\\\"
        case 0x27: return "'"  // repr(b"'") is b"'" (Python switches to double quotes)
        case 0x20 ..< 0x7F: return String(UnicodeScalar(UInt8(i)))
        default:
            let h = String(i, radix: 16)
            return "\\x" + (h.count < 2 ? "0" + h : h)
        }
    }
}

@Suite struct WorldTokenizerTests {
    @Test func tinyByteVocabularyRoundTripsAllBytes() throws {
        let strings = tinyByteTokenStrings()
        #expect(strings[0] == "\\x00" && strings[0x22] == "\"" && strings[0xFF] == "\\xff")
        let tok = try WorldTokenizer(ggmlTokens: strings)
        #expect(tok.vocabularySize == 256)
        #expect(tok.bosTokenID == nil && tok.eosTokenID == nil)
        for i in 0 ..< 256 { #expect(tok.tokenBytes(Int32(i)) == [UInt8(i)]) }
        let all = (0 ..< 256).map { UInt8($0) }
        let ids = try tok.encode(bytes: all + all.reversed())
        #expect(ids == (0 ..< 256).map { Int32($0) } + (0 ..< 256).reversed().map { Int32($0) })
        #expect(try tok.decode(ids) == all + all.reversed())
        // The fixture's prompt: "in -> [34, 105, 110].
        #expect(try tok.encode("\"in") == [34, 105, 110])
    }

    @Test func escapeRules() throws {
        func u(_ s: String) throws -> [UInt8] { try RWKVTokenEscape.unescape(s, index: 7) }
        #expect(try u("\\t\\n\\r") == [9, 10, 13])
        #expect(try u("\\x00\\xff\\xAb") == [0, 255, 0xAB])
        #expect(try u("\\\\\\'\\\"") == Array("\\'\"".utf8))
        #expect(try u("a\\qb") == Array("aqb".utf8))  // llama.cpp: any other escaped char is itself
        #expect(try u("中文") == Array("中文".utf8))
        #expect(try u("") == [])
        for b in 0 ... 255 {
            let bytes = [UInt8(b), 0x41, UInt8(b)]
            #expect(try u(RWKVTokenEscape.escape(bytes)) == bytes)
        }
    }

    @Test func malformedEscapesNameTheToken() {
        let cases: [(String, Int)] = [("abc\\", 3), ("\\x", 0), ("\\x4", 0), ("ab\\xg0", 2), ("\\x0z", 0)]
        for (text, position) in cases {
            var strings = tinyByteTokenStrings()
            strings[42] = text
            do {
                _ = try WorldTokenizer(ggmlTokens: strings)
                Issue.record("\(text.debugDescription) was accepted")
            } catch {
                guard case let .malformedTokenEscape(index, token, pos, _) = error else {
                    Issue.record("unexpected error \(error)")
                    continue
                }
                #expect(index == 42 && token == text && pos == position, "\(error)")
                #expect(error.description.contains("tokenizer.ggml.tokens[42]"))
            }
        }
    }

    @Test func longestMatchPrefersLongerEntries() throws {
        var vocab = (0 ..< 256).map { [UInt8($0)] }
        for s in ["ab", "abc", "abcd", "bcde", "xyz", "  ", "    "] { vocab.append(Array(s.utf8)) }
        let tok = try WorldTokenizer(tokens: vocab)
        func ids(_ s: String) throws -> [Int32] { try tok.encode(s) }
        #expect(try ids("abcd") == [258])
        #expect(try ids("abcde") == [258, Int32(UInt8(ascii: "e"))])  // greedy: not ab + cde...
        #expect(try ids("abce") == [257, Int32(UInt8(ascii: "e"))])
        #expect(try ids("xy") == [Int32(UInt8(ascii: "x")), Int32(UInt8(ascii: "y"))])  // backs off
        #expect(try ids("       ") == [262, 261, 32])
        #expect(try ids("") == [])
        // Equal byte strings: the last id wins, as in the reference's token2idx dict.
        let dup = try WorldTokenizer(tokens: vocab + [Array("ab".utf8)])
        #expect(try dup.encode("ab") == [Int32(vocab.count)])
    }

    @Test func missingByteThrowsWithOffset() throws {
        let tok = try WorldTokenizer(tokens: [Array("a".utf8), Array("bc".utf8)])
        #expect(try tok.encode("abca") == [0, 1, 0])
        #expect(throws: TokenizerError.byteNotInVocabulary(offset: 1, byte: UInt8(ascii: "b"))) {
            try tok.encode("ab")
        }
        #expect(throws: TokenizerError.byteNotInVocabulary(offset: 3, byte: 0xFF)) {
            try tok.encode(bytes: [0x61, 0x62, 0x63, 0xFF])
        }
    }

    @Test func controlAndUnusedTokensAreNotMatchedNorDecoded() throws {
        var strings = ["<s>"] + tinyByteTokenStrings() + ["[PAD257]"]
        strings[1] = "\\x00"
        var types = [Int32](repeating: 1, count: strings.count)
        types[0] = 3
        types[257] = 5
        let tok = try WorldTokenizer(ggmlTokens: strings, tokenTypes: types, bosTokenID: 0, eosTokenID: 0)
        let ids = try tok.encode("<s>[PAD257]")
        #expect(ids == Array("<s>[PAD257]".utf8).map { Int32($0) + 1 })
        #expect(try tok.decode([0] + ids + [0, 257]) == Array("<s>[PAD257]".utf8))
        #expect(tok.tokenBytes(0) == Array("<s>".utf8))
        #expect(throws: TokenizerError.tokenIDOutOfRange(id: 258, vocabularySize: 258)) { try tok.decode([258]) }
        #expect(throws: TokenizerError.tokenIDOutOfRange(id: -1, vocabularySize: 258)) { try tok.decode([-1]) }
        #expect(tok.tokenBytes(-1) == nil)
        #expect(throws: TokenizerError.self) { try WorldTokenizer(ggmlTokens: strings, tokenTypes: [1]) }
        #expect(throws: TokenizerError.self) { try WorldTokenizer(ggmlTokens: strings, bosTokenID: 258) }
        #expect(throws: TokenizerError.self) { try WorldTokenizer(tokens: []) }
    }

    @Test func randomVocabularyMatchesNaiveLongestMatch() throws {
        var rng = SplitMix64(seed: 99)
        var vocab = (0 ..< 256).map { [UInt8($0)] }
        for _ in 0 ..< 3000 {
            let n = Int(rng.next() % 8) + 2
            vocab.append((0 ..< n).map { _ in UInt8(rng.next() % 6) + 0x61 })
        }
        let tok = try WorldTokenizer(tokens: vocab)
        var index: [[UInt8]: Int32] = [:]
        for (i, t) in vocab.enumerated() { index[t] = Int32(i) }
        let input = (0 ..< 5000).map { _ in UInt8(rng.next() % 7) + 0x61 }
        var expected: [Int32] = []
        var pos = 0
        while pos < input.count {
            var best = pos + 1
            for end in stride(from: min(input.count, pos + 10), to: pos, by: -1) where index[Array(input[pos ..< end])] != nil {
                best = end
                break
            }
            expected.append(index[Array(input[pos ..< best])] ?? -1)
            pos = best
        }
        #expect(try tok.encode(bytes: input) == expected)
    }
}

@Suite struct StreamingDecoderTests {
    let tok: WorldTokenizer

    init() throws { tok = try WorldTokenizer(ggmlTokens: tinyByteTokenStrings()) }

    @Test func splitEmojiIsHeldUntilTheLastByte() throws {
        var d = StreamingDecoder(tokenizer: tok)
        let emoji = Array("😀".utf8)
        #expect(emoji.count == 4)
        #expect(try d.feed(Int32(UInt8(ascii: "a"))) == "a")
        for b in emoji.dropLast() {
            #expect(try d.feed(Int32(b)) == "")
        }
        #expect(d.heldByteCount == 3)
        #expect(try d.feed(Int32(emoji[3])) == "😀")
        #expect(d.heldByteCount == 0)
        #expect(d.flush() == "")
    }

    @Test func invalidBytesBecomeReplacementCharacters() throws {
        var d = StreamingDecoder(tokenizer: tok)
        #expect(try d.feed(0xE4) == "")
        #expect(try d.feed(0xB8) == "")
        #expect(try d.feed(0x41) == "\u{FFFD}A")  // truncated sequence: one U+FFFD
        #expect(try d.feed(0xFF) == "\u{FFFD}")   // never a lead byte: out at once
        #expect(try d.feed(0xE0) == "")
        #expect(try d.feed(0x80) == "\u{FFFD}\u{FFFD}")  // E0 80 can never complete
        #expect(try d.feed(0xF0) == "")
        #expect(d.flush() == "\u{FFFD}")
        #expect(d.flush() == "")
        #expect(try d.feed(0xED) == "")
        #expect(try d.feed(0xA0) == "\u{FFFD}\u{FFFD}")  // surrogate
    }

    @Test func chunkedStreamEqualsWholeDecoding() throws {
        var rng = SplitMix64(seed: 7)
        let pieces: [[UInt8]] = [Array("héllo 中文 😀🇯🇵 ".utf8), [0x80], [0xC3], [0xE4, 0xB8], [0xF0, 0x9F, 0x98],
                                 [0xED, 0xA0, 0x80], [0xF4, 0x90], [0xC0, 0xAF], [0xFF], Array("x".utf8)]
        for _ in 0 ..< 200 {
            var bytes: [UInt8] = []
            for _ in 0 ..< Int(rng.next() % 12) { bytes += pieces[Int(rng.next() % UInt64(pieces.count))] }
            var d = StreamingDecoder(tokenizer: tok)
            var text = ""
            for b in bytes { text += try d.feed(Int32(b)) }
            text += d.flush()
            #expect(text == String(decoding: bytes, as: UTF8.self), "\(bytes)")
        }
    }
}

struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
