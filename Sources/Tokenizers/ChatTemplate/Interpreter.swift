#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A variable scope. Each `for` iteration and each macro call gets a fresh one whose parent
/// is the enclosing scope, as in jinja2 (so `set` inside a loop does not leak out of it).
final class Scope {
    var vars: [String: Value] = [:]
    let parent: Scope?

    init(parent: Scope?) { self.parent = parent }

    func lookup(_ name: String) -> Value? {
        var s: Scope? = self
        while let cur = s {
            if let v = cur.vars[name] { return v }
            s = cur.parent
        }
        return nil
    }
}

struct Macro {
    let definition: MacroDefinition
    let scope: Scope
    var name: String { definition.name }
}

/// Arguments of a call, filter or test after evaluation (`*args`/`**kwargs` spread).
struct CallArgs {
    var positional: [Value] = []
    var keyword: [(String, Value)] = []

    func value(_ index: Int, _ name: String) -> Value? {
        if index < positional.count { return positional[index] }
        return keyword.first { $0.0 == name }?.1
    }
}

/// Limits that keep hostile or broken templates from running away.
enum RenderLimits {
    static let maxCallDepth = 24
    static let maxOutputBytes = 16 << 20
    static let maxIterations = 5_000_000
    static let maxRange = 100_000
    static let maxValueNesting = 100
}

enum Flow { case normal, breakLoop, continueLoop }

final class Renderer {
    let root: Scope
    var callDepth = 0
    var iterations = 0

    init(context: [String: TemplateValue]) {
        root = Scope(parent: nil)
        for name in ["raise_exception", "strftime_now", "namespace", "range", "dict"] {
            root.vars[name] = .callable(.global(name))
        }
        for (k, v) in context { root.vars[k] = Value(v) }
    }

    // MARK: - Statements

    func render(_ nodes: [Node]) throws(ChatTemplateError) -> String {
        var out = ""
        _ = try exec(nodes, root, &out)
        return out
    }

    private func emit(_ s: String, _ out: inout String, _ pos: SourcePos) throws(ChatTemplateError) {
        out += s
        if out.utf8.count > RenderLimits.maxOutputBytes {
            throw ChatTemplateError(.runtime, "output exceeds \(RenderLimits.maxOutputBytes) bytes", at: pos)
        }
    }

    func exec(_ nodes: [Node], _ scope: Scope, _ out: inout String) throws(ChatTemplateError) -> Flow {
        for node in nodes {
            switch node {
            case .text(let s):
                try emit(s, &out, .unknown)
            case .output(let e):
                let v = try eval(e, scope)
                try emit(v.str, &out, e.pos)
            case .ifChain(let branches, let otherwise):
                var taken = false
                for b in branches where try eval(b.test, scope).truthy {
                    taken = true
                    let f = try exec(b.body, scope, &out)
                    if f != .normal { return f }
                    break
                }
                if !taken {
                    let f = try exec(otherwise, scope, &out)
                    if f != .normal { return f }
                }
            case .forLoop(let target, let iterable, let condition, let body, let otherwise, let pos):
                try execFor(target, iterable, condition, body, otherwise, pos, scope, &out)
            case .set(let target, let expr, let pos):
                let v = try eval(expr, scope)
                try assign(target, v, scope, pos)
            case .setBlock(let name, let filters, let body, _):
                var captured = ""
                _ = try exec(body, scope, &captured)
                var v = Value.string(captured)
                for f in filters {
                    v = try applyFilter(f.name, v, try evalArgs(f.args, scope), f.pos)
                }
                scope.vars[name] = v
            case .macro(let def):
                scope.vars[def.name] = .callable(.macro(Macro(definition: def, scope: scope)))
            case .filterBlock(let filters, let body):
                var captured = ""
                let f = try exec(body, scope, &captured)
                var v = Value.string(captured)
                for fc in filters {
                    v = try applyFilter(fc.name, v, try evalArgs(fc.args, scope), fc.pos)
                }
                try emit(v.str, &out, .unknown)
                if f != .normal { return f }
            case .breakLoop:
                return .breakLoop
            case .continueLoop:
                return .continueLoop
            }
        }
        return .normal
    }

    private func assign(_ target: AssignTarget, _ v: Value, _ scope: Scope, _ pos: SourcePos) throws(ChatTemplateError) {
        switch target {
        case .name(let n):
            scope.vars[n] = v
        case .many(let targets):
            let items = try iterate(v, pos)
            guard items.count == targets.count else {
                throw ChatTemplateError(.runtime, items.count < targets.count
                    ? "not enough values to unpack (expected \(targets.count), got \(items.count))"
                    : "too many values to unpack (expected \(targets.count))", at: pos)
            }
            for (t, item) in zip(targets, items) { try assign(t, item, scope, pos) }
        case .attribute(let object, let attribute):
            guard let obj = scope.lookup(object), case .namespace(let ns) = obj else {
                throw ChatTemplateError(.runtime, "cannot assign attribute on non-namespace object '\(object)'", at: pos)
            }
            // A namespace is the only state that carries across loop iterations, so it is where
            // values could nest without bound (`set ns.x = [ns.x]`); printing or freeing such a
            // value would recurse that deep.
            if Self.exceedsNesting(v, limit: RenderLimits.maxValueNesting) {
                throw ChatTemplateError(.runtime, "value nests deeper than \(RenderLimits.maxValueNesting) levels", at: pos)
            }
            ns.attributes[attribute] = v
        }
    }

    /// True when containers in `v` nest deeper than `limit` (visits at most `limit` levels).
    static func exceedsNesting(_ v: Value, limit: Int) -> Bool {
        if limit < 0 { return true }
        switch v {
        case .array(let a), .tuple(let a), .iterator(let a, _):
            return a.contains { exceedsNesting($0, limit: limit - 1) }
        case .dict(let d):
            return d.pairs.contains { exceedsNesting($0.1, limit: limit - 1) }
        case .namespace(let ns):
            return ns.attributes.pairs.contains { exceedsNesting($0.1, limit: limit - 1) }
        default:
            return false
        }
    }

    private func execFor(_ target: AssignTarget, _ iterable: Expr, _ condition: Expr?, _ body: [Node], _ otherwise: [Node],
                         _ pos: SourcePos, _ scope: Scope, _ out: inout String) throws(ChatTemplateError) {
        let source = try eval(iterable, scope)
        var items = try iterate(source, iterable.pos)
        if let condition {
            var kept: [Value] = []
            for item in items {
                let s = Scope(parent: scope)
                try assign(target, item, s, pos)
                if try eval(condition, s).truthy { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            _ = try exec(otherwise, scope, &out)
            return
        }
        let n = items.count
        for (idx, item) in items.enumerated() {
            iterations += 1
            if iterations > RenderLimits.maxIterations {
                throw ChatTemplateError(.runtime, "more than \(RenderLimits.maxIterations) loop iterations", at: pos)
            }
            let s = Scope(parent: scope)
            var loop = OrderedDict()
            loop["index"] = .int(idx + 1)
            loop["index0"] = .int(idx)
            loop["revindex"] = .int(n - idx)
            loop["revindex0"] = .int(n - idx - 1)
            loop["first"] = .bool(idx == 0)
            loop["last"] = .bool(idx == n - 1)
            loop["length"] = .int(n)
            loop["depth"] = .int(1)
            loop["depth0"] = .int(0)
            loop["previtem"] = idx > 0 ? items[idx - 1] : .undefined(hint: "there is no previous item")
            loop["nextitem"] = idx < n - 1 ? items[idx + 1] : .undefined(hint: "there is no next item")
            loop["cycle"] = .callable(.loopCycle(idx))
            s.vars["loop"] = .dict(loop)
            try assign(target, item, s, pos)
            let f = try exec(body, s, &out)
            if f == .breakLoop { break }
        }
    }

    // MARK: - Expressions

    func undefinedError(_ v: Value, _ pos: SourcePos) -> ChatTemplateError {
        if case .undefined(let hint) = v { return ChatTemplateError(.runtime, hint, at: pos) }
        return ChatTemplateError(.runtime, "value is undefined", at: pos)
    }

    func eval(_ e: Expr, _ scope: Scope) throws(ChatTemplateError) -> Value {
        switch e {
        case .constant(let c, _):
            return Value(c)
        case .name(let n, _):
            return scope.lookup(n) ?? .undefined(hint: "'\(n)' is undefined")
        case .list(let items, _):
            var out: [Value] = []
            for i in items { out.append(try eval(i, scope)) }
            return .array(out)
        case .tuple(let items, _):
            var out: [Value] = []
            for i in items { out.append(try eval(i, scope)) }
            return .tuple(out)
        case .dict(let entries, _):
            var d = OrderedDict()
            for entry in entries {
                let k = try eval(entry.key, scope)
                guard let key = DictKey(k) else {
                    throw ChatTemplateError(.unsupported, "dict keys must be strings or integers, found \(k.typeName)", at: entry.key.pos)
                }
                d[key] = try eval(entry.value, scope)
            }
            return .dict(d)
        case .attribute(let obj, let name, let pos):
            let o = try eval(obj, scope)
            if o.isUndefined { throw undefinedError(o, pos) }
            return getAttribute(o, name)
        case .item(let obj, let key, let pos):
            let o = try eval(obj, scope)
            if o.isUndefined { throw undefinedError(o, pos) }
            return try getItem(o, try eval(key, scope), pos)
        case .slice(let obj, let start, let stop, let step, let pos):
            let o = try eval(obj, scope)
            if o.isUndefined { throw undefinedError(o, pos) }
            return try slice(o, start.map { e throws(ChatTemplateError) in try eval(e, scope) },
                             stop.map { e throws(ChatTemplateError) in try eval(e, scope) },
                             step.map { e throws(ChatTemplateError) in try eval(e, scope) }, pos)
        case .call(let callee, let args, let pos):
            let f = try eval(callee, scope)
            return try call(f, try evalArgs(args, scope), pos)
        case .filter(let subject, let name, let args, let pos):
            if name == "default" || name == "d" {
                // default must see an undefined subject without failing on it.
                let v = try eval(subject, scope)
                return try applyFilter(name, v, try evalArgs(args, scope), pos)
            }
            return try applyFilter(name, try eval(subject, scope), try evalArgs(args, scope), pos)
        case .test(let subject, let name, let args, let negated, let pos):
            let r = try applyTest(name, try eval(subject, scope), try evalArgs(args, scope), pos)
            return .bool(negated ? !r : r)
        case .not(let x, _):
            return .bool(!(try eval(x, scope).truthy))
        case .negate(let x, let pos):
            let v = try eval(x, scope)
            switch v {
            case .int(let i):
                let (r, o) = (0).subtractingReportingOverflow(i)
                if o { throw ChatTemplateError(.runtime, "integer overflow", at: pos) }
                return .int(r)
            case .bool(let b): return .int(b ? -1 : 0)
            case .double(let d): return .double(-d)
            case .undefined: throw undefinedError(v, pos)
            default: throw ChatTemplateError(.runtime, "bad operand type for unary -: '\(v.typeName)'", at: pos)
            }
        case .plus(let x, let pos):
            let v = try eval(x, scope)
            switch v {
            case .int, .double: return v
            case .bool(let b): return .int(b ? 1 : 0)
            case .undefined: throw undefinedError(v, pos)
            default: throw ChatTemplateError(.runtime, "bad operand type for unary +: '\(v.typeName)'", at: pos)
            }
        case .binary(let op, let l, let r, let pos):
            let a = try eval(l, scope)
            let b = try eval(r, scope)
            return try binary(op, a, b, pos)
        case .and(let l, let r, _):
            let a = try eval(l, scope)
            return a.truthy ? try eval(r, scope) : a
        case .or(let l, let r, _):
            let a = try eval(l, scope)
            return a.truthy ? a : try eval(r, scope)
        case .compare(let first, let ops, let pos):
            var left = try eval(first, scope)
            for op in ops {
                let right = try eval(op.rhs, scope)
                if !(try compare(op.op, left, right, pos)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let test, let then, let otherwise, _):
            if try eval(test, scope).truthy { return try eval(then, scope) }
            if let otherwise { return try eval(otherwise, scope) }
            return .undefined(hint: "the inline if-expression evaluated to false and no else section was defined")
        }
    }

    func evalArgs(_ args: [Argument], _ scope: Scope) throws(ChatTemplateError) -> CallArgs {
        var out = CallArgs()
        for a in args {
            let v = try eval(a.value, scope)
            switch a.kind {
            case .positional: out.positional.append(v)
            case .keyword: out.keyword.append((a.name ?? "", v))
            case .star: out.positional.append(contentsOf: try iterate(v, a.value.pos))
            case .doubleStar:
                guard case .dict(let d) = v else {
                    throw ChatTemplateError(.runtime, "argument after ** must be a mapping, not \(v.typeName)", at: a.value.pos)
                }
                out.keyword.append(contentsOf: d.stringPairs)
            }
        }
        return out
    }

    // MARK: - Access

    static let stringMethods: Set<String> = [
        "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith", "upper", "lower",
        "title", "capitalize", "swapcase", "replace", "find", "rfind", "index", "rindex", "count", "format", "join",
        "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper", "isnumeric", "isdecimal",
        "zfill", "ljust", "rjust", "center", "removeprefix", "removesuffix", "partition", "rpartition", "casefold",
    ]
    static let dictMethods: Set<String> = ["items", "keys", "values", "get", "copy"]
    static let listMethods: Set<String> = ["index", "count", "copy"]
    /// Methods ImmutableSandboxedEnvironment refuses: they exist but may not be called.
    static let mutatingDictMethods: Set<String> = ["clear", "pop", "popitem", "setdefault", "update"]
    static let mutatingListMethods: Set<String> = ["append", "clear", "pop", "reverse", "insert", "sort", "extend", "remove"]

    /// jinja2's `environment.getattr`: the Python attribute first, then the item.
    func getAttribute(_ o: Value, _ name: String) -> Value {
        switch o {
        case .string, .markup:
            if Self.stringMethods.contains(name) { return .callable(.method(receiver: o, name: name)) }
        case .dict(let d):
            if Self.dictMethods.contains(name) { return .callable(.method(receiver: o, name: name)) }
            if Self.mutatingDictMethods.contains(name) {
                return .undefined(hint: "access to attribute '\(name)' of 'dict' object is unsafe.")
            }
            if let v = d[name] { return v }
            return .undefined(hint: "'dict object' has no attribute '\(name)'")
        case .array, .tuple:
            if Self.listMethods.contains(name) { return .callable(.method(receiver: o, name: name)) }
            if case .array = o, Self.mutatingListMethods.contains(name) {
                return .undefined(hint: "access to attribute '\(name)' of 'list' object is unsafe.")
            }
        case .namespace(let ns):
            if let v = ns.attributes[name] { return v }
        default:
            break
        }
        return .undefined(hint: "'\(o.typeName) object' has no attribute '\(name)'")
    }

    /// jinja2's `environment.getitem`: the item first, then (for a string key) the attribute.
    func getItem(_ object: Value, _ keyValue: Value, _ pos: SourcePos) throws(ChatTemplateError) -> Value {
        let o = object.plain, key = keyValue.plain
        switch (o, key) {
        case (.dict(let d), _):
            if let k = DictKey(key), let v = d[k] { return v }
        case (.array(let a), _), (.tuple(let a), _):
            if let i = intValue(key) {
                let j = i < 0 ? i + a.count : i
                if j >= 0 && j < a.count { return a[j] }
                return .undefined(hint: "list index out of range")
            }
        case (.string(let s), _):
            if let i = intValue(key) {
                let scalars = Array(s.unicodeScalars)
                let j = i < 0 ? i + scalars.count : i
                if j >= 0 && j < scalars.count { return .string(String(scalars[j])) }
                return .undefined(hint: "string index out of range")
            }
        case (.namespace(let ns), .string(let k)):
            if let v = ns.attributes[k] { return v }
        default:
            break
        }
        if case .string(let k) = key { return getAttribute(o, k) }
        return .undefined(hint: "'\(o.typeName) object' has no attribute '\(key.str)'")
    }

    func intValue(_ v: Value) -> Int? {
        switch v {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    func slice(_ o: Value, _ start: Value?, _ stop: Value?, _ step: Value?, _ pos: SourcePos) throws(ChatTemplateError) -> Value {
        func bound(_ v: Value?) throws(ChatTemplateError) -> Int? {
            guard let v, !v.isNone else { return nil }
            guard let i = intValue(v) else {
                throw ChatTemplateError(.runtime, "slice indices must be integers or None", at: pos)
            }
            return i
        }
        let st = try bound(step) ?? 1
        if st == 0 { throw ChatTemplateError(.runtime, "slice step cannot be zero", at: pos) }
        func indices(_ count: Int) throws(ChatTemplateError) -> [Int] {
            var lo = try bound(start)
            var hi = try bound(stop)
            if st > 0 {
                var a = lo ?? 0, b = hi ?? count
                if a < 0 { a = max(0, a + count) } else { a = min(a, count) }
                if b < 0 { b = max(0, b + count) } else { b = min(b, count) }
                lo = a; hi = b
                return a < b ? Array(stride(from: a, to: b, by: st)) : []
            } else {
                var a = lo ?? count - 1, b = hi ?? -1
                if lo != nil { if a < 0 { a = max(-1, a + count) } else { a = min(a, count - 1) } }
                if hi != nil { if b < 0 { b = max(-1, b + count) } else { b = min(b, count - 1) } }
                return a > b ? Array(stride(from: a, to: b, by: st)) : []
            }
        }
        switch o {
        case .array(let a):
            return .array(try indices(a.count).map { a[$0] })
        case .tuple(let a):
            return .tuple(try indices(a.count).map { a[$0] })
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            var out = String.UnicodeScalarView()
            for i in try indices(scalars.count) { out.append(scalars[i]) }
            return .string(String(out))
        case .markup(let s):
            return try slice(.string(s), start, stop, step, pos)
        default:
            // jinja2 compiles a slice to a plain Python subscript, so this is a TypeError.
            throw ChatTemplateError(.runtime, "'\(o.typeName)' object is not subscriptable", at: pos)
        }
    }

    /// Items of a for loop or a `*` spread: list items, dict keys, string characters.
    func iterate(_ v: Value, _ pos: SourcePos) throws(ChatTemplateError) -> [Value] {
        switch v {
        case .undefined: return []
        case .array(let a), .tuple(let a): return a
        case .dict(let d): return d.keys.map(\.value)
        case .string(let s), .markup(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .iterator(let items, _): return items
        case .namespace(let ns): return ns.attributes.keys.map(\.value)
        default: throw ChatTemplateError(.runtime, "'\(v.typeName)' object is not iterable", at: pos)
        }
    }

    // MARK: - Calls

    func call(_ f: Value, _ args: CallArgs, _ pos: SourcePos) throws(ChatTemplateError) -> Value {
        switch f {
        case .undefined: throw undefinedError(f, pos)
        case .callable(let c):
            switch c {
            case .global(let name): return try callGlobal(name, args, pos)
            case .macro(let m): return try callMacro(m, args, pos)
            case .method(let receiver, let name): return try callMethod(receiver, name, args, pos)
            case .loopCycle(let index):
                guard !args.positional.isEmpty else { throw ChatTemplateError(.runtime, "no items for cycling given", at: pos) }
                return args.positional[index % args.positional.count]
            }
        default:
            throw ChatTemplateError(.runtime, "'\(f.typeName)' object is not callable", at: pos)
        }
    }

    func callMacro(_ m: Macro, _ args: CallArgs, _ pos: SourcePos) throws(ChatTemplateError) -> Value {
        let def = m.definition
        guard callDepth < RenderLimits.maxCallDepth else {
            throw ChatTemplateError(.runtime, "macro calls nest deeper than \(RenderLimits.maxCallDepth)", at: pos)
        }
        let s = Scope(parent: m.scope)
        var varargs: [Value] = []
        for (i, v) in args.positional.enumerated() {
            if i < def.params.count { s.vars[def.params[i]] = v } else { varargs.append(v) }
        }
        var kwargs = OrderedDict()
        for (k, v) in args.keyword {
            if def.params.contains(k) {
                if s.vars[k] != nil { throw ChatTemplateError(.runtime, "macro '\(def.name)' got multiple values for argument '\(k)'", at: pos) }
                s.vars[k] = v
            } else {
                kwargs[k] = v
            }
        }
        for (i, p) in def.params.enumerated() where s.vars[p] == nil {
            if let d = def.defaults[i] {
                s.vars[p] = try eval(d, s)
            } else {
                s.vars[p] = .undefined(hint: "parameter '\(p)' was not provided")
            }
        }
        if !varargs.isEmpty {
            throw ChatTemplateError(.runtime, "macro '\(def.name)' takes not more than \(def.params.count) argument(s)", at: pos)
        }
        if let k = kwargs.keys.first {
            throw ChatTemplateError(.runtime, "macro '\(def.name)' takes no keyword argument '\(k)'", at: pos)
        }
        s.vars["varargs"] = .tuple([])
        s.vars["kwargs"] = .dict(OrderedDict())
        callDepth += 1
        defer { callDepth -= 1 }
        var out = ""
        _ = try exec(def.body, s, &out)
        return .string(out)
    }

    func callGlobal(_ name: String, _ args: CallArgs, _ pos: SourcePos) throws(ChatTemplateError) -> Value {
        switch name {
        case "raise_exception":
            let msg = args.value(0, "message")?.str ?? ""
            throw ChatTemplateError(.raised, msg, at: pos)
        case "strftime_now":
            let fmt = args.value(0, "format")?.str ?? ""
            return .string(strftimeNow(fmt))
        case "namespace":
            var d = OrderedDict()
            for p in args.positional {
                guard case .dict(let init0) = p else {
                    throw ChatTemplateError(.runtime, "namespace() takes a dict, not \(p.typeName)", at: pos)
                }
                for (k, v) in init0.pairs { d[k] = v }
            }
            for (k, v) in args.keyword { d[k] = v }
            return .namespace(Namespace(d))
        case "dict":
            var d = OrderedDict()
            for p in args.positional {
                guard case .dict(let init0) = p else {
                    throw ChatTemplateError(.runtime, "dict() takes a dict, not \(p.typeName)", at: pos)
                }
                for (k, v) in init0.pairs { d[k] = v }
            }
            for (k, v) in args.keyword { d[k] = v }
            return .dict(d)
        case "range":
            var ints: [Int] = []
            for p in args.positional {
                guard let i = intValue(p) else {
                    throw ChatTemplateError(.runtime, "'\(p.typeName)' object cannot be interpreted as an integer", at: pos)
                }
                ints.append(i)
            }
            let (lo, hi, step): (Int, Int, Int)
            switch ints.count {
            case 1: (lo, hi, step) = (0, ints[0], 1)
            case 2: (lo, hi, step) = (ints[0], ints[1], 1)
            case 3: (lo, hi, step) = (ints[0], ints[1], ints[2])
            default: throw ChatTemplateError(.runtime, "range expected 1 to 3 arguments, got \(ints.count)", at: pos)
            }
            if step == 0 { throw ChatTemplateError(.runtime, "range() arg 3 must not be zero", at: pos) }
            let count: Int
            if step > 0 { count = lo < hi ? (hi.subtractingReportingOverflow(lo).partialValue - 1) / step + 1 : 0 }
            else { count = lo > hi ? (lo.subtractingReportingOverflow(hi).partialValue - 1) / (-step) + 1 : 0 }
            if count > RenderLimits.maxRange || count < 0 {
                throw ChatTemplateError(.runtime, "range too big, maximum size for range is \(RenderLimits.maxRange)", at: pos)
            }
            return .array((0..<count).map { .int(lo + $0 * step) })
        default:
            throw ChatTemplateError(.runtime, "'\(name)' is not callable", at: pos)
        }
    }

    func strftimeNow(_ pythonFormat: String) -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = tv.tv_sec
        var tmv = tm()
        localtime_r(&t, &tmv)
        // Python's strftime adds %f (microseconds) to the C directives.
        var format = ""
        var it = pythonFormat.unicodeScalars.makeIterator()
        while let c = it.next() {
            guard c == "%" else { format.unicodeScalars.append(c); continue }
            guard let d = it.next() else { format += "%"; break }
            if d == "f" {
                let us = String(Int(tv.tv_usec))
                format += String(repeating: "0", count: max(0, 6 - us.count)) + us
            } else {
                format += "%"
                format.unicodeScalars.append(d)
            }
        }
        var buffer = [CChar](repeating: 0, count: 512)
        let n = strftime(&buffer, buffer.count, format, &tmv)
        let bytes = buffer[0..<n].map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
