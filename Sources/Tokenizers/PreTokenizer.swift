/// The pre-tokenizers of byte-level BPE: how text is cut into words before merging, one per
/// regex list that llama.cpp's `llm_tokenizer_bpe` uses for a `tokenizer.ggml.pre` value.
///
/// Each regex is a hand-written scanner over code points (see `Stage`). A list of regexes is
/// applied as llama.cpp's `unicode_regex_split` and the `tokenizers` package's
/// `Split(behavior="isolated")` do: every regex cuts each piece left by the previous one into
/// its matches and the gaps between them, and both are kept.
public enum PreTokenizerKind: String, Sendable, CaseIterable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)` (GPT-2, OLMo, MPT, ...)
    case gpt2
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    /// As llama3 with `\p{N}` (one digit per word) instead of `\p{N}{1,3}` (Qwen2).
    case qwen2
    /// `[\r\n]`, `\s?[Latin/Greek/Cyrillic/... letters]+`, `\s?[!-/:-~！-／：-～‘-‟　-。]+`, `\s+$`,
    /// `[一-龥ࠀ-一가-퟿]+`, `\p{N}+` (DeepSeek LLM).
    case deepseekLLM
    /// `\p{N}`, then the GPT-2 regex (StarCoder, Refact, Command-R, SmolLM, ...).
    case starcoder
    /// `[\p{P}\$\+<=>\^~\|]+`, the GPT-2 regex, `\p{N}+`, `[0-9][0-9][0-9]` (llama.cpp's default).
    case `default`

    /// The pre-tokenizer llama.cpp picks for a `tokenizer.ggml.pre` value (nil or "default":
    /// `.default`), with the flags that name implies there: `ignoreMerges` (a word that is a whole
    /// vocabulary entry is not merged) and `addBOS` (the default of `tokenizer.ggml.add_bos_token`).
    /// Nil for a name Roost does not know.
    public static func named(_ name: String?) -> (kind: PreTokenizerKind, ignoreMerges: Bool, addBOS: Bool)? {
        guard let name else { return (.default, false, false) }
        switch name {
        case "default": return (.default, false, false)
        case "llama3", "llama-v3", "llama-bpe", "falcon3": return (.llama3, true, true)
        case "dbrx", "smaug-bpe": return (.llama3, false, false)
        case "qwen2", "stablelm2", "megrez": return (.qwen2, false, false)
        case "deepseek-llm": return (.deepseekLLM, false, false)
        case "gpt-2", "phi-2", "roberta-bpe", "mpt", "olmo", "jais": return (.gpt2, false, false)
        case "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b":
            return (.starcoder, false, false)
        default: return nil
        }
    }

    /// The `tokenizer.ggml.pre` values `named` accepts.
    public static let supportedNames = [
        "default", "llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe", "qwen2", "stablelm2",
        "megrez", "deepseek-llm", "gpt-2", "phi-2", "roberta-bpe", "mpt", "olmo", "jais", "starcoder",
        "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b",
    ]

    var stages: [Stage] {
        switch self {
        case .gpt2: [.gpt2]
        case .llama3: [.llama3(maxDigits: 3)]
        case .qwen2: [.llama3(maxDigits: 1)]
        case .deepseekLLM: [.newline, .deepseekLetters, .deepseekPunctuation, .trailingSpace, .deepseekCJK, .numberRun]
        case .starcoder: [.singleNumber, .gpt2]
        case .default: [.punctuationRun, .gpt2, .numberRun, .threeASCIIDigits]
        }
    }
}

/// One regex of a pre-tokenizer.
enum Stage: Sendable {
    case gpt2
    case llama3(maxDigits: Int)
    case newline             // [\r\n]
    case deepseekLetters     // \s?[letters]+
    case deepseekPunctuation // \s?[!-/:-~！-／：-～‘-‟　-。]+
    case trailingSpace       // \s+$
    case deepseekCJK         // [一-龥ࠀ-一가-퟿]+
    case numberRun           // \p{N}+
    case singleNumber        // \p{N}
    case punctuationRun      // [\p{P}\$\+<=>\^~\|]+
    case threeASCIIDigits    // [0-9][0-9][0-9]
}

struct PreTokenizer: Sendable {
    let stages: [Stage]

    init(_ kind: PreTokenizerKind) { stages = kind.stages }

    /// Appends the words of `t` to `words` as pairs of code point indices (start, end).
    func split(_ t: ScalarText, into words: inout [Int32]) {
        t.cps.withUnsafeBufferPointer { cps in
            t.classes.withUnsafeBufferPointer { cls in
                run(0, 0, cps.count, cps, cls, &words)
            }
        }
    }

    private func run(_ k: Int, _ lo: Int, _ hi: Int, _ cps: UnsafeBufferPointer<UInt32>,
                     _ cls: UnsafeBufferPointer<UInt8>, _ words: inout [Int32]) {
        if k == stages.count {
            words.append(Int32(truncatingIfNeeded: lo))
            words.append(Int32(truncatingIfNeeded: hi))
            return
        }
        let stage = stages[k]
        var i = lo, gap = lo
        while i < hi {
            let e = Self.match(stage, cps, cls, i, hi)
            if e > i {
                if gap < i { run(k + 1, gap, i, cps, cls, &words) }
                run(k + 1, i, e, cps, cls, &words)
                i = e
                gap = e
            } else {
                i += 1
            }
        }
        if gap < hi { run(k + 1, gap, hi, cps, cls, &words) }
    }

    // MARK: scanners. Each returns the end of the match that starts at i (within ..<hi), or -1.

    static let L = CharClass.letter, N = CharClass.number, WS = CharClass.whitespace

    @inline(__always)
    static func isOther(_ c: UInt8) -> Bool { c & (L | N | WS) == 0 }

    @inline(__always)
    static func run(_ cls: UnsafeBufferPointer<UInt8>, _ from: Int, _ hi: Int, _ bit: UInt8) -> Int {
        var j = from
        while j < hi, cls[j] & bit != 0 { j += 1 }
        return j
    }

    @inline(__always)
    static func runOther(_ cls: UnsafeBufferPointer<UInt8>, _ from: Int, _ hi: Int) -> Int {
        var j = from
        while j < hi, isOther(cls[j]) { j += 1 }
        return j
    }

    @inline(__always)
    static func lower(_ c: UInt32) -> UInt32 { c >= 0x41 && c <= 0x5A ? c | 0x20 : c }

    /// `'s|'t|'re|'ve|'m|'ll|'d`, ASCII-case-insensitive when `fold`.
    @inline(__always)
    static func contraction(_ cps: UnsafeBufferPointer<UInt32>, _ i: Int, _ hi: Int, fold: Bool) -> Int {
        guard cps[i] == 0x27, i + 1 < hi else { return -1 }
        let a = fold ? lower(cps[i + 1]) : cps[i + 1]
        switch a {
        case 0x73, 0x74, 0x6D, 0x64: return i + 2  // s t m d
        case 0x72, 0x76, 0x6C:  // r v l
            guard i + 2 < hi else { return -1 }
            let b = fold ? lower(cps[i + 2]) : cps[i + 2]
            if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { return i + 3 }
            return -1
        default: return -1
        }
    }

    /// `\s+(?!\S)|\s+` at a whitespace code point: the run, less its last code point when a
    /// non-space follows and the run is longer than one.
    @inline(__always)
    static func spaceRun(_ cls: UnsafeBufferPointer<UInt8>, _ i: Int, _ hi: Int) -> Int {
        let q = run(cls, i, hi, WS)
        if q == hi || q - 1 == i { return q }
        return q - 1
    }

    static func match(_ stage: Stage, _ cps: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<UInt8>,
                      _ i: Int, _ hi: Int) -> Int {
        let c = cls[i]
        switch stage {
        case .gpt2:
            let e = contraction(cps, i, hi, fold: false)
            if e > 0 { return e }
            var j = i
            if cps[i] == 0x20, i + 1 < hi, cls[i + 1] & WS == 0 { j = i + 1 }
            let cj = cls[j]
            if cj & L != 0 { return run(cls, j + 1, hi, L) }
            if cj & N != 0 { return run(cls, j + 1, hi, N) }
            if isOther(cj) { return runOther(cls, j + 1, hi) }
            return spaceRun(cls, i, hi)

        case let .llama3(maxDigits):
            let e = contraction(cps, i, hi, fold: true)
            if e > 0 { return e }
            if c & L != 0 { return run(cls, i + 1, hi, L) }
            let cp = cps[i]
            if cp != 0x0D, cp != 0x0A, c & N == 0, i + 1 < hi, cls[i + 1] & L != 0 {
                return run(cls, i + 2, hi, L)
            }
            if c & N != 0 {
                var j = i + 1
                while j < hi, j - i < maxDigits, cls[j] & N != 0 { j += 1 }
                return j
            }
            var start = -1
            if cp == 0x20, i + 1 < hi, isOther(cls[i + 1]) { start = i + 1 } else if isOther(c) { start = i }
            if start >= 0 {
                var j = runOther(cls, start + 1, hi)
                while j < hi, cps[j] == 0x0D || cps[j] == 0x0A { j += 1 }
                return j
            }
            // Whitespace: \s*[\r\n]+ ends after the run's last CR/LF; then \s+(?!\S), \s+.
            let q = run(cls, i, hi, WS)
            var k = q - 1
            while k >= i {
                if cps[k] == 0x0D || cps[k] == 0x0A { return k + 1 }
                k -= 1
            }
            if q == hi || q - 1 == i { return q }
            return q - 1

        case .newline:
            return cps[i] == 0x0D || cps[i] == 0x0A ? i + 1 : -1

        case .deepseekLetters, .deepseekPunctuation:
            let bit = stage.isLetters ? CharClass.deepseekLetter : CharClass.deepseekPunctuation
            var j = i
            if c & WS != 0, i + 1 < hi, cls[i + 1] & bit != 0 { j = i + 1 }
            guard cls[j] & bit != 0 else { return -1 }
            return run(cls, j + 1, hi, bit)

        case .trailingSpace:
            guard c & WS != 0 else { return -1 }
            return run(cls, i + 1, hi, WS) == hi ? hi : -1

        case .deepseekCJK:
            var j = i
            while j < hi, DeepSeekSets.isCJK(cps[j]) { j += 1 }
            return j > i ? j : -1

        case .numberRun:
            return c & N != 0 ? run(cls, i + 1, hi, N) : -1

        case .singleNumber:
            return c & N != 0 ? i + 1 : -1

        case .punctuationRun:
            var j = i
            while j < hi, cls[j] & CharClass.punctuation != 0 || isPunctuationRunSymbol(cps[j]) { j += 1 }
            return j > i ? j : -1

        case .threeASCIIDigits:
            guard i + 3 <= hi else { return -1 }
            for k in i ..< i + 3 where !(cps[k] >= 0x30 && cps[k] <= 0x39) { return -1 }
            return i + 3
        }
    }

    /// `$ + < = > ^ ~ |`
    @inline(__always)
    static func isPunctuationRunSymbol(_ c: UInt32) -> Bool {
        switch c {
        case 0x24, 0x2B, 0x3C, 0x3D, 0x3E, 0x5E, 0x7E, 0x7C: return true
        default: return false
        }
    }
}

extension Stage {
    var isLetters: Bool {
        if case .deepseekLetters = self { return true }
        return false
    }
}

/// The explicit character sets of DeepSeek LLM's pre-tokenizer regexes, as sorted inclusive
/// code point ranges.
enum DeepSeekSets {
    static let letters: [ClosedRange<UInt32>] = [
        0x41 ... 0x5A, 0x61 ... 0x7A, 0xB5 ... 0xB5, 0xC0 ... 0xD6, 0xD8 ... 0xF6, 0xF8 ... 0x1BA, 0x1BC ... 0x1BF,
        0x1C4 ... 0x293, 0x295 ... 0x2AF, 0x370 ... 0x373, 0x376 ... 0x377, 0x37B ... 0x37D, 0x37F ... 0x37F,
        0x386 ... 0x386, 0x388 ... 0x38A, 0x38C ... 0x38C, 0x38E ... 0x3A1, 0x3A3 ... 0x3F5, 0x3F7 ... 0x481,
        0x48A ... 0x52F, 0x531 ... 0x556, 0x10A0 ... 0x10C5, 0x13A0 ... 0x13F5, 0x13F8 ... 0x13FD,
        0x1C90 ... 0x1CBA, 0x1CBD ... 0x1CBF, 0x1D00 ... 0x1D2B, 0x1D6B ... 0x1D77, 0x1D79 ... 0x1D9A,
        0x1E00 ... 0x1F15, 0x1F18 ... 0x1F1D, 0x1F20 ... 0x1F45, 0x1F48 ... 0x1F4D, 0x1F50 ... 0x1F57,
        0x1F59 ... 0x1F59, 0x1F5B ... 0x1F5B, 0x1F5D ... 0x1F5D, 0x1F5F ... 0x1F7D, 0x1F80 ... 0x1FB4,
        0x1FB6 ... 0x1FBC, 0x1FBE ... 0x1FBE, 0x1FC2 ... 0x1FC4, 0x1FC6 ... 0x1FCC, 0x1FD0 ... 0x1FD3,
        0x1FD6 ... 0x1FDB, 0x1FE0 ... 0x1FEC, 0x1FF2 ... 0x1FF4, 0x1FF6 ... 0x1FFC, 0x2102 ... 0x2102,
        0x2107 ... 0x2107, 0x210A ... 0x2113, 0x2115 ... 0x2115, 0x2119 ... 0x211D, 0x2124 ... 0x2124,
        0x2126 ... 0x2126, 0x2128 ... 0x2128, 0x212A ... 0x212D, 0x212F ... 0x2134, 0x2139 ... 0x2139,
        0x213C ... 0x213F, 0x2145 ... 0x2149, 0x214E ... 0x214E, 0x2183 ... 0x2184, 0x2C00 ... 0x2C7B,
        0x2C7E ... 0x2CE4, 0x2CEB ... 0x2CEE, 0x2CF2 ... 0x2CF3, 0xA640 ... 0xA66D, 0xA680 ... 0xA69B,
        0xA722 ... 0xA76F, 0xA771 ... 0xA787, 0xA78B ... 0xA78E, 0xAB70 ... 0xABBF, 0xFB00 ... 0xFB06,
        0xFB13 ... 0xFB17, 0xFF21 ... 0xFF3A, 0xFF41 ... 0xFF5A, 0x10400 ... 0x1044F, 0x104B0 ... 0x104D3,
        0x104D8 ... 0x104FB, 0x10C80 ... 0x10CB2, 0x10CC0 ... 0x10CF2, 0x118A0 ... 0x118DF, 0x1E900 ... 0x1E943,
    ]
    static let punctuation: [ClosedRange<UInt32>] = [
        0x21 ... 0x2F, 0x3A ... 0x7E, 0x2018 ... 0x201F, 0x3000 ... 0x3002, 0xFF01 ... 0xFF0F, 0xFF1A ... 0xFF5E,
    ]
    /// `[一-龥ࠀ-一가-퟿]`: U+0800...U+4E00, U+4E00...U+9FA5, U+AC00...U+D7FF.
    @inline(__always)
    static func isCJK(_ c: UInt32) -> Bool { (c >= 0x800 && c <= 0x9FA5) || (c >= 0xAC00 && c <= 0xD7FF) }

    /// Binary search over sorted ranges (ranges may touch).
    @inline(__always)
    static func contains(_ set: [ClosedRange<UInt32>], _ c: UInt32) -> Bool {
        var lo = 0, hi = set.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            let r = set[mid]
            if c < r.lowerBound { hi = mid } else if c > r.upperBound { lo = mid + 1 } else { return true }
        }
        return false
    }
}
