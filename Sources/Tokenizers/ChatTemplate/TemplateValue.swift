/// A value passed into or produced by a chat template: the JSON-like data model of
/// jinja2 (Python's None, bool, int, float, str, list and insertion-ordered dict).
public indirect enum TemplateValue: Sendable, Equatable {
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([TemplateValue])
    /// A dict whose `keys` keep insertion order; `values` holds one entry per key.
    case object(keys: [String], values: [String: TemplateValue])

    /// A dict from ordered pairs; a repeated key keeps its first position and last value.
    public static func dict(_ pairs: [(String, TemplateValue)]) -> TemplateValue {
        var keys: [String] = []
        var values: [String: TemplateValue] = [:]
        for (k, v) in pairs {
            if values[k] == nil { keys.append(k) }
            values[k] = v
        }
        return .object(keys: keys, values: values)
    }
}

// MARK: - Runtime values

/// A dict key: Python dicts in templates are keyed by strings, sometimes by integers.
enum DictKey: Hashable {
    case string(String)
    case int(Int)

    init?(_ v: Value) {
        switch v {
        case .string(let s): self = .string(s)
        case .int(let i): self = .int(i)
        case .bool(let b): self = .int(b ? 1 : 0)
        case .double(let d):
            guard let i = Int(exactly: d) else { return nil }
            self = .int(i)
        default: return nil
        }
    }

    var value: Value {
        switch self {
        case .string(let s): return .string(s)
        case .int(let i): return .int(i)
        }
    }

    /// The key as JSON writes it (json.dumps turns int keys into strings).
    var text: String {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        }
    }
}

/// An insertion-ordered dict.
struct OrderedDict {
    private(set) var keys: [DictKey] = []
    private(set) var storage: [DictKey: Value] = [:]

    init() {}
    init(_ pairs: [(String, Value)]) {
        for (k, v) in pairs { self[k] = v }
    }

    var count: Int { keys.count }
    var isEmpty: Bool { keys.isEmpty }

    subscript(key: DictKey) -> Value? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    subscript(key: String) -> Value? {
        get { self[DictKey.string(key)] }
        set { self[DictKey.string(key)] = newValue }
    }

    var pairs: [(DictKey, Value)] { keys.map { ($0, storage[$0] ?? .none) } }

    /// Pairs with string keys only (keyword arguments, namespace attributes).
    var stringPairs: [(String, Value)] { pairs.map { ($0.0.text, $0.1) } }
}

/// A `namespace()` object: the one mutable value templates can assign attributes on.
final class Namespace {
    var attributes: OrderedDict
    init(_ attributes: OrderedDict) { self.attributes = attributes }
}

/// Something callable: a global function, a macro, a bound method, `loop.cycle`.
enum Callable {
    case global(String)
    case macro(Macro)
    case method(receiver: Value, name: String)
    /// `loop.cycle` of the iteration with this 0-based index.
    case loopCycle(Int)
}

enum IteratorKind {
    case generator, reverseIterator, dictItems, dictKeys, dictValues

    var typeName: String {
        switch self {
        case .generator: return "generator"
        case .reverseIterator: return "list_reverseiterator"
        case .dictItems: return "dict_items"
        case .dictKeys: return "dict_keys"
        case .dictValues: return "dict_values"
        }
    }

    var isView: Bool {
        switch self {
        case .dictItems, .dictKeys, .dictValues: return true
        case .generator, .reverseIterator: return false
        }
    }
}

/// The interpreter's value: TemplateValue's cases plus jinja2's Undefined, tuples,
/// namespaces and callables.
indirect enum Value {
    /// jinja2's default Undefined; `hint` names what was missing, for error messages.
    case undefined(hint: String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([Value])
    case tuple([Value])
    case dict(OrderedDict)
    case namespace(Namespace)
    case callable(Callable)
    /// markupsafe's Markup (from `|safe`): prints as its text, but `+` escapes a plain
    /// string joined to it.
    case markup(String)
    /// A one-pass iterator or a dict view: what jinja2's map/select/reject/unique/reverse
    /// filters and dict.items()/keys()/values() return.
    case iterator([Value], IteratorKind)

    init(_ v: TemplateValue) {
        switch v {
        case .none: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let a): self = .array(a.map(Value.init))
        case .object(let keys, let values):
            var d = OrderedDict()
            for k in keys { d[k] = Value(values[k] ?? .none) }
            self = .dict(d)
        }
    }

    var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    var isNone: Bool {
        if case .none = self { return true }
        return false
    }

    /// Python truthiness (Undefined is false).
    var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .array(let a), .tuple(let a): return !a.isEmpty
        case .dict(let d): return !d.isEmpty
        case .namespace, .callable: return true
        case .markup(let s): return !s.isEmpty
        case .iterator(let items, let kind): return kind.isView ? !items.isEmpty : true
        }
    }

    /// A Markup as a plain string; other values unchanged.
    var plain: Value {
        if case .markup(let s) = self { return .string(s) }
        return self
    }

    var isMarkup: Bool {
        if case .markup = self { return true }
        return false
    }

    /// Python's type name, for error messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .array: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .markup: return "Markup"
        case .iterator(_, let kind): return kind.typeName
        case .callable(let c):
            switch c {
            case .macro: return "Macro"
            case .method: return "builtin_function_or_method"
            case .global, .loopCycle: return "function"
            }
        }
    }

    var isString: Bool {
        switch self {
        case .string, .markup: return true
        default: return false
        }
    }

    var asList: [Value]? {
        switch self {
        case .array(let a), .tuple(let a): return a
        default: return nil
        }
    }

    /// Python's str().
    var str: String {
        switch self {
        case .undefined: return ""
        case .string(let s), .markup(let s): return s
        default: return repr
        }
    }

    /// Python's repr().
    var repr: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return pythonFloatRepr(d)
        case .string(let s): return pythonStringRepr(s)
        case .array(let a): return "[" + a.map(\.repr).joined(separator: ", ") + "]"
        case .tuple(let a):
            if a.count == 1 { return "(" + a[0].repr + ",)" }
            return "(" + a.map(\.repr).joined(separator: ", ") + ")"
        case .dict(let d):
            return "{" + d.pairs.map { $0.0.value.repr + ": " + $0.1.repr }.joined(separator: ", ") + "}"
        case .namespace(let n):
            return "<Namespace " + Value.dict(n.attributes).repr + ">"
        case .markup(let s): return "Markup(" + pythonStringRepr(s) + ")"
        case .iterator(let items, let kind):
            switch kind {
            case .dictItems, .dictKeys, .dictValues: return kind.typeName + "(" + Value.array(items).repr + ")"
            case .generator, .reverseIterator: return "<\(kind.typeName) object>"
            }
        case .callable(let c):
            switch c {
            case .macro(let m): return "<Macro '\(m.name)'>"
            case .method(_, let name): return "<built-in method \(name)>"
            case .global(let name): return "<function \(name)>"
            case .loopCycle: return "<function cycle>"
            }
        }
    }

    /// Converts back to the public data model (nil for undefined, namespaces and callables).
    var templateValue: TemplateValue? {
        switch self {
        case .undefined, .namespace, .callable, .iterator: return nil
        case .markup(let s): return .string(s)
        case .none: return TemplateValue.none
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .string(let s): return .string(s)
        case .array(let a), .tuple(let a):
            var out: [TemplateValue] = []
            for v in a {
                guard let t = v.templateValue else { return nil }
                out.append(t)
            }
            return .array(out)
        case .dict(let d):
            var values: [String: TemplateValue] = [:]
            var keys: [String] = []
            for (k, v) in d.pairs {
                guard let t = v.templateValue else { return nil }
                if values.updateValue(t, forKey: k.text) == nil { keys.append(k.text) }
            }
            return .object(keys: keys, values: values)
        }
    }
}

// MARK: - Python formatting helpers

func pythonFloatRepr(_ d: Double) -> String {
    if d.isNaN { return "nan" }
    if d.isInfinite { return d < 0 ? "-inf" : "inf" }
    // Swift's description is the shortest round-trip form, like Python's repr, and
    // switches to exponent form at the same thresholds (1e16, 1e-5).
    var s = d.description
    if let e = s.firstIndex(of: "e") {
        // Python writes at least two exponent digits: 1e-05, 1e+16.
        var mantissa = String(s[s.startIndex..<e])
        var exp = String(s[s.index(after: e)...])
        if mantissa.hasSuffix(".0") { mantissa.removeLast(2) }
        var sign = "+"
        if exp.hasPrefix("-") { sign = "-"; exp.removeFirst() } else if exp.hasPrefix("+") { exp.removeFirst() }
        if exp.count < 2 { exp = "0" + exp }
        s = mantissa + "e" + sign + exp
    }
    return s
}

func pythonStringRepr(_ s: String) -> String {
    let hasSingle = s.unicodeScalars.contains("'")
    let hasDouble = s.unicodeScalars.contains("\"")
    let quote: Unicode.Scalar = (hasSingle && !hasDouble) ? "\"" : "'"
    var out = String(quote)
    for c in s.unicodeScalars {
        switch c {
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if c == quote {
                out += "\\" + String(c)
            } else if c.value < 0x20 || c.value == 0x7F {
                out += "\\x" + hex(c.value, width: 2)
            } else if (0x80...0xA0).contains(c.value) || c.value == 0xAD {
                out += "\\x" + hex(c.value, width: 2)
            } else if c.properties.generalCategory == .lineSeparator || c.properties.generalCategory == .paragraphSeparator
                        || c.properties.generalCategory == .control || c.properties.generalCategory == .unassigned
                        || c.properties.generalCategory == .surrogate || c.properties.generalCategory == .privateUse
                        || (c.properties.generalCategory == .spaceSeparator && c != " ") || c.properties.generalCategory == .format {
                out += c.value <= 0xFFFF ? "\\u" + hex(c.value, width: 4) : "\\U" + hex(c.value, width: 8)
            } else {
                out.unicodeScalars.append(c)
            }
        }
    }
    out.unicodeScalars.append(quote)
    return out
}

func hex(_ v: UInt32, width: Int) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, width - s.count)) + s
}
