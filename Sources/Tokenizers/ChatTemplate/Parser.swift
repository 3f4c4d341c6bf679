/// Recursive-descent parser following jinja2's grammar and operator precedence.
struct Parser {
    private let tokens: [Token]
    private var i = 0
    private var depth = 0
    /// Nesting limit for tags and expressions, so hostile input cannot exhaust the stack.
    static let maxDepth = 48

    init(tokens: [Token]) {
        self.tokens = tokens
    }

    // MARK: - Token helpers

    private var current: Token { tokens[min(i, tokens.count - 1)] }
    private var next: Token { tokens[min(i + 1, tokens.count - 1)] }

    private mutating func advance() { if i < tokens.count - 1 { i += 1 } }

    private func isOp(_ op: String, _ t: Token? = nil) -> Bool {
        if case .op(let o) = (t ?? current).kind { return o == op }
        return false
    }

    private func isName(_ name: String, _ t: Token? = nil) -> Bool {
        if case .name(let n) = (t ?? current).kind { return n == name }
        return false
    }

    private func describe(_ t: Token) -> String {
        switch t.kind {
        case .text: return "template text"
        case .variableBegin: return "'{{'"
        case .variableEnd: return "'}}'"
        case .blockBegin: return "'{%'"
        case .blockEnd: return "'%}'"
        case .name(let n): return "'\(n)'"
        case .string: return "a string"
        case .int, .float: return "a number"
        case .op(let o): return "'\(o)'"
        case .eof: return "end of template"
        }
    }

    private func fail(_ message: String, _ t: Token? = nil) -> ChatTemplateError {
        ChatTemplateError(.syntax, message, at: (t ?? current).pos)
    }

    private mutating func expectOp(_ op: String) throws(ChatTemplateError) {
        guard isOp(op) else { throw fail("expected '\(op)', found \(describe(current))") }
        advance()
    }

    private mutating func expectName() throws(ChatTemplateError) -> String {
        guard case .name(let n) = current.kind else { throw fail("expected a name, found \(describe(current))") }
        advance()
        return n
    }

    private mutating func expectBlockEnd() throws(ChatTemplateError) {
        guard case .blockEnd = current.kind else { throw fail("expected '%}', found \(describe(current))") }
        advance()
    }

    private mutating func enter() throws(ChatTemplateError) {
        depth += 1
        if depth > Self.maxDepth { throw fail("template nests deeper than \(Self.maxDepth) levels") }
    }

    private mutating func leave() { depth -= 1 }

    // MARK: - Statements

    mutating func parseTemplate() throws(ChatTemplateError) -> [Node] {
        let (body, end) = try parseBody(until: [], opener: current)
        if let end { throw fail("unexpected '\(end)'") }
        return body
    }

    private static let endTags: Set<String> = ["endif", "endfor", "endset", "endmacro", "endfilter", "endgeneration", "elif", "else", "endcall", "endraw", "endwith", "endblock"]

    /// Parses nodes until a block tag whose name is in `ends` (consumed, with its name) or the end.
    private mutating func parseBody(until ends: Set<String>, opener: Token) throws(ChatTemplateError) -> ([Node], String?) {
        try enter()
        defer { leave() }
        var nodes: [Node] = []
        while true {
            let t = current
            switch t.kind {
            case .eof:
                if !ends.isEmpty {
                    let closer = ends.filter { $0.hasPrefix("end") }.sorted().first ?? ends.sorted().joined(separator: "/")
                    throw fail("unexpected end of template: the \(describe(opener)) tag here is never closed (expected '\(closer)')", opener)
                }
                return (nodes, nil)
            case .text(let s):
                nodes.append(.text(s))
                advance()
            case .variableBegin:
                advance()
                let e = try parseTuple(withCondexpr: true, explicitParentheses: false)
                guard case .variableEnd = current.kind else { throw fail("expected '}}', found \(describe(current))") }
                advance()
                nodes.append(.output(e))
            case .blockBegin:
                advance()
                guard case .name(let tag) = current.kind else { throw fail("expected a tag name, found \(describe(current))") }
                if ends.contains(tag) {
                    advance()
                    return (nodes, tag)
                }
                if Self.endTags.contains(tag) {
                    throw fail("unexpected '\(tag)'" + (ends.isEmpty ? "" : ", expected " + ends.sorted().map { "'\($0)'" }.joined(separator: " or ")))
                }
                nodes.append(contentsOf: try parseStatement(tag))
            default:
                throw fail("unexpected \(describe(t))")
            }
        }
    }

    private mutating func parseStatement(_ tag: String) throws(ChatTemplateError) -> [Node] {
        let tagToken = current
        advance()
        switch tag {
        case "if":
            var branches: [IfBranch] = []
            // jinja2 parses if-tests without inline if-expressions (unless parenthesized).
            var test = try parseTuple(withCondexpr: false, explicitParentheses: false)
            try expectStatementEnd()
            while true {
                let (body, end) = try parseBody(until: ["elif", "else", "endif"], opener: tagToken)
                branches.append(IfBranch(test: test, body: body))
                if end == "elif" {
                    test = try parseTuple(withCondexpr: false, explicitParentheses: false)
                    try expectStatementEnd()
                    continue
                }
                if end == "else" {
                    try expectStatementEnd()
                    let (otherwise, _) = try parseBody(until: ["endif"], opener: tagToken)
                    try expectBlockEnd()
                    return [.ifChain(branches, otherwise: otherwise)]
                }
                try expectBlockEnd()
                return [.ifChain(branches, otherwise: [])]
            }
        case "for":
            let target = try parseTarget(allowAttribute: false)
            guard isName("in") else { throw fail("expected 'in', found \(describe(current))") }
            advance()
            let iterable = try parseTuple(withCondexpr: false, explicitParentheses: false)
            var condition: Expr?
            if isName("if") {
                advance()
                condition = try parseExpression()
            }
            if isName("recursive") { throw ChatTemplateError(.unsupported, "recursive for loops are not supported", at: current.pos) }
            try expectStatementEnd()
            let (body, end) = try parseBody(until: ["endfor", "else"], opener: tagToken)
            var otherwise: [Node] = []
            if end == "else" {
                try expectStatementEnd()
                (otherwise, _) = try parseBody(until: ["endfor"], opener: tagToken)
            }
            try expectBlockEnd()
            return [.forLoop(target: target, iterable: iterable, condition: condition, body: body, otherwise: otherwise, tagToken.pos)]
        case "set":
            let target = try parseTarget(allowAttribute: true)
            if isOp("=") {
                advance()
                let value = try parseTuple(withCondexpr: true, explicitParentheses: false)
                try expectBlockEnd()
                return [.set(target, value, tagToken.pos)]
            }
            guard case .name(let name) = target else { throw fail("expected '=' after the names in 'set'") }
            var filters: [FilterCall] = []
            while isOp("|") {
                advance()
                filters.append(try parseFilterCall())
            }
            try expectStatementEnd()
            let (body, _) = try parseBody(until: ["endset"], opener: tagToken)
            try expectBlockEnd()
            return [.setBlock(name, filters: filters, body: body, tagToken.pos)]
        case "macro":
            let name = try expectName()
            try expectOp("(")
            var params: [String] = []
            var defaults: [Expr?] = []
            while !isOp(")") {
                if !params.isEmpty {
                    try expectOp(",")
                    if isOp(")") { break }
                }
                params.append(try expectName())
                if isOp("=") {
                    advance()
                    defaults.append(try parseExpression())
                } else {
                    if defaults.contains(where: { $0 != nil }) { throw fail("non-default argument follows default argument") }
                    defaults.append(nil)
                }
            }
            advance()
            try expectStatementEnd()
            let (body, _) = try parseBody(until: ["endmacro"], opener: tagToken)
            try expectBlockEnd()
            return [.macro(MacroDefinition(name: name, params: params, defaults: defaults, body: body, pos: tagToken.pos))]
        case "filter":
            var filters = [try parseFilterCall()]
            while isOp("|") {
                advance()
                filters.append(try parseFilterCall())
            }
            try expectStatementEnd()
            let (body, _) = try parseBody(until: ["endfilter"], opener: tagToken)
            try expectBlockEnd()
            return [.filterBlock(filters, body: body)]
        case "break":
            try expectBlockEnd()
            return [.breakLoop(tagToken.pos)]
        case "continue":
            try expectBlockEnd()
            return [.continueLoop(tagToken.pos)]
        case "generation":
            // transformers' AssistantTracker tag: renders its body unchanged.
            try expectStatementEnd()
            let (body, _) = try parseBody(until: ["endgeneration"], opener: tagToken)
            try expectBlockEnd()
            return body
        default:
            throw ChatTemplateError(.unsupported, "unknown or unsupported tag '\(tag)'", at: tagToken.pos)
        }
    }

    /// jinja2's parse_assign_target: names (or `ns.attr` in `set`), comma-separated, optionally parenthesized.
    private mutating func parseTarget(allowAttribute: Bool) throws(ChatTemplateError) -> AssignTarget {
        var items = [try parseTargetItem(allowAttribute: allowAttribute)]
        var isTuple = false
        while isOp(",") {
            isTuple = true
            advance()
            if isName("in") || isOp(")") { break }
            if case .blockEnd = current.kind { break }
            items.append(try parseTargetItem(allowAttribute: allowAttribute))
        }
        return isTuple ? .many(items) : items[0]
    }

    private mutating func parseTargetItem(allowAttribute: Bool) throws(ChatTemplateError) -> AssignTarget {
        if isOp("(") {
            advance()
            try enter()
            defer { leave() }
            if isOp(")") { throw fail("expected a name, found ')'") }
            let inner = try parseTarget(allowAttribute: allowAttribute)
            try expectOp(")")
            return inner
        }
        let first = try expectName()
        if allowAttribute, isOp(".") {
            advance()
            let attr = try expectName()
            return .attribute(object: first, attribute: attr)
        }
        return .name(first)
    }

    /// The end of a statement tag; jinja2 allows a colon before it (`{% else: %}`).
    private mutating func expectStatementEnd() throws(ChatTemplateError) {
        if isOp(":") { advance() }
        try expectBlockEnd()
    }

    private mutating func parseFilterCall() throws(ChatTemplateError) -> FilterCall {
        let pos = current.pos
        var name = try expectName()
        while isOp("."), case .name(let more) = next.kind {
            advance()
            advance()
            name += "." + more
        }
        var args: [Argument] = []
        if isOp("(") { args = try parseCallArgs() }
        return FilterCall(name: name, args: args, pos: pos)
    }

    // MARK: - Expressions

    mutating func parseExpression(withCondexpr: Bool = true) throws(ChatTemplateError) -> Expr {
        try enter()
        defer { leave() }
        return withCondexpr ? try parseCondexpr() : try parseOr()
    }

    private mutating func parseCondexpr() throws(ChatTemplateError) -> Expr {
        var expr = try parseOr()
        while isName("if") {
            let pos = current.pos
            advance()
            let test = try parseOr()
            var otherwise: Expr?
            if isName("else") {
                advance()
                otherwise = try parseCondexpr()
            }
            expr = .conditional(test: test, then: expr, otherwise: otherwise, pos)
        }
        return expr
    }

    private mutating func parseOr() throws(ChatTemplateError) -> Expr {
        var left = try parseAnd()
        while isName("or") {
            let pos = current.pos
            advance()
            left = .or(left, try parseAnd(), pos)
        }
        return left
    }

    private mutating func parseAnd() throws(ChatTemplateError) -> Expr {
        var left = try parseNot()
        while isName("and") {
            let pos = current.pos
            advance()
            left = .and(left, try parseNot(), pos)
        }
        return left
    }

    private mutating func parseNot() throws(ChatTemplateError) -> Expr {
        if isName("not") {
            let pos = current.pos
            advance()
            try enter()
            defer { leave() }
            return .not(try parseNot(), pos)
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws(ChatTemplateError) -> Expr {
        let pos = current.pos
        let expr = try parseMath1()
        var ops: [CompareOp] = []
        while true {
            if case .op(let o) = current.kind, ["==", "!=", "<", "<=", ">", ">="].contains(o) {
                advance()
                ops.append(CompareOp(op: o, rhs: try parseMath1()))
            } else if isName("in") {
                advance()
                ops.append(CompareOp(op: "in", rhs: try parseMath1()))
            } else if isName("not"), isName("in", next) {
                advance()
                advance()
                ops.append(CompareOp(op: "notin", rhs: try parseMath1()))
            } else {
                break
            }
        }
        return ops.isEmpty ? expr : .compare(expr, ops, pos)
    }

    private mutating func parseMath1() throws(ChatTemplateError) -> Expr {
        var left = try parseConcat()
        while case .op(let o) = current.kind, o == "+" || o == "-" {
            let pos = current.pos
            advance()
            left = .binary(o, left, try parseConcat(), pos)
        }
        return left
    }

    private mutating func parseConcat() throws(ChatTemplateError) -> Expr {
        var left = try parseMath2()
        while isOp("~") {
            let pos = current.pos
            advance()
            left = .binary("~", left, try parseMath2(), pos)
        }
        return left
    }

    private mutating func parseMath2() throws(ChatTemplateError) -> Expr {
        var left = try parsePow()
        while case .op(let o) = current.kind, o == "*" || o == "/" || o == "//" || o == "%" {
            let pos = current.pos
            advance()
            left = .binary(o, left, try parsePow(), pos)
        }
        return left
    }

    private mutating func parsePow() throws(ChatTemplateError) -> Expr {
        var left = try parseUnary(withFilter: true)
        while isOp("**") {
            let pos = current.pos
            advance()
            left = .binary("**", left, try parseUnary(withFilter: true), pos)
        }
        return left
    }

    private mutating func parseUnary(withFilter: Bool) throws(ChatTemplateError) -> Expr {
        try enter()
        defer { leave() }
        let pos = current.pos
        var node: Expr
        if isOp("-") {
            advance()
            node = .negate(try parseUnary(withFilter: false), pos)
        } else if isOp("+") {
            advance()
            node = .plus(try parseUnary(withFilter: false), pos)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpr(node) }
        return node
    }

    private mutating func parsePrimary() throws(ChatTemplateError) -> Expr {
        let t = current
        switch t.kind {
        case .name(let n):
            advance()
            switch n {
            case "true", "True": return .constant(.bool(true), t.pos)
            case "false", "False": return .constant(.bool(false), t.pos)
            case "none", "None": return .constant(.none, t.pos)
            default: return .name(n, t.pos)
            }
        case .string(let s):
            advance()
            var value = s
            while case .string(let more) = current.kind {
                value += more
                advance()
            }
            return .constant(.string(value), t.pos)
        case .int(let n):
            advance()
            return .constant(.int(n), t.pos)
        case .float(let d):
            advance()
            return .constant(.double(d), t.pos)
        case .op("("):
            advance()
            let e = try parseTuple(withCondexpr: true, explicitParentheses: true)
            try expectOp(")")
            return e
        case .op("["):
            advance()
            var items: [Expr] = []
            while !isOp("]") {
                if !items.isEmpty {
                    try expectOp(",")
                    if isOp("]") { break }
                }
                items.append(try parseExpression())
            }
            advance()
            return .list(items, t.pos)
        case .op("{"):
            advance()
            var entries: [DictEntry] = []
            while !isOp("}") {
                if !entries.isEmpty {
                    try expectOp(",")
                    if isOp("}") { break }
                }
                let key = try parseExpression()
                try expectOp(":")
                entries.append(DictEntry(key: key, value: try parseExpression()))
            }
            advance()
            return .dict(entries, t.pos)
        default:
            throw fail("unexpected \(describe(t))")
        }
    }

    private func isTupleEnd() -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd, .eof: return true
        case .op(")"): return true
        default: return false
        }
    }

    mutating func parseTuple(withCondexpr: Bool, explicitParentheses: Bool) throws(ChatTemplateError) -> Expr {
        let pos = current.pos
        var items: [Expr] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd() { break }
            items.append(try parseExpression(withCondexpr: withCondexpr))
            if isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let first = items.first { return first }
            if !explicitParentheses { throw fail("expected an expression, found \(describe(current))") }
        }
        return .tuple(items, pos)
    }

    private mutating func parsePostfix(_ start: Expr) throws(ChatTemplateError) -> Expr {
        var node = start
        while true {
            let pos = current.pos
            if isOp(".") {
                advance()
                switch current.kind {
                case .name(let n):
                    advance()
                    node = .attribute(node, n, pos)
                case .int(let n):
                    advance()
                    node = .item(node, .constant(.int(n), pos), pos)
                default:
                    throw fail("expected an attribute name after '.', found \(describe(current))")
                }
            } else if isOp("[") {
                advance()
                node = try parseSubscript(node, pos)
            } else if isOp("(") {
                node = .call(node, try parseCallArgs(), node.pos)
            } else {
                return node
            }
        }
    }

    private mutating func parseSubscript(_ node: Expr, _ pos: SourcePos) throws(ChatTemplateError) -> Expr {
        var start: Expr?
        if isOp("]") {
            // jinja2 reads `x[]` as `x[()]`.
            advance()
            return .item(node, .tuple([], pos), pos)
        }
        if !isOp(":") {
            start = try parseExpression()
            if isOp("]") {
                advance()
                return .item(node, start ?? .constant(.none, pos), pos)
            }
            if isOp(",") {
                // A tuple key (`x[a, b]`), which no dict or list here has.
                var items = [start ?? .constant(.none, pos)]
                while isOp(",") {
                    advance()
                    if isOp("]") { break }
                    items.append(try parseExpression())
                }
                try expectOp("]")
                return .item(node, .tuple(items, pos), pos)
            }
        }
        try expectOp(":")
        var stop: Expr?
        var step: Expr?
        if !isOp("]") && !isOp(":") { stop = try parseExpression() }
        if isOp(":") {
            advance()
            if !isOp("]") { step = try parseExpression() }
        }
        try expectOp("]")
        return .slice(node, start: start, stop: stop, step: step, pos)
    }

    private mutating func parseCallArgs() throws(ChatTemplateError) -> [Argument] {
        try expectOp("(")
        var args: [Argument] = []
        while !isOp(")") {
            if !args.isEmpty {
                try expectOp(",")
                if isOp(")") { break }
            }
            if isOp("*") {
                advance()
                args.append(Argument(kind: .star, name: nil, value: try parseExpression()))
            } else if isOp("**") {
                advance()
                args.append(Argument(kind: .doubleStar, name: nil, value: try parseExpression()))
            } else if case .name(let n) = current.kind, isOp("=", next) {
                advance()
                advance()
                args.append(Argument(kind: .keyword, name: n, value: try parseExpression()))
            } else {
                if args.contains(where: { $0.kind == .keyword }) { throw fail("positional argument follows keyword argument") }
                args.append(Argument(kind: .positional, name: nil, value: try parseExpression()))
            }
        }
        advance()
        return args
    }

    private mutating func parseFilterExpr(_ start: Expr) throws(ChatTemplateError) -> Expr {
        var node = start
        while true {
            if isOp("|") {
                advance()
                let f = try parseFilterCall()
                node = .filter(node, f.name, f.args, f.pos)
            } else if isName("is") {
                let pos = current.pos
                advance()
                var negated = false
                if isName("not") {
                    advance()
                    negated = true
                }
                var name = try expectName()
                while isOp("."), case .name(let more) = next.kind {
                    advance()
                    advance()
                    name += "." + more
                }
                var args: [Argument] = []
                if isOp("(") {
                    args = try parseCallArgs()
                } else if !(isName("else") || isName("or") || isName("and")) {
                    var takesArg = false
                    switch current.kind {
                    case .name, .string, .int, .float: takesArg = true
                    case .op(let o): takesArg = o == "(" || o == "[" || o == "{"
                    default: break
                    }
                    if takesArg {
                        if isName("is") { throw fail("cannot chain multiple tests with 'is'") }
                        let arg = try parsePostfix(try parsePrimary())
                        args = [Argument(kind: .positional, name: nil, value: arg)]
                    }
                }
                node = .test(node, name, args, negated: negated, pos)
            } else if isOp("(") {
                node = .call(node, try parseCallArgs(), node.pos)
            } else {
                return node
            }
        }
    }
}
