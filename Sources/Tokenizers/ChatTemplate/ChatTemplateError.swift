/// A chat template failed to parse or to render. `description` says what went wrong and,
/// when known, where in the template source (1-based line:column).
public struct ChatTemplateError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// The source is not valid template syntax (or uses syntax this engine lacks).
        case syntax
        /// Rendering failed: a type error, an undefined value used wrongly, a limit.
        case runtime
        /// The template called `raise_exception(message)`.
        case raised
        /// The template uses a filter, test, tag or method this engine does not implement.
        case unsupported
    }

    public var kind: Kind
    public var message: String
    /// 1-based position in the template source, or nil when not tied to one.
    public var line: Int?
    public var column: Int?

    public init(_ kind: Kind, _ message: String, line: Int? = nil, column: Int? = nil) {
        self.kind = kind
        self.message = message
        self.line = line
        self.column = column
    }

    init(_ kind: Kind, _ message: String, at pos: SourcePos) {
        self.init(kind, message, line: pos.line, column: pos.column)
    }

    public var description: String {
        let prefix: String
        switch kind {
        case .syntax: prefix = "template syntax error"
        case .runtime: prefix = "template error"
        case .raised: prefix = "template raised an exception"
        case .unsupported: prefix = "unsupported template feature"
        }
        if let line, let column { return "\(prefix) at \(line):\(column): \(message)" }
        return "\(prefix): \(message)"
    }
}

/// A 1-based line and column (in Unicode scalars) in the template source.
struct SourcePos: Sendable, Equatable {
    var line: Int
    var column: Int
    static let unknown = SourcePos(line: 0, column: 0)
}
