/// Finds the raw bytes of a value inside a JSON document, so that an embedded JSON schema
/// keeps its key order (decoding through Foundation would lose it).
enum RawJSON {
    /// The bytes of the value at `path` (object keys), or nil when absent or the document is not valid JSON.
    static func value(at path: [String], in bytes: [UInt8]) -> [UInt8]? {
        var i = 0
        return find(path[...], bytes, &i, depth: 0)
    }

    private static func skipSpace(_ b: [UInt8], _ i: inout Int) {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0a || b[i] == 0x0d || b[i] == 0x09 { i += 1 }
    }

    private static func find(_ path: ArraySlice<String>, _ b: [UInt8], _ i: inout Int, depth: Int) -> [UInt8]? {
        skipSpace(b, &i)
        guard let first = path.first else {
            let start = i
            guard skipValue(b, &i, depth: depth) else { return nil }
            return Array(b[start..<i])
        }
        guard i < b.count, b[i] == UInt8(ascii: "{") else { return nil }
        i += 1
        while true {
            skipSpace(b, &i)
            if i < b.count, b[i] == UInt8(ascii: "}") { return nil }
            guard let key = readString(b, &i) else { return nil }
            skipSpace(b, &i)
            guard i < b.count, b[i] == UInt8(ascii: ":") else { return nil }
            i += 1
            if key == first { return find(path.dropFirst(), b, &i, depth: depth + 1) }
            skipSpace(b, &i)
            guard skipValue(b, &i, depth: depth + 1) else { return nil }
            skipSpace(b, &i)
            guard i < b.count else { return nil }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            return nil
        }
    }

    private static func readString(_ b: [UInt8], _ i: inout Int) -> String? {
        let start = i
        guard skipString(b, &i) else { return nil }
        // Keys are compared after JSON unescaping only for the simple case; escaped keys never match.
        let raw = b[(start + 1)..<(i - 1)]
        if raw.contains(UInt8(ascii: "\\")) { return "\u{0}" }
        return String(decoding: raw, as: UTF8.self)
    }

    private static func skipString(_ b: [UInt8], _ i: inout Int) -> Bool {
        guard i < b.count, b[i] == UInt8(ascii: "\"") else { return false }
        i += 1
        while i < b.count {
            if b[i] == UInt8(ascii: "\\") { i += 2; continue }
            if b[i] == UInt8(ascii: "\"") { i += 1; return true }
            i += 1
        }
        return false
    }

    private static func skipValue(_ b: [UInt8], _ i: inout Int, depth: Int) -> Bool {
        guard depth < 512, i < b.count else { return false }
        switch b[i] {
        case UInt8(ascii: "\""):
            return skipString(b, &i)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let close = b[i] == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            let isObject = b[i] == UInt8(ascii: "{")
            i += 1
            skipSpace(b, &i)
            if i < b.count, b[i] == close { i += 1; return true }
            while true {
                skipSpace(b, &i)
                if isObject {
                    guard skipString(b, &i) else { return false }
                    skipSpace(b, &i)
                    guard i < b.count, b[i] == UInt8(ascii: ":") else { return false }
                    i += 1
                    skipSpace(b, &i)
                }
                guard skipValue(b, &i, depth: depth + 1) else { return false }
                skipSpace(b, &i)
                guard i < b.count else { return false }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == close { i += 1; return true }
                return false
            }
        default:
            let start = i
            while i < b.count, !(b[i] == UInt8(ascii: ",") || b[i] == UInt8(ascii: "}") || b[i] == UInt8(ascii: "]")
                                  || b[i] == 0x20 || b[i] == 0x0a || b[i] == 0x0d || b[i] == 0x09) { i += 1 }
            return i > start
        }
    }
}

/// Splits generated text into reasoning (inside `<think>...</think>` at the start of the
/// answer) and content, across chunk boundaries.
struct ThinkSplitter {
    private enum Phase { case start, thinking, content }
    private var phase: Phase
    private var held = ""
    static let open = "<think>"
    static let close = "</think>"

    /// `insideThink`: the prompt already opened the think block (some templates do).
    init(insideThink: Bool = false) { phase = insideThink ? .thinking : .start }

    mutating func feed(_ text: String) -> (reasoning: String, content: String) {
        held += text
        var reasoning = "", content = ""
        while true {
            switch phase {
            case .start:
                let trimmed = held.drop { $0 == " " || $0 == "\n" }
                if trimmed.hasPrefix(Self.open) {
                    held = String(trimmed.dropFirst(Self.open.count))
                    phase = .thinking
                    continue
                }
                if Self.open.hasPrefix(String(trimmed)) && !trimmed.isEmpty || trimmed.isEmpty && !held.isEmpty {
                    return (reasoning, content) // could still become "<think>"
                }
                phase = .content
                continue
            case .thinking:
                if let r = held.range(of: Self.close) {
                    reasoning += held[..<r.lowerBound]
                    held = String(held[r.upperBound...].drop { $0 == "\n" })
                    phase = .content
                    continue
                }
                let keep = Self.partialSuffix(held, of: Self.close)
                reasoning += held.dropLast(keep)
                held = String(held.suffix(keep))
                return (reasoning, content)
            case .content:
                content += held
                held = ""
                return (reasoning, content)
            }
        }
    }

    mutating func finish() -> (reasoning: String, content: String) {
        defer { held = "" }
        switch phase {
        case .thinking: return (held, "")
        case .start, .content: return ("", held)
        }
    }

    /// Length of the longest suffix of `s` that is a proper prefix of `marker`.
    static func partialSuffix(_ s: String, of marker: String) -> Int {
        let m = Array(marker)
        let c = Array(s.suffix(m.count - 1))
        var n = min(c.count, m.count - 1)
        while n > 0 {
            if Array(c.suffix(n)) == Array(m.prefix(n)) { return n }
            n -= 1
        }
        return 0
    }
}
