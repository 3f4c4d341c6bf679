/// The parsed form of a template.
struct Argument: Sendable {
    enum Kind: Sendable { case positional, keyword, star, doubleStar }
    var kind: Kind
    var name: String?
    var value: Expr
}

struct DictEntry: Sendable {
    var key: Expr
    var value: Expr
}

struct CompareOp: Sendable {
    var op: String  // ==, !=, <, <=, >, >=, in, notin
    var rhs: Expr
}

indirect enum Expr: Sendable {
    case constant(TemplateValue, SourcePos)
    case name(String, SourcePos)
    case list([Expr], SourcePos)
    case tuple([Expr], SourcePos)
    case dict([DictEntry], SourcePos)
    case attribute(Expr, String, SourcePos)
    case item(Expr, Expr, SourcePos)
    case slice(Expr, start: Expr?, stop: Expr?, step: Expr?, SourcePos)
    case call(Expr, [Argument], SourcePos)
    case filter(Expr, String, [Argument], SourcePos)
    case test(Expr, String, [Argument], negated: Bool, SourcePos)
    case not(Expr, SourcePos)
    case negate(Expr, SourcePos)
    case plus(Expr, SourcePos)
    case binary(String, Expr, Expr, SourcePos)
    case and(Expr, Expr, SourcePos)
    case or(Expr, Expr, SourcePos)
    case compare(Expr, [CompareOp], SourcePos)
    case conditional(test: Expr, then: Expr, otherwise: Expr?, SourcePos)

    var pos: SourcePos {
        switch self {
        case .constant(_, let p), .name(_, let p), .list(_, let p), .tuple(_, let p), .dict(_, let p),
             .attribute(_, _, let p), .item(_, _, let p), .slice(_, _, _, _, let p), .call(_, _, let p),
             .filter(_, _, _, let p), .test(_, _, _, _, let p), .not(_, let p), .negate(_, let p), .plus(_, let p),
             .binary(_, _, _, let p), .and(_, _, let p), .or(_, _, let p), .compare(_, _, let p),
             .conditional(_, _, _, let p):
            return p
        }
    }
}

/// The left side of `set` and the variables of `for`.
indirect enum AssignTarget: Sendable {
    case name(String)
    case attribute(object: String, attribute: String)
    /// `a, b` or `(a, ns.b)`: unpacks an iterable of exactly that many items.
    case many([AssignTarget])
}

struct FilterCall: Sendable {
    var name: String
    var args: [Argument]
    var pos: SourcePos
}

struct IfBranch: Sendable {
    var test: Expr
    var body: [Node]
}

final class MacroDefinition: Sendable {
    let name: String
    let params: [String]
    let defaults: [Expr?]
    let body: [Node]
    let pos: SourcePos
    init(name: String, params: [String], defaults: [Expr?], body: [Node], pos: SourcePos) {
        self.name = name
        self.params = params
        self.defaults = defaults
        self.body = body
        self.pos = pos
    }
}

indirect enum Node: Sendable {
    case text(String)
    case output(Expr)
    case ifChain([IfBranch], otherwise: [Node])
    case forLoop(target: AssignTarget, iterable: Expr, condition: Expr?, body: [Node], otherwise: [Node], SourcePos)
    case set(AssignTarget, Expr, SourcePos)
    case setBlock(String, filters: [FilterCall], body: [Node], SourcePos)
    case macro(MacroDefinition)
    case filterBlock([FilterCall], body: [Node])
    case breakLoop(SourcePos)
    case continueLoop(SourcePos)
}
