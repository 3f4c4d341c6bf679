import Foundation

/// Request limits, checked before and after decoding; each violation is a clear 4xx.
public struct APILimits: Sendable, Equatable, Hashable {
    /// Largest request body in bytes (413 beyond).
    public var maxBodyBytes: Int
    /// Largest total prompt length in characters, over all messages (413 beyond).
    public var maxPromptCharacters: Int
    /// Deepest nesting of `[` and `{` in a request body (400 beyond).
    public var maxNestingDepth: Int

    public init(
        maxBodyBytes: Int = 8 << 20, maxPromptCharacters: Int = 1 << 20,
        maxNestingDepth: Int = 64
    ) {
        self.maxBodyBytes = maxBodyBytes
        self.maxPromptCharacters = maxPromptCharacters
        self.maxNestingDepth = maxNestingDepth
    }

    /// 413 when `byteCount` exceeds `maxBodyBytes`.
    public func checkBodySize(_ byteCount: Int) throws(APIError) {
        if byteCount > maxBodyBytes {
            throw APIError(
                .tooLarge,
                message: "The request body is \(byteCount) bytes; the limit is \(maxBodyBytes) bytes",
                code: "body_too_large")
        }
    }

    /// 413 when the prompt has more than `maxPromptCharacters` characters.
    public func checkPromptLength(_ characters: Int, param: String) throws(APIError) {
        if characters > maxPromptCharacters {
            throw APIError(
                .tooLarge,
                message: "The prompt has \(characters) characters; the limit is \(maxPromptCharacters)",
                param: param, code: "prompt_too_long")
        }
    }

    /// 400 when raw JSON nests `[`/`{` deeper than `maxNestingDepth`. Runs on the bytes
    /// before decoding, so a hostile body cannot make the decoder recurse deeply.
    public func checkNesting(_ bytes: some Sequence<UInt8>) throws(APIError) {
        if let depth = JSONNesting.exceeds(maxNestingDepth, in: bytes) {
            throw APIError(
                .invalidRequest,
                message: "The request body nests JSON arrays/objects at least \(depth) deep; the limit is \(maxNestingDepth)",
                code: "nesting_too_deep")
        }
    }
}

/// A byte scanner for the nesting depth of raw JSON: counts `[` and `{` outside strings,
/// and skips escaped characters inside strings. It does not validate the JSON.
public enum JSONNesting {
    /// The deepest nesting of arrays and objects in `bytes` (0 for a scalar).
    public static func maxDepth(of bytes: some Sequence<UInt8>) -> Int {
        scan(bytes, stopAbove: Int.max)
    }

    /// The depth reached when it first exceeds `limit`, or nil when it never does.
    public static func exceeds(_ limit: Int, in bytes: some Sequence<UInt8>) -> Int? {
        let depth = scan(bytes, stopAbove: limit)
        return depth > limit ? depth : nil
    }

    private static func scan(_ bytes: some Sequence<UInt8>, stopAbove limit: Int) -> Int {
        var depth = 0
        var deepest = 0
        var inString = false
        var escaped = false
        for byte in bytes {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > deepest {
                    deepest = depth
                    if deepest > limit { return deepest }
                }
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                if depth > 0 { depth -= 1 }
            default:
                break
            }
        }
        return deepest
    }
}
