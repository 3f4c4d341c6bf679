/// Incremental detokenizer: feed token ids one at a time, get back only complete text.
///
/// Tokens may end in the middle of a UTF-8 sequence (RWKV World and byte-level BPE both split
/// multi-byte characters). The decoder holds back a trailing incomplete sequence (at most three
/// bytes that can still become a valid character) until it completes, and never returns a broken
/// sequence. Bytes that can no longer become valid are replaced by U+FFFD right away, one per
/// maximal subpart (Unicode's recommended practice, as Swift's `String(decoding:as:)` and Python's
/// `bytes.decode("utf-8", errors="replace")` do), so the concatenation of everything returned,
/// `flush()` included, equals `String(decoding: allBytes, as: UTF8.self)`.
public struct StreamingDecoder<T: Tokenizer>: Sendable {
    public let tokenizer: T
    private var pending: [UInt8] = []

    public init(tokenizer: T) {
        self.tokenizer = tokenizer
        pending.reserveCapacity(64)
    }

    /// Bytes held back because they may be the start of a character.
    public var heldByteCount: Int { pending.count }

    /// Adds one token; returns the text that became complete (often empty).
    public mutating func feed(_ id: Int32) throws(TokenizerError) -> String {
        try tokenizer.appendDecoded(id, to: &pending)
        return takeComplete()
    }

    /// Adds several tokens; returns the text that became complete.
    public mutating func feed(_ ids: [Int32]) throws(TokenizerError) -> String {
        for id in ids { try tokenizer.appendDecoded(id, to: &pending) }
        return takeComplete()
    }

    /// Adds raw bytes (for callers that decode tokens themselves).
    public mutating func feed(bytes: [UInt8]) -> String {
        pending += bytes
        return takeComplete()
    }

    /// Ends the stream: returns the held bytes, an incomplete sequence replaced by U+FFFD.
    public mutating func flush() -> String {
        defer { pending.removeAll(keepingCapacity: true) }
        return String(decoding: pending, as: UTF8.self)
    }

    private mutating func takeComplete() -> String {
        let keep = UTF8Split.incompleteSuffixLength(pending)
        let ready = pending.count - keep
        if ready == 0 { return "" }
        let text = String(decoding: pending[..<ready], as: UTF8.self)
        pending.removeFirst(ready)
        return text
    }
}

enum UTF8Split {
    /// Length of the longest suffix of `b` that is a proper prefix of a well-formed UTF-8
    /// sequence (0 ... 3). Everything before it decodes the same on its own as within the whole
    /// stream: the suffix starts with a lead byte, which ends any maximal subpart before it.
    static func incompleteSuffixLength(_ b: [UInt8]) -> Int {
        let n = b.count
        var k = 1
        while k <= min(3, n) {
            let lead = b[n - k]
            if lead & 0xC0 == 0x80 {  // continuation byte: look further back
                k += 1
                continue
            }
            let need: Int
            switch lead {
            case 0xC2 ... 0xDF: need = 2
            case 0xE0 ... 0xEF: need = 3
            case 0xF0 ... 0xF4: need = 4
            default: return 0  // ASCII or a byte that never starts a sequence
            }
            if k >= need { return 0 }  // complete (or over-long run of continuations): emit
            if k >= 2 {
                let second = b[n - k + 1]
                let ok: Bool
                switch lead {
                case 0xE0: ok = second >= 0xA0
                case 0xED: ok = second <= 0x9F
                case 0xF0: ok = second >= 0x90
                case 0xF4: ok = second <= 0x8F
                default: ok = true
                }
                if !ok { return 0 }
            }
            return k
        }
        return 0
    }
}
