/// Character classes the pre-tokenizer regexes test, one bit each, from Swift's Unicode tables
/// (`Unicode.Scalar.Properties.generalCategory` and `isWhitespace`, the White_Space property
/// that `\s` means in Oniguruma, the regex engine of the `tokenizers` package).
enum CharClass {
    static let letter: UInt8 = 1        // \p{L}
    static let number: UInt8 = 2        // \p{N}
    static let whitespace: UInt8 = 4    // \s
    static let punctuation: UInt8 = 8   // \p{P}
    static let symbol: UInt8 = 16       // \p{S}
    static let mark: UInt8 = 32         // \p{M}
    static let deepseekLetter: UInt8 = 64       // DeepSeek LLM's letter set (see DeepSeekSets)
    static let deepseekPunctuation: UInt8 = 128 // DeepSeek LLM's punctuation set

    /// Classes of the code points of planes 0 and 1, built on first use.
    static let table: [UInt8] = {
        var t = [UInt8](repeating: 0, count: 0x20000)
        for cp in 0 ..< UInt32(0x20000) { t[Int(cp)] = compute(cp) }
        return t
    }()

    /// Code points past the Unicode range stand for an undecodable input byte (see
    /// `ScalarText`); they count as a symbol, as U+FFFD would.
    @inline(__always)
    static func of(_ cp: UInt32) -> UInt8 {
        if cp < 0x20000 { return table[Int(cp)] }
        return compute(cp)
    }

    static func compute(_ cp: UInt32) -> UInt8 {
        guard let s = Unicode.Scalar(cp) else { return symbol }
        let p = s.properties
        var f: UInt8 = p.isWhitespace ? whitespace : 0
        if DeepSeekSets.contains(DeepSeekSets.letters, cp) { f |= deepseekLetter }
        if DeepSeekSets.contains(DeepSeekSets.punctuation, cp) { f |= deepseekPunctuation }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            f |= letter
        case .decimalNumber, .letterNumber, .otherNumber:
            f |= number
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            f |= punctuation
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
            f |= symbol
        case .nonspacingMark, .spacingMark, .enclosingMark:
            f |= mark
        case .spaceSeparator, .lineSeparator, .paragraphSeparator, .control, .format, .surrogate,
             .privateUse, .unassigned:
            break
        @unknown default:
            break
        }
        return f
    }
}

/// A run of input bytes decoded into code points, with each code point's byte offset.
///
/// Invalid UTF-8 does not stop encoding: each byte that does not start a well-formed sequence
/// becomes one code point of its own, `0x110000 + byte` (outside Unicode, classed as a symbol as
/// U+FFFD would be), so its original byte is kept and `decode(encode(x)) == x` for any bytes.
/// (llama.cpp replaces such a byte by U+FFFD's three bytes instead.)
struct ScalarText {
    var cps: [UInt32] = []
    var classes: [UInt8] = []
    /// `offsets[i]` is the byte offset (within the decoded range) of code point i;
    /// `offsets[cps.count]` is the range's length.
    var offsets: [Int32] = []

    static let invalidBase: UInt32 = 0x110000

    mutating func decode(_ b: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int) {
        cps.removeAll(keepingCapacity: true)
        classes.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        var i = lo
        while i < hi {
            let (cp, n) = Self.next(b, i, hi)
            cps.append(cp)
            classes.append(CharClass.of(cp))
            offsets.append(Int32(truncatingIfNeeded: i - lo))
            i += n
        }
        offsets.append(Int32(truncatingIfNeeded: hi - lo))
    }

    /// The code point starting at `i` and its length in bytes; an invalid byte is 1 byte long.
    @inline(__always)
    static func next(_ b: UnsafeBufferPointer<UInt8>, _ i: Int, _ hi: Int) -> (UInt32, Int) {
        let c0 = b[i]
        if c0 < 0x80 { return (UInt32(c0), 1) }
        let bad = (invalidBase + UInt32(c0), 1)
        func cont(_ k: Int) -> UInt32? {
            guard k < hi else { return nil }
            let c = b[k]
            return c & 0xC0 == 0x80 ? UInt32(c & 0x3F) : nil
        }
        switch c0 {
        case 0xC2 ... 0xDF:
            guard let c1 = cont(i + 1) else { return bad }
            return (UInt32(c0 & 0x1F) << 6 | c1, 2)
        case 0xE0 ... 0xEF:
            guard let c1 = cont(i + 1), let c2 = cont(i + 2) else { return bad }
            let cp = UInt32(c0 & 0x0F) << 12 | c1 << 6 | c2
            if cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF) { return bad }
            return (cp, 3)
        case 0xF0 ... 0xF4:
            guard let c1 = cont(i + 1), let c2 = cont(i + 2), let c3 = cont(i + 3) else { return bad }
            let cp = UInt32(c0 & 0x07) << 18 | c1 << 12 | c2 << 6 | c3
            if cp < 0x10000 || cp > 0x10FFFF { return bad }
            return (cp, 4)
        default:
            return bad
        }
    }
}
