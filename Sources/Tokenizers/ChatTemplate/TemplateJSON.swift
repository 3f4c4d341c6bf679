/// JSON in and out of TemplateValue, keeping object key order (chat templates print dicts
/// with `tojson`, so the order of a tool's keys is visible in the prompt).
extension TemplateValue {
    /// Parses JSON text. Integers that fit in Int become `.int`, other numbers `.double`.
    public static func parseJSON(_ text: String) throws(ChatTemplateError) -> TemplateValue {
        var p = JSONReader(Array(text.utf8))
        p.skipSpace()
        let v = try p.value(depth: 0)
        p.skipSpace()
        guard p.i == p.bytes.count else { throw p.fail("unexpected data after the JSON value") }
        return v
    }

    /// Compact JSON like Python's json.dumps(ensure_ascii=False) with the default separators.
    public var jsonText: String {
        let r = Renderer(context: [:])
        return (try? r.toJSON(Value(self), CallArgs(), .unknown)) ?? "null"
    }

    /// The value as a dict's ordered pairs, or nil when it is not a dict.
    public var objectPairs: [(String, TemplateValue)]? {
        guard case .object(let keys, let values) = self else { return nil }
        return keys.map { ($0, values[$0] ?? .none) }
    }

    public subscript(key: String) -> TemplateValue? {
        guard case .object(_, let values) = self else { return nil }
        return values[key]
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }
}

private struct JSONReader {
    let bytes: [UInt8]
    var i = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func fail(_ message: String) -> ChatTemplateError {
        ChatTemplateError(.syntax, "JSON: \(message) at byte \(i)")
    }

    mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    mutating func literal(_ word: String, _ v: TemplateValue) throws(ChatTemplateError) -> TemplateValue {
        let w = Array(word.utf8)
        guard i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w else { throw fail("invalid literal") }
        i += w.count
        return v
    }

    mutating func value(depth: Int) throws(ChatTemplateError) -> TemplateValue {
        guard depth < 200 else { throw fail("nesting too deep") }
        guard i < bytes.count else { throw fail("unexpected end") }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            i += 1
            var keys: [String] = []
            var values: [String: TemplateValue] = [:]
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(keys: [], values: [:]) }
            while true {
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let k = try string()
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                i += 1
                skipSpace()
                let v = try value(depth: depth + 1)
                if values.updateValue(v, forKey: k) == nil { keys.append(k) }
                skipSpace()
                guard i < bytes.count else { throw fail("unexpected end") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(keys: keys, values: values) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            i += 1
            var items: [TemplateValue] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array([]) }
            while true {
                skipSpace()
                items.append(try value(depth: depth + 1))
                skipSpace()
                guard i < bytes.count else { throw fail("unexpected end") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .none)
        default:
            let start = i
            while i < bytes.count, let c = Optional(bytes[i]),
                  c == UInt8(ascii: "-") || c == UInt8(ascii: "+") || c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") || (c >= 0x30 && c <= 0x39) {
                i += 1
            }
            let text = String(decoding: bytes[start..<i], as: UTF8.self)
            guard !text.isEmpty else { throw fail("unexpected character") }
            if !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let n = Int(text) { return .int(n) }
            guard let d = Double(text) else { throw fail("bad number '\(text)'") }
            return .double(d)
        }
    }

    mutating func hex4() throws(ChatTemplateError) -> UInt32 {
        guard i + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16) else {
            throw fail("bad \\u escape")
        }
        i += 4
        return v
    }

    mutating func string() throws(ChatTemplateError) -> String {
        i += 1
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let c = bytes[i]
            i += 1
            if c == UInt8(ascii: "\"") { break }
            if c != UInt8(ascii: "\\") { out.append(c); continue }
            guard i < bytes.count else { throw fail("unterminated string") }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "/"), UInt8(ascii: "\\"), UInt8(ascii: "\""): out.append(e)
            case UInt8(ascii: "u"):
                var v = try hex4()
                if (0xD800..<0xDC00).contains(v), i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") {
                    i += 2
                    let lo = try hex4()
                    if (0xDC00..<0xE000).contains(lo) { v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00) } else { throw fail("bad surrogate pair") }
                }
                guard let s = Unicode.Scalar(v) else { throw fail("lone surrogate in \\u escape") }
                out.append(contentsOf: Array(String(s).utf8))
            default: throw fail("bad escape")
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
