/// The RWKV World tokenizer: greedy longest match over the vocabulary's byte strings.
///
/// Semantics of the `rwkv` package's `TRIE_TOKENIZER` (`rwkv/rwkv_tokenizer.py`): at each input
/// position take the longest vocabulary entry that is a prefix of the remaining bytes, emit its id,
/// continue after it. The World vocabulary holds all 256 single bytes, so any input encodes; with a
/// vocabulary lacking some byte, `encode` throws `byteNotInVocabulary` naming the offset.
///
/// Vocabularies from GGUF (`tokenizer.ggml.model = "rwkv"`) come as escaped strings: see
/// `init(ggmlTokens:tokenTypes:bosTokenID:eosTokenID:)`. There, token 0 is `<s>` (a control token)
/// and ids past the file's vocabulary are `[PADn]` (unused): with `tokenTypes` given, control,
/// unknown and unused tokens are never produced by `encode` (the reference has no such entries;
/// llama.cpp would match the literal text `<s>`), and `decode` renders them as nothing.
public struct WorldTokenizer: Tokenizer {
    public let vocabularySize: Int
    public let bosTokenID: Int32?
    public let eosTokenID: Int32?

    let trie: DoubleArrayTrie
    /// All tokens' bytes back to back; token i is `tokenData[tokenOffsets[i] ..< tokenOffsets[i + 1]]`.
    let tokenData: [UInt8]
    let tokenOffsets: [Int]
    /// Tokens that decode to no bytes (control and unused entries).
    let silent: [Bool]

    /// A vocabulary of raw byte strings, `tokens[i]` being token id i.
    /// `tokenTypes` (llama.cpp's `tokenizer.ggml.token_type`), when given, has one entry per token.
    public init(tokens: [[UInt8]], tokenTypes: [Int32]? = nil,
                bosTokenID: Int32? = nil, eosTokenID: Int32? = nil) throws(TokenizerError) {
        guard !tokens.isEmpty else { throw .invalidVocabulary("the vocabulary has no tokens") }
        guard tokens.count <= Int(Int32.max) else {
            throw .invalidVocabulary("\(tokens.count) tokens do not fit 32-bit token ids")
        }
        if let types = tokenTypes, types.count != tokens.count {
            throw .invalidVocabulary("\(tokens.count) tokens but \(types.count) token types")
        }
        for (name, id) in [("BOS", bosTokenID), ("EOS", eosTokenID)] {
            if let id, id < 0 || Int(id) >= tokens.count {
                throw .invalidVocabulary("\(name) token id \(id) is outside 0..<\(tokens.count)")
            }
        }
        vocabularySize = tokens.count
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID

        var silent = [Bool](repeating: false, count: tokens.count)
        var keys: [[UInt8]] = []
        var ids: [Int32] = []
        keys.reserveCapacity(tokens.count)
        ids.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() {
            if let types = tokenTypes {
                switch GGMLTokenType(rawValue: types[i]) {
                case .control?, .unused?, .unknown?:
                    silent[i] = true
                    continue
                case .undefined?, .normal?, .userDefined?, .byte?, nil:
                    break
                }
            }
            keys.append(t)
            ids.append(Int32(i))
        }
        trie = DoubleArrayTrie(keys: keys, ids: ids)

        var data: [UInt8] = []
        var offsets: [Int] = [0]
        data.reserveCapacity(tokens.reduce(0) { $0 + $1.count })
        offsets.reserveCapacity(tokens.count + 1)
        for t in tokens {
            data += t
            offsets.append(data.count)
        }
        tokenData = data
        tokenOffsets = offsets
        self.silent = silent
    }

    /// A vocabulary as GGUF stores it: `tokenizer.ggml.tokens` strings in escaped form (see
    /// `RWKVTokenEscape`); a malformed escape throws `malformedTokenEscape` naming the token index.
    public init(ggmlTokens: [String], tokenTypes: [Int32]? = nil,
                bosTokenID: Int32? = nil, eosTokenID: Int32? = nil) throws(TokenizerError) {
        var tokens: [[UInt8]] = []
        tokens.reserveCapacity(ggmlTokens.count)
        for (i, s) in ggmlTokens.enumerated() {
            tokens.append(try RWKVTokenEscape.unescape(s, index: i))
        }
        try self.init(tokens: tokens, tokenTypes: tokenTypes, bosTokenID: bosTokenID, eosTokenID: eosTokenID)
    }

    public func tokenBytes(_ id: Int32) -> [UInt8]? {
        guard id >= 0, Int(id) < vocabularySize else { return nil }
        return Array(tokenData[tokenOffsets[Int(id)] ..< tokenOffsets[Int(id) + 1]])
    }

    public func appendDecoded(_ id: Int32, to out: inout [UInt8]) throws(TokenizerError) {
        guard id >= 0, Int(id) < vocabularySize else {
            throw .tokenIDOutOfRange(id: id, vocabularySize: vocabularySize)
        }
        let i = Int(id)
        if silent[i] { return }
        out.append(contentsOf: tokenData[tokenOffsets[i] ..< tokenOffsets[i + 1]])
    }

    public func encode(bytes: [UInt8]) throws(TokenizerError) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(bytes.count / 3 + 16)
        var failure: TokenizerError?
        bytes.withUnsafeBufferPointer { input in
            trie.base.withUnsafeBufferPointer { base in
                trie.check.withUnsafeBufferPointer { check in
                    trie.value.withUnsafeBufferPointer { value in
                        failure = Self.encode(input, base, check, value, into: &out)
                    }
                }
            }
        }
        if let failure { throw failure }
        return out
    }

    /// The greedy longest-match loop. `base[s] + 255` is always in range (see DoubleArrayTrie),
    /// so the only bounds test is the input's.
    @inline(__always)
    private static func encode(_ input: UnsafeBufferPointer<UInt8>, _ base: UnsafeBufferPointer<Int32>,
                               _ check: UnsafeBufferPointer<Int32>, _ value: UnsafeBufferPointer<Int32>,
                               into out: inout [Int32]) -> TokenizerError? {
        let n = input.count
        var pos = 0
        while pos < n {
            var s = 0
            var i = pos
            var bestID: Int32 = -1
            var bestEnd = pos
            while i < n {
                let t = Int(base[s]) &+ Int(input[i])
                if check[t] != Int32(truncatingIfNeeded: s) { break }
                s = t
                i &+= 1
                let v = value[s]
                if v >= 0 {
                    bestID = v
                    bestEnd = i
                }
            }
            if bestID < 0 { return .byteNotInVocabulary(offset: pos, byte: input[pos]) }
            out.append(bestID)
            pos = bestEnd
        }
        return nil
    }
}
