/// What every tokenizer in Roost offers (RWKV World trie; later byte-level BPE and SentencePiece).
///
/// Token ids are `Int32`, as llama.cpp's `llama_token`. Text goes in as UTF-8 bytes (any bytes:
/// invalid UTF-8 is allowed where the vocabulary can express it) and comes back as bytes; use
/// `StreamingDecoder` to turn a stream of ids into valid UTF-8 text.
public protocol Tokenizer: Sendable {
    /// Number of token ids (`0 ..< vocabularySize` are valid ids).
    var vocabularySize: Int { get }
    /// Beginning-of-sequence token, if the model has one.
    var bosTokenID: Int32? { get }
    /// End-of-sequence token, if the model has one.
    var eosTokenID: Int32? { get }
    /// End-of-turn token (`tokenizer.ggml.eot_token_id`, else a token spelled `<|eot_id|>`,
    /// `<|im_end|>`, `<|end|>`, `<end_of_turn>`, `<|endoftext|>` or `<EOT>`, as llama.cpp finds it).
    var eotTokenID: Int32? { get }
    /// Padding token (`tokenizer.ggml.padding_token_id`), if any.
    var paddingTokenID: Int32? { get }
    /// Whether `encode` with `EncodeOptions.addSpecial` puts BOS in front / EOS at the end.
    var addsBOS: Bool { get }
    var addsEOS: Bool { get }

    /// Encodes raw bytes into token ids: plain text, nothing added, control-token text not
    /// parsed (`EncodeOptions.plain`).
    func encode(bytes: [UInt8]) throws(TokenizerError) -> [Int32]
    /// Encodes raw bytes with BOS/EOS and special-token parsing as `options` ask.
    func encode(bytes: [UInt8], options: EncodeOptions) throws(TokenizerError) -> [Int32]
    /// Whether `id` is a control token (BOS, EOS, `<|im_start|>`...): it decodes to no bytes.
    func isControl(_ id: Int32) -> Bool
    /// Encodes a string's UTF-8 bytes into token ids.
    func encode(_ text: String) throws(TokenizerError) -> [Int32]
    /// The bytes of a token sequence, concatenated. Control tokens (BOS/EOS and the like)
    /// contribute no bytes; an id outside the vocabulary is an error.
    func decode(_ ids: [Int32]) throws(TokenizerError) -> [UInt8]
    /// The bytes a token stands for (its raw vocabulary entry, also for control tokens),
    /// or nil for an id outside the vocabulary.
    func tokenBytes(_ id: Int32) -> [UInt8]?
    /// Appends the bytes `decode([id])` would produce to `out`; this is the streaming path.
    func appendDecoded(_ id: Int32, to out: inout [UInt8]) throws(TokenizerError)
}

extension Tokenizer {
    public var eotTokenID: Int32? { nil }
    public var paddingTokenID: Int32? { nil }
    public var addsBOS: Bool { false }
    public var addsEOS: Bool { false }
    public func isControl(_ id: Int32) -> Bool { false }

    /// A tokenizer without special tokens of its own (RWKV World) encodes the same either way.
    public func encode(bytes: [UInt8], options: EncodeOptions) throws(TokenizerError) -> [Int32] {
        try encode(bytes: bytes)
    }

    public func encode(_ text: String) throws(TokenizerError) -> [Int32] {
        try encode(bytes: Array(text.utf8))
    }

    public func encode(_ text: String, options: EncodeOptions) throws(TokenizerError) -> [Int32] {
        try encode(bytes: Array(text.utf8), options: options)
    }

    public func decode(_ ids: [Int32]) throws(TokenizerError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 4)
        for id in ids { try appendDecoded(id, to: &out) }
        return out
    }
}

/// Errors of every tokenizer; each names the offending offset, byte, token index or id.
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Encoding found no vocabulary entry starting with `byte` at byte `offset` of the input.
    case byteNotInVocabulary(offset: Int, byte: UInt8)
    /// Token `index` of a GGUF `tokenizer.ggml.tokens` array has a malformed escape at
    /// byte `position` of its text.
    case malformedTokenEscape(index: Int, token: String, position: Int, reason: String)
    /// Decoding met an id outside `0 ..< vocabularySize`.
    case tokenIDOutOfRange(id: Int32, vocabularySize: Int)
    /// The vocabulary is unusable as a whole (empty, too large, arrays of different lengths).
    case invalidVocabulary(String)
    /// A `tokenizer.ggml.*` metadata value is missing, of the wrong type or unusable.
    case invalidMetadata(key: String, expected: String, found: String)
    /// An input of 2^31 bytes or more (offsets are 32-bit).
    case inputTooLong(bytes: Int)

    public var description: String {
        switch self {
        case let .byteNotInVocabulary(offset, byte):
            let h = String(byte, radix: 16)
            return "no vocabulary entry starts with byte 0x\(h.count < 2 ? "0" + h : h) at input offset \(offset)"
        case let .malformedTokenEscape(index, token, position, reason):
            return "tokenizer.ggml.tokens[\(index)] = \(token.debugDescription): malformed escape at byte \(position): \(reason)"
        case let .tokenIDOutOfRange(id, size):
            return "token id \(id) is outside the vocabulary (expected 0..<\(size))"
        case let .invalidVocabulary(why):
            return "invalid vocabulary: \(why)"
        case let .invalidMetadata(key, expected, found):
            return "metadata \(key): expected \(expected), found \(found)"
        case let .inputTooLong(bytes):
            return "input of \(bytes) bytes is too long to tokenize (expected fewer than 2^31)"
        }
    }
}

/// Token types as llama.cpp stores them in `tokenizer.ggml.token_type` (gguf-py `TokenType`).
public enum GGMLTokenType: Int32, Sendable {
    case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}
