import GGUF
import Tokenizers

extension ModelError {
    /// A tokenizer that cannot be built from the file's metadata.
    static func tokenizer(_ e: TokenizerError) -> ModelError {
        .badMetadata(key: "tokenizer.ggml.tokens", expected: "a valid vocabulary", found: e.description)
    }
}

/// Builds the tokenizer a GGUF file describes (`tokenizer.ggml.model`): "rwkv" is the
/// RWKV World tokenizer.
public func loadTokenizer(_ file: GGUFFile) throws(ModelError) -> any Tokenizer {
    let key = "tokenizer.ggml.model"
    guard let model = file.metadata[key]?.string else {
        throw .badMetadata(key: key, expected: "a tokenizer name", found: file.metadata[key]?.typeName ?? "nothing")
    }
    switch model {
    case "rwkv":
        guard let list = file.metadata["tokenizer.ggml.tokens"]?.array else {
            throw .badMetadata(key: "tokenizer.ggml.tokens", expected: "an array of strings", found: "nothing")
        }
        var tokens: [String] = []
        tokens.reserveCapacity(list.count)
        for (i, v) in list.enumerated() {
            guard let s = v.string else {
                throw .badMetadata(key: "tokenizer.ggml.tokens", expected: "strings", found: "\(v.typeName) at \(i)")
            }
            tokens.append(s)
        }
        var types: [Int32]?
        if let tt = file.metadata["tokenizer.ggml.token_type"]?.array {
            types = tt.map { Int32(truncatingIfNeeded: $0.int ?? 0) }
            guard types?.count == tokens.count else {
                throw .badMetadata(key: "tokenizer.ggml.token_type", expected: "\(tokens.count) entries",
                                   found: "\(tt.count)")
            }
        }
        let bos = file.metadata["tokenizer.ggml.bos_token_id"]?.int.map { Int32(truncatingIfNeeded: $0) }
        let eos = file.metadata["tokenizer.ggml.eos_token_id"]?.int.map { Int32(truncatingIfNeeded: $0) }
        do {
            return try WorldTokenizer(ggmlTokens: tokens, tokenTypes: types, bosTokenID: bos, eosTokenID: eos)
        } catch {
            throw .tokenizer(error)
        }
    default:
        throw .badMetadata(key: key, expected: "a supported tokenizer (rwkv)", found: "\"\(model)\"")
    }
}
