/// Errors of grammar-constrained decoding: schema parsing and compilation,
/// vocabulary checks and token acceptance. Each names what was expected and
/// where (a JSON pointer into the schema such as `#/properties/a/items`), so
/// that the HTTP layer can pass it on as a 400 message.
public enum GrammarError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The schema is not valid JSON: `offset` is the byte offset.
    case invalidJSON(offset: Int, message: String)
    /// A JSON Schema keyword that would change the output and is not supported.
    case unsupportedKeyword(keyword: String, path: String)
    /// A keyword has a value of the wrong type or range, or keywords contradict
    /// each other.
    case invalidSchema(path: String, message: String)
    /// A `$ref` that is not `#`, `#/$defs/...` or `#/definitions/...`, or that
    /// points nowhere.
    case unresolvedReference(ref: String, path: String)
    /// No finite JSON document satisfies the schema within the nesting limit.
    case unsatisfiable(path: String, message: String)
    /// The schema (or a JSON document) nests deeper than the limit.
    case tooDeep(path: String, limit: Int)
    /// The schema has more nodes than the limit.
    case tooLarge(limit: Int)
    /// The vocabulary has no single-byte token for a byte the grammar may need.
    case vocabularyCannotExpress(byte: UInt8)
    /// The vocabulary is empty or an end-of-sequence id is out of range.
    case invalidVocabulary(message: String)
    /// A token id outside the vocabulary.
    case tokenOutOfRange(token: Int32, vocabularySize: Int)
    /// The token's bytes cannot continue the document (or it is an
    /// end-of-sequence token while the document is incomplete).
    case tokenRejected(token: Int32)
    /// A token was accepted after end of sequence.
    case alreadyFinished

    public var description: String {
        switch self {
        case let .invalidJSON(offset, message):
            return "schema is not valid JSON at byte \(offset): \(message)"
        case let .unsupportedKeyword(keyword, path):
            return "unsupported JSON Schema keyword '\(keyword)' at \(path)"
        case let .invalidSchema(path, message):
            return "invalid schema at \(path): \(message)"
        case let .unresolvedReference(ref, path):
            return "cannot resolve $ref \"\(ref)\" at \(path): only #, #/$defs/<name> and #/definitions/<name> are supported"
        case let .unsatisfiable(path, message):
            return "schema at \(path) cannot be satisfied: \(message)"
        case let .tooDeep(path, limit):
            return "schema at \(path) nests deeper than the limit of \(limit)"
        case let .tooLarge(limit):
            return "schema has more than \(limit) nodes"
        case let .vocabularyCannotExpress(byte):
            return "the vocabulary has no single-byte token for byte 0x\(String(byte, radix: 16)) that the grammar needs"
        case let .invalidVocabulary(message):
            return "invalid vocabulary: \(message)"
        case let .tokenOutOfRange(token, size):
            return "token \(token) is outside the vocabulary of \(size) tokens"
        case let .tokenRejected(token):
            return "token \(token) cannot continue the document"
        case .alreadyFinished:
            return "the document is already finished (end of sequence accepted)"
        }
    }
}
