import Foundation

/// Why generation stopped.
public enum FinishReason: String, Codable, Sendable, Equatable, Hashable, CaseIterable {
    /// A stop string, an end-of-sequence token or the end of a grammar.
    case stop
    /// `max_tokens` or the context length.
    case length
    case contentFilter = "content_filter"
}

/// `usage`.
public struct Usage: Codable, Sendable, Equatable, Hashable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int

    public init(promptTokens: Int, completionTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = promptTokens + completionTokens
    }

    public init(promptTokens: Int, completionTokens: Int, totalTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = totalTokens
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case totalTokens = "total_tokens"
    }
}

/// The log probability OpenAI reports for an impossible token, since JSON has no -infinity.
let minimumReportedLogprob = -9999.0

private func reportable(_ logprob: Double) -> Double {
    logprob.isFinite ? logprob : minimumReportedLogprob
}

/// One alternative in `top_logprobs`.
public struct TopLogprob: Codable, Sendable, Equatable, Hashable {
    public var token: String
    /// Written as -9999 when -infinity.
    public var logprob: Double
    /// The token's UTF-8 bytes (a token may hold part of a character).
    public var bytes: [UInt8]?

    public init(token: String, logprob: Double, bytes: [UInt8]? = nil) {
        self.token = token
        self.logprob = logprob
        self.bytes = bytes
    }

    enum CodingKeys: String, CodingKey {
        case token, logprob, bytes
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(token, forKey: .token)
        try c.encode(reportable(logprob), forKey: .logprob)
        try c.encode(bytes, forKey: .bytes)
    }
}

/// One generated token with its log probability and the most likely alternatives.
public struct TokenLogprob: Codable, Sendable, Equatable, Hashable {
    public var token: String
    public var logprob: Double
    public var bytes: [UInt8]?
    public var topLogprobs: [TopLogprob]

    public init(token: String, logprob: Double, bytes: [UInt8]? = nil, topLogprobs: [TopLogprob] = []) {
        self.token = token
        self.logprob = logprob
        self.bytes = bytes
        self.topLogprobs = topLogprobs
    }

    enum CodingKeys: String, CodingKey {
        case token, logprob, bytes
        case topLogprobs = "top_logprobs"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        token = try c.decode(String.self, forKey: .token)
        logprob = try c.decode(Double.self, forKey: .logprob)
        bytes = try c.decodeIfPresent([UInt8].self, forKey: .bytes)
        topLogprobs = try c.decodeIfPresent([TopLogprob].self, forKey: .topLogprobs) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(token, forKey: .token)
        try c.encode(reportable(logprob), forKey: .logprob)
        try c.encode(bytes, forKey: .bytes)
        try c.encode(topLogprobs, forKey: .topLogprobs)
    }
}

/// Chat `logprobs`: `{"content": [...]}`.
public struct ChatLogprobs: Codable, Sendable, Equatable, Hashable {
    public var content: [TokenLogprob]?

    public init(content: [TokenLogprob]?) { self.content = content }

    enum CodingKeys: String, CodingKey {
        case content
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(content, forKey: .content)
    }
}

// MARK: - Chat completion

/// The assistant's message in a non-streamed response.
public struct AssistantMessage: Codable, Sendable, Equatable, Hashable {
    public var role: ChatRole
    public var content: String?
    /// The model's thinking (the part inside `<think>...</think>`), when it thinks.
    public var reasoningContent: String?

    public init(content: String?, reasoningContent: String? = nil, role: ChatRole = .assistant) {
        self.role = role
        self.content = content
        self.reasoningContent = reasoningContent
    }

    enum CodingKeys: String, CodingKey {
        case role, content
        case reasoningContent = "reasoning_content"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(role, forKey: .role)
        try c.encode(content, forKey: .content)
        try c.encodeIfPresent(reasoningContent, forKey: .reasoningContent)
    }
}

public struct ChatCompletionChoice: Codable, Sendable, Equatable, Hashable {
    public var index: Int
    public var message: AssistantMessage
    public var logprobs: ChatLogprobs?
    public var finishReason: FinishReason

    public init(index: Int = 0, message: AssistantMessage, logprobs: ChatLogprobs? = nil, finishReason: FinishReason) {
        self.index = index
        self.message = message
        self.logprobs = logprobs
        self.finishReason = finishReason
    }

    enum CodingKeys: String, CodingKey {
        case index, message, logprobs
        case finishReason = "finish_reason"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(index, forKey: .index)
        try c.encode(message, forKey: .message)
        try c.encode(logprobs, forKey: .logprobs)
        try c.encode(finishReason, forKey: .finishReason)
    }
}

/// The response of a non-streamed chat completion.
public struct ChatCompletion: Codable, Sendable, Equatable, Hashable {
    public var id: String
    public var object: String
    /// Unix time in seconds.
    public var created: Int
    public var model: String
    public var choices: [ChatCompletionChoice]
    public var usage: Usage?
    public var systemFingerprint: String?

    public static let objectName = "chat.completion"

    public init(
        id: String, created: Int, model: String, choices: [ChatCompletionChoice],
        usage: Usage?, systemFingerprint: String? = nil
    ) {
        self.id = id
        self.object = Self.objectName
        self.created = created
        self.model = model
        self.choices = choices
        self.usage = usage
        self.systemFingerprint = systemFingerprint
    }

    enum CodingKeys: String, CodingKey {
        case id, object, created, model, choices, usage
        case systemFingerprint = "system_fingerprint"
    }
}

// MARK: - Chat completion chunk

/// The increment in a streamed chunk.
public struct ChatDelta: Codable, Sendable, Equatable, Hashable {
    /// Set in the first chunk only.
    public var role: ChatRole?
    public var content: String?
    public var reasoningContent: String?

    public init(role: ChatRole? = nil, content: String? = nil, reasoningContent: String? = nil) {
        self.role = role
        self.content = content
        self.reasoningContent = reasoningContent
    }

    enum CodingKeys: String, CodingKey {
        case role, content
        case reasoningContent = "reasoning_content"
    }
}

public struct ChatCompletionChunkChoice: Codable, Sendable, Equatable, Hashable {
    public var index: Int
    public var delta: ChatDelta
    public var logprobs: ChatLogprobs?
    /// Null until the last chunk of the choice; written as an explicit `null`.
    public var finishReason: FinishReason?

    public init(index: Int = 0, delta: ChatDelta, logprobs: ChatLogprobs? = nil, finishReason: FinishReason? = nil) {
        self.index = index
        self.delta = delta
        self.logprobs = logprobs
        self.finishReason = finishReason
    }

    enum CodingKeys: String, CodingKey {
        case index, delta, logprobs
        case finishReason = "finish_reason"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(index, forKey: .index)
        try c.encode(delta, forKey: .delta)
        try c.encode(logprobs, forKey: .logprobs)
        try c.encode(finishReason, forKey: .finishReason)
    }
}

/// One SSE event of a streamed chat completion. With `stream_options.include_usage`, the
/// last chunk before `[DONE]` has empty `choices` and the `usage`.
public struct ChatCompletionChunk: Codable, Sendable, Equatable, Hashable {
    public var id: String
    public var object: String
    public var created: Int
    public var model: String
    public var choices: [ChatCompletionChunkChoice]
    public var usage: Usage?
    public var systemFingerprint: String?

    public static let objectName = "chat.completion.chunk"

    public init(
        id: String, created: Int, model: String, choices: [ChatCompletionChunkChoice],
        usage: Usage? = nil, systemFingerprint: String? = nil
    ) {
        self.id = id
        self.object = Self.objectName
        self.created = created
        self.model = model
        self.choices = choices
        self.usage = usage
        self.systemFingerprint = systemFingerprint
    }

    enum CodingKeys: String, CodingKey {
        case id, object, created, model, choices, usage
        case systemFingerprint = "system_fingerprint"
    }
}

// MARK: - Legacy completion

/// Legacy completions' `logprobs`: parallel arrays, one entry per token.
public struct CompletionLogprobs: Codable, Sendable, Equatable, Hashable {
    public var tokens: [String]
    public var tokenLogprobs: [Double]
    /// Per token, the alternatives and their log probabilities.
    public var topLogprobs: [[String: Double]]
    /// Per token, its character offset in the text.
    public var textOffset: [Int]

    public init(tokens: [String], tokenLogprobs: [Double], topLogprobs: [[String: Double]], textOffset: [Int]) {
        self.tokens = tokens
        self.tokenLogprobs = tokenLogprobs
        self.topLogprobs = topLogprobs
        self.textOffset = textOffset
    }

    enum CodingKeys: String, CodingKey {
        case tokens
        case tokenLogprobs = "token_logprobs"
        case topLogprobs = "top_logprobs"
        case textOffset = "text_offset"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(tokens, forKey: .tokens)
        try c.encode(tokenLogprobs.map(reportable), forKey: .tokenLogprobs)
        try c.encode(topLogprobs.map { $0.mapValues(reportable) }, forKey: .topLogprobs)
        try c.encode(textOffset, forKey: .textOffset)
    }
}

public struct CompletionChoice: Codable, Sendable, Equatable, Hashable {
    public var text: String
    public var index: Int
    public var logprobs: CompletionLogprobs?
    /// Null in streamed chunks until the last one; written as an explicit `null`.
    public var finishReason: FinishReason?

    public init(text: String, index: Int = 0, logprobs: CompletionLogprobs? = nil, finishReason: FinishReason?) {
        self.text = text
        self.index = index
        self.logprobs = logprobs
        self.finishReason = finishReason
    }

    enum CodingKeys: String, CodingKey {
        case text, index, logprobs
        case finishReason = "finish_reason"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(text, forKey: .text)
        try c.encode(index, forKey: .index)
        try c.encode(logprobs, forKey: .logprobs)
        try c.encode(finishReason, forKey: .finishReason)
    }
}

/// The response of a legacy completion; streamed chunks have the same shape.
public struct Completion: Codable, Sendable, Equatable, Hashable {
    public var id: String
    public var object: String
    public var created: Int
    public var model: String
    public var choices: [CompletionChoice]
    public var usage: Usage?
    public var systemFingerprint: String?

    public static let objectName = "text_completion"

    public init(
        id: String, created: Int, model: String, choices: [CompletionChoice], usage: Usage?,
        systemFingerprint: String? = nil
    ) {
        self.id = id
        self.object = Self.objectName
        self.created = created
        self.model = model
        self.choices = choices
        self.usage = usage
        self.systemFingerprint = systemFingerprint
    }

    enum CodingKeys: String, CodingKey {
        case id, object, created, model, choices, usage
        case systemFingerprint = "system_fingerprint"
    }
}

/// A streamed legacy completion event (OpenAI uses the same object as the full response).
public typealias CompletionChunk = Completion

// MARK: - Models

/// One entry of GET /v1/models.
public struct ModelInfo: Codable, Sendable, Equatable, Hashable {
    public var id: String
    public var object: String
    public var created: Int
    public var ownedBy: String

    public init(id: String, created: Int, ownedBy: String = "roost") {
        self.id = id
        self.object = "model"
        self.created = created
        self.ownedBy = ownedBy
    }

    enum CodingKeys: String, CodingKey {
        case id, object, created
        case ownedBy = "owned_by"
    }
}

/// GET /v1/models.
public struct ModelList: Codable, Sendable, Equatable, Hashable {
    public var object: String
    public var data: [ModelInfo]

    public init(data: [ModelInfo]) {
        self.object = "list"
        self.data = data
    }

    enum CodingKeys: String, CodingKey {
        case object, data
    }
}
