#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Python semantics of jinja2's operators.
extension Renderer {
    func typeError(_ op: String, _ a: Value, _ b: Value, _ pos: SourcePos) -> ChatTemplateError {
        ChatTemplateError(.runtime, "unsupported operand type(s) for \(op): '\(a.typeName)' and '\(b.typeName)'", at: pos)
    }

    func number(_ v: Value) -> Double? {
        switch v {
        case .int(let i): return Double(i)
        case .bool(let b): return b ? 1 : 0
        case .double(let d): return d
        default: return nil
        }
    }

    func binary(_ op: String, _ left: Value, _ right: Value, _ pos: SourcePos) throws(ChatTemplateError) -> Value {
        if op == "~" { return .string(left.str + right.str) }
        if op == "+", left.isMarkup || right.isMarkup, left.isString, right.isString {
            // markupsafe: Markup + str escapes the plain side.
            func esc(_ v: Value) -> String { v.isMarkup ? v.str : htmlEscape(v.str) }
            return .markup(esc(left) + esc(right))
        }
        if op == "*", left.isMarkup || right.isMarkup {
            let r = try binary(op, left.plain, right.plain, pos)
            if case .string(let s) = r { return .markup(s) }
            return r
        }
        let a = left.plain, b = right.plain
        if a.isUndefined { throw undefinedError(a, pos) }
        if b.isUndefined { throw undefinedError(b, pos) }
        // Integer arithmetic (bool counts as int).
        if let x = intValue(a), let y = intValue(b) {
            switch op {
            case "+": return try checked(x.addingReportingOverflow(y), pos)
            case "-": return try checked(x.subtractingReportingOverflow(y), pos)
            case "*": return try checked(x.multipliedReportingOverflow(by: y), pos)
            case "/":
                if y == 0 { throw ChatTemplateError(.runtime, "division by zero", at: pos) }
                return .double(Double(x) / Double(y))
            case "//", "%":
                if y == 0 { throw ChatTemplateError(.runtime, "integer division or modulo by zero", at: pos) }
                if x == Int.min && y == -1 { throw ChatTemplateError(.runtime, "integer overflow", at: pos) }
                var q = x / y
                var r = x % y
                if r != 0 && ((r < 0) != (y < 0)) { q -= 1; r += y }
                return .int(op == "//" ? q : r)
            case "**":
                if y < 0 { return .double(pow(Double(x), Double(y))) }
                var result = 1
                for _ in 0..<y {
                    let (m, o) = result.multipliedReportingOverflow(by: x)
                    if o { throw ChatTemplateError(.runtime, "integer overflow", at: pos) }
                    result = m
                    if result == 0 || result == 1 && x == 1 { break }
                }
                return .int(result)
            default: break
            }
        }
        if let x = number(a), let y = number(b) {
            switch op {
            case "+": return .double(x + y)
            case "-": return .double(x - y)
            case "*": return .double(x * y)
            case "/":
                if y == 0 { throw ChatTemplateError(.runtime, "float division by zero", at: pos) }
                return .double(x / y)
            case "//":
                if y == 0 { throw ChatTemplateError(.runtime, "float floor division by zero", at: pos) }
                return .double((x / y).rounded(.down))
            case "%":
                if y == 0 { throw ChatTemplateError(.runtime, "float modulo", at: pos) }
                var r = x.truncatingRemainder(dividingBy: y)
                if r != 0 && ((r < 0) != (y < 0)) { r += y }
                return .double(r)
            case "**": return .double(pow(x, y))
            default: break
            }
        }
        switch (op, a, b) {
        case ("+", .string(let x), .string(let y)): return .string(x + y)
        case ("+", .array(let x), .array(let y)): return .array(x + y)
        case ("+", .tuple(let x), .tuple(let y)): return .tuple(x + y)
        case ("*", .string(let s), _), ("*", _, .string(let s)):
            guard let n = intValue(a.isString ? b : a) else { break }
            if n > 0 && s.utf8.count * n > RenderLimits.maxOutputBytes {
                throw ChatTemplateError(.runtime, "string repetition too large", at: pos)
            }
            return .string(n > 0 ? String(repeating: s, count: n) : "")
        case ("*", .array(let l), _), ("*", _, .array(let l)):
            guard let n = intValue(a.asList != nil ? b : a) else { break }
            if n > 0 && l.count * n > RenderLimits.maxRange { throw ChatTemplateError(.runtime, "list repetition too large", at: pos) }
            return .array(n > 0 ? Array([[Value]](repeating: l, count: n).joined()) : [])
        case ("%", .string(let fmt), _):
            return .string(try percentFormat(fmt, b, pos))
        default: break
        }
        throw typeError(op, a, b, pos)
    }

    private func checked(_ r: (partialValue: Int, overflow: Bool), _ pos: SourcePos) throws(ChatTemplateError) -> Value {
        if r.overflow { throw ChatTemplateError(.runtime, "integer overflow", at: pos) }
        return .int(r.partialValue)
    }

    /// Python `==`.
    func equals(_ left: Value, _ right: Value) -> Bool {
        let a = left.plain, b = right.plain
        switch (a, b) {
        case (.undefined, .undefined): return true
        case (.undefined, _), (_, .undefined): return false
        case (.none, .none): return true
        case (.string(let x), .string(let y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
        case (.array(let x), .array(let y)), (.tuple(let x), .tuple(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { equals($0, $1) }
        case (.dict(let x), .dict(let y)):
            return x.count == y.count && x.pairs.allSatisfy { k, v in y[k].map { equals(v, $0) } ?? false }
        case (.namespace(let x), .namespace(let y)): return x === y
        default:
            if let x = number(a), let y = number(b) {
                if let i = intValue(a), let j = intValue(b) { return i == j }
                return x == y
            }
            return false
        }
    }

    /// Python ordering; throws for types Python cannot order.
    func order(_ left: Value, _ right: Value, _ pos: SourcePos) throws(ChatTemplateError) -> Int {
        let a = left.plain, b = right.plain
        if let i = intValue(a), let j = intValue(b) { return i < j ? -1 : i > j ? 1 : 0 }
        if let x = number(a), let y = number(b) { return x < y ? -1 : x > y ? 1 : 0 }
        switch (a, b) {
        case (.string(let x), .string(let y)):
            var ix = x.unicodeScalars.makeIterator(), iy = y.unicodeScalars.makeIterator()
            while true {
                let cx = ix.next(), cy = iy.next()
                switch (cx, cy) {
                case (nil, nil): return 0
                case (nil, _): return -1
                case (_, nil): return 1
                case (let p?, let q?): if p != q { return p.value < q.value ? -1 : 1 }
                }
            }
        case (.array(let x), .array(let y)), (.tuple(let x), .tuple(let y)):
            for (p, q) in zip(x, y) where !equals(p, q) { return try order(p, q, pos) }
            return x.count < y.count ? -1 : x.count > y.count ? 1 : 0
        default:
            if a.isUndefined { throw undefinedError(a, pos) }
            if b.isUndefined { throw undefinedError(b, pos) }
            throw ChatTemplateError(.runtime, "'<' not supported between instances of '\(a.typeName)' and '\(b.typeName)'", at: pos)
        }
    }

    func contains(_ containerValue: Value, _ itemValue: Value, _ pos: SourcePos) throws(ChatTemplateError) -> Bool {
        let container = containerValue.plain, item = itemValue.plain
        switch container {
        case .iterator(let items, _):
            return items.contains { equals($0, item) }
        case .undefined: return false
        case .string(let s):
            guard case .string(let sub) = item else {
                throw ChatTemplateError(.runtime, "'in <string>' requires string as left operand, not \(item.typeName)", at: pos)
            }
            return findScalars(Array(s.unicodeScalars), Array(sub.unicodeScalars), from: 0) != nil
        case .array(let a), .tuple(let a): return a.contains { equals($0, item) }
        case .dict(let d):
            if let k = DictKey(item) { return d[k] != nil }
            return false
        case .namespace(let ns):
            if case .string(let k) = item { return ns.attributes[k] != nil }
            return false
        default:
            throw ChatTemplateError(.runtime, "argument of type '\(container.typeName)' is not iterable", at: pos)
        }
    }

    func compare(_ op: String, _ a: Value, _ b: Value, _ pos: SourcePos) throws(ChatTemplateError) -> Bool {
        switch op {
        case "==": return equals(a, b)
        case "!=": return !equals(a, b)
        case "<": return try order(a, b, pos) < 0
        case "<=": return try order(a, b, pos) <= 0
        case ">": return try order(a, b, pos) > 0
        case ">=": return try order(a, b, pos) >= 0
        case "in": return try contains(b, a, pos)
        case "notin": return !(try contains(b, a, pos))
        default: throw ChatTemplateError(.syntax, "unknown comparison '\(op)'", at: pos)
        }
    }

    /// printf-style `"%s" % value` for %s, %r, %d, %i, %f and %%.
    func percentFormat(_ fmt: String, _ arg: Value, _ pos: SourcePos) throws(ChatTemplateError) -> String {
        let args: [Value]
        if case .tuple(let t) = arg { args = t } else { args = [arg] }
        var out = ""
        var it = fmt.unicodeScalars.makeIterator()
        var used = 0
        while let c = it.next() {
            guard c == "%" else { out.unicodeScalars.append(c); continue }
            guard let spec = it.next() else { throw ChatTemplateError(.runtime, "incomplete format", at: pos) }
            if spec == "%" { out += "%"; continue }
            guard used < args.count else { throw ChatTemplateError(.runtime, "not enough arguments for format string", at: pos) }
            let v = args[used]
            used += 1
            switch spec {
            case "s": out += v.str
            case "r": out += v.repr
            case "d", "i":
                guard let n = number(v) else { throw ChatTemplateError(.runtime, "%d format: a real number is required, not \(v.typeName)", at: pos) }
                out += intValue(v).map { String($0) } ?? String(Int(exactly: n.rounded(.towardZero)) ?? 0)
            default:
                throw ChatTemplateError(.unsupported, "format specifier '%\(spec)' is not supported", at: pos)
            }
        }
        if used < args.count { throw ChatTemplateError(.runtime, "not all arguments converted during string formatting", at: pos) }
        return out
    }
}

// MARK: - Unicode-scalar string helpers (Python indexes strings by code point)

func findScalars(_ hay: [Unicode.Scalar], _ needle: [Unicode.Scalar], from start: Int) -> Int? {
    if needle.isEmpty { return start <= hay.count ? start : nil }
    guard hay.count >= needle.count else { return nil }
    var i = start
    while i + needle.count <= hay.count {
        if hay[i] == needle[0] {
            var ok = true
            for k in 1..<needle.count where hay[i + k] != needle[k] { ok = false; break }
            if ok { return i }
        }
        i += 1
    }
    return nil
}

func scalarString<S: Sequence>(_ s: S) -> String where S.Element == Unicode.Scalar {
    var out = String.UnicodeScalarView()
    out.append(contentsOf: s)
    return String(out)
}

/// Python's str.isspace for one code point.
func isPythonSpace(_ c: Unicode.Scalar) -> Bool {
    switch c.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0: return true
    default: return c.value > 0x7F && c.properties.isWhitespace
    }
}

func pythonStrip(_ s: String, _ chars: String?, left: Bool, right: Bool) -> String {
    let a = Array(s.unicodeScalars)
    let set: Set<Unicode.Scalar>? = chars.map { Set($0.unicodeScalars) }
    func strip(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? isPythonSpace(c) }
    var lo = 0, hi = a.count
    if left { while lo < hi, strip(a[lo]) { lo += 1 } }
    if right { while hi > lo, strip(a[hi - 1]) { hi -= 1 } }
    return scalarString(a[lo..<hi])
}

func pythonReplace(_ s: String, _ old: String, _ new: String, count: Int) -> String {
    let a = Array(s.unicodeScalars), o = Array(old.unicodeScalars), n = Array(new.unicodeScalars)
    var out: [Unicode.Scalar] = []
    var done = 0
    if o.isEmpty {
        for c in a {
            if count < 0 || done < count { out += n; done += 1 }
            out.append(c)
        }
        if count < 0 || done < count { out += n }
        return scalarString(out)
    }
    var i = 0
    while i < a.count {
        if count < 0 || done < count, let j = findScalars(a, o, from: i) {
            out += a[i..<j]
            out += n
            i = j + o.count
            done += 1
        } else {
            out += a[i...]
            break
        }
    }
    return scalarString(out)
}

func pythonSplit(_ s: String, _ sep: String?, maxsplit: Int) -> [String] {
    let a = Array(s.unicodeScalars)
    var parts: [String] = []
    if let sep {
        let p = Array(sep.unicodeScalars)
        var i = 0
        while maxsplit < 0 || parts.count < maxsplit, let j = findScalars(a, p, from: i) {
            parts.append(scalarString(a[i..<j]))
            i = j + p.count
        }
        parts.append(scalarString(a[i...]))
        return parts
    }
    var i = 0
    while i < a.count {
        while i < a.count, isPythonSpace(a[i]) { i += 1 }
        if i >= a.count { break }
        if maxsplit >= 0 && parts.count >= maxsplit {
            var end = a.count
            while end > i, isPythonSpace(a[end - 1]) { end -= 1 }
            parts.append(scalarString(a[i..<end]))
            break
        }
        var j = i
        while j < a.count, !isPythonSpace(a[j]) { j += 1 }
        parts.append(scalarString(a[i..<j]))
        i = j
    }
    return parts
}

func pythonSplitLines(_ s: String) -> [String] {
    let a = Array(s.unicodeScalars)
    var out: [String] = []
    var start = 0
    var i = 0
    while i < a.count {
        let c = a[i].value
        if c == 0x0A || c == 0x0B || c == 0x0C || c == 0x0D || (0x1C...0x1E).contains(c) || c == 0x85 || c == 0x2028 || c == 0x2029 {
            out.append(scalarString(a[start..<i]))
            if c == 0x0D, i + 1 < a.count, a[i + 1] == "\n" { i += 1 }
            start = i + 1
        }
        i += 1
    }
    if start < a.count { out.append(scalarString(a[start...])) }
    return out
}

func pythonUpper(_ s: String) -> String { s.uppercased() }
func pythonLower(_ s: String) -> String { s.lowercased() }

func pythonCapitalize(_ s: String) -> String {
    let a = Array(s.unicodeScalars)
    guard let f = a.first else { return "" }
    return String(f).uppercased() + scalarString(a.dropFirst()).lowercased()
}

/// Python's str.title(): upper-case a cased character after an uncased one, lower-case the rest.
func pythonTitle(_ s: String) -> String {
    var out = ""
    var prevCased = false
    for c in s.unicodeScalars {
        out += prevCased ? String(c).lowercased() : String(c).uppercased()
        prevCased = c.properties.isCased
    }
    return out
}
