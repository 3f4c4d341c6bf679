/// Byte-level BPE (`tokenizer.ggml.model = "gpt2"`): GPT-2, Llama 3, Qwen2, DeepSeek, OLMo...
///
/// Encoding, as llama.cpp's `llm_tokenizer_bpe_session` and the `tokenizers` package do it:
/// special tokens are cut out of the input first (`SpecialTokenMatcher`); each remaining text
/// range is cut into words by the pre-tokenizer that `tokenizer.ggml.pre` names
/// (`PreTokenizerKind`); each word starts as one symbol per byte (the vocabulary spells bytes
/// with the GPT-2 byte-to-unicode table) and the adjacent pair whose merge has the lowest rank
/// (its index in `tokenizer.ggml.merges`; ties: leftmost) is merged until no pair has a merge.
/// With `ignoreMerges` (Llama 3), a word that is itself a vocabulary entry is taken whole.
public struct BPETokenizer: Tokenizer {
    public let vocabularySize: Int
    public let bosTokenID: Int32?
    public let eosTokenID: Int32?
    public let eotTokenID: Int32?
    public let paddingTokenID: Int32?
    public let addsBOS: Bool
    public let addsEOS: Bool
    public let preTokenizer: PreTokenizerKind
    public let ignoresMerges: Bool

    let pre: PreTokenizer
    let table: TokenTable
    let types: [GGMLTokenType]
    /// Token of each single byte, -1 where the vocabulary lacks it.
    let byteToken: [Int32]
    /// (left id << 32 | right id) -> rank << 32 | merged id.
    let merges: [UInt64: UInt64]
    /// Normal tokens by their bytes (for `ignoreMerges`).
    let words: DoubleArrayTrie
    let special: SpecialTokenMatcher

    /// - Parameters:
    ///   - tokens: `tokenizer.ggml.tokens` (byte-level spelled; control and user-defined tokens raw).
    ///   - tokenTypes: `tokenizer.ggml.token_type`, one per token (nil: all normal).
    ///   - merges: `tokenizer.ggml.merges`, "left right" strings; a merge's rank is its index.
    ///   - pre: `tokenizer.ggml.pre`.
    public init(tokens: [String], tokenTypes: [Int32]?, merges: [String], pre: String?,
                bosTokenID: Int32? = nil, eosTokenID: Int32? = nil, eotTokenID: Int32? = nil,
                paddingTokenID: Int32? = nil, addBOS: Bool? = nil, addEOS: Bool? = nil) throws(TokenizerError) {
        guard !tokens.isEmpty else { throw .invalidMetadata(key: "tokenizer.ggml.tokens", expected: "a non-empty array", found: "no tokens") }
        guard tokens.count < Int(Int32.max) else {
            throw .invalidMetadata(key: "tokenizer.ggml.tokens", expected: "fewer than 2^31 tokens", found: "\(tokens.count)")
        }
        guard let named = PreTokenizerKind.named(pre) else {
            throw .invalidMetadata(key: "tokenizer.ggml.pre", expected: "one of " + PreTokenizerKind.supportedNames.joined(separator: ", "),
                                   found: "\"\(pre ?? "")\"")
        }
        let types = try VocabularyCheck.types(tokenTypes, count: tokens.count)
        for (key, id) in [("tokenizer.ggml.bos_token_id", bosTokenID), ("tokenizer.ggml.eos_token_id", eosTokenID),
                          ("tokenizer.ggml.eot_token_id", eotTokenID), ("tokenizer.ggml.padding_token_id", paddingTokenID)] {
            try VocabularyCheck.id(id, key: key, count: tokens.count)
        }
        let addBOS = addBOS ?? named.addBOS
        let addEOS = addEOS ?? false
        if addBOS, bosTokenID == nil {
            throw .invalidMetadata(key: "tokenizer.ggml.bos_token_id", expected: "a token id (add_bos_token is true)", found: "nothing")
        }
        if addEOS, eosTokenID == nil {
            throw .invalidMetadata(key: "tokenizer.ggml.eos_token_id", expected: "a token id (add_eos_token is true)", found: "nothing")
        }

        vocabularySize = tokens.count
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        self.eotTokenID = eotTokenID ?? VocabularyCheck.findEOT(tokens)
        self.paddingTokenID = paddingTokenID
        addsBOS = addBOS
        addsEOS = addEOS
        preTokenizer = named.kind
        ignoresMerges = named.ignoreMerges
        self.pre = PreTokenizer(named.kind)
        self.types = types

        var textToID: [String: Int32] = [:]
        textToID.reserveCapacity(tokens.count)
        var bytes: [[UInt8]] = []
        bytes.reserveCapacity(tokens.count)
        var silent = [Bool](repeating: false, count: tokens.count)
        var specialTexts: [[UInt8]] = [], specialIDs: [Int32] = [], specialUser: [Bool] = []
        var wordKeys: [[UInt8]] = [], wordIDs: [Int32] = []
        for (i, t) in tokens.enumerated() {
            textToID[t] = Int32(i)
            switch types[i] {
            case .control, .unknown, .userDefined:
                let raw = Array(t.utf8)
                bytes.append(raw)
                silent[i] = types[i] != .userDefined
                specialTexts.append(raw)
                specialIDs.append(Int32(i))
                specialUser.append(types[i] == .userDefined)
            case .unused:
                bytes.append(Array(t.utf8))
                silent[i] = true
            case .normal, .byte, .undefined:
                let b = ByteLevel.decode(t)
                bytes.append(b)
                wordKeys.append(b)
                wordIDs.append(Int32(i))
            }
        }
        table = TokenTable(bytes, silent: silent)
        special = SpecialTokenMatcher(texts: specialTexts, ids: specialIDs, isUserDefined: specialUser)
        words = DoubleArrayTrie(keys: wordKeys, ids: wordIDs)
        byteToken = (0 ..< 256).map { textToID[ByteLevel.string(for: UInt8($0))] ?? -1 }

        var table: [UInt64: UInt64] = [:]
        table.reserveCapacity(merges.count)
        for (rank, m) in merges.enumerated() {
            let u = Array(m.utf8)
            guard u.count >= 3, let sp = u.dropFirst().firstIndex(of: 0x20) else {
                throw .invalidMetadata(key: "tokenizer.ggml.merges", expected: "\"left right\" strings",
                                       found: "\(m.debugDescription) at index \(rank)")
            }
            let left = String(decoding: u[..<sp], as: UTF8.self), right = String(decoding: u[(sp + 1)...], as: UTF8.self)
            guard let l = textToID[left], let r = textToID[right], let merged = textToID[left + right] else {
                let missing = textToID[left] == nil ? left : textToID[right] == nil ? right : left + right
                throw .invalidMetadata(key: "tokenizer.ggml.merges", expected: "merges of vocabulary tokens into a vocabulary token",
                                       found: "\(m.debugDescription) at index \(rank): \(missing.debugDescription) is not in tokenizer.ggml.tokens")
            }
            let key = UInt64(UInt32(bitPattern: l)) << 32 | UInt64(UInt32(bitPattern: r))
            if table[key] == nil { table[key] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merged)) }
        }
        self.merges = table
    }

    public func tokenBytes(_ id: Int32) -> [UInt8]? {
        guard id >= 0, Int(id) < vocabularySize else { return nil }
        return Array(table.bytes(Int(id)))
    }

    public func isControl(_ id: Int32) -> Bool {
        guard id >= 0, Int(id) < vocabularySize else { return false }
        return types[Int(id)] == .control
    }

    public func appendDecoded(_ id: Int32, to out: inout [UInt8]) throws(TokenizerError) {
        guard id >= 0, Int(id) < vocabularySize else { throw .tokenIDOutOfRange(id: id, vocabularySize: vocabularySize) }
        if table.silent[Int(id)] { return }
        out.append(contentsOf: table.bytes(Int(id)))
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
            var state = EncodeState()
            for piece in special.partition(b, parseControl: options.parseSpecial) {
                switch piece {
                case let .token(id): out.append(id)
                case let .text(lo, hi):
                    if let e = encodeText(b, lo, hi, &state, &out) {
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

    /// Scratch reused across the words of one call, and the call's word cache.
    struct EncodeState {
        var text = ScalarText()
        var words: [Int32] = []
        var ids: [Int32] = []
        var prev: [Int32] = []
        var next: [Int32] = []
        var heap = MinHeap<Candidate>()
        var cache = WordCache()
    }

    struct Candidate: Comparable {
        static func < (a: Candidate, b: Candidate) -> Bool { a.key < b.key }
        static func == (a: Candidate, b: Candidate) -> Bool { a.key == b.key }
        /// rank << 32 | left index: lowest rank first, then leftmost.
        var key: UInt64
        var right: Int32
        var leftID: Int32
        var rightID: Int32
        var merged: Int32
    }

    private func encodeText(_ b: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int, _ s: inout EncodeState,
                            _ out: inout [Int32]) -> TokenizerError? {
        s.text.decode(b, lo, hi)
        s.words.removeAll(keepingCapacity: true)
        pre.split(s.text, into: &s.words)
        var w = 0
        while w < s.words.count {
            let a = lo + Int(s.text.offsets[Int(s.words[w])]), z = lo + Int(s.text.offsets[Int(s.words[w + 1])])
            w += 2
            if let e = encodeWord(b, a, z, &s, &out) { return e }
        }
        return nil
    }

    private func encodeWord(_ b: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int, _ s: inout EncodeState,
                            _ out: inout [Int32]) -> TokenizerError? {
        let n = hi - lo
        if n == 1 {
            let id = byteToken[Int(b[lo])]
            if id < 0 { return .byteNotInVocabulary(offset: lo, byte: b[lo]) }
            out.append(id)
            return nil
        }
        if ignoresMerges {
            let id = words.exact(b, lo, hi)
            if id >= 0 {
                out.append(id)
                return nil
            }
        }
        let hash = WordCache.hash(b, lo, hi)
        if s.cache.lookup(b, lo, hi, hash: hash, into: &out) { return nil }
        s.ids.removeAll(keepingCapacity: true)
        s.prev.removeAll(keepingCapacity: true)
        s.next.removeAll(keepingCapacity: true)
        for i in 0 ..< n {
            let id = byteToken[Int(b[lo + i])]
            if id < 0 { return .byteNotInVocabulary(offset: lo + i, byte: b[lo + i]) }
            s.ids.append(id)
            s.prev.append(Int32(i - 1))
            s.next.append(i + 1 < n ? Int32(i + 1) : -1)
        }
        s.heap.removeAll()
        for i in 0 ..< n - 1 { push(i, i + 1, &s) }
        while let c = s.heap.pop() {
            let l = Int(c.key & 0xFFFF_FFFF), r = Int(c.right)
            // Stale: one side has been merged (changed or removed) since this pair was queued.
            guard s.ids[l] == c.leftID, s.next[l] == c.right, s.ids[r] == c.rightID else { continue }
            s.ids[l] = c.merged
            s.ids[r] = -1
            let rn = s.next[r]
            s.next[l] = rn
            if rn >= 0 { s.prev[Int(rn)] = Int32(l) }
            let lp = s.prev[l]
            if lp >= 0 { push(Int(lp), l, &s) }
            if rn >= 0 { push(l, Int(rn), &s) }
        }
        let start = out.count
        var i = 0
        while i >= 0 {
            out.append(s.ids[i])
            i = Int(s.next[i])
        }
        s.cache.insert(b, lo, hi, hash: hash, ids: out[start...])
        return nil
    }

    @inline(__always)
    private func push(_ l: Int, _ r: Int, _ s: inout EncodeState) {
        let li = s.ids[l], ri = s.ids[r]
        guard let m = merges[UInt64(UInt32(bitPattern: li)) << 32 | UInt64(UInt32(bitPattern: ri))] else { return }
        s.heap.push(Candidate(key: (m & 0xFFFF_FFFF_0000_0000) | UInt64(l), right: Int32(r), leftID: li, rightID: ri,
                              merged: Int32(bitPattern: UInt32(truncatingIfNeeded: m))))
    }
}

/// Checks shared by the GGUF vocabularies.
enum VocabularyCheck {
    static func types(_ raw: [Int32]?, count: Int) throws(TokenizerError) -> [GGMLTokenType] {
        guard let raw else { return [GGMLTokenType](repeating: .normal, count: count) }
        guard raw.count == count else {
            throw .invalidMetadata(key: "tokenizer.ggml.token_type", expected: "\(count) entries (one per token)", found: "\(raw.count)")
        }
        var out: [GGMLTokenType] = []
        out.reserveCapacity(count)
        for (i, t) in raw.enumerated() {
            guard let ty = GGMLTokenType(rawValue: t) else {
                throw .invalidMetadata(key: "tokenizer.ggml.token_type", expected: "token types 0...6", found: "\(t) at index \(i)")
            }
            out.append(ty)
        }
        return out
    }

    /// llama.cpp's fallback for a missing `tokenizer.ggml.eot_token_id`: a token spelled like one.
    /// Of several, the first of this list wins (llama.cpp takes whichever its hash map yields first).
    static func findEOT(_ tokens: [String]) -> Int32? {
        let names = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<EOT>", "<|endoftext|>"]
        var found: [String: Int] = [:]
        for (i, t) in tokens.enumerated() where found[t] == nil && names.contains(t) { found[t] = i }
        for n in names { if let i = found[n] { return Int32(i) } }
        return nil
    }

    static func id(_ id: Int32?, key: String, count: Int) throws(TokenizerError) {
        if let id, id < 0 || Int(id) >= count {
            throw .invalidMetadata(key: key, expected: "a token id in 0..<\(count)", found: "\(id)")
        }
    }
}
