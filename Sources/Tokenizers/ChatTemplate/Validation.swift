/// Names jinja2 knows. A filter or test outside this list is a compile-time error in jinja2
/// unless it sits inside an `if` or an inline if-expression (then it fails when reached);
/// Roost checks the same way after parsing.
enum JinjaNames {
    static let filters: Set<String> = [
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
        "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int", "items", "join",
        "last", "length", "list", "lower", "map", "max", "min", "pprint", "random", "reject", "rejectattr",
        "replace", "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "string", "striptags",
        "sum", "title", "tojson", "trim", "truncate", "unique", "upper", "urlencode", "urlize", "wordcount",
        "wordwrap", "xmlattr",
    ]
    static let tests: Set<String> = [
        "!=", "<", "<=", "==", ">", ">=", "boolean", "callable", "defined", "divisibleby", "eq", "equalto",
        "escaped", "even", "false", "filter", "float", "ge", "greaterthan", "gt", "in", "integer", "iterable",
        "le", "lessthan", "lower", "lt", "mapping", "ne", "none", "number", "odd", "sameas", "sequence",
        "string", "test", "true", "undefined", "upper",
    ]
}

struct Validator {
    func check(_ nodes: [Node], soft: Bool) throws(ChatTemplateError) {
        for node in nodes {
            switch node {
            case .text, .breakLoop, .continueLoop:
                break
            case .output(let e):
                try check(e, soft: soft)
            case .ifChain(let branches, let otherwise):
                for b in branches {
                    try check(b.test, soft: true)
                    try check(b.body, soft: true)
                }
                try check(otherwise, soft: true)
            case .forLoop(_, let iterable, let condition, let body, let otherwise, _):
                try check(iterable, soft: soft)
                if let condition { try check(condition, soft: false) }
                try check(body, soft: false)
                try check(otherwise, soft: false)
            case .set(_, let e, _):
                try check(e, soft: soft)
            case .setBlock(_, let filters, let body, _):
                try check(filters)
                try check(body, soft: false)
            case .macro(let def):
                for d in def.defaults { if let d { try check(d, soft: false) } }
                try check(def.body, soft: false)
            case .filterBlock(let filters, let body):
                try check(filters)
                try check(body, soft: false)
            }
        }
    }

    private func check(_ filters: [FilterCall]) throws(ChatTemplateError) {
        for f in filters {
            if !JinjaNames.filters.contains(f.name) { throw ChatTemplateError(.syntax, "no filter named '\(f.name)'", at: f.pos) }
            try check(f.args, soft: false)
        }
    }

    private func check(_ args: [Argument], soft: Bool) throws(ChatTemplateError) {
        for a in args { try check(a.value, soft: soft) }
    }

    func check(_ e: Expr, soft: Bool) throws(ChatTemplateError) {
        switch e {
        case .constant, .name:
            break
        case .list(let items, _), .tuple(let items, _):
            for i in items { try check(i, soft: soft) }
        case .dict(let entries, _):
            for entry in entries {
                try check(entry.key, soft: soft)
                try check(entry.value, soft: soft)
            }
        case .attribute(let o, _, _), .not(let o, _), .negate(let o, _), .plus(let o, _):
            try check(o, soft: soft)
        case .item(let o, let k, _):
            try check(o, soft: soft)
            try check(k, soft: soft)
        case .slice(let o, let a, let b, let c, _):
            try check(o, soft: soft)
            for x in [a, b, c] { if let x { try check(x, soft: soft) } }
        case .call(let f, let args, _):
            try check(f, soft: soft)
            try check(args, soft: soft)
        case .filter(let subject, let name, let args, let pos):
            if !soft && !JinjaNames.filters.contains(name) { throw ChatTemplateError(.syntax, "no filter named '\(name)'", at: pos) }
            try check(subject, soft: soft)
            try check(args, soft: soft)
        case .test(let subject, let name, let args, _, let pos):
            if !soft && !JinjaNames.tests.contains(name) { throw ChatTemplateError(.syntax, "no test named '\(name)'", at: pos) }
            try check(subject, soft: soft)
            try check(args, soft: soft)
        case .binary(_, let l, let r, _), .and(let l, let r, _), .or(let l, let r, _):
            try check(l, soft: soft)
            try check(r, soft: soft)
        case .compare(let first, let ops, _):
            try check(first, soft: soft)
            for op in ops { try check(op.rhs, soft: soft) }
        case .conditional(let test, let then, let otherwise, _):
            try check(test, soft: true)
            try check(then, soft: true)
            if let otherwise { try check(otherwise, soft: true) }
        }
    }
}
