#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// jinja2's filters and tests, Python's str/dict/list methods, and transformers' `tojson`.
extension Renderer {
    // MARK: - Filters

    /// Parameters (after the subject) of the filters whose signature is fixed, to refuse
    /// unknown keywords and extra arguments as Python does.
    static let filterParameters: [String: [String]] = [
        "default": ["default_value", "boolean"], "d": ["default_value", "boolean"],
        "length": [], "count": [], "string": [], "safe": [], "e": [], "escape": [], "forceescape": [],
        "upper": [], "lower": [], "capitalize": [], "title": [], "list": [], "first": [], "last": [],
        "abs": [], "wordcount": [], "items": [], "reverse": [],
        "trim": ["chars"], "replace": ["old", "new", "count"],
        "tojson": ["ensure_ascii", "indent", "separators", "sort_keys"],
        "join": ["d", "attribute"], "dictsort": ["case_sensitive", "by", "reverse"],
        "sort": ["reverse", "case_sensitive", "attribute"], "unique": ["case_sensitive", "attribute"],
        "min": ["case_sensitive", "attribute"], "max": ["case_sensitive", "attribute"],
        "sum": ["attribute", "start"], "round": ["precision", "method"], "int": ["default", "base"],
        "float": ["default"], "indent": ["width", "first", "blank"], "attr": ["name"], "center": ["width"],
    ]

    func applyFilter(_ name: String, _ subject: Value, _ args: CallArgs, _ pos: SourcePos) throws(ChatTemplateError) -> Value {
        if let params = Self.filterParameters[name] {
            if args.positional.count > params.count {
                throw ChatTemplateError(.runtime, "filter '\(name)' takes at most \(params.count) argument(s), got \(args.positional.count)", at: pos)
            }
            for (k, _) in args.keyword {
                guard let i = params.firstIndex(of: k) else {
                    throw ChatTemplateError(.runtime, "filter '\(name)' got an unexpected keyword argument '\(k)'", at: pos)
                }
                if i < args.positional.count {
                    throw ChatTemplateError(.runtime, "filter '\(name)' got multiple values for argument '\(k)'", at: pos)
                }
            }
        }
        switch name {
        case "default", "d":
            let fallback = args.value(0, "default_value") ?? .string("")
            if subject.isUndefined || (args.value(1, "boolean").map(\.truthy) ?? false) && !subject.truthy { return fallback }
            return subject
        case "safe":
            return subject.isMarkup ? subject : .markup(subject.str)
        case "e", "escape":
            return subject.isMarkup ? subject : .markup(htmlEscape(subject.str))
        case "forceescape":
            return .markup(htmlEscape(subject.str))
        case "trim", "upper", "lower", "capitalize", "title", "string", "indent":
            // markupsafe keeps these Markup.
            let r = try plainFilter(name, subject.plain, args, pos)
            if subject.isMarkup, case .string(let s) = r { return .markup(s) }
            return r
        default:
            return try plainFilter(name, subject.plain, args, pos)
        }
    }

    private func plainFilter(_ name: String, _ v: Value, _ args: CallArgs, _ pos: SourcePos) throws(ChatTemplateError) -> Value {
        func arg(_ i: Int, _ n: String) -> Value? { args.value(i, n) }
        func boolArg(_ i: Int, _ n: String, _ d: Bool) -> Bool { arg(i, n).map(\.truthy) ?? d }
        func requireDefined() throws(ChatTemplateError) { if v.isUndefined { throw undefinedError(v, pos) } }
        switch name {
        case "length", "count":
            return .int(try length(v, pos))
        case "string":
            return .string(v.str)
        case "trim":
            return .string(pythonStrip(v.str, arg(0, "chars").flatMap { $0.isNone ? nil : $0.str }, left: true, right: true))
        case "upper": return .string(pythonUpper(v.str))
        case "lower": return .string(pythonLower(v.str))
        case "capitalize": return .string(pythonCapitalize(v.str))
        case "title": return .string(jinjaTitle(v.str))
        case "replace":
            guard let old = arg(0, "old"), let new = arg(1, "new") else {
                throw ChatTemplateError(.runtime, "replace needs 'old' and 'new'", at: pos)
            }
            let count = arg(2, "count").flatMap { intValue($0) } ?? -1
            return .string(pythonReplace(v.str, old.str, new.str, count: count))
        case "tojson":
            return .string(try toJSON(v, args, pos))
        case "join":
            let sep = arg(0, "d")?.str ?? ""
            var items = try iterate(v, pos)
            if let attr = arg(1, "attribute") { items = try items.map { x throws(ChatTemplateError) in try attributePath(x, attr, pos) } }
            return .string(items.map(\.str).joined(separator: sep))
        case "first":
            return try iterate(v, pos).first ?? .undefined(hint: "No first item, sequence was empty.")
        case "last":
            if case .iterator(_, let kind) = v, !kind.isView {
                throw ChatTemplateError(.runtime, "'\(kind.typeName)' object is not reversible", at: pos)
            }
            return try iterate(v, pos).last ?? .undefined(hint: "No last item, sequence was empty.")
        case "list":
            return .array(try iterate(v, pos))
        case "items":
            switch v {
            case .undefined: return .array([])
            case .dict(let d): return .iterator(d.pairs.map { .tuple([$0.0.value, $0.1]) }, .generator)
            default: throw ChatTemplateError(.runtime, "can only get item pairs from a mapping, not \(v.typeName)", at: pos)
            }
        case "dictsort":
            guard case .dict(let d) = v else {
                throw ChatTemplateError(.runtime, "dictsort expects a dict, not \(v.typeName)", at: pos)
            }
            let caseSensitive = boolArg(0, "case_sensitive", false)
            let byValue = arg(1, "by")?.str == "value"
            let reverse = boolArg(2, "reverse", false)
            let pairs = d.pairs.map { Value.tuple([$0.0.value, $0.1]) }
            return .array(try sortValues(pairs, reverse: reverse, pos) { p in
                let k = p.asList?[byValue ? 1 : 0] ?? .none
                return caseSensitive ? k : self.foldCase(k)
            })
        case "reverse":
            switch v {
            case .string(let s): return .string(scalarString(s.unicodeScalars.reversed()))
            default: return .iterator(try iterate(v, pos).reversed(), .reverseIterator)
            }
        case "sort":
            let reverse = boolArg(0, "reverse", false)
            let caseSensitive = boolArg(1, "case_sensitive", false)
            let attr = arg(2, "attribute")
            // jinja2 sorts by a one-item list key, so equal keys (also two undefined ones)
            // are never ordered with `<`.
            return .array(try sortValues(try iterate(v, pos), reverse: reverse, pos) { x throws(ChatTemplateError) in
                let k = attr == nil ? x : try self.attributePath(x, attr ?? .none, pos)
                return .array([caseSensitive ? k : self.foldCase(k)])
            })
        case "unique":
            let caseSensitive = boolArg(0, "case_sensitive", false)
            let attr = arg(1, "attribute")
            var seen: [Value] = []
            var out: [Value] = []
            for x in try iterate(v, pos) {
                var k = attr == nil ? x : try attributePath(x, attr ?? .none, pos)
                if !caseSensitive { k = foldCase(k) }
                if !seen.contains(where: { equals($0, k) }) {
                    seen.append(k)
                    out.append(x)
                }
            }
            return .iterator(out, .generator)
        case "min", "max":
            let caseSensitive = boolArg(0, "case_sensitive", false)
            let attr = arg(1, "attribute")
            let items = try iterate(v, pos)
            guard var best = items.first else { return .undefined(hint: "No aggregated item, sequence was empty.") }
            func key(_ x: Value) throws(ChatTemplateError) -> Value {
                let k = attr == nil ? x : try attributePath(x, attr ?? .none, pos)
                return caseSensitive ? k : foldCase(k)
            }
            var bestKey = try key(best)
            for x in items.dropFirst() {
                let k = try key(x)
                let c = try order(k, bestKey, pos)
                if name == "min" ? c < 0 : c > 0 { best = x; bestKey = k }
            }
            return best
        case "sum":
            let attr = arg(0, "attribute")
            var total = arg(1, "start") ?? .int(0)
            for x in try iterate(v, pos) {
                total = try binary("+", total, attr == nil ? x : try attributePath(x, attr ?? .none, pos), pos)
            }
            return total
        case "abs":
            switch v {
            case .int(let i):
                if i == Int.min { throw ChatTemplateError(.runtime, "integer overflow", at: pos) }
                return .int(abs(i))
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d): return .double(abs(d))
            default: throw ChatTemplateError(.runtime, "bad operand type for abs(): '\(v.typeName)'", at: pos)
            }
        case "round":
            guard let x = number(v) else { throw ChatTemplateError(.runtime, "round needs a number, not \(v.typeName)", at: pos) }
            let precision = arg(0, "precision").flatMap { intValue($0) } ?? 0
            let method = arg(1, "method")?.str ?? "common"
            guard ["common", "ceil", "floor"].contains(method) else {
                throw ChatTemplateError(.runtime, "method must be common, ceil or floor", at: pos)
            }
            let scale = pow(10.0, Double(precision))
            let rule: FloatingPointRoundingRule = method == "ceil" ? .up : method == "floor" ? .down : .toNearestOrEven
            return .double((x * scale).rounded(rule) / scale)
        case "int":
            let fallback = arg(0, "default") ?? .int(0)
            switch v {
            case .int: return v
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d): return Int(exactly: d.rounded(.towardZero)).map { .int($0) } ?? fallback
            case .string(let s):
                let t = pythonReplace(pythonStrip(s, nil, left: true, right: true), "_", "", count: -1)
                if let i = Int(t) { return .int(i) }
                if let d = Double(t), d.isFinite, let i = Int(exactly: d.rounded(.towardZero)) { return .int(i) }
                return fallback
            default: return fallback
            }
        case "float":
            let fallback = arg(0, "default") ?? .double(0)
            switch v {
            case .int(let i): return .double(Double(i))
            case .bool(let b): return .double(b ? 1 : 0)
            case .double: return v
            case .string(let s): return Double(pythonStrip(s, nil, left: true, right: true)).map { .double($0) } ?? fallback
            default: return fallback
            }
        case "indent":
            try requireDefined()
            let width = arg(0, "width") ?? .int(4)
            let indentation: String
            if case .string(let s) = width { indentation = s } else { indentation = String(repeating: " ", count: max(0, intValue(width) ?? 4)) }
            let first = boolArg(1, "first", false)
            let blank = boolArg(2, "blank", false)
            let s = v.str + "\n"
            var lines = pythonSplitLines(s)
            var rv: String
            if blank {
                rv = lines.joined(separator: "\n" + indentation)
            } else {
                rv = lines.isEmpty ? "" : lines.removeFirst()
                if !lines.isEmpty {
                    rv += "\n" + lines.map { $0.isEmpty ? $0 : indentation + $0 }.joined(separator: "\n")
                }
            }
            if first { rv = indentation + rv }
            return .string(rv)
        case "wordcount":
            // jinja2 counts matches of the regex \w+.
            var words = 0
            var inWord = false
            for c in v.str.unicodeScalars {
                let w = c == "_" || c.properties.isAlphabetic || c.properties.numericType != nil
                if w && !inWord { words += 1 }
                inWord = w
            }
            return .int(words)
        case "attr":
            try requireDefined()
            guard let a = arg(0, "name") else { throw ChatTemplateError(.runtime, "attr needs a name", at: pos) }
            // Only Python attributes (methods, namespace attributes), never dict items.
            if case .dict = v {
                let m = getAttribute(v, a.str)
                if case .callable = m { return m }
                return .undefined(hint: "'dict object' has no attribute '\(a.str)'")
            }
            return getAttribute(v, a.str)
        case "map":
            if !v.truthy { return .iterator([], .generator) }  // jinja2: `if value:` before iterating
            let items = try iterate(v, pos)
            if let attr = args.keyword.first(where: { $0.0 == "attribute" })?.1 {
                let fallback = args.keyword.first(where: { $0.0 == "default" })?.1
                return .iterator(try items.map { x throws(ChatTemplateError) in
                    let r = try attributePath(x, attr, pos)
                    if r.isUndefined, let fallback { return fallback }
                    return r
                }, .generator)
            }
            guard let filterName = args.positional.first?.str else {
                throw ChatTemplateError(.runtime, "map needs a filter name or attribute=", at: pos)
            }
            var rest = args
            rest.positional.removeFirst()
            return .iterator(try items.map { x throws(ChatTemplateError) in try applyFilter(filterName, x, rest, pos) }, .generator)
        case "select", "reject", "selectattr", "rejectattr":
            if !v.truthy { return .iterator([], .generator) }  // jinja2: `if value:` before iterating
            let byAttribute = name.hasSuffix("attr")
            let keep = name.hasPrefix("select")
            var rest = args
            var attr: Value?
            if byAttribute {
                guard !rest.positional.isEmpty else { throw ChatTemplateError(.runtime, "\(name) needs an attribute", at: pos) }
                attr = rest.positional.removeFirst()
            }
            let testName = rest.positional.isEmpty ? nil : rest.positional.removeFirst().str
            var out: [Value] = []
            for x in try iterate(v, pos) {
                let subject = try attr.map { a throws(ChatTemplateError) in try attributePath(x, a, pos) } ?? x
                let ok = try testName.map { t throws(ChatTemplateError) in try applyTest(t, subject, rest, pos) } ?? subject.truthy
                if ok == keep { out.append(x) }
            }
            return .iterator(out, .generator)
        case "center":
            let width = arg(0, "width").flatMap { intValue($0) } ?? 80
            let s = v.str
            let n = s.unicodeScalars.count
            guard width > n else { return .string(s) }
            let total = width - n
            let left = total / 2 + (total & width & 1)
            return .string(String(repeating: " ", count: left) + s + String(repeating: " ", count: total - left))
        case "format":
            return .string(try percentFormat(v.str, args.positional.count == 1 ? args.positional[0] : .tuple(args.positional), pos))
        default:
            if JinjaNames.filters.contains(name) {
                throw ChatTemplateError(.unsupported, "filter '\(name)' is not supported", at: pos)
            }
            throw ChatTemplateError(.runtime, "no filter named '\(name)'", at: pos)
        }
    }

    func length(_ v: Value, _ pos: SourcePos) throws(ChatTemplateError) -> Int {
        switch v {
        case .undefined: return 0
        case .string(let s): return s.unicodeScalars.count
        case .array(let a), .tuple(let a): return a.count
        case .dict(let d): return d.count
        case .namespace(let ns): return ns.attributes.count
        case .markup(let s): return s.unicodeScalars.count
        case .iterator(let items, let kind) where kind.isView: return items.count
        default: throw ChatTemplateError(.runtime, "object of type '\(v.typeName)' has no len()", at: pos)
        }
    }

    func foldCase(_ v: Value) -> Value {
        if case .string(let s) = v { return .string(pythonLower(s)) }
        return v
    }

    /// jinja2's attribute getter for filters: "a.b.0" looks up item by item.
    func attributePath(_ v: Value, _ attr: Value, _ pos: SourcePos) throws(ChatTemplateError) -> Value {
        if let i = intValue(attr) { return try getItem(v, .int(i), pos) }
        var cur = v
        for part in attr.str.split(separator: ".", omittingEmptySubsequences: false) {
            if cur.isUndefined { throw undefinedError(cur, pos) }
            let key: Value = Int(part).map { .int($0) } ?? .string(String(part))
            cur = try getItem(cur, key, pos)
        }
        return cur
    }

    func sortValues(_ items: [Value], reverse: Bool, _ pos: SourcePos,
                    key: (Value) throws(ChatTemplateError) -> Value) throws(ChatTemplateError) -> [Value] {
        var keyed: [(Value, Value)] = []
        for x in items { keyed.append((try key(x), x)) }
        // Stable merge sort with a throwing comparison (Python's sort is stable, also reversed).
        func merge(_ a: ArraySlice<(Value, Value)>) throws(ChatTemplateError) -> [(Value, Value)] {
            if a.count <= 1 { return Array(a) }
            let mid = a.startIndex + a.count / 2
            let l = try merge(a[a.startIndex..<mid]), r = try merge(a[mid..<a.endIndex])
            var out: [(Value, Value)] = []
            out.reserveCapacity(a.count)
            var i = 0, j = 0
            while i < l.count && j < r.count {
                let c = try order(r[j].0, l[i].0, pos)
                if reverse ? c > 0 : c < 0 { out.append(r[j]); j += 1 } else { out.append(l[i]); i += 1 }
            }
            out += l[i...]
            out += r[j...]
            return out
        }
        return try merge(keyed[...]).map(\.1)
    }

    // MARK: - Tests

    static let testsWithoutArguments: Set<String> = [
        "defined", "undefined", "none", "boolean", "false", "true", "integer", "float", "number", "string", "mapping",
        "iterable", "sequence", "callable", "even", "odd", "lower", "upper", "escaped",
    ]

    func applyTest(_ name: String, _ subject: Value, _ args: CallArgs, _ pos: SourcePos) throws(ChatTemplateError) -> Bool {
        let v = subject.plain
        if Self.testsWithoutArguments.contains(name), !args.positional.isEmpty || !args.keyword.isEmpty {
            throw ChatTemplateError(.runtime, "test '\(name)' takes no arguments", at: pos)
        }
        let other = args.value(0, "other") ?? .undefined(hint: "test '\(name)' needs an argument")
        switch name {
        case "defined": return !v.isUndefined
        case "undefined": return v.isUndefined
        case "none": return v.isNone
        case "boolean": if case .bool = v { return true }; return false
        case "false": if case .bool(false) = v { return true }; return false
        case "true": if case .bool(true) = v { return true }; return false
        case "integer": if case .int = v { return true }; return false
        case "float": if case .double = v { return true }; return false
        case "number":
            switch v {
            case .int, .double, .bool: return true
            default: return false
            }
        case "string": return v.isString
        case "mapping": if case .dict = v { return true }; return false
        case "iterable", "sequence":
            switch v {
            case .undefined, .string, .array, .tuple, .dict: return true
            case .iterator: return name == "iterable"
            default: return false
            }
        case "callable": if case .callable = v { return true }; return false
        case "sameas":
            switch (v, other) {
            case (.none, .none): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.namespace(let a), .namespace(let b)): return a === b
            default: return false
            }
        case "equalto", "eq", "==": return equals(v, other)
        case "ne", "!=": return !equals(v, other)
        case "lt", "lessthan", "<": return try order(v, other, pos) < 0
        case "le", "<=": return try order(v, other, pos) <= 0
        case "gt", "greaterthan", ">": return try order(v, other, pos) > 0
        case "ge", ">=": return try order(v, other, pos) >= 0
        case "in": return try contains(args.value(0, "seq") ?? other, v, pos)
        case "even", "odd", "divisibleby":
            guard let i = intValue(v) else {
                if v.isUndefined { throw undefinedError(v, pos) }
                if case .double(let d) = v, name != "divisibleby" {
                    let r = d.truncatingRemainder(dividingBy: 2)
                    return name == "even" ? r == 0 : r != 0
                }
                throw ChatTemplateError(.runtime, "test '\(name)' needs a number, not \(v.typeName)", at: pos)
            }
            if name == "divisibleby" {
                guard let n = intValue(args.value(0, "num") ?? .none), n != 0 else {
                    throw ChatTemplateError(.runtime, "divisibleby needs a non-zero integer", at: pos)
                }
                return i % n == 0
            }
            return (i % 2 == 0) == (name == "even")
        case "lower":
            let s = v.str
            return s.unicodeScalars.contains { $0.properties.isCased } && s == pythonLower(s)
        case "upper":
            let s = v.str
            return s.unicodeScalars.contains { $0.properties.isCased } && s == pythonUpper(s)
        case "escaped": return subject.isMarkup
        default:
            if JinjaNames.tests.contains(name) {
                throw ChatTemplateError(.unsupported, "test '\(name)' is not supported", at: pos)
            }
            throw ChatTemplateError(.runtime, "no test named '\(name)'", at: pos)
        }
    }

    // MARK: - Methods

    func callMethod(_ receiver: Value, _ name: String, _ args: CallArgs, _ pos: SourcePos) throws(ChatTemplateError) -> Value {
        guard case .markup(let text) = receiver else { return try plainMethod(receiver, name, args, pos) }
        // markupsafe: string results stay Markup; format and join escape their arguments.
        var escaped = args
        if name == "format" || name == "join" {
            func esc(_ x: Value) -> Value {
                switch x {
                case .markup: return x
                case .array(let a): return .array(a.map(esc))
                case .tuple(let a): return .tuple(a.map(esc))
                default: return .string(htmlEscape(x.str))
                }
            }
            escaped.positional = args.positional.map(esc)
            escaped.keyword = args.keyword.map { ($0.0, esc($0.1)) }
        }
        let r = try plainMethod(.string(text), name, escaped, pos)
        switch r {
        case .string(let s): return .markup(s)
        case .array(let a) where name.hasSuffix("split"): return .array(a.map { Value.markup($0.str) })
        default: return r
        }
    }

    static let noArgumentStringMethods: Set<String> = [
        "upper", "lower", "title", "capitalize", "swapcase", "casefold", "isdigit", "isalpha", "isalnum", "isspace",
        "islower", "isupper", "isnumeric", "isdecimal",
    ]

    private func plainMethod(_ receiver: Value, _ name: String, _ args: CallArgs, _ pos: SourcePos) throws(ChatTemplateError) -> Value {
        func arg(_ i: Int, _ n: String) -> Value? { args.value(i, n) }
        func optString(_ i: Int, _ n: String) -> String? {
            guard let a = arg(i, n), !a.isNone else { return nil }
            return a.str
        }
        if case .string = receiver {
            if Self.noArgumentStringMethods.contains(name), !args.positional.isEmpty || !args.keyword.isEmpty {
                throw ChatTemplateError(.runtime, "str.\(name)() takes no arguments", at: pos)
            }
            if ["strip", "lstrip", "rstrip"].contains(name), let a = arg(0, "chars"), !a.isNone, !a.isString {
                throw ChatTemplateError(.runtime, "\(name) arg must be None or str", at: pos)
            }
        }
        switch receiver {
        case .string(let s):
            switch name {
            case "strip": return .string(pythonStrip(s, optString(0, "chars"), left: true, right: true))
            case "lstrip": return .string(pythonStrip(s, optString(0, "chars"), left: true, right: false))
            case "rstrip": return .string(pythonStrip(s, optString(0, "chars"), left: false, right: true))
            case "split", "rsplit":
                let sep = optString(0, "sep")
                if sep == "" { throw ChatTemplateError(.runtime, "empty separator", at: pos) }
                let maxsplit = arg(1, "maxsplit").flatMap { intValue($0) } ?? -1
                if name == "rsplit" && maxsplit >= 0 {
                    // Split the reversed string and reverse back.
                    let rev = scalarString(s.unicodeScalars.reversed())
                    let parts = pythonSplit(rev, sep.map { scalarString($0.unicodeScalars.reversed()) }, maxsplit: maxsplit)
                    return .array(parts.reversed().map { .string(scalarString($0.unicodeScalars.reversed())) })
                }
                return .array(pythonSplit(s, sep, maxsplit: maxsplit).map { .string($0) })
            case "splitlines": return .array(pythonSplitLines(s).map { .string($0) })
            case "startswith", "endswith":
                guard let p = arg(0, "prefix") else { throw ChatTemplateError(.runtime, "\(name) needs an argument", at: pos) }
                let candidates = p.asList ?? [p]
                let a = Array(s.unicodeScalars)
                for c in candidates {
                    guard case .string(let cs) = c else {
                        throw ChatTemplateError(.runtime, "\(name) first arg must be str or a tuple of str, not \(c.typeName)", at: pos)
                    }
                    let b = Array(cs.unicodeScalars)
                    if b.count <= a.count, name == "startswith" ? Array(a.prefix(b.count)) == b : Array(a.suffix(b.count)) == b { return .bool(true) }
                }
                return .bool(false)
            case "upper": return .string(pythonUpper(s))
            case "lower", "casefold": return .string(pythonLower(s))
            case "title": return .string(pythonTitle(s))
            case "capitalize": return .string(pythonCapitalize(s))
            case "swapcase":
                return .string(s.unicodeScalars.map { c in
                    c.properties.isUppercase ? String(c).lowercased() : c.properties.isLowercase ? String(c).uppercased() : String(c)
                }.joined())
            case "replace":
                guard let old = arg(0, "old"), let new = arg(1, "new") else {
                    throw ChatTemplateError(.runtime, "replace needs two arguments", at: pos)
                }
                return .string(pythonReplace(s, old.str, new.str, count: arg(2, "count").flatMap { intValue($0) } ?? -1))
            case "find", "index", "rfind", "rindex", "count":
                guard let sub = arg(0, "sub"), case .string(let needle) = sub else {
                    throw ChatTemplateError(.runtime, "\(name) needs a string argument", at: pos)
                }
                let a = Array(s.unicodeScalars), b = Array(needle.unicodeScalars)
                if name == "count" {
                    if b.isEmpty { return .int(a.count + 1) }
                    var n = 0, i = 0
                    while let j = findScalars(a, b, from: i) { n += 1; i = j + b.count }
                    return .int(n)
                }
                var found: Int?
                if name.hasPrefix("r") {
                    var i = 0
                    while let j = findScalars(a, b, from: i) { found = j; i = j + 1 }
                } else {
                    found = findScalars(a, b, from: 0)
                }
                if let found { return .int(found) }
                if name.hasSuffix("index") { throw ChatTemplateError(.runtime, "substring not found", at: pos) }
                return .int(-1)
            case "join":
                guard let items = arg(0, "iterable") else { throw ChatTemplateError(.runtime, "join needs an argument", at: pos) }
                var parts: [String] = []
                for x in try iterate(items, pos) {
                    guard case .string(let t) = x else {
                        throw ChatTemplateError(.runtime, "sequence item: expected str instance, \(x.typeName) found", at: pos)
                    }
                    parts.append(t)
                }
                return .string(parts.joined(separator: s))
            case "format":
                return .string(try pythonFormat(s, args, pos))
            case "isdigit", "isnumeric", "isdecimal":
                return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType != nil })
            case "isalpha": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic })
            case "isalnum":
                return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil })
            case "isspace": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(isPythonSpace))
            case "islower":
                return .bool(s.unicodeScalars.contains { $0.properties.isCased } && s == pythonLower(s))
            case "isupper":
                return .bool(s.unicodeScalars.contains { $0.properties.isCased } && s == pythonUpper(s))
            case "removeprefix", "removesuffix":
                let a = Array(s.unicodeScalars), b = Array((arg(0, "prefix")?.str ?? "").unicodeScalars)
                if name == "removeprefix", a.starts(with: b) { return .string(scalarString(a.dropFirst(b.count))) }
                if name == "removesuffix", !b.isEmpty, Array(a.suffix(b.count)) == b { return .string(scalarString(a.dropLast(b.count))) }
                return .string(s)
            case "partition", "rpartition":
                let a = Array(s.unicodeScalars), b = Array((arg(0, "sep")?.str ?? "").unicodeScalars)
                if b.isEmpty { throw ChatTemplateError(.runtime, "empty separator", at: pos) }
                var found: Int?
                if name == "rpartition" {
                    var i = 0
                    while let j = findScalars(a, b, from: i) { found = j; i = j + 1 }
                } else {
                    found = findScalars(a, b, from: 0)
                }
                guard let j = found else {
                    return name == "partition" ? .tuple([.string(s), .string(""), .string("")]) : .tuple([.string(""), .string(""), .string(s)])
                }
                return .tuple([.string(scalarString(a[..<j])), .string(scalarString(b)), .string(scalarString(a[(j + b.count)...]))])
            case "zfill", "ljust", "rjust", "center":
                let width = arg(0, "width").flatMap { intValue($0) } ?? 0
                let n = s.unicodeScalars.count
                guard width > n else { return .string(s) }
                let fill = name == "zfill" ? "0" : (arg(1, "fillchar")?.str ?? " ")
                let pad = width - n
                switch name {
                case "ljust": return .string(s + String(repeating: fill, count: pad))
                case "center":
                    let left = pad / 2 + (pad & width & 1)
                    return .string(String(repeating: fill, count: left) + s + String(repeating: fill, count: pad - left))
                default: return .string(String(repeating: fill, count: pad) + s)
                }
            default: break
            }
        case .dict(let d):
            switch name {
            case "items": return .iterator(d.pairs.map { .tuple([$0.0.value, $0.1]) }, .dictItems)
            case "keys": return .iterator(d.keys.map(\.value), .dictKeys)
            case "values": return .iterator(d.pairs.map(\.1), .dictValues)
            case "get":
                let fallback = arg(1, "default") ?? .none
                guard let k = arg(0, "key") else { throw ChatTemplateError(.runtime, "get expected at least 1 argument", at: pos) }
                if let key = DictKey(k), let v = d[key] { return v }
                return fallback
            case "copy": return receiver
            default: break
            }
        case .array(let a), .tuple(let a):
            switch name {
            case "index":
                let x = arg(0, "value") ?? .none
                if let i = a.firstIndex(where: { equals($0, x) }) { return .int(i) }
                throw ChatTemplateError(.runtime, "value is not in list", at: pos)
            case "count":
                let x = arg(0, "value") ?? .none
                return .int(a.filter { equals($0, x) }.count)
            case "copy": return receiver
            default: break
            }
        default: break
        }
        throw ChatTemplateError(.runtime, "'\(receiver.typeName)' object has no method '\(name)'", at: pos)
    }

    /// Python's str.format for `{}`, `{0}`, `{name}` and `{{`/`}}`; no format specs.
    func pythonFormat(_ fmt: String, _ args: CallArgs, _ pos: SourcePos) throws(ChatTemplateError) -> String {
        let a = Array(fmt.unicodeScalars)
        var out = String.UnicodeScalarView()
        var auto = 0
        var manual = false
        var i = 0
        while i < a.count {
            let c = a[i]
            if c == "{" {
                if i + 1 < a.count, a[i + 1] == "{" { out.append("{"); i += 2; continue }
                var j = i + 1
                while j < a.count, a[j] != "}" { j += 1 }
                guard j < a.count else { throw ChatTemplateError(.runtime, "Single '{' encountered in format string", at: pos) }
                let field = scalarString(a[(i + 1)..<j])
                if field.contains(":") || field.contains("!") || field.contains(".") || field.contains("[") {
                    throw ChatTemplateError(.unsupported, "format field '{\(field)}' is not supported", at: pos)
                }
                let v: Value?
                if field.isEmpty {
                    if manual { throw ChatTemplateError(.runtime, "cannot switch from manual field specification to automatic field numbering", at: pos) }
                    v = auto < args.positional.count ? args.positional[auto] : nil
                    auto += 1
                } else if let n = Int(field) {
                    if auto > 0 { throw ChatTemplateError(.runtime, "cannot switch from automatic field numbering to manual field specification", at: pos) }
                    manual = true
                    v = n < args.positional.count ? args.positional[n] : nil
                } else {
                    v = args.keyword.first { $0.0 == field }?.1
                }
                guard let v else { throw ChatTemplateError(.runtime, "format: missing argument for '{\(field)}'", at: pos) }
                out.append(contentsOf: v.str.unicodeScalars)
                i = j + 1
            } else if c == "}" {
                guard i + 1 < a.count, a[i + 1] == "}" else {
                    throw ChatTemplateError(.runtime, "Single '}' encountered in format string", at: pos)
                }
                out.append("}")
                i += 2
            } else {
                out.append(c)
                i += 1
            }
        }
        return String(out)
    }

    // MARK: - JSON

    /// transformers' tojson: json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys).
    func toJSON(_ v: Value, _ args: CallArgs, _ pos: SourcePos) throws(ChatTemplateError) -> String {
        let ensureASCII = args.value(0, "ensure_ascii")?.truthy ?? false
        let indentArg = args.value(1, "indent")
        var indent: String?
        if let indentArg, !indentArg.isNone {
            if case .string(let s) = indentArg { indent = s } else if let n = intValue(indentArg) { indent = String(repeating: " ", count: max(0, n)) }
        }
        var itemSep = indent == nil ? ", " : ","
        var keySep = ": "
        if let seps = args.value(2, "separators"), let list = seps.asList, list.count == 2 {
            itemSep = list[0].str
            keySep = list[1].str
        }
        let sortKeys = args.value(3, "sort_keys")?.truthy ?? false
        var out = ""
        try writeJSON(v, &out, indent: indent, level: 0, itemSep: itemSep, keySep: keySep, sortKeys: sortKeys, ascii: ensureASCII, pos: pos, depth: 0)
        return out
    }

    private func writeJSON(_ v: Value, _ out: inout String, indent: String?, level: Int, itemSep: String, keySep: String,
                           sortKeys: Bool, ascii: Bool, pos: SourcePos, depth: Int) throws(ChatTemplateError) {
        if depth > 200 { throw ChatTemplateError(.runtime, "tojson: value nests too deeply", at: pos) }
        func newline(_ l: Int) {
            if let indent {
                out += "\n"
                for _ in 0..<l { out += indent }
            }
        }
        switch v {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isNaN { out += "NaN" } else if d.isInfinite { out += d < 0 ? "-Infinity" : "Infinity" } else { out += pythonFloatRepr(d) }
        case .string(let s): out += jsonString(s, ascii: ascii)
        case .array(let a), .tuple(let a):
            if a.isEmpty { out += "[]"; return }
            out += "["
            for (i, x) in a.enumerated() {
                if i > 0 { out += itemSep }
                newline(level + 1)
                try writeJSON(x, &out, indent: indent, level: level + 1, itemSep: itemSep, keySep: keySep, sortKeys: sortKeys, ascii: ascii, pos: pos, depth: depth + 1)
            }
            newline(level)
            out += "]"
        case .dict(let d):
            if d.isEmpty { out += "{}"; return }
            var keys = d.keys
            if sortKeys { keys.sort { $0.text.unicodeScalars.lexicographicallyPrecedes($1.text.unicodeScalars) } }
            out += "{"
            for (i, k) in keys.enumerated() {
                if i > 0 { out += itemSep }
                newline(level + 1)
                out += jsonString(k.text, ascii: ascii) + keySep
                try writeJSON(d[k] ?? .none, &out, indent: indent, level: level + 1, itemSep: itemSep, keySep: keySep, sortKeys: sortKeys, ascii: ascii, pos: pos, depth: depth + 1)
            }
            newline(level)
            out += "}"
        case .markup(let s): out += jsonString(s, ascii: ascii)
        case .undefined:
            throw ChatTemplateError(.runtime, "Object of type Undefined is not JSON serializable", at: pos)
        case .namespace, .callable, .iterator:
            throw ChatTemplateError(.runtime, "Object of type \(v.typeName) is not JSON serializable", at: pos)
        }
    }

    func jsonString(_ s: String, ascii: Bool) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if c.value < 0x20 {
                    out += "\\u" + hex(c.value, width: 4)
                } else if ascii && c.value > 0x7E {
                    if c.value > 0xFFFF {
                        let v = c.value - 0x10000
                        out += "\\u" + hex(0xD800 + (v >> 10), width: 4) + "\\u" + hex(0xDC00 + (v & 0x3FF), width: 4)
                    } else {
                        out += "\\u" + hex(c.value, width: 4)
                    }
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        return out + "\""
    }
}

func htmlEscape(_ s: String) -> String {
    var out = ""
    for c in s.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&#34;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}

/// jinja2's `title` filter: capitalizes each word, splitting on runs of `-`, whitespace and opening brackets.
func jinjaTitle(_ s: String) -> String {
    var out = ""
    var atWordStart = true
    for c in s.unicodeScalars {
        let separator = c == "-" || c == "(" || c == "{" || c == "[" || c == "<" || isPythonSpace(c)
        if separator {
            out.unicodeScalars.append(c)
            atWordStart = true
        } else {
            out += atWordStart ? String(c).uppercased() : String(c).lowercased()
            atWordStart = false
        }
    }
    return out
}
