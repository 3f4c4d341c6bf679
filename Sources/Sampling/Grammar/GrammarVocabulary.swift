/// A byte trie over a set of tokens, in preorder (the root is implicit): per
/// node the edge byte, depth (1 = first byte), the index after the node's
/// subtree, and the tokens that end at the node (`tokenStart ..< tokenStart +
/// tokenCount` in `tokens`).
final class TokenTrie: @unchecked Sendable {
    // Safety: every buffer is written only in init and read-only afterwards.
    let nodeCount: Int
    let byte: UnsafeMutablePointer<UInt8>
    let depth: UnsafeMutablePointer<Int32>
    let skip: UnsafeMutablePointer<Int32>
    let tokenStart: UnsafeMutablePointer<Int32>
    let tokenCount: UnsafeMutablePointer<Int32>
    let tokens: UnsafeMutablePointer<Int32>
    let maxDepth: Int

    /// `ids` must be sorted by their bytes (ties by id).
    init(sortedIDs ids: [Int32], bytes: [[UInt8]]) {
        var byte: [UInt8] = [], depth: [Int32] = [], skip: [Int32] = []
        var tokStart: [Int32] = [], tokCount: [Int32] = [], list: [Int32] = []
        var path: [Int32] = []  // node index per depth - 1
        var previous: [UInt8] = []
        var longest = 0
        for id in ids {
            let s = bytes[Int(id)]
            longest = max(longest, s.count)
            var lcp = 0
            while lcp < s.count, lcp < previous.count, s[lcp] == previous[lcp] { lcp += 1 }
            while path.count > lcp {
                if let n = path.popLast() { skip[Int(n)] = Int32(byte.count) }
            }
            for k in lcp..<s.count {
                path.append(Int32(byte.count))
                byte.append(s[k])
                depth.append(Int32(k + 1))
                skip.append(0)
                tokStart.append(0)
                tokCount.append(0)
            }
            if let n = path.last {
                if tokCount[Int(n)] == 0 { tokStart[Int(n)] = Int32(list.count) }
                tokCount[Int(n)] += 1
                list.append(id)
            }
            previous = s
        }
        while let n = path.popLast() { skip[Int(n)] = Int32(byte.count) }
        nodeCount = byte.count
        self.byte = copyToBuffer(byte)
        self.depth = copyToBuffer(depth)
        self.skip = copyToBuffer(skip)
        tokenStart = copyToBuffer(tokStart)
        tokenCount = copyToBuffer(tokCount)
        tokens = copyToBuffer(list)
        maxDepth = longest
    }

    deinit {
        byte.deallocate(); depth.deallocate(); skip.deallocate()
        tokenStart.deallocate(); tokenCount.deallocate(); tokens.deallocate()
    }
}

func copyToBuffer<T>(_ a: [T]) -> UnsafeMutablePointer<T> {
    let p = UnsafeMutablePointer<T>.allocate(capacity: max(a.count, 1))
    a.withUnsafeBufferPointer { src in
        if let base = src.baseAddress { p.initialize(from: base, count: a.count) }
    }
    return p
}

/// A model's vocabulary as bytes, prepared once per model for grammar masks:
/// a byte trie over every token (shared prefixes are stepped once), and for
/// the inside of JSON strings the list of "plain" tokens (complete UTF-8 text
/// without quote, backslash or control characters, which a string accepts
/// whole) plus a second trie over all the other tokens.
///
/// `tokens[id]` is the bytes token `id` produces when decoded; pass `[]` for
/// control tokens (they are never allowed by a grammar). The `eosTokens` end
/// the document; they are allowed only when the document is complete.
public final class GrammarVocabulary: @unchecked Sendable {
    // Safety: every buffer is written only in init and read-only afterwards.
    public let size: Int
    public let eosTokens: [Int32]
    /// The bytes each token decodes to (index = token id; [] for control tokens).
    public let tokenBytes: [[UInt8]]
    /// Every non-empty, non-EOS token.
    let trie: TokenTrie
    /// The tokens that are not plain string content.
    let specialTrie: TokenTrie
    /// Plain string-content tokens and their code point counts.
    let plainCount: Int
    let plainTokens: UnsafeMutablePointer<Int32>
    let plainCodePoints: UnsafeMutablePointer<Int32>
    public let maxTokenLength: Int
    /// Whether a token consisting of exactly this one byte exists.
    let hasSingleByte: [Bool]
    /// Whether some token ends inside a UTF-8 sequence.
    let hasPartialUTF8: Bool

    public init(tokens: [[UInt8]], eosTokens: [Int32]) throws(GrammarError) {
        guard !tokens.isEmpty, tokens.count <= Int(Int32.max) else {
            throw .invalidVocabulary(message: "\(tokens.count) tokens")
        }
        for e in eosTokens where e < 0 || Int(e) >= tokens.count {
            throw .invalidVocabulary(message: "end-of-sequence id \(e) outside 0..<\(tokens.count)")
        }
        size = tokens.count
        self.eosTokens = eosTokens
        tokenBytes = tokens
        let eos = Set(eosTokens)
        var ids: [Int32] = []
        ids.reserveCapacity(tokens.count)
        var single = [Bool](repeating: false, count: 256)
        var partial = false
        for (i, t) in tokens.enumerated() where !t.isEmpty && !eos.contains(Int32(i)) {
            ids.append(Int32(i))
            if t.count == 1 { single[Int(t[0])] = true }
            if Self.endsInsideUTF8(t) { partial = true }
        }
        hasSingleByte = single
        hasPartialUTF8 = partial
        ids.sort { a, b in
            let x = tokens[Int(a)], y = tokens[Int(b)]
            return x == y ? a < b : x.lexicographicallyPrecedes(y)
        }
        var special: [Int32] = [], plain: [Int32] = [], codePoints: [Int32] = []
        for id in ids {
            if let n = Self.plainStringCodePoints(tokens[Int(id)]) {
                plain.append(id)
                codePoints.append(n)
            } else {
                special.append(id)
            }
        }
        trie = TokenTrie(sortedIDs: ids, bytes: tokens)
        specialTrie = TokenTrie(sortedIDs: special, bytes: tokens)
        plainCount = plain.count
        plainTokens = copyToBuffer(plain)
        plainCodePoints = copyToBuffer(codePoints)
        maxTokenLength = trie.maxDepth
    }

    deinit {
        plainTokens.deallocate()
        plainCodePoints.deallocate()
    }

    /// Number of trie nodes (distinct non-empty token prefixes).
    public var trieNodeCount: Int { trie.nodeCount }

    /// The number of code points if `t` is complete, valid UTF-8 (the
    /// matcher's rules: no overlongs, surrogates or values above U+10FFFF)
    /// without `"`, backslash or control characters below 0x20; else nil.
    static func plainStringCodePoints(_ t: [UInt8]) -> Int32? {
        var n: Int32 = 0
        var i = 0
        while i < t.count {
            let c = t[i]
            var rest = 0, lo: UInt8 = 0x80, hi: UInt8 = 0xBF
            switch c {
            case 0x22, 0x5C, 0..<0x20: return nil
            case 0x20..<0x80: rest = 0
            case 0xC2...0xDF: rest = 1
            case 0xE0: rest = 2; lo = 0xA0
            case 0xE1...0xEC, 0xEE, 0xEF: rest = 2
            case 0xED: rest = 2; hi = 0x9F
            case 0xF0: rest = 3; lo = 0x90
            case 0xF1...0xF3: rest = 3
            case 0xF4: rest = 3; hi = 0x8F
            default: return nil
            }
            i += 1
            for k in 0..<rest {
                guard i < t.count else { return nil }
                let b = t[i]
                if k == 0 {
                    guard b >= lo && b <= hi else { return nil }
                } else {
                    guard b >= 0x80 && b <= 0xBF else { return nil }
                }
                i += 1
            }
            n += 1
        }
        return n
    }

    static func endsInsideUTF8(_ t: [UInt8]) -> Bool {
        var need = 0
        for b in t {
            if need > 0, b & 0xC0 == 0x80 { need -= 1; continue }
            switch b {
            case 0xC2...0xDF: need = 1
            case 0xE0...0xEF: need = 2
            case 0xF0...0xF4: need = 3
            default: need = 0
            }
        }
        return need > 0
    }

    /// Checks that the vocabulary can finish every document the grammar
    /// allows: single-byte tokens for the JSON punctuation, digits, a letter,
    /// every byte of the grammar's keys and literals, and the UTF-8
    /// continuation bytes when some token ends inside a UTF-8 sequence. Call
    /// once per grammar and vocabulary before decoding.
    public func check(_ grammar: Grammar) throws(GrammarError) {
        var needed = Array("{}[],:\"0123456789a".utf8)
        for b in 0..<256 where grammar.tables.literalBytes[b] { needed.append(UInt8(b)) }
        if hasPartialUTF8 { needed += Array(0x80...0xBF) }
        for b in needed where !hasSingleByte[Int(b)] {
            throw .vocabularyCannotExpress(byte: b)
        }
    }
}

extension GrammarVocabulary {
    /// A small synthetic vocabulary for tests and `roostd grammar-sample`:
    /// ids 0...255 are the single bytes, then multi-byte chunks such as `{"`,
    /// `":`, `", "`, `true`, UTF-8 text and a partial UTF-8 sequence; the last
    /// id is the end-of-sequence token (no bytes).
    public static func syntheticTokens() -> (tokens: [[UInt8]], eos: Int32) {
        var tokens: [[UInt8]] = (0..<256).map { [UInt8($0)] }
        let chunks = [
            "{\"", "\":", "\": ", "\", \"", "\",\"", "\"}", "\"]", "},", "}]", "[{", "[]", "{}", "true",
            "false", "null", "name", "hello", " world", "123", "0.5", "e+10", "-1", "\\n", "\\u00e9",
            "é", "日本", "語", "😀", "\\\"", "\"a\"", "[1,", "id", "children", "value", "items", ", ",
        ]
        for c in chunks { tokens.append(Array(c.utf8)) }
        tokens.append([0xE6, 0x97])  // first two bytes of 日 (E6 97 A5)
        tokens.append([0xA5, 0x22])  // its last byte and a quote
        tokens.append([])            // end of sequence
        return (tokens, Int32(tokens.count - 1))
    }
}
