/// SentencePiece BPE (`tokenizer.ggml.model = "llama"`): Llama 1/2, Mistral, TinyLlama...
///
/// Encoding, as llama.cpp's `llm_tokenizer_spm_session` and sentencepiece's BPE model do it:
/// a space goes in front of the text (`tokenizer.ggml.add_space_prefix`, default true; also after
/// each special token, as llama.cpp does), every space becomes U+2581 "▁", the text starts as one
/// symbol per character, and the adjacent pair whose concatenation is the vocabulary piece with
/// the highest score (`tokenizer.ggml.scores`; ties: leftmost) is merged until none is. A
/// character without a piece becomes its bytes' `<0xXX>` tokens (byte fallback) or, in a
/// vocabulary without them, the unknown token (one for a run of such characters, as
/// sentencepiece does). No normalization besides the spaces (llama's models use "identity").
/// Without byte tokens and without an unknown token, such a character throws
/// `byteNotInVocabulary`, whose offset then counts in the escaped text ("▁" for each space).
public struct SentencePieceTokenizer: Tokenizer {
    public let vocabularySize: Int
    public let bosTokenID: Int32?
    public let eosTokenID: Int32?
    public let eotTokenID: Int32?
    public let paddingTokenID: Int32?
    public let unknownTokenID: Int32?
    public let addsBOS: Bool
    public let addsEOS: Bool
    public let addsSpacePrefix: Bool

    let table: TokenTable
    let types: [GGMLTokenType]
    let scores: [Float]
    /// Normal and user-defined pieces by their (escaped, "▁" for space) bytes.
    let pieces: DoubleArrayTrie
    /// (left id << 32 | right id) -> the piece they form.
    let pairs: [UInt64: Int32]
    /// True when no piece holds "▁" after another character than "▁" and "▁" is a piece: then
    /// no merge crosses the start of a "▁" run, and the text is merged one such word at a time
    /// (same result, much smaller queues, and a word cache).
    let splitsAtSpaces: Bool
    /// `<0xXX>` token of each byte, -1 where missing.
    let byteToken: [Int32]
    let special: SpecialTokenMatcher

    static let spaceMark: [UInt8] = [0xE2, 0x96, 0x81]

    public init(tokens: [String], scores: [Float]?, tokenTypes: [Int32]?,
                bosTokenID: Int32? = 1, eosTokenID: Int32? = 2, unknownTokenID: Int32? = 0,
                eotTokenID: Int32? = nil, paddingTokenID: Int32? = nil,
                addBOS: Bool? = nil, addEOS: Bool? = nil, addSpacePrefix: Bool? = nil) throws(TokenizerError) {
        guard !tokens.isEmpty else { throw .invalidMetadata(key: "tokenizer.ggml.tokens", expected: "a non-empty array", found: "no tokens") }
        guard tokens.count < Int(Int32.max) else {
            throw .invalidMetadata(key: "tokenizer.ggml.tokens", expected: "fewer than 2^31 tokens", found: "\(tokens.count)")
        }
        if let scores, scores.count != tokens.count {
            throw .invalidMetadata(key: "tokenizer.ggml.scores", expected: "\(tokens.count) entries (one per token)", found: "\(scores.count)")
        }
        let types = try VocabularyCheck.types(tokenTypes, count: tokens.count)
        for (key, id) in [("tokenizer.ggml.bos_token_id", bosTokenID), ("tokenizer.ggml.eos_token_id", eosTokenID),
                          ("tokenizer.ggml.unknown_token_id", unknownTokenID), ("tokenizer.ggml.eot_token_id", eotTokenID),
                          ("tokenizer.ggml.padding_token_id", paddingTokenID)] {
            try VocabularyCheck.id(id, key: key, count: tokens.count)
        }
        let addBOS = addBOS ?? true, addEOS = addEOS ?? false
        if addBOS, bosTokenID == nil {
            throw .invalidMetadata(key: "tokenizer.ggml.bos_token_id", expected: "a token id (add_bos_token is true)", found: "nothing")
        }
        if addEOS, eosTokenID == nil {
            throw .invalidMetadata(key: "tokenizer.ggml.eos_token_id", expected: "a token id (add_eos_token is true)", found: "nothing")
        }
        vocabularySize = tokens.count
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        self.unknownTokenID = unknownTokenID
        self.eotTokenID = eotTokenID ?? VocabularyCheck.findEOT(tokens)
        self.paddingTokenID = paddingTokenID
        addsBOS = addBOS
        addsEOS = addEOS
        addsSpacePrefix = addSpacePrefix ?? true
        self.types = types
        self.scores = scores ?? [Float](repeating: 0, count: tokens.count)

        var bytes: [[UInt8]] = []
        bytes.reserveCapacity(tokens.count)
        var silent = [Bool](repeating: false, count: tokens.count)
        var byteToken = [Int32](repeating: -1, count: 256)
        var pieceKeys: [[UInt8]] = [], pieceIDs: [Int32] = []
        var specialTexts: [[UInt8]] = [], specialIDs: [Int32] = [], specialUser: [Bool] = []
        for (i, t) in tokens.enumerated() {
            let raw = Array(t.utf8)
            switch types[i] {
            case .byte:
                guard let b = Self.byteValue(raw) else {
                    throw .invalidMetadata(key: "tokenizer.ggml.tokens", expected: "byte tokens spelled <0xXX>",
                                           found: "\(t.debugDescription) at index \(i) (token_type 6)")
                }
                bytes.append([b])
                if byteToken[Int(b)] < 0 { byteToken[Int(b)] = Int32(i) }
            case .normal, .undefined:
                bytes.append(Self.unescape(raw))
                pieceKeys.append(raw)
                pieceIDs.append(Int32(i))
            case .userDefined:
                bytes.append(raw)
                pieceKeys.append(raw)
                pieceIDs.append(Int32(i))
                specialTexts.append(raw)
                specialIDs.append(Int32(i))
                specialUser.append(true)
            case .control, .unknown:
                bytes.append(raw)
                silent[i] = true
                specialTexts.append(raw)
                specialIDs.append(Int32(i))
                specialUser.append(false)
            case .unused:
                bytes.append(raw)
                silent[i] = true
            }
        }
        table = TokenTable(bytes, silent: silent)
        self.byteToken = byteToken
        special = SpecialTokenMatcher(texts: specialTexts, ids: specialIDs, isUserDefined: specialUser)
        let trie = DoubleArrayTrie(keys: pieceKeys, ids: pieceIDs)
        pieces = trie

        // Every split of a piece into two pieces is a pair that merges into it.
        var pairs: [UInt64: Int32] = [:]
        pairs.reserveCapacity(pieceKeys.count * 2)
        for (k, key) in pieceKeys.enumerated() where key.count > 1 {
            let whole = pieceIDs[k]
            key.withUnsafeBufferPointer { b in
                if trie.exact(b, 0, b.count) != whole { return }  // a duplicate spelling
                for cut in 1 ..< b.count {
                    let l = trie.exact(b, 0, cut)
                    if l < 0 { continue }
                    let r = trie.exact(b, cut, b.count)
                    if r < 0 { continue }
                    pairs[UInt64(UInt32(bitPattern: l)) << 32 | UInt64(UInt32(bitPattern: r))] = whole
                }
            }
        }
        self.pairs = pairs
        var splits = Self.spaceMark.withUnsafeBufferPointer { trie.exact($0, 0, 3) } >= 0
        for key in pieceKeys where splits && key.count > 3 {
            for k in stride(from: 1, through: key.count - 3, by: 1) where key[k] == 0xE2 && key[k + 1] == 0x96 && key[k + 2] == 0x81 {
                let afterSpace = k >= 3 && key[k - 3] == 0xE2 && key[k - 2] == 0x96 && key[k - 1] == 0x81
                if !afterSpace { splits = false }
            }
        }
        splitsAtSpaces = splits
    }

    /// `<0xXX>` -> XX.
    static func byteValue(_ raw: [UInt8]) -> UInt8? {
        guard raw.count == 6, raw[0] == 0x3C, raw[1] == 0x30, raw[2] == 0x78, raw[5] == 0x3E else { return nil }
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30 ... 0x39: c - 0x30
            case 0x41 ... 0x46: c - 0x41 + 10
            case 0x61 ... 0x66: c - 0x61 + 10
            default: nil
            }
        }
        guard let h = hex(raw[3]), let l = hex(raw[4]) else { return nil }
        return h << 4 | l
    }

    /// "▁" -> " ".
    static func unescape(_ raw: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        while i < raw.count {
            if i + 2 < raw.count, raw[i] == 0xE2, raw[i + 1] == 0x96, raw[i + 2] == 0x81 {
                out.append(0x20)
                i += 3
            } else {
                out.append(raw[i])
                i += 1
            }
        }
        return out
    }

    public func tokenBytes(_ id: Int32) -> [UInt8]? {
        guard id >= 0, Int(id) < vocabularySize else { return nil }
        return Array(table.bytes(Int(id)))
    }

    public func isControl(_ id: Int32) -> Bool {
        guard id >= 0, Int(id) < vocabularySize else { return false }
        return types[Int(id)] == .control
    }

    /// A token's bytes ("▁" as a space, `<0xXX>` as its byte); control, unknown and unused
    /// tokens give none. The streaming path: no space is removed.
    public func appendDecoded(_ id: Int32, to out: inout [UInt8]) throws(TokenizerError) {
        guard id >= 0, Int(id) < vocabularySize else { throw .tokenIDOutOfRange(id: id, vocabularySize: vocabularySize) }
        if table.silent[Int(id)] { return }
        out.append(contentsOf: table.bytes(Int(id)))
    }

    /// The text of a whole sequence: as `appendDecoded`, and with `add_space_prefix` the space
    /// that encoding put in front is removed from the first token after a leading BOS (llama.cpp
    /// strips it from the first token; sentencepiece strips it too), so
    /// `decode(encode(x)) == x`.
    public func decode(_ ids: [Int32]) throws(TokenizerError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 4)
        var first = addsSpacePrefix
        for (i, id) in ids.enumerated() {
            let before = out.count
            try appendDecoded(id, to: &out)
            if first, !(i == 0 && id == bosTokenID) {
                first = false
                if out.count > before, out[before] == 0x20 { out.remove(at: before) }
            }
        }
        return out
    }

    public func encode(bytes: [UInt8]) throws(TokenizerError) -> [Int32] {
        try encode(bytes: bytes, options: .plain)
    }

    public func encode(bytes: [UInt8], options: EncodeOptions) throws(TokenizerError) -> [Int32] {
        guard bytes.count < Int(Int32.max) else { throw .inputTooLong(bytes: bytes.count) }
        var out: [Int32] = []
        out.reserveCapacity(bytes.count / 3 + 4)
        if options.addSpecial, addsBOS, let bos = bosTokenID { out.append(bos) }
        var failure: TokenizerError?
        bytes.withUnsafeBufferPointer { b in
            var state = State()
            var prevSpecial = true
            for piece in special.partition(b, parseControl: options.parseSpecial) {
                switch piece {
                case let .token(id):
                    out.append(id)
                    prevSpecial = true
                case let .text(lo, hi):
                    // Escaped text: optional leading space, every space as "▁"; `origin` maps each
                    // escaped byte back to its input offset (for error messages).
                    state.escaped.removeAll(keepingCapacity: true)
                    if addsSpacePrefix, prevSpecial { state.escaped += Self.spaceMark }
                    for k in lo ..< hi {
                        if b[k] == 0x20 { state.escaped += Self.spaceMark } else { state.escaped.append(b[k]) }
                    }
                    prevSpecial = false
                    if let e = state.escaped.withUnsafeBufferPointer({ encodeEscaped($0, &state, &out) }) {
                        failure = e
                        return
                    }
                }
            }
        }
        if let failure { throw failure }
        if options.addSpecial, addsEOS, let eos = eosTokenID { out.append(eos) }
        return out
    }

    struct State {
        var escaped: [UInt8] = []
        var text = ScalarText()
        var ids: [Int32] = []
        var prev: [Int32] = []
        var next: [Int32] = []
        var heap = MinHeap<Candidate>()
        var cache = WordCache()
        var prevUnknown = false
    }

    struct Candidate: Comparable {
        /// Highest score first, then leftmost.
        var score: Float
        var left: Int32
        var right: Int32
        var leftID: Int32
        var rightID: Int32
        var merged: Int32

        static func < (a: Candidate, b: Candidate) -> Bool {
            a.score > b.score || (a.score == b.score && a.left < b.left)
        }
        static func == (a: Candidate, b: Candidate) -> Bool { a.score == b.score && a.left == b.left }
    }

    private func encodeEscaped(_ b: UnsafeBufferPointer<UInt8>, _ s: inout State, _ out: inout [Int32]) -> TokenizerError? {
        s.text.decode(b, 0, b.count)
        let n = s.text.cps.count
        s.prevUnknown = false
        guard splitsAtSpaces else { return encodeWord(b, 0, n, &s, &out) }
        var start = 0
        for i in 1 ..< max(n, 1) where s.text.cps[i] == 0x2581 && s.text.cps[i - 1] != 0x2581 {
            if let e = encodeWord(b, start, i, &s, &out) { return e }
            start = i
        }
        return start < n ? encodeWord(b, start, n, &s, &out) : nil
    }

    /// Merges the characters `lo..<hi` of `s.text` (whose bytes are in `b`).
    private func encodeWord(_ b: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int, _ s: inout State,
                            _ out: inout [Int32]) -> TokenizerError? {
        let n = hi - lo
        if n <= 0 { return nil }
        let byteLo = Int(s.text.offsets[lo]), byteHi = Int(s.text.offsets[hi])
        let hash = WordCache.hash(b, byteLo, byteHi)
        let cached = out.count
        if s.cache.lookup(b, byteLo, byteHi, hash: hash, into: &out) {
            // Cached words hold no unknown token (see below), so the run state resets.
            s.prevUnknown = false
            return nil
        }
        s.ids.removeAll(keepingCapacity: true)
        s.prev.removeAll(keepingCapacity: true)
        s.next.removeAll(keepingCapacity: true)
        for i in 0 ..< n {
            let a = Int(s.text.offsets[lo + i]), z = Int(s.text.offsets[lo + i + 1])
            s.ids.append(pieces.exact(b, a, z))
            s.prev.append(Int32(i - 1))
            s.next.append(i + 1 < n ? Int32(i + 1) : -1)
        }
        s.heap.removeAll()
        for i in 0 ..< n - 1 { push(i, i + 1, &s) }
        while let c = s.heap.pop() {
            let l = Int(c.left), r = Int(c.right)
            guard s.ids[l] == c.leftID, s.next[l] == c.right, s.ids[r] == c.rightID else { continue }
            s.ids[l] = c.merged
            s.ids[r] = -2  // merged away
            let rn = s.next[r]
            s.next[l] = rn
            if rn >= 0 { s.prev[Int(rn)] = Int32(l) }
            let lp = s.prev[l]
            if lp >= 0 { push(Int(lp), l, &s) }
            if rn >= 0 { push(l, Int(rn), &s) }
        }
        var i = 0
        var sawUnknown = false
        while i >= 0 {
            let id = s.ids[i]
            if id >= 0 {
                out.append(id)
                s.prevUnknown = false
            } else {
                // A character without a piece: its bytes, or the unknown token (one per run).
                let a = Int(s.text.offsets[lo + i]), z = Int(s.text.offsets[lo + i + 1])
                var allBytes = true
                for k in a ..< z where byteToken[Int(b[k])] < 0 { allBytes = false }
                if allBytes {
                    for k in a ..< z { out.append(byteToken[Int(b[k])]) }
                    s.prevUnknown = false
                } else if let unk = unknownTokenID {
                    if !s.prevUnknown { out.append(unk) }
                    s.prevUnknown = true
                    sawUnknown = true
                } else {
                    return .byteNotInVocabulary(offset: a, byte: b[a])
                }
            }
            i = Int(s.next[i])
        }
        if !sawUnknown { s.cache.insert(b, byteLo, byteHi, hash: hash, ids: out[cached...]) }
        return nil
    }

    @inline(__always)
    private func push(_ l: Int, _ r: Int, _ s: inout State) {
        let li = s.ids[l], ri = s.ids[r]
        guard li >= 0, ri >= 0,
              let m = pairs[UInt64(UInt32(bitPattern: li)) << 32 | UInt64(UInt32(bitPattern: ri))] else { return }
        s.heap.push(Candidate(score: scores[Int(m)], left: Int32(l), right: Int32(r), leftID: li, rightID: ri, merged: m))
    }
}
