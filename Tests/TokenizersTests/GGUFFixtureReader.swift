import Foundation
@testable import Tokenizers

/// Reads the `tokenizer.ggml.*` metadata of the tokenizer-only GGUF fixtures (this test target
/// depends on Tokenizers alone; Models' `loadTokenizer` does the same from a `GGUFFile`).
/// Handles exactly what gguf-py writes there: GGUF v3, scalars, strings and arrays of them.
enum GGUFFixtureReader {
    enum Value {
        case int(Int64), float(Double), bool(Bool), string(String), array([Value])
        var int: Int64? { if case let .int(v) = self { v } else { nil } }
        var bool: Bool? { if case let .bool(v) = self { v } else { nil } }
        var string: String? { if case let .string(v) = self { v } else { nil } }
        var array: [Value]? { if case let .array(v) = self { v } else { nil } }
        var float: Double? { if case let .float(v) = self { v } else { nil } }
    }

    struct Cursor {
        let b: [UInt8]
        var p = 0
        mutating func u(_ n: Int) throws -> UInt64 {
            guard p + n <= b.count else { throw OracleError("GGUF: truncated at \(p)") }
            var v: UInt64 = 0
            for k in 0 ..< n { v |= UInt64(b[p + k]) << (8 * k) }
            p += n
            return v
        }
        mutating func str() throws -> String {
            let n = Int(try u(8))
            guard p + n <= b.count else { throw OracleError("GGUF: string past the end at \(p)") }
            defer { p += n }
            return String(decoding: b[p ..< p + n], as: UTF8.self)
        }
        mutating func value(_ type: UInt64) throws -> Value {
            switch type {
            case 0: return .int(Int64(try u(1)))
            case 1: return .int(Int64(Int8(truncatingIfNeeded: try u(1))))
            case 2: return .int(Int64(try u(2)))
            case 3: return .int(Int64(Int16(truncatingIfNeeded: try u(2))))
            case 4: return .int(Int64(try u(4)))
            case 5: return .int(Int64(Int32(truncatingIfNeeded: try u(4))))
            case 6: return .float(Double(Float(bitPattern: UInt32(try u(4)))))
            case 7: return .bool(try u(1) != 0)
            case 8: return .string(try str())
            case 9:
                let t = try u(4), n = Int(try u(8))
                var out: [Value] = []
                out.reserveCapacity(n)
                for _ in 0 ..< n { out.append(try value(t)) }
                return .array(out)
            case 10: return .int(Int64(bitPattern: try u(8)))
            case 11: return .int(Int64(bitPattern: try u(8)))
            case 12: return .float(Double(bitPattern: try u(8)))
            default: throw OracleError("GGUF: unknown value type \(type)")
            }
        }
    }

    static func metadata(_ url: URL) throws -> [String: Value] {
        var c = Cursor(b: [UInt8](try Data(contentsOf: url)))
        guard try c.u(4) == 0x4655_4747 else { throw OracleError("\(url.lastPathComponent): not a GGUF file") }
        _ = try c.u(4)  // version
        _ = try c.u(8)  // tensors
        let n = try c.u(8)
        var out: [String: Value] = [:]
        for _ in 0 ..< n {
            let key = try c.str()
            out[key] = try c.value(try c.u(4))
        }
        return out
    }

    static func tokenizerMetadata(_ md: [String: Value]) throws -> TokenizerMetadata {
        func strings(_ k: String) -> [String]? { md[k]?.array?.compactMap(\.string) }
        func id(_ k: String) -> Int32? { md[k]?.int.map { Int32($0) } }
        guard let model = md["tokenizer.ggml.model"]?.string, let tokens = strings("tokenizer.ggml.tokens") else {
            throw OracleError("no tokenizer.ggml.model / tokens")
        }
        return TokenizerMetadata(
            model: model, pre: md["tokenizer.ggml.pre"]?.string, tokens: tokens,
            tokenTypes: md["tokenizer.ggml.token_type"]?.array?.compactMap { $0.int.map { Int32($0) } },
            scores: md["tokenizer.ggml.scores"]?.array?.compactMap { $0.float.map { Float($0) } },
            merges: strings("tokenizer.ggml.merges"),
            bosTokenID: id("tokenizer.ggml.bos_token_id"), eosTokenID: id("tokenizer.ggml.eos_token_id"),
            eotTokenID: id("tokenizer.ggml.eot_token_id"), unknownTokenID: id("tokenizer.ggml.unknown_token_id"),
            paddingTokenID: id("tokenizer.ggml.padding_token_id"),
            addBOS: md["tokenizer.ggml.add_bos_token"]?.bool, addEOS: md["tokenizer.ggml.add_eos_token"]?.bool,
            addSpacePrefix: md["tokenizer.ggml.add_space_prefix"]?.bool)
    }

    static var fixtures: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/tokenizers")
    }

    /// The tokenizer of fixture `name` (Tests/Fixtures/tokenizers/NAME.gguf).
    static func load(_ name: String) throws -> any Tokenizer {
        let md = try metadata(fixtures.appendingPathComponent("\(name).gguf"))
        return try makeTokenizer(try tokenizerMetadata(md))
    }
}
