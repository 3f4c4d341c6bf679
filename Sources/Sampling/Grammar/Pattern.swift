/// JSON Schema `pattern` (ECMA-262 / Python `re.search` semantics) for a
/// regular subset, compiled to a byte-level DFA over the string's raw UTF-8.
///
/// Supported: literal characters, `.`, classes `[...]` / `[^...]` with ASCII
/// ranges, `\d \w \s \D \W \S`, escaped metacharacters, groups `(...)` and
/// `(?:...)`, alternation `|`, quantifiers `* + ? {n} {n,} {n,m}` (a lazy `?`
/// suffix is accepted: it does not change which strings match), `^` as the
/// first and `$` as the last character. Anything else is an error.
///
/// The generated string never uses JSON escapes inside a pattern-constrained
/// string and never contains `"`, `\` or control characters; `\d`, `\w` and
/// `\s` produce only their ASCII members (digits, `[A-Za-z0-9_]`, space), `.`
/// and negated classes any other code point. Every produced string matches.
struct PatternDFA {
    /// next[state * 256 + byte]: the next state or -1; states that cannot
    /// reach acceptance are removed.
    var next: [Int32]
    var accepting: [Bool]
    var start: Int32
    var stateCount: Int { accepting.count }

    static let maximumNFAStates = 20_000
    static let maximumDFAStates = 2_000
    static let maximumRepeat = 1_000
    static let maximumGroupDepth = 32
}

private struct CharSet {
    var ascii = [Bool](repeating: false, count: 128)
    var nonASCII = false

    static func any() -> CharSet {
        var s = CharSet()
        for c in 0x20..<0x80 { s.ascii[c] = true }
        s.nonASCII = true
        return s
    }

    mutating func invert() {
        for c in 0..<128 { ascii[c].toggle() }
        nonASCII.toggle()
    }

    /// Drops what a raw JSON string cannot hold.
    mutating func sanitize() {
        for c in 0..<0x20 { ascii[c] = false }
        ascii[0x22] = false
        ascii[0x5C] = false
    }

    mutating func add(_ lo: UInt8, _ hi: UInt8) {
        if lo <= hi { for c in lo...hi { ascii[Int(c)] = true } }
    }
}

private indirect enum RegexNode {
    case chars(CharSet)
    case bytes([UInt8])
    case sequence([RegexNode])
    case alternation([RegexNode])
    case repeated(RegexNode, min: Int, max: Int?)
}

struct PatternCompiler {
    let path: String
    private let scalars: [Unicode.Scalar]
    private var i = 0

    init(pattern: String, path: String) {
        scalars = Array(pattern.unicodeScalars)
        self.path = path
    }

    private func error(_ message: String) -> GrammarError {
        .invalidSchema(path: path, message: "pattern: \(message) (at character \(i))")
    }

    static func compile(_ pattern: String, path: String) throws(GrammarError) -> PatternDFA {
        var p = PatternCompiler(pattern: pattern, path: path)
        return try p.run()
    }

    private mutating func run() throws(GrammarError) -> PatternDFA {
        var anchoredStart = false, anchoredEnd = false
        var body = scalars
        if body.first == "^" { anchoredStart = true; body.removeFirst(); i = 1 }
        if body.last == "$" {
            // Not when the dollar is escaped (an odd run of backslashes before it).
            var backslashes = 0
            var k = body.count - 2
            while k >= 0 && body[k] == "\\" { backslashes += 1; k -= 1 }
            if backslashes % 2 == 0 { anchoredEnd = true; body.removeLast() }
        }
        var sub = PatternCompiler(scalars: body, path: path, offset: anchoredStart ? 1 : 0)
        let node = try sub.alternation(depth: 0)
        guard sub.i == body.count else { throw sub.error("unexpected ')'") }
        if case let .alternation(alts) = node, alts.count > 1, anchoredStart || anchoredEnd {
            throw sub.error("'|' at the top level together with ^ or $ is not supported; use a group")
        }
        var parts: [RegexNode] = []
        if !anchoredStart { parts.append(.repeated(.chars(.any().sanitized()), min: 0, max: nil)) }
        parts.append(node)
        if !anchoredEnd { parts.append(.repeated(.chars(.any().sanitized()), min: 0, max: nil)) }
        return try build(.sequence(parts))
    }

    private init(scalars: [Unicode.Scalar], path: String, offset: Int) {
        self.scalars = scalars
        self.path = path
        self.offset = offset
    }

    private var offset = 0

    private var peek: Unicode.Scalar? { i < scalars.count ? scalars[i] : nil }

    private mutating func alternation(depth: Int) throws(GrammarError) -> RegexNode {
        guard depth <= PatternDFA.maximumGroupDepth else { throw error("groups nest too deeply") }
        var alts: [RegexNode] = [try sequence(depth: depth)]
        while peek == "|" {
            i += 1
            alts.append(try sequence(depth: depth))
        }
        return alts.count == 1 ? alts[0] : .alternation(alts)
    }

    private mutating func sequence(depth: Int) throws(GrammarError) -> RegexNode {
        var items: [RegexNode] = []
        while let c = peek, c != "|", c != ")" {
            var atom = try self.atom(depth: depth)
            while let q = peek {
                var lo = 0
                var hi: Int? = nil
                if q == "*" { i += 1 } else if q == "+" { i += 1; lo = 1 } else if q == "?" { i += 1; hi = 1 } else if q == "{" {
                    i += 1
                    lo = try number()
                    hi = lo
                    if peek == "," {
                        i += 1
                        hi = peek == "}" ? nil : try number()
                    }
                    guard peek == "}" else { throw error("expected '}' in a {n,m} quantifier") }
                    i += 1
                    if let h = hi, h < lo { throw error("{\(lo),\(h)}: max below min") }
                } else {
                    break
                }
                if peek == "?" { i += 1 }  // lazy: same language
                if peek == "+" { throw error("possessive quantifiers are not supported") }
                atom = .repeated(atom, min: lo, max: hi)
            }
            items.append(atom)
        }
        return items.count == 1 ? items[0] : .sequence(items)
    }

    private mutating func number() throws(GrammarError) -> Int {
        var n = 0
        var digits = 0
        while let c = peek, c.value >= 0x30 && c.value <= 0x39 {
            n = n * 10 + Int(c.value - 0x30)
            digits += 1
            i += 1
            guard n <= PatternDFA.maximumRepeat else { throw error("repeat count above \(PatternDFA.maximumRepeat)") }
        }
        guard digits > 0 else { throw error("expected a number in a quantifier") }
        return n
    }

    private mutating func atom(depth: Int) throws(GrammarError) -> RegexNode {
        guard let c = peek else { throw error("unexpected end") }
        i += 1
        switch c {
        case "(":
            if peek == "?" {
                guard i + 1 < scalars.count, scalars[i + 1] == ":" else {
                    throw error("only (?:...) groups are supported (no lookaround or named groups)")
                }
                i += 2
            }
            let inner = try alternation(depth: depth + 1)
            guard peek == ")" else { throw error("missing ')'") }
            i += 1
            return inner
        case "[":
            return .chars(try charClass())
        case ".":
            return .chars(CharSet.any().sanitized())
        case "\\":
            return try escape(inClass: false).node
        case "^", "$":
            throw error("'\(c)' is only supported as the first / last character")
        case "*", "+", "?", "{", "}", ")", "]":
            throw error("unexpected '\(c)'")
        default:
            return literal(c)
        }
    }

    private func literal(_ c: Unicode.Scalar) -> RegexNode {
        if c.value < 0x80 {
            var s = CharSet()
            s.ascii[Int(c.value)] = true
            return .chars(s.sanitized())
        }
        return .bytes(Array(String(Character(c)).utf8))
    }

    /// An escape after a backslash: a class (\d...) or one character.
    private mutating func escape(inClass: Bool) throws(GrammarError) -> (node: RegexNode, set: CharSet?, char: UInt8?) {
        guard let e = peek else { throw error("trailing backslash") }
        i += 1
        var s = CharSet()
        switch e {
        // The negated shorthands keep to ASCII: other code points may be
        // digits, word or space characters in Unicode-aware engines.
        case "d", "D":
            s.add(0x30, 0x39)
            if e == "D" { s.invert(); s.nonASCII = false }
        case "w", "W":
            s.add(0x30, 0x39); s.add(0x41, 0x5A); s.add(0x61, 0x7A); s.ascii[0x5F] = true
            if e == "W" { s.invert(); s.nonASCII = false }
        case "s", "S":
            s.ascii[0x20] = true
            if e == "S" { s.invert(); s.nonASCII = false }
        case "n", "t", "r", "f", "v", "0":
            // Control characters cannot appear raw in a JSON string.
            s = CharSet()
        default:
            let special: Set<Unicode.Scalar> = ["\\", ".", "*", "+", "?", "(", ")", "[", "]", "{", "}", "|", "^", "$", "-", "/", "\"", " "]
            guard special.contains(e) else { throw error("unsupported escape \\\(e)") }
            s.ascii[Int(e.value)] = true
            s.sanitize()
            return (.chars(s), nil, UInt8(e.value))
        }
        s.sanitize()
        return (.chars(s), s, nil)
    }

    private mutating func charClass() throws(GrammarError) -> CharSet {
        var s = CharSet()
        var negate = false
        if peek == "^" { negate = true; i += 1 }
        var first = true
        var hasShorthand = false
        while true {
            guard let c = peek else { throw error("missing ']'") }
            if c == "]" && !first { i += 1; break }
            first = false
            i += 1
            var lo: UInt8
            if c == "\\" {
                let e = try escape(inClass: true)
                if let set = e.set {
                    hasShorthand = true
                    for k in 0..<128 where set.ascii[k] { s.ascii[k] = true }
                    if set.nonASCII { s.nonASCII = true }
                    continue
                }
                guard let ch = e.char else { continue }
                lo = ch
            } else {
                guard c.value < 0x80 else { throw error("non-ASCII characters in [...] are not supported") }
                lo = UInt8(c.value)
            }
            if peek == "-", i + 1 < scalars.count, scalars[i + 1] != "]" {
                i += 1
                guard let h = peek else { throw error("missing ']'") }
                i += 1
                var hi: UInt8
                if h == "\\" {
                    let e = try escape(inClass: true)
                    guard let ch = e.char else { throw error("a class escape cannot end a range") }
                    hi = ch
                } else {
                    guard h.value < 0x80 else { throw error("non-ASCII characters in [...] are not supported") }
                    hi = UInt8(h.value)
                }
                guard lo <= hi else { throw error("range out of order") }
                s.add(lo, hi)
            } else {
                s.ascii[Int(lo)] = true
            }
        }
        if negate {
            s.invert()
            // [^\w] and the like: stay within ASCII (see escape).
            if hasShorthand { s.nonASCII = false }
        }
        s.sanitize()
        return s
    }

    // MARK: NFA (Thompson) and DFA (subset construction)

    private struct NFA {
        var eps: [[Int32]] = []
        var edges: [[(lo: UInt8, hi: UInt8, to: Int32)]] = []

        mutating func state() throws(GrammarError) -> Int32 {
            guard eps.count < PatternDFA.maximumNFAStates else {
                throw .invalidSchema(path: "pattern", message: "pattern is too large (over \(PatternDFA.maximumNFAStates) states)")
            }
            eps.append([])
            edges.append([])
            return Int32(eps.count - 1)
        }
    }

    private func fragment(_ node: RegexNode, _ nfa: inout NFA) throws(GrammarError) -> (Int32, Int32) {
        let s = try nfa.state(), e = try nfa.state()
        switch node {
        case let .chars(set):
            var c = 0
            while c < 128 {
                if set.ascii[c] {
                    var d = c
                    while d + 1 < 128 && set.ascii[d + 1] { d += 1 }
                    nfa.edges[Int(s)].append((UInt8(c), UInt8(d), e))
                    c = d + 1
                } else {
                    c += 1
                }
            }
            if set.nonASCII {
                let one = try nfa.state(), two = try nfa.state()
                nfa.edges[Int(one)].append((0x80, 0xBF, e))
                nfa.edges[Int(two)].append((0x80, 0xBF, one))
                nfa.edges[Int(s)].append((0xC2, 0xDF, one))
                let e0 = try nfa.state(), ed = try nfa.state(), f0 = try nfa.state(), f1 = try nfa.state(), f4 = try nfa.state()
                nfa.edges[Int(s)].append((0xE0, 0xE0, e0)); nfa.edges[Int(e0)].append((0xA0, 0xBF, one))
                nfa.edges[Int(s)].append((0xE1, 0xEC, two)); nfa.edges[Int(s)].append((0xEE, 0xEF, two))
                nfa.edges[Int(s)].append((0xED, 0xED, ed)); nfa.edges[Int(ed)].append((0x80, 0x9F, one))
                nfa.edges[Int(s)].append((0xF0, 0xF0, f0)); nfa.edges[Int(f0)].append((0x90, 0xBF, two))
                nfa.edges[Int(s)].append((0xF1, 0xF3, f1)); nfa.edges[Int(f1)].append((0x80, 0xBF, two))
                nfa.edges[Int(s)].append((0xF4, 0xF4, f4)); nfa.edges[Int(f4)].append((0x80, 0x8F, two))
            }
        case let .bytes(bytes):
            var cur = s
            for (k, b) in bytes.enumerated() {
                let nxt = k == bytes.count - 1 ? e : try nfa.state()
                nfa.edges[Int(cur)].append((b, b, nxt))
                cur = nxt
            }
            if bytes.isEmpty { nfa.eps[Int(s)].append(e) }
        case let .sequence(items):
            var cur = s
            for item in items {
                let (a, b) = try fragment(item, &nfa)
                nfa.eps[Int(cur)].append(a)
                cur = b
            }
            nfa.eps[Int(cur)].append(e)
        case let .alternation(alts):
            for alt in alts {
                let (a, b) = try fragment(alt, &nfa)
                nfa.eps[Int(s)].append(a)
                nfa.eps[Int(b)].append(e)
            }
        case let .repeated(inner, lo, hi):
            var cur = s
            for _ in 0..<lo {
                let (a, b) = try fragment(inner, &nfa)
                nfa.eps[Int(cur)].append(a)
                cur = b
            }
            if let hi {
                for _ in lo..<hi {
                    let (a, b) = try fragment(inner, &nfa)
                    nfa.eps[Int(cur)].append(a)
                    nfa.eps[Int(cur)].append(e)
                    cur = b
                }
                nfa.eps[Int(cur)].append(e)
            } else {
                let (a, b) = try fragment(inner, &nfa)
                nfa.eps[Int(cur)].append(a)
                nfa.eps[Int(b)].append(a)
                nfa.eps[Int(cur)].append(e)
                nfa.eps[Int(b)].append(e)
            }
        }
        return (s, e)
    }

    private func build(_ node: RegexNode) throws(GrammarError) -> PatternDFA {
        var nfa = NFA()
        let (start, end): (Int32, Int32)
        do { (start, end) = try fragment(node, &nfa) } catch {
            throw .invalidSchema(path: path, message: "pattern is too large (over \(PatternDFA.maximumNFAStates) automaton states)")
        }
        func closure(_ set: [Int32]) -> [Int32] {
            var seen = Set(set)
            var work = set
            while let x = work.popLast() {
                for y in nfa.eps[Int(x)] where seen.insert(y).inserted { work.append(y) }
            }
            return seen.sorted()
        }
        var ids: [[Int32]: Int32] = [:]
        var sets: [[Int32]] = []
        var next: [Int32] = []
        let first = closure([start])
        ids[first] = 0
        sets.append(first)
        var k = 0
        while k < sets.count {
            var row = [Int32](repeating: -1, count: 256)
            var targets = [[Int32]](repeating: [], count: 256)
            for x in sets[k] {
                for edge in nfa.edges[Int(x)] {
                    for b in Int(edge.lo)...Int(edge.hi) { targets[b].append(edge.to) }
                }
            }
            for b in 0..<256 where !targets[b].isEmpty {
                let t = closure(targets[b])
                if let id = ids[t] {
                    row[b] = id
                } else {
                    guard sets.count < PatternDFA.maximumDFAStates else {
                        throw .invalidSchema(path: path, message: "pattern is too complex (over \(PatternDFA.maximumDFAStates) automaton states)")
                    }
                    let id = Int32(sets.count)
                    ids[t] = id
                    sets.append(t)
                    row[b] = id
                }
            }
            next += row
            k += 1
        }
        let n = sets.count
        var accepting = sets.map { $0.contains(end) }
        // Keep only states from which acceptance is reachable.
        var live = accepting
        var changed = true
        while changed {
            changed = false
            for s in 0..<n where !live[s] {
                for b in 0..<256 {
                    let t = next[s * 256 + b]
                    if t >= 0 && live[Int(t)] { live[s] = true; changed = true; break }
                }
            }
        }
        guard live[0] else { throw .unsatisfiable(path: path, message: "no JSON string matches the pattern") }
        for s in 0..<n {
            for b in 0..<256 {
                let t = next[s * 256 + b]
                if t >= 0 && !live[Int(t)] { next[s * 256 + b] = -1 }
            }
            if !live[s] { accepting[s] = false }
        }
        return PatternDFA(next: next, accepting: accepting, start: 0)
    }
}

private extension CharSet {
    func sanitized() -> CharSet {
        var s = self
        s.sanitize()
        return s
    }
}
