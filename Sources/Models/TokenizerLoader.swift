import GGUF
import Tokenizers

extension ModelError {
    /// A tokenizer that cannot be built from the file's metadata.
    static func tokenizer(_ e: TokenizerError) -> ModelError {
        if case let .invalidMetadata(key, expected, found) = e {
            return .badMetadata(key: key, expected: expected, found: found)
        }
        return .badMetadata(key: "tokenizer.ggml.tokens", expected: "a valid vocabulary", found: e.description)
    }
}

/// Builds the tokenizer a GGUF file describes (`tokenizer.ggml.model`): "gpt2" is byte-level
/// BPE with the pre-tokenizer `tokenizer.ggml.pre` names, "llama" SentencePiece, "rwkv" the RWKV
/// World tokenizer. Keys and types as llama.cpp's converters write them.
public func loadTokenizer(_ file: GGUFFile) throws(ModelError) -> any Tokenizer {
    let metadata = try tokenizerMetadata(file.metadata)
    do {
        return try makeTokenizer(metadata)
    } catch {
        throw .tokenizer(error)
    }
}

/// Reads the `tokenizer.ggml.*` keys, checking each one's type.
public func tokenizerMetadata(_ md: GGUFMetadata) throws(ModelError) -> TokenizerMetadata {
    func strings(_ key: String, required: Bool) throws(ModelError) -> [String]? {
        guard let v = md[key] else {
            if required { throw .badMetadata(key: key, expected: "an array of strings", found: "nothing") }
            return nil
        }
        guard let list = v.array else { throw .badMetadata(key: key, expected: "an array of strings", found: v.typeName) }
        var out: [String] = []
        out.reserveCapacity(list.count)
        for (i, e) in list.enumerated() {
            guard let s = e.string else { throw .badMetadata(key: key, expected: "strings", found: "\(e.typeName) at index \(i)") }
            out.append(s)
        }
        return out
    }
    func id(_ key: String) throws(ModelError) -> Int32? {
        guard let v = md[key] else { return nil }
        guard let i = v.int64, let id = Int32(exactly: i) else {
            throw .badMetadata(key: key, expected: "a token id (an integer)", found: v.description)
        }
        return id
    }
    func flag(_ key: String) throws(ModelError) -> Bool? {
        guard let v = md[key] else { return nil }
        guard let b = v.bool else { throw .badMetadata(key: key, expected: "a bool", found: v.typeName) }
        return b
    }
    func string(_ key: String) throws(ModelError) -> String? {
        guard let v = md[key] else { return nil }
        guard let s = v.string else { throw .badMetadata(key: key, expected: "a string", found: v.typeName) }
        return s
    }

    let modelKey = "tokenizer.ggml.model"
    guard let model = try string(modelKey) else {
        throw .badMetadata(key: modelKey, expected: "a tokenizer name", found: "nothing")
    }
    let tokens = try strings("tokenizer.ggml.tokens", required: true) ?? []
    var types: [Int32]?
    if let v = md["tokenizer.ggml.token_type"] {
        guard let list = v.array else { throw .badMetadata(key: "tokenizer.ggml.token_type", expected: "an array of integers", found: v.typeName) }
        var t: [Int32] = []
        t.reserveCapacity(list.count)
        for (i, e) in list.enumerated() {
            guard let x = e.int64, let y = Int32(exactly: x) else {
                throw .badMetadata(key: "tokenizer.ggml.token_type", expected: "integers", found: "\(e.description) at index \(i)")
            }
            t.append(y)
        }
        types = t
    }
    var scores: [Float]?
    if let v = md["tokenizer.ggml.scores"] {
        guard let list = v.array else { throw .badMetadata(key: "tokenizer.ggml.scores", expected: "an array of floats", found: v.typeName) }
        var s: [Float] = []
        s.reserveCapacity(list.count)
        for (i, e) in list.enumerated() {
            guard let f = e.float else {
                throw .badMetadata(key: "tokenizer.ggml.scores", expected: "floats", found: "\(e.typeName) at index \(i)")
            }
            s.append(f)
        }
        scores = s
    }
    return TokenizerMetadata(
        model: model, pre: try string("tokenizer.ggml.pre"), tokens: tokens, tokenTypes: types, scores: scores,
        merges: try strings("tokenizer.ggml.merges", required: false),
        bosTokenID: try id("tokenizer.ggml.bos_token_id"), eosTokenID: try id("tokenizer.ggml.eos_token_id"),
        eotTokenID: try id("tokenizer.ggml.eot_token_id"), unknownTokenID: try id("tokenizer.ggml.unknown_token_id"),
        paddingTokenID: try id("tokenizer.ggml.padding_token_id"),
        addBOS: try flag("tokenizer.ggml.add_bos_token"), addEOS: try flag("tokenizer.ggml.add_eos_token"),
        addSpacePrefix: try flag("tokenizer.ggml.add_space_prefix"))
}
