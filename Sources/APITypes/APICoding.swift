import Foundation

/// JSON coding shared by the server and the client.
///
/// Keys are spelled by explicit `CodingKeys` on every type (no key strategies), so unknown
/// keys in a request are ignored and the wire names are visible in the source.
public enum APICoding {
    /// A fresh decoder with default settings.
    public static var decoder: JSONDecoder { JSONDecoder() }

    /// A fresh encoder: compact, keys in declaration order, `/` not escaped.
    public static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }

    /// Encodes a value with `encoder`.
    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        try encoder.encode(value)
    }

    /// Encodes a value to a UTF-8 string with `encoder`.
    public static func encodeString<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Decodes a request body: checks size and nesting depth before decoding, and turns
    /// every failure into a 400/413 `APIError` naming the parameter at fault.
    public static func decodeRequest<T: Decodable>(
        _ type: T.Type, from data: Data, limits: APILimits = APILimits()
    ) throws(APIError) -> T {
        try limits.checkBodySize(data.count)
        try limits.checkNesting(data)
        do {
            return try decoder.decode(type, from: data)
        } catch let error as DecodingError {
            throw apiError(for: error)
        } catch {
            throw APIError.invalid("Could not parse the request body: \(error)")
        }
    }

    /// A 400 error for a decoding failure, with `param` set to the failing field's path
    /// (`messages[1].content`).
    public static func apiError(for error: DecodingError) -> APIError {
        switch error {
        case .typeMismatch(let type, let context):
            let param = path(context.codingPath)
            return APIError.invalid(
                "Invalid type for '\(param ?? "body")': expected \(typeName(type)). "
                    + context.debugDescription,
                param: param, code: "invalid_type")
        case .valueNotFound(let type, let context):
            let param = path(context.codingPath)
            return APIError.invalid(
                "'\(param ?? "body")' must not be null: expected \(typeName(type))",
                param: param, code: "invalid_type")
        case .keyNotFound(let key, let context):
            let param = path(context.codingPath + [key])
            return APIError.invalid(
                "Missing required parameter: '\(param ?? key.stringValue)'",
                param: param, code: "missing_required_parameter")
        case .dataCorrupted(let context):
            let param = path(context.codingPath)
            if let param {
                return APIError.invalid(
                    "Invalid value for '\(param)': \(context.debugDescription)",
                    param: param, code: "invalid_value")
            }
            return APIError.invalid(
                "The request body is not valid JSON: \(context.debugDescription)",
                code: "invalid_json")
        @unknown default:
            return APIError.invalid("Could not parse the request body: \(error)")
        }
    }

    /// `messages[1].content` for a coding path; nil for the root.
    static func path(_ codingPath: [any CodingKey]) -> String? {
        var text = ""
        for key in codingPath {
            if let index = key.intValue, key.stringValue.hasPrefix("Index ") || Int(key.stringValue) == index {
                text += "[\(index)]"
            } else {
                if !text.isEmpty { text += "." }
                text += key.stringValue
            }
        }
        return text.isEmpty ? nil : text
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Int.Type, is Int64.Type, is UInt64.Type: "an integer"
        case is Double.Type, is Float.Type: "a number"
        default:
            if String(describing: type).hasPrefix("Array") { "an array" }
            else if String(describing: type).hasPrefix("Dictionary") { "an object" }
            else { String(describing: type) }
        }
    }
}

/// Server-Sent Events framing for streamed OpenAI responses.
public enum SSE {
    /// `data: <payload>\n\n`; a payload with line breaks becomes several `data:` lines.
    public static func event(data: String) -> String {
        var text = ""
        var start = data.startIndex
        // Split on \n, \r\n and \r, which all end a line in SSE.
        var index = data.startIndex
        while index < data.endIndex {
            let character = data[index]
            if character == "\n" || character == "\r" || character == "\r\n" {
                text += "data: " + data[start..<index] + "\n"
                index = data.index(after: index)
                start = index
            } else {
                index = data.index(after: index)
            }
        }
        text += "data: " + data[start...] + "\n\n"
        return text
    }

    /// One event carrying a JSON-encoded value.
    public static func event<T: Encodable>(_ value: T) throws -> String {
        event(data: try APICoding.encodeString(value))
    }

    /// The event that ends an OpenAI stream.
    public static let done = "data: [DONE]\n\n"

    /// A comment line, ignored by clients; keeps idle connections open.
    public static let keepAlive = ": keep-alive\n\n"
}

/// Newline-delimited JSON framing for streamed Ollama responses.
public enum NDJSON {
    /// The JSON encoding of `value` followed by `\n`.
    public static func line<T: Encodable>(_ value: T) throws -> Data {
        var data = try APICoding.encode(value)
        data.append(0x0A)
        return data
    }
}
