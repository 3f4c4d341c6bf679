import Foundation

// MARK: - Messages

/// A chat message's author.
public enum ChatRole: String, Codable, Sendable, Equatable, Hashable, CaseIterable {
    case system
    /// OpenAI's newer name for system instructions; treated like `system`.
    case developer
    case user
    case assistant
    case tool
}

/// One part of an array-valued message content.
public enum ContentPart: Sendable, Equatable, Hashable {
    /// `{"type": "text", "text": "..."}`
    case text(String)
    /// Any other part type (`image_url`, `input_audio`, `file`, ...), kept so that
    /// validation can reject it by name instead of dropping it silently.
    case other(type: String, body: JSONValue)
}

extension ContentPart: Codable {
    enum CodingKeys: String, CodingKey {
        case type, text
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let type = try c.decode(String.self, forKey: .type)
        if type == "text" {
            self = .text(try c.decode(String.self, forKey: .text))
        } else {
            self = .other(type: type, body: try JSONValue(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .text(let text):
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode("text", forKey: .type)
            try c.encode(text, forKey: .text)
        case .other(_, let body):
            try body.encode(to: encoder)
        }
    }

    public var typeName: String {
        switch self {
        case .text: "text"
        case .other(let type, _): type
        }
    }
}

/// Message content: a string, or an array of parts.
public enum MessageContent: Sendable, Equatable, Hashable {
    case text(String)
    case parts([ContentPart])

    /// The text of the content, with text parts joined by newlines (other parts skipped).
    public var text: String {
        switch self {
        case .text(let text): return text
        case .parts(let parts):
            var texts: [String] = []
            for part in parts {
                if case .text(let text) = part { texts.append(text) }
            }
            return texts.joined(separator: "\n")
        }
    }
}

extension MessageContent: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self = .text(text)
        } else {
            self = .parts(try container.decode([ContentPart].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .text(let text): try container.encode(text)
        case .parts(let parts): try container.encode(parts)
        }
    }
}

extension MessageContent: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
}

/// One message of a chat request.
public struct ChatMessage: Codable, Sendable, Equatable, Hashable {
    public var role: ChatRole
    /// Null only for assistant messages that carried tool calls.
    public var content: MessageContent?
    public var name: String?
    public var toolCallID: String?
    /// Tool calls of an earlier assistant turn, passed through unread.
    public var toolCalls: JSONValue?
    /// Thinking of an earlier assistant turn (DeepSeek/llama.cpp extension).
    public var reasoningContent: String?

    public init(
        role: ChatRole, content: MessageContent?, name: String? = nil,
        toolCallID: String? = nil, toolCalls: JSONValue? = nil, reasoningContent: String? = nil
    ) {
        self.role = role
        self.content = content
        self.name = name
        self.toolCallID = toolCallID
        self.toolCalls = toolCalls
        self.reasoningContent = reasoningContent
    }

    enum CodingKeys: String, CodingKey {
        case role, content, name
        case toolCallID = "tool_call_id"
        case toolCalls = "tool_calls"
        case reasoningContent = "reasoning_content"
    }
}

// MARK: - Shared parameters

/// `stop`: a string or an array of strings.
public enum StopSequences: Sendable, Equatable, Hashable {
    case single(String)
    case multiple([String])

    public var values: [String] {
        switch self {
        case .single(let value): [value]
        case .multiple(let values): values
        }
    }
}

extension StopSequences: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(String.self) {
            self = .single(value)
        } else {
            self = .multiple(try container.decode([String].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .single(let value): try container.encode(value)
        case .multiple(let values): try container.encode(values)
        }
    }
}

/// `stream_options`.
public struct StreamOptions: Codable, Sendable, Equatable, Hashable {
    /// Send a last chunk with `usage` (and empty `choices`) before `[DONE]`.
    public var includeUsage: Bool?

    public init(includeUsage: Bool? = nil) { self.includeUsage = includeUsage }

    enum CodingKeys: String, CodingKey {
        case includeUsage = "include_usage"
    }
}

/// `response_format.type`.
public enum ResponseFormatType: Sendable, Equatable, Hashable {
    case text
    case jsonObject
    case jsonSchema
    /// A type Roost does not know; rejected by validation.
    case other(String)

    public init(rawValue: String) {
        switch rawValue {
        case "text": self = .text
        case "json_object": self = .jsonObject
        case "json_schema": self = .jsonSchema
        default: self = .other(rawValue)
        }
    }

    public var rawValue: String {
        switch self {
        case .text: "text"
        case .jsonObject: "json_object"
        case .jsonSchema: "json_schema"
        case .other(let value): value
        }
    }
}

extension ResponseFormatType: Codable {
    public init(from decoder: any Decoder) throws {
        self.init(rawValue: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// `response_format.json_schema`.
public struct JSONSchemaFormat: Codable, Sendable, Equatable, Hashable {
    public var name: String?
    public var description: String?
    /// The schema itself; an absent schema means "any JSON value".
    public var schema: JSONValue?
    public var strict: Bool?

    public init(
        name: String? = nil, description: String? = nil, schema: JSONValue? = nil,
        strict: Bool? = nil
    ) {
        self.name = name
        self.description = description
        self.schema = schema
        self.strict = strict
    }

    enum CodingKeys: String, CodingKey {
        case name, description, schema, strict
    }
}

/// `response_format`.
public struct ResponseFormat: Codable, Sendable, Equatable, Hashable {
    public var type: ResponseFormatType
    public var jsonSchema: JSONSchemaFormat?

    public init(type: ResponseFormatType, jsonSchema: JSONSchemaFormat? = nil) {
        self.type = type
        self.jsonSchema = jsonSchema
    }

    enum CodingKeys: String, CodingKey {
        case type
        case jsonSchema = "json_schema"
    }
}

// MARK: - Chat completions

/// POST /v1/chat/completions.
public struct ChatCompletionRequest: Codable, Sendable, Equatable, Hashable {
    public var model: String
    public var messages: [ChatMessage]
    public var maxTokens: Int?
    public var maxCompletionTokens: Int?
    public var temperature: Double?
    public var topP: Double?
    public var topK: Int?
    public var minP: Double?
    public var presencePenalty: Double?
    public var frequencyPenalty: Double?
    public var repeatPenalty: Double?
    public var seed: Int?
    public var stop: StopSequences?
    public var stream: Bool?
    public var streamOptions: StreamOptions?
    public var logprobs: Bool?
    public var topLogprobs: Int?
    public var logitBias: [String: Double]?
    public var responseFormat: ResponseFormat?
    public var n: Int?
    public var user: String?
    public var metadata: JSONValue?
    public var store: Bool?
    public var tools: [JSONValue]?
    public var toolChoice: JSONValue?
    public var parallelToolCalls: Bool?
    /// Deprecated predecessors of `tools`/`tool_choice`; refused when they ask for calls.
    public var functions: [JSONValue]?
    public var functionCall: JSONValue?
    /// Output modalities; only `["text"]` is supported.
    public var modalities: [String]?
    /// Audio output parameters; refused when present.
    public var audio: JSONValue?
    /// Roost's own: continue the saved session with this id.
    public var session: String?

    public init(
        model: String, messages: [ChatMessage], maxTokens: Int? = nil,
        maxCompletionTokens: Int? = nil, temperature: Double? = nil, topP: Double? = nil,
        topK: Int? = nil, minP: Double? = nil, presencePenalty: Double? = nil,
        frequencyPenalty: Double? = nil, repeatPenalty: Double? = nil, seed: Int? = nil,
        stop: StopSequences? = nil, stream: Bool? = nil, streamOptions: StreamOptions? = nil,
        logprobs: Bool? = nil, topLogprobs: Int? = nil, logitBias: [String: Double]? = nil,
        responseFormat: ResponseFormat? = nil, n: Int? = nil, user: String? = nil,
        metadata: JSONValue? = nil, store: Bool? = nil, tools: [JSONValue]? = nil,
        toolChoice: JSONValue? = nil, parallelToolCalls: Bool? = nil, functions: [JSONValue]? = nil,
        functionCall: JSONValue? = nil, modalities: [String]? = nil, audio: JSONValue? = nil,
        session: String? = nil
    ) {
        self.model = model
        self.messages = messages
        self.maxTokens = maxTokens
        self.maxCompletionTokens = maxCompletionTokens
        self.temperature = temperature
        self.topP = topP
        self.topK = topK
        self.minP = minP
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.repeatPenalty = repeatPenalty
        self.seed = seed
        self.stop = stop
        self.stream = stream
        self.streamOptions = streamOptions
        self.logprobs = logprobs
        self.topLogprobs = topLogprobs
        self.logitBias = logitBias
        self.responseFormat = responseFormat
        self.n = n
        self.user = user
        self.metadata = metadata
        self.store = store
        self.tools = tools
        self.toolChoice = toolChoice
        self.parallelToolCalls = parallelToolCalls
        self.functions = functions
        self.functionCall = functionCall
        self.modalities = modalities
        self.audio = audio
        self.session = session
    }

    enum CodingKeys: String, CodingKey {
        case model, messages
        case maxTokens = "max_tokens"
        case maxCompletionTokens = "max_completion_tokens"
        case temperature
        case topP = "top_p"
        case topK = "top_k"
        case minP = "min_p"
        case presencePenalty = "presence_penalty"
        case frequencyPenalty = "frequency_penalty"
        case repeatPenalty = "repeat_penalty"
        case seed, stop, stream
        case streamOptions = "stream_options"
        case logprobs
        case topLogprobs = "top_logprobs"
        case logitBias = "logit_bias"
        case responseFormat = "response_format"
        case n, user, metadata, store, tools
        case toolChoice = "tool_choice"
        case parallelToolCalls = "parallel_tool_calls"
        case functions
        case functionCall = "function_call"
        case modalities, audio
        case session
    }

    /// Whether the response is streamed (`stream`, default false).
    public var isStreaming: Bool { stream ?? false }

    /// The token limit asked for: `max_completion_tokens`, else `max_tokens`.
    public var tokenLimit: Int? { maxCompletionTokens ?? maxTokens }

    /// Whether a streamed response ends with a usage chunk.
    public var includesUsage: Bool { streamOptions?.includeUsage ?? false }

    /// The stop strings (empty when none).
    public var stopSequences: [String] { stop?.values ?? [] }
}

// MARK: - Legacy completions

/// `prompt` of the legacy completions endpoint: a string, strings, token ids or batches of them.
public enum PromptInput: Sendable, Equatable, Hashable {
    case text(String)
    case texts([String])
    case tokens([Int])
    case tokenBatches([[Int]])

    /// The number of prompts (each makes its own choice).
    public var count: Int {
        switch self {
        case .text, .tokens: 1
        case .texts(let texts): texts.count
        case .tokenBatches(let batches): batches.count
        }
    }

    /// The text prompts; empty for token-id prompts.
    public var texts: [String] {
        switch self {
        case .text(let text): [text]
        case .texts(let texts): texts
        case .tokens, .tokenBatches: []
        }
    }
}

extension PromptInput: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self = .text(text)
        } else if let texts = try? container.decode([String].self) {
            self = .texts(texts)
        } else if let tokens = try? container.decode([Int].self) {
            self = .tokens(tokens)
        } else if let batches = try? container.decode([[Int]].self) {
            self = .tokenBatches(batches)
        } else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription:
                    "expected a string, an array of strings, an array of token ids or an array of arrays of token ids"
            )
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .text(let text): try container.encode(text)
        case .texts(let texts): try container.encode(texts)
        case .tokens(let tokens): try container.encode(tokens)
        case .tokenBatches(let batches): try container.encode(batches)
        }
    }
}

/// POST /v1/completions (OpenAI's legacy text completions).
public struct CompletionRequest: Codable, Sendable, Equatable, Hashable {
    public var model: String
    public var prompt: PromptInput
    public var suffix: String?
    public var echo: Bool?
    public var bestOf: Int?
    /// Legacy logprobs: the number of top alternatives per token (0...5).
    public var logprobs: Int?
    /// OpenAI's default for this endpoint is 16.
    public var maxTokens: Int?
    public var temperature: Double?
    public var topP: Double?
    public var topK: Int?
    public var minP: Double?
    public var presencePenalty: Double?
    public var frequencyPenalty: Double?
    public var repeatPenalty: Double?
    public var seed: Int?
    public var stop: StopSequences?
    public var stream: Bool?
    public var streamOptions: StreamOptions?
    public var logitBias: [String: Double]?
    public var n: Int?
    public var user: String?

    public init(
        model: String, prompt: PromptInput, suffix: String? = nil, echo: Bool? = nil,
        bestOf: Int? = nil, logprobs: Int? = nil, maxTokens: Int? = nil,
        temperature: Double? = nil, topP: Double? = nil, topK: Int? = nil, minP: Double? = nil,
        presencePenalty: Double? = nil, frequencyPenalty: Double? = nil,
        repeatPenalty: Double? = nil, seed: Int? = nil, stop: StopSequences? = nil,
        stream: Bool? = nil, streamOptions: StreamOptions? = nil,
        logitBias: [String: Double]? = nil, n: Int? = nil, user: String? = nil
    ) {
        self.model = model
        self.prompt = prompt
        self.suffix = suffix
        self.echo = echo
        self.bestOf = bestOf
        self.logprobs = logprobs
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topP = topP
        self.topK = topK
        self.minP = minP
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.repeatPenalty = repeatPenalty
        self.seed = seed
        self.stop = stop
        self.stream = stream
        self.streamOptions = streamOptions
        self.logitBias = logitBias
        self.n = n
        self.user = user
    }

    enum CodingKeys: String, CodingKey {
        case model, prompt, suffix, echo
        case bestOf = "best_of"
        case logprobs
        case maxTokens = "max_tokens"
        case temperature
        case topP = "top_p"
        case topK = "top_k"
        case minP = "min_p"
        case presencePenalty = "presence_penalty"
        case frequencyPenalty = "frequency_penalty"
        case repeatPenalty = "repeat_penalty"
        case seed, stop, stream
        case streamOptions = "stream_options"
        case logitBias = "logit_bias"
        case n, user
    }

    /// OpenAI's default `max_tokens` for legacy completions.
    public static let defaultMaxTokens = 16

    public var isStreaming: Bool { stream ?? false }
    public var includesUsage: Bool { streamOptions?.includeUsage ?? false }
    public var stopSequences: [String] { stop?.values ?? [] }
}
