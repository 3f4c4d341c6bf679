/// The `tokenizer.ggml.*` metadata of a GGUF file, as llama.cpp's converters write it, already
/// read into Swift values (Models' `loadTokenizer` reads them from a `GGUFFile`, checking each
/// key's type). `makeTokenizer` builds the tokenizer they describe.
public struct TokenizerMetadata: Sendable, Equatable {
    /// `tokenizer.ggml.model`: "gpt2" (byte-level BPE), "llama" (SentencePiece), "rwkv" (World).
    public var model: String
    /// `tokenizer.ggml.pre`: the BPE pre-tokenizer (see `PreTokenizerKind.named`).
    public var pre: String?
    public var tokens: [String]
    /// `tokenizer.ggml.token_type` (`GGMLTokenType` raw values).
    public var tokenTypes: [Int32]?
    /// `tokenizer.ggml.scores` (SentencePiece).
    public var scores: [Float]?
    /// `tokenizer.ggml.merges` (BPE).
    public var merges: [String]?
    public var bosTokenID: Int32?
    public var eosTokenID: Int32?
    public var eotTokenID: Int32?
    public var unknownTokenID: Int32?
    public var paddingTokenID: Int32?
    /// `tokenizer.ggml.add_bos_token` / `add_eos_token`; nil: the model type's default.
    public var addBOS: Bool?
    public var addEOS: Bool?
    /// `tokenizer.ggml.add_space_prefix` (SentencePiece; default true).
    public var addSpacePrefix: Bool?

    public init(model: String, pre: String? = nil, tokens: [String], tokenTypes: [Int32]? = nil,
                scores: [Float]? = nil, merges: [String]? = nil, bosTokenID: Int32? = nil,
                eosTokenID: Int32? = nil, eotTokenID: Int32? = nil, unknownTokenID: Int32? = nil,
                paddingTokenID: Int32? = nil, addBOS: Bool? = nil, addEOS: Bool? = nil, addSpacePrefix: Bool? = nil) {
        self.model = model
        self.pre = pre
        self.tokens = tokens
        self.tokenTypes = tokenTypes
        self.scores = scores
        self.merges = merges
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        self.eotTokenID = eotTokenID
        self.unknownTokenID = unknownTokenID
        self.paddingTokenID = paddingTokenID
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix
    }

    /// The `tokenizer.ggml.model` values `makeTokenizer` accepts.
    public static let supportedModels = ["gpt2", "llama", "rwkv"]
}

/// Builds the tokenizer `m` describes; errors name the metadata key at fault.
public func makeTokenizer(_ m: TokenizerMetadata) throws(TokenizerError) -> any Tokenizer {
    switch m.model {
    case "gpt2":
        guard let merges = m.merges else {
            throw .invalidMetadata(key: "tokenizer.ggml.merges", expected: "an array of strings (byte-level BPE needs merges)", found: "nothing")
        }
        return try BPETokenizer(tokens: m.tokens, tokenTypes: m.tokenTypes, merges: merges, pre: m.pre,
                                bosTokenID: m.bosTokenID, eosTokenID: m.eosTokenID, eotTokenID: m.eotTokenID,
                                paddingTokenID: m.paddingTokenID, addBOS: m.addBOS, addEOS: m.addEOS)
    case "llama":
        // llama.cpp's defaults for SentencePiece vocabularies: BOS 1, EOS 2, UNK 0.
        return try SentencePieceTokenizer(
            tokens: m.tokens, scores: m.scores, tokenTypes: m.tokenTypes,
            bosTokenID: m.bosTokenID ?? (m.tokens.count > 1 ? 1 : nil), eosTokenID: m.eosTokenID ?? (m.tokens.count > 2 ? 2 : nil),
            unknownTokenID: m.unknownTokenID ?? 0, eotTokenID: m.eotTokenID, paddingTokenID: m.paddingTokenID,
            addBOS: m.addBOS, addEOS: m.addEOS, addSpacePrefix: m.addSpacePrefix)
    case "rwkv":
        return try WorldTokenizer(ggmlTokens: m.tokens, tokenTypes: m.tokenTypes, bosTokenID: m.bosTokenID, eosTokenID: m.eosTokenID)
    default:
        throw .invalidMetadata(key: "tokenizer.ggml.model", expected: "one of " + TokenizerMetadata.supportedModels.joined(separator: ", "),
                               found: "\"\(m.model)\"")
    }
}
