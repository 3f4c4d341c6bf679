/// Splits template source into text and tag tokens the way jinja2's lexer does with
/// `trim_blocks=True, lstrip_blocks=True`, `keep_trailing_newline=False`.
struct Token: Sendable {
    enum Kind: Sendable, Equatable {
        case text(String)
        case variableBegin, variableEnd, blockBegin, blockEnd
        case name(String)
        case string(String)
        case int(Int)
        case float(Double)
        case op(String)
        case eof
    }
    var kind: Kind
    var pos: SourcePos
}

struct Lexer {
    private let src: [Unicode.Scalar]
    private var lineStarts: [Int] = [0]
    private var tokens: [Token] = []

    init(source: String) {
        // jinja2 normalizes newlines to "\n" and drops one trailing newline.
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(source.unicodeScalars.count)
        var it = source.unicodeScalars.makeIterator()
        var pendingCR = false
        while let c = it.next() {
            if pendingCR {
                pendingCR = false
                scalars.append("\n")
                if c == "\n" { continue }
            }
            if c == "\r" { pendingCR = true; continue }
            scalars.append(c)
        }
        if pendingCR { scalars.append("\n") }
        if scalars.last == "\n" { scalars.removeLast() }
        src = scalars
        for (i, c) in src.enumerated() where c == "\n" { lineStarts.append(i + 1) }
    }

    func position(_ offset: Int) -> SourcePos {
        // Binary search the line containing offset.
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        return SourcePos(line: lo + 1, column: offset - lineStarts[lo] + 1)
    }

    private func at(_ i: Int) -> Unicode.Scalar? { i < src.count ? src[i] : nil }

    private func matches(_ s: String, at i: Int) -> Bool {
        var j = i
        for c in s.unicodeScalars {
            guard j < src.count, src[j] == c else { return false }
            j += 1
        }
        return true
    }

    private static func isSpace(_ c: Unicode.Scalar) -> Bool {
        c == " " || c == "\t" || c == "\n" || c == "\r" || c == "\u{0B}" || c == "\u{0C}"
    }

    mutating func tokenize() throws(ChatTemplateError) -> [Token] {
        var pos = 0
        var stripNextText = false
        while pos < src.count || stripNextText {
            // Find the next tag opener.
            var t = pos
            var kind: Unicode.Scalar = " "
            while t + 1 < src.count {
                if src[t] == "{", src[t + 1] == "{" || src[t + 1] == "%" || src[t + 1] == "#" {
                    kind = src[t + 1]
                    break
                }
                t += 1
            }
            if kind == " " { t = src.count }
            var textStart = pos
            if stripNextText {
                while textStart < t, Self.isSpace(src[textStart]) { textStart += 1 }
                stripNextText = false
            }
            var textEnd = t
            var open = t + 2
            if kind != " " {
                let modifier = at(open)
                if modifier == "-" {
                    open += 1
                    while textEnd > textStart, Self.isSpace(src[textEnd - 1]) { textEnd -= 1 }
                } else if modifier == "+" {
                    open += 1
                } else if kind != "{" {
                    // lstrip_blocks: drop spaces/tabs between the line start and a block or comment tag.
                    var l = textEnd
                    while l > textStart, src[l - 1] == " " || src[l - 1] == "\t" { l -= 1 }
                    let atLineStart = l == 0 || src[l - 1] == "\n"
                    if l < textEnd, atLineStart {
                        textEnd = l
                    }
                }
            }
            if textEnd > textStart {
                var s = ""
                s.unicodeScalars.append(contentsOf: src[textStart..<textEnd])
                tokens.append(Token(kind: .text(s), pos: position(textStart)))
            }
            if kind == " " { break }
            switch kind {
            case "#":
                // jinja2 ends quietly when the source stops right after a comment opener.
                if open >= src.count { pos = src.count; break }
                var e = open
                while e + 1 < src.count, !(src[e] == "#" && src[e + 1] == "}") { e += 1 }
                guard e + 1 < src.count else {
                    throw ChatTemplateError(.syntax, "unterminated comment", at: position(t))
                }
                pos = e + 2
                if e > open, src[e - 1] == "-" {
                    stripNextText = true
                } else if !(e > open && src[e - 1] == "+"), at(pos) == "\n" {
                    pos += 1
                }
            case "{":
                tokens.append(Token(kind: .variableBegin, pos: position(t)))
                pos = try lexExpression(from: open, block: false, stripNext: &stripNextText)
            default:
                tokens.append(Token(kind: .blockBegin, pos: position(t)))
                pos = try lexExpression(from: open, block: true, stripNext: &stripNextText)
            }
        }
        tokens.append(Token(kind: .eof, pos: position(src.count)))
        return tokens
    }

    private static let threeCharOps = ["**=", "//="]
    private static let twoCharOps = ["//", "**", "==", "!=", "<=", ">="]
    private static let oneCharOps: Set<Unicode.Scalar> = ["+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", ";"]

    /// Lexes the inside of a `{{ }}` or `{% %}` tag; returns the offset after its end.
    private mutating func lexExpression(from start: Int, block: Bool, stripNext: inout Bool) throws(ChatTemplateError) -> Int {
        var i = start
        var balance: [Unicode.Scalar] = []
        let close: String = block ? "%}" : "}}"
        while true {
            while i < src.count, Self.isSpace(src[i]) { i += 1 }
            guard i < src.count else {
                throw ChatTemplateError(.syntax, block ? "unexpected end of template, expected '%}'" : "unexpected end of template, expected '}}'", at: position(start))
            }
            if balance.isEmpty {
                if matches("-" + close, at: i) {
                    tokens.append(Token(kind: block ? .blockEnd : .variableEnd, pos: position(i)))
                    stripNext = true
                    return i + 3
                }
                if block, matches("+" + close, at: i) {
                    tokens.append(Token(kind: .blockEnd, pos: position(i)))
                    return i + 3
                }
                if matches(close, at: i) {
                    tokens.append(Token(kind: block ? .blockEnd : .variableEnd, pos: position(i)))
                    var next = i + 2
                    if block, at(next) == "\n" { next += 1 }  // trim_blocks
                    return next
                }
            }
            let c = src[i]
            let p = position(i)
            if c == "_" || c.properties.isAlphabetic && c.isASCII {
                var j = i
                while j < src.count, src[j] == "_" || (src[j].isASCII && (src[j].properties.isAlphabetic || ("0"..."9").contains(src[j]))) { j += 1 }
                var s = ""
                s.unicodeScalars.append(contentsOf: src[i..<j])
                tokens.append(Token(kind: .name(s), pos: p))
                i = j
            } else if ("0"..."9").contains(c) {
                i = try lexNumber(at: i)
            } else if c == "'" || c == "\"" {
                i = try lexString(at: i)
            } else {
                var op: String?
                for o in Self.twoCharOps where matches(o, at: i) { op = o; break }
                if op == nil, Self.oneCharOps.contains(c) { op = String(c) }
                guard let op else {
                    throw ChatTemplateError(.syntax, "unexpected character '\(c)'", at: p)
                }
                if op == "(" || op == "[" || op == "{" {
                    balance.append(c)
                } else if op == ")" || op == "]" || op == "}" {
                    let expected: Unicode.Scalar = op == ")" ? "(" : op == "]" ? "[" : "{"
                    guard balance.last == expected else {
                        throw ChatTemplateError(.syntax, "unexpected '\(op)'", at: p)
                    }
                    balance.removeLast()
                }
                tokens.append(Token(kind: .op(op), pos: p))
                i += op.unicodeScalars.count
            }
        }
    }

    private mutating func lexNumber(at start: Int) throws(ChatTemplateError) -> Int {
        var j = start
        func digits() {
            while j < src.count, ("0"..."9").contains(src[j]) || (src[j] == "_" && j + 1 < src.count && ("0"..."9").contains(src[j + 1])) { j += 1 }
        }
        digits()
        var isFloat = false
        let afterDot = start > 0 && src[start - 1] == "."
        if !afterDot, j + 1 < src.count, src[j] == ".", ("0"..."9").contains(src[j + 1]) {
            isFloat = true
            j += 1
            digits()
        }
        if !afterDot, j < src.count, src[j] == "e" || src[j] == "E" {
            var k = j + 1
            if k < src.count, src[k] == "+" || src[k] == "-" { k += 1 }
            if k < src.count, ("0"..."9").contains(src[k]) {
                isFloat = true
                j = k
                digits()
            }
        }
        var text = ""
        text.unicodeScalars.append(contentsOf: src[start..<j].filter { $0 != "_" })
        let p = position(start)
        if !isFloat, text.hasPrefix("0") {
            // Python (and jinja2) allow 0x/0o/0b prefixes and no other leading zeros.
            if text == "0", let r = at(j), ["x", "X", "o", "O", "b", "B"].contains(r) {
                let radix = r == "x" || r == "X" ? 16 : r == "o" || r == "O" ? 8 : 2
                var k = j + 1
                var digits = ""
                while k < src.count, src[k] == "_" || (UInt32(String(src[k]), radix: 16).map { Int($0) < radix } ?? false) {
                    if src[k] != "_" { digits.unicodeScalars.append(src[k]) }
                    k += 1
                }
                guard let n = Int(digits, radix: radix) else { throw ChatTemplateError(.syntax, "bad integer literal", at: p) }
                tokens.append(Token(kind: .int(n), pos: p))
                return k
            }
            if text.count > 1, !text.allSatisfy({ $0 == "0" }) {
                throw ChatTemplateError(.syntax, "leading zeros in integer literals are not allowed", at: p)
            }
        }
        if isFloat {
            guard let d = Double(text) else { throw ChatTemplateError(.syntax, "bad number '\(text)'", at: p) }
            tokens.append(Token(kind: .float(d), pos: p))
        } else {
            guard let n = Int(text) else { throw ChatTemplateError(.syntax, "integer '\(text)' is too large", at: p) }
            tokens.append(Token(kind: .int(n), pos: p))
        }
        return j
    }

    private mutating func lexString(at start: Int) throws(ChatTemplateError) -> Int {
        let quote = src[start]
        var j = start + 1
        var out = String.UnicodeScalarView()
        func hexValue(_ count: Int) -> UInt32? {
            guard j + count <= src.count else { return nil }
            var v: UInt32 = 0
            for k in 0..<count {
                guard let d = UInt32(String(src[j + k]), radix: 16) else { return nil }
                v = v * 16 + d
            }
            j += count
            return v
        }
        while true {
            guard j < src.count else {
                throw ChatTemplateError(.syntax, "unterminated string", at: position(start))
            }
            let c = src[j]
            if c == quote { j += 1; break }
            if c != "\\" { out.append(c); j += 1; continue }
            guard j + 1 < src.count else { throw ChatTemplateError(.syntax, "unterminated string", at: position(start)) }
            let e = src[j + 1]
            j += 2
            switch e {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "\\": out.append("\\")
            case "'": out.append("'")
            case "\"": out.append("\"")
            case "\n": break
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "v": out.append("\u{0B}")
            case "0"..."7":
                var v = e.value - 48
                var n = 1
                while n < 3, j < src.count, ("0"..."7").contains(src[j]) { v = v * 8 + src[j].value - 48; j += 1; n += 1 }
                guard let s = Unicode.Scalar(v) else { throw ChatTemplateError(.syntax, "bad escape in string", at: position(j)) }
                out.append(s)
            case "x", "u", "U":
                let width = e == "x" ? 2 : e == "u" ? 4 : 8
                guard let v = hexValue(width), let s = Unicode.Scalar(v) else {
                    throw ChatTemplateError(.syntax, "bad \\\(e) escape in string", at: position(j))
                }
                out.append(s)
            default:
                out.append("\\")
                out.append(e)
            }
        }
        tokens.append(Token(kind: .string(String(out)), pos: position(start)))
        return j
    }
}
