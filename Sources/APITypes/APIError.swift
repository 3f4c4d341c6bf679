import Foundation

/// The kind of an API error, which fixes its HTTP status and OpenAI `type` string.
public enum APIErrorKind: Sendable, Equatable, Hashable {
    /// 400: malformed JSON, wrong types, values out of range, unsupported parameters.
    case invalidRequest
    /// 401: missing or bad credentials.
    case authentication
    /// 403: the peer is not on the allow-list, or the session belongs to another uid.
    case permissionDenied
    /// 404: unknown model, session or route.
    case notFound
    /// 413: body, prompt or nesting over the configured limits.
    case tooLarge
    /// 429: admission queue full; retry after the given number of seconds.
    case rateLimited(retryAfter: Int?)
    /// 500: a bug or an unexpected failure inside the daemon.
    case internalError
    /// 503: memory budget full or shutting down; retry after the given number of seconds.
    case unavailable(retryAfter: Int?)

    /// The HTTP status code of this kind.
    public var httpStatus: Int {
        switch self {
        case .invalidRequest: 400
        case .authentication: 401
        case .permissionDenied: 403
        case .notFound: 404
        case .tooLarge: 413
        case .rateLimited: 429
        case .internalError: 500
        case .unavailable: 503
        }
    }

    /// The `error.type` string of OpenAI's error body.
    public var typeName: String {
        switch self {
        case .invalidRequest: "invalid_request_error"
        case .authentication: "authentication_error"
        case .permissionDenied: "permission_error"
        case .notFound: "not_found_error"
        case .tooLarge: "request_too_large"
        case .rateLimited: "rate_limit_error"
        case .internalError: "server_error"
        case .unavailable: "service_unavailable"
        }
    }

    /// Seconds for a `Retry-After` header (429 and 503 only).
    public var retryAfter: Int? {
        switch self {
        case .rateLimited(let seconds), .unavailable(let seconds): seconds
        case .invalidRequest, .authentication, .permissionDenied, .notFound, .tooLarge,
            .internalError:
            nil
        }
    }
}

/// An error to send to a client: kind (status), message, the offending parameter and a code.
public struct APIError: Error, Sendable, Equatable, Hashable, CustomStringConvertible {
    public var kind: APIErrorKind
    public var message: String
    /// The request parameter at fault, e.g. `"temperature"` or `"messages[2].content"`.
    public var param: String?
    /// A machine-readable code, e.g. `"model_not_found"`.
    public var code: String?

    public init(_ kind: APIErrorKind, message: String, param: String? = nil, code: String? = nil) {
        self.kind = kind
        self.message = message
        self.param = param
        self.code = code
    }

    public var httpStatus: Int { kind.httpStatus }

    /// The JSON body in OpenAI's shape.
    public var body: APIErrorBody {
        APIErrorBody(message: message, type: kind.typeName, param: param, code: code)
    }

    /// The error body as Ollama's API returns it: `{"error": "..."}`.
    public var ollamaBody: OllamaErrorBody { OllamaErrorBody(error: message) }

    public var description: String {
        var text = "\(kind.httpStatus) \(kind.typeName): \(message)"
        if let param { text += " (param: \(param))" }
        return text
    }

    // MARK: Common errors

    public static func invalid(_ message: String, param: String? = nil, code: String? = nil)
        -> APIError
    {
        APIError(.invalidRequest, message: message, param: param, code: code)
    }

    /// 400 for a parameter that would change the output and that Roost does not support.
    public static func unsupported(_ param: String, _ detail: String) -> APIError {
        APIError(
            .invalidRequest, message: "'\(param)' is not supported by Roost: \(detail)",
            param: param, code: "unsupported_parameter")
    }

    /// 400 for a value outside its allowed range.
    public static func outOfRange(_ param: String, expected: String, found: String) -> APIError {
        APIError(
            .invalidRequest, message: "'\(param)' must be \(expected); found \(found)",
            param: param, code: "invalid_value")
    }

    /// 404 for a model that is not installed.
    public static func modelNotFound(_ model: String) -> APIError {
        APIError(
            .notFound, message: "The model '\(model)' does not exist or is not installed",
            param: "model", code: "model_not_found")
    }
}

/// OpenAI's error body: `{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}`.
/// `param` and `code` are written as `null` when absent, as OpenAI does.
public struct APIErrorBody: Codable, Sendable, Equatable, Hashable {
    public struct Detail: Codable, Sendable, Equatable, Hashable {
        public var message: String
        public var type: String
        public var param: String?
        public var code: String?

        public init(message: String, type: String, param: String?, code: String?) {
            self.message = message
            self.type = type
            self.param = param
            self.code = code
        }

        enum CodingKeys: String, CodingKey {
            case message, type, param, code
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            message = try c.decode(String.self, forKey: .message)
            type = try c.decodeIfPresent(String.self, forKey: .type) ?? ""
            param = try c.decodeIfPresent(String.self, forKey: .param)
            // OpenAI's code is usually a string; tolerate a number from other servers.
            if let text = try? c.decodeIfPresent(String.self, forKey: .code) {
                code = text
            } else if let number = try? c.decodeIfPresent(Int.self, forKey: .code) {
                code = String(number)
            } else {
                code = nil
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(message, forKey: .message)
            try c.encode(type, forKey: .type)
            try c.encode(param, forKey: .param)
            try c.encode(code, forKey: .code)
        }
    }

    public var error: Detail

    public init(error: Detail) { self.error = error }

    public init(message: String, type: String, param: String? = nil, code: String? = nil) {
        self.error = Detail(message: message, type: type, param: param, code: code)
    }

    enum CodingKeys: String, CodingKey {
        case error
    }
}

/// Ollama's error body: `{"error": "message"}`.
public struct OllamaErrorBody: Codable, Sendable, Equatable, Hashable {
    public var error: String
    public init(error: String) { self.error = error }

    enum CodingKeys: String, CodingKey {
        case error
    }
}
