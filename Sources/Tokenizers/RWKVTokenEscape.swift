/// The escaped text form of RWKV World tokens in GGUF files.
///
/// llama.cpp's converter (`convert_hf_to_gguf.py`, `_set_vocab_rwkv_world`) stores each token as
/// `repr(token_bytes)[2:-1]` (Python's bytes repr without `b'` and `'`), and llama.cpp reads it
/// back with `llama_unescape_rwkv_token`. These are that function's rules:
///
/// - `\t`, `\n`, `\r` are the bytes 0x09, 0x0A, 0x0D;
/// - `\xHH` is the byte 0xHH (two hex digits; Python writes lowercase, uppercase is accepted too);
/// - a backslash before any other character stands for that character (`\\`, `\'`, `\"`);
/// - every other byte of the string's UTF-8 is itself.
///
/// Where llama.cpp silently produces garbage (a trailing lone backslash, `\x` followed by fewer
/// than two hex digits or by a non-hex character), this throws `malformedTokenEscape`.
public enum RWKVTokenEscape {
    /// Unescapes token `index` (the index is only used in the error).
    public static func unescape(_ token: String, index: Int) throws(TokenizerError) -> [UInt8] {
        var out: [UInt8] = []
        let utf8 = token.utf8
        out.reserveCapacity(utf8.count)
        var it = utf8.makeIterator()
        var pos = 0  // byte offset of the character `it` returns next
        while let c = it.next() {
            let at = pos
            pos += 1
            if c != UInt8(ascii: "\\") {
                out.append(c)
                continue
            }
            guard let e = it.next() else {
                throw .malformedTokenEscape(index: index, token: token, position: at,
                                            reason: "the text ends with a lone backslash")
            }
            pos += 1
            switch e {
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "x"):
                var v: UInt8 = 0
                for _ in 0 ..< 2 {
                    guard let h = it.next() else {
                        throw .malformedTokenEscape(index: index, token: token, position: at,
                                                    reason: "\\x needs two hex digits, the text ends first")
                    }
                    pos += 1
                    guard let d = hexValue(h) else {
                        throw .malformedTokenEscape(index: index, token: token, position: at,
                                                    reason: "\\x needs two hex digits, found byte 0x\(String(h, radix: 16))")
                    }
                    v = v << 4 | d
                }
                out.append(v)
            default:
                out.append(e)
            }
        }
        return out
    }

    /// The inverse, as Python's `repr(bytes)[2:-1]` writes it (quote character `'`); used by tests
    /// and tools. Python switches the quote to `"` when the bytes contain `'` but no `"`; either
    /// form unescapes to the same bytes.
    public static func escape(_ bytes: [UInt8]) -> String {
        var s: [UInt8] = []
        s.reserveCapacity(bytes.count)
        let hex = Array("0123456789abcdef".utf8)
        for b in bytes {
            switch b {
            case 0x09: s += [0x5C, UInt8(ascii: "t")]
            case 0x0A: s += [0x5C, UInt8(ascii: "n")]
            case 0x0D: s += [0x5C, UInt8(ascii: "r")]
            case 0x5C: s += [0x5C, 0x5C]
            case UInt8(ascii: "'"): s += [0x5C, UInt8(ascii: "'")]
            case 0x20 ..< 0x7F: s.append(b)
            default: s += [0x5C, UInt8(ascii: "x"), hex[Int(b >> 4)], hex[Int(b & 15)]]
            }
        }
        return String(decoding: s, as: UTF8.self)
    }

    @inline(__always)
    static func hexValue(_ h: UInt8) -> UInt8? {
        switch h {
        case UInt8(ascii: "0") ... UInt8(ascii: "9"): h - UInt8(ascii: "0")
        case UInt8(ascii: "a") ... UInt8(ascii: "f"): h - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A") ... UInt8(ascii: "F"): h - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
