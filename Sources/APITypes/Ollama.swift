import Foundation

// MARK: - Requests

/// A message of /api/chat.
public struct OllamaMessage: Codable, Sendable, Equatable, Hashable {
    public var role: ChatRole
    public var content: String
    /// The model's thinking (responses with `think`), or an earlier turn's.
    public var thinking: String?
    /// Base64 images; refused by validation (no vision models).
    public var images: [String]?
    public var toolCalls: JSONValue?

    public init(role: ChatRole, content: String, thinking: String? = nil, images: [String]? = nil, toolCalls: JSONValue? = nil) {
        self.role = role
        self.content = content
        self.thinking = thinking
        self.images = images
        self.toolCalls = toolCalls
    }

    enum CodingKeys: String, CodingKey {
        case role, content, thinking, images
        case toolCalls = "tool_calls"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        role = try c.decode(ChatRole.self, forKey: .role)
        content = try c.decodeIfPresent(String.self, forKey: .content) ?? ""
        thinking = try c.decodeIfPresent(String.self, forKey: .thinking)
        images = try c.decodeIfPresent([String].self, forKey: .images)
        toolCalls = try c.decodeIfPresent(JSONValue.self, forKey: .toolCalls)
    }
}

/// `options` of /api/chat and /api/generate (the sampling and context ones Roost honours).
public struct OllamaOptions: Codable, Sendable, Equatable, Hashable {
    public var temperature: Double?
    public var topP: Double?
    public var topK: Int?
    public var minP: Double?
    public var seed: Int?
    /// Maximum tokens to generate; -1 means no limit (until the context is full).
    public var numPredict: Int?
    public var stop: [String]?
    public var repeatPenalty: Double?
    public var repeatLastN: Int?
    public var presencePenalty: Double?
    public var frequencyPenalty: Double?
    public var numCtx: Int?

    public init(
        temperature: Double? = nil, topP: Double? = nil, topK: Int? = nil, minP: Double? = nil,
        seed: Int? = nil, numPredict: Int? = nil, stop: [String]? = nil,
        repeatPenalty: Double? = nil, repeatLastN: Int? = nil, presencePenalty: Double? = nil,
        frequencyPenalty: Double? = nil, numCtx: Int? = nil
    ) {
        self.temperature = temperature
        self.topP = topP
        self.topK = topK
        self.minP = minP
        self.seed = seed
        self.numPredict = numPredict
        self.stop = stop
        self.repeatPenalty = repeatPenalty
        self.repeatLastN = repeatLastN
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.numCtx = numCtx
    }

    enum CodingKeys: String, CodingKey {
        case temperature
        case topP = "top_p"
        case topK = "top_k"
        case minP = "min_p"
        case seed
        case numPredict = "num_predict"
        case stop
        case repeatPenalty = "repeat_penalty"
        case repeatLastN = "repeat_last_n"
        case presencePenalty = "presence_penalty"
        case frequencyPenalty = "frequency_penalty"
        case numCtx = "num_ctx"
    }

    /// 400 for values out of range (Ollama's own checks are looser; these match OpenAI's).
    public func validate() throws(APIError) {
        try ParameterCheck.closed(temperature, 0...2, "options.temperature")
        try ParameterCheck.probability(topP, "options.top_p")
        try ParameterCheck.atLeast(topK, 0, "options.top_k")
        try ParameterCheck.closed(minP, 0...1, "options.min_p")
        try ParameterCheck.closed(presencePenalty, -2...2, "options.presence_penalty")
        try ParameterCheck.closed(frequencyPenalty, -2...2, "options.frequency_penalty")
        try ParameterCheck.positive(repeatPenalty, "options.repeat_penalty")
        try ParameterCheck.atLeast(numPredict, -2, "options.num_predict")
        try ParameterCheck.atLeast(numCtx, 1, "options.num_ctx")
        if let stop, stop.contains(where: \.isEmpty) {
            throw APIError.invalid("'options.stop' must not contain empty strings", param: "options.stop", code: "invalid_value")
        }
    }
}

/// `format`: `"json"` or a JSON schema object.
public enum OllamaFormat: Sendable, Equatable, Hashable {
    case json
    case schema(JSONValue)
}

extension OllamaFormat: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            guard text == "json" else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "format must be \"json\" or a JSON schema object; found \"\(text)\"")
            }
            self = .json
        } else {
            let value = try container.decode(JSONValue.self)
            guard case .object = value else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "format must be \"json\" or a JSON schema object")
            }
            self = .schema(value)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .json: try container.encode("json")
        case .schema(let schema): try container.encode(schema)
        }
    }
}

/// `think`: a Boolean, or a level string (`"low"`, `"medium"`, `"high"`) for models that take one.
public enum OllamaThink: Sendable, Equatable, Hashable {
    case enabled(Bool)
    case level(String)

    /// Whether thinking is on.
    public var isEnabled: Bool {
        switch self {
        case .enabled(let on): on
        case .level: true
        }
    }
}

extension OllamaThink: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let on = try? container.decode(Bool.self) {
            self = .enabled(on)
        } else {
            self = .level(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .enabled(let on): try container.encode(on)
        case .level(let level): try container.encode(level)
        }
    }
}

/// POST /api/chat.
public struct OllamaChatRequest: Codable, Sendable, Equatable, Hashable {
    public var model: String
    /// May be empty: Ollama then only loads (or, with keep_alive 0, unloads) the model.
    public var messages: [OllamaMessage]
    /// Default true (NDJSON stream).
    public var stream: Bool?
    public var format: OllamaFormat?
    public var options: OllamaOptions?
    public var keepAlive: KeepAlive?
    public var think: OllamaThink?
    public var tools: [JSONValue]?

    public init(
        model: String, messages: [OllamaMessage], stream: Bool? = nil, format: OllamaFormat? = nil,
        options: OllamaOptions? = nil, keepAlive: KeepAlive? = nil, think: OllamaThink? = nil,
        tools: [JSONValue]? = nil
    ) {
        self.model = model
        self.messages = messages
        self.stream = stream
        self.format = format
        self.options = options
        self.keepAlive = keepAlive
        self.think = think
        self.tools = tools
    }

    enum CodingKeys: String, CodingKey {
        case model, messages, stream, format, options
        case keepAlive = "keep_alive"
        case think, tools
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(String.self, forKey: .model)
        messages = try c.decodeIfPresent([OllamaMessage].self, forKey: .messages) ?? []
        stream = try c.decodeIfPresent(Bool.self, forKey: .stream)
        format = try Self.decodeFormat(c)
        options = try c.decodeIfPresent(OllamaOptions.self, forKey: .options)
        keepAlive = try c.decodeIfPresent(KeepAlive.self, forKey: .keepAlive)
        think = try c.decodeIfPresent(OllamaThink.self, forKey: .think)
        tools = try c.decodeIfPresent([JSONValue].self, forKey: .tools)
    }

    /// Ollama clients send `"format": ""` for "no format".
    fileprivate static func decodeFormat(_ c: KeyedDecodingContainer<CodingKeys>) throws -> OllamaFormat? {
        if (try? c.decodeIfPresent(String.self, forKey: .format)) == "" { return nil }
        return try c.decodeIfPresent(OllamaFormat.self, forKey: .format)
    }

    /// Whether the response is streamed (default true).
    public var isStreaming: Bool { stream ?? true }

    /// 400 for unsupported or out-of-range parameters.
    public func validate(limits: APILimits = APILimits()) throws(APIError) {
        try ParameterCheck.model(model)
        var characters = 0
        for (i, message) in messages.enumerated() {
            if let images = message.images, !images.isEmpty {
                throw APIError.unsupported("messages[\(i)].images", "images are not supported")
            }
            characters += message.content.count
        }
        try limits.checkPromptLength(characters, param: "messages")
        if let tools, !tools.isEmpty {
            throw APIError.unsupported("tools", "tool calling is not available yet")
        }
        try options?.validate()
    }
}

/// POST /api/generate.
public struct OllamaGenerateRequest: Codable, Sendable, Equatable, Hashable {
    public var model: String
    /// May be absent: Ollama then only loads (or unloads) the model.
    public var prompt: String?
    public var suffix: String?
    public var system: String?
    /// Replaces the model's chat template (Go template syntax); refused by validation.
    public var template: String?
    /// Send the prompt without a template.
    public var raw: Bool?
    /// Token ids from an earlier response, to continue from.
    public var context: [Int]?
    public var images: [String]?
    public var stream: Bool?
    public var format: OllamaFormat?
    public var options: OllamaOptions?
    public var keepAlive: KeepAlive?
    public var think: OllamaThink?

    public init(
        model: String, prompt: String? = nil, suffix: String? = nil, system: String? = nil,
        template: String? = nil, raw: Bool? = nil, context: [Int]? = nil, images: [String]? = nil,
        stream: Bool? = nil, format: OllamaFormat? = nil, options: OllamaOptions? = nil,
        keepAlive: KeepAlive? = nil, think: OllamaThink? = nil
    ) {
        self.model = model
        self.prompt = prompt
        self.suffix = suffix
        self.system = system
        self.template = template
        self.raw = raw
        self.context = context
        self.images = images
        self.stream = stream
        self.format = format
        self.options = options
        self.keepAlive = keepAlive
        self.think = think
    }

    enum CodingKeys: String, CodingKey {
        case model, prompt, suffix, system, template, raw, context, images, stream, format, options
        case keepAlive = "keep_alive"
        case think
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(String.self, forKey: .model)
        prompt = try c.decodeIfPresent(String.self, forKey: .prompt)
        suffix = try c.decodeIfPresent(String.self, forKey: .suffix)
        system = try c.decodeIfPresent(String.self, forKey: .system)
        template = try c.decodeIfPresent(String.self, forKey: .template)
        raw = try c.decodeIfPresent(Bool.self, forKey: .raw)
        context = try c.decodeIfPresent([Int].self, forKey: .context)
        images = try c.decodeIfPresent([String].self, forKey: .images)
        stream = try c.decodeIfPresent(Bool.self, forKey: .stream)
        if (try? c.decodeIfPresent(String.self, forKey: .format)) == "" {
            format = nil
        } else {
            format = try c.decodeIfPresent(OllamaFormat.self, forKey: .format)
        }
        options = try c.decodeIfPresent(OllamaOptions.self, forKey: .options)
        keepAlive = try c.decodeIfPresent(KeepAlive.self, forKey: .keepAlive)
        think = try c.decodeIfPresent(OllamaThink.self, forKey: .think)
    }

    public var isStreaming: Bool { stream ?? true }

    /// 400 for unsupported or out-of-range parameters.
    public func validate(limits: APILimits = APILimits()) throws(APIError) {
        try ParameterCheck.model(model)
        let characters = (prompt?.count ?? 0) + (system?.count ?? 0)
        try limits.checkPromptLength(characters, param: "prompt")
        if let images, !images.isEmpty {
            throw APIError.unsupported("images", "images are not supported")
        }
        if let suffix, !suffix.isEmpty {
            throw APIError.unsupported("suffix", "fill-in-the-middle is not available")
        }
        if let template, !template.isEmpty {
            throw APIError.unsupported("template", "Go templates are not supported; the model's own chat template is used")
        }
        try options?.validate()
    }
}

// MARK: - Responses

/// Timing and token counts of the last object of an Ollama response. Durations are nanoseconds.
public struct OllamaMetrics: Codable, Sendable, Equatable, Hashable {
    public var totalDuration: Int64?
    public var loadDuration: Int64?
    public var promptEvalCount: Int?
    public var promptEvalDuration: Int64?
    public var evalCount: Int?
    public var evalDuration: Int64?

    public init(
        totalDuration: Int64? = nil, loadDuration: Int64? = nil, promptEvalCount: Int? = nil,
        promptEvalDuration: Int64? = nil, evalCount: Int? = nil, evalDuration: Int64? = nil
    ) {
        self.totalDuration = totalDuration
        self.loadDuration = loadDuration
        self.promptEvalCount = promptEvalCount
        self.promptEvalDuration = promptEvalDuration
        self.evalCount = evalCount
        self.evalDuration = evalDuration
    }

    enum CodingKeys: String, CodingKey {
        case totalDuration = "total_duration"
        case loadDuration = "load_duration"
        case promptEvalCount = "prompt_eval_count"
        case promptEvalDuration = "prompt_eval_duration"
        case evalCount = "eval_count"
        case evalDuration = "eval_duration"
    }
}

/// Ollama's `done_reason`.
public enum OllamaDoneReason: String, Codable, Sendable, Equatable, Hashable, CaseIterable {
    case stop, length, load, unload
}

/// One NDJSON line of a streamed /api/chat response, or the whole non-streamed response.
/// The metrics are set on the last object (`done: true`) only.
public struct OllamaChatResponse: Codable, Sendable, Equatable, Hashable {
    public var model: String
    /// RFC 3339 time, e.g. `2024-05-01T12:00:00.123456Z` (see `OllamaTime`).
    public var createdAt: String
    public var message: OllamaMessage
    public var done: Bool
    public var doneReason: OllamaDoneReason?
    public var totalDuration: Int64?
    public var loadDuration: Int64?
    public var promptEvalCount: Int?
    public var promptEvalDuration: Int64?
    public var evalCount: Int?
    public var evalDuration: Int64?

    public init(
        model: String, createdAt: String, message: OllamaMessage, done: Bool,
        doneReason: OllamaDoneReason? = nil, metrics: OllamaMetrics = OllamaMetrics()
    ) {
        self.model = model
        self.createdAt = createdAt
        self.message = message
        self.done = done
        self.doneReason = doneReason
        self.metrics = metrics
    }

    /// The timing fields together.
    public var metrics: OllamaMetrics {
        get {
            OllamaMetrics(
                totalDuration: totalDuration, loadDuration: loadDuration, promptEvalCount: promptEvalCount,
                promptEvalDuration: promptEvalDuration, evalCount: evalCount, evalDuration: evalDuration)
        }
        set {
            totalDuration = newValue.totalDuration
            loadDuration = newValue.loadDuration
            promptEvalCount = newValue.promptEvalCount
            promptEvalDuration = newValue.promptEvalDuration
            evalCount = newValue.evalCount
            evalDuration = newValue.evalDuration
        }
    }

    enum CodingKeys: String, CodingKey {
        case model
        case createdAt = "created_at"
        case message, done
        case doneReason = "done_reason"
        case totalDuration = "total_duration"
        case loadDuration = "load_duration"
        case promptEvalCount = "prompt_eval_count"
        case promptEvalDuration = "prompt_eval_duration"
        case evalCount = "eval_count"
        case evalDuration = "eval_duration"
    }
}

/// One NDJSON line of a streamed /api/generate response, or the whole non-streamed response.
public struct OllamaGenerateResponse: Codable, Sendable, Equatable, Hashable {
    public var model: String
    public var createdAt: String
    public var response: String
    public var thinking: String?
    public var done: Bool
    public var doneReason: OllamaDoneReason?
    /// Token ids of the conversation so far, for the next request's `context`.
    public var context: [Int]?
    public var totalDuration: Int64?
    public var loadDuration: Int64?
    public var promptEvalCount: Int?
    public var promptEvalDuration: Int64?
    public var evalCount: Int?
    public var evalDuration: Int64?

    public init(
        model: String, createdAt: String, response: String, thinking: String? = nil, done: Bool,
        doneReason: OllamaDoneReason? = nil, context: [Int]? = nil,
        metrics: OllamaMetrics = OllamaMetrics()
    ) {
        self.model = model
        self.createdAt = createdAt
        self.response = response
        self.thinking = thinking
        self.done = done
        self.doneReason = doneReason
        self.context = context
        self.metrics = metrics
    }

    public var metrics: OllamaMetrics {
        get {
            OllamaMetrics(
                totalDuration: totalDuration, loadDuration: loadDuration, promptEvalCount: promptEvalCount,
                promptEvalDuration: promptEvalDuration, evalCount: evalCount, evalDuration: evalDuration)
        }
        set {
            totalDuration = newValue.totalDuration
            loadDuration = newValue.loadDuration
            promptEvalCount = newValue.promptEvalCount
            promptEvalDuration = newValue.promptEvalDuration
            evalCount = newValue.evalCount
            evalDuration = newValue.evalDuration
        }
    }

    enum CodingKeys: String, CodingKey {
        case model
        case createdAt = "created_at"
        case response, thinking, done
        case doneReason = "done_reason"
        case context
        case totalDuration = "total_duration"
        case loadDuration = "load_duration"
        case promptEvalCount = "prompt_eval_count"
        case promptEvalDuration = "prompt_eval_duration"
        case evalCount = "eval_count"
        case evalDuration = "eval_duration"
    }
}

// MARK: - Models, version, running models

/// `details` of a model in /api/tags, /api/ps and /api/show.
public struct OllamaModelDetails: Codable, Sendable, Equatable, Hashable {
    public var parentModel: String
    public var format: String
    public var family: String
    public var families: [String]?
    /// e.g. `"7.6B"`, `"191M"`.
    public var parameterSize: String
    /// e.g. `"Q4_K_M"`, `"Q8_0"`.
    public var quantizationLevel: String

    public init(
        family: String, families: [String]? = nil, parameterSize: String, quantizationLevel: String,
        format: String = "gguf", parentModel: String = ""
    ) {
        self.parentModel = parentModel
        self.format = format
        self.family = family
        self.families = families
        self.parameterSize = parameterSize
        self.quantizationLevel = quantizationLevel
    }

    enum CodingKeys: String, CodingKey {
        case parentModel = "parent_model"
        case format, family, families
        case parameterSize = "parameter_size"
        case quantizationLevel = "quantization_level"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        parentModel = try c.decodeIfPresent(String.self, forKey: .parentModel) ?? ""
        format = try c.decodeIfPresent(String.self, forKey: .format) ?? "gguf"
        family = try c.decodeIfPresent(String.self, forKey: .family) ?? ""
        families = try c.decodeIfPresent([String].self, forKey: .families)
        parameterSize = try c.decodeIfPresent(String.self, forKey: .parameterSize) ?? ""
        quantizationLevel = try c.decodeIfPresent(String.self, forKey: .quantizationLevel) ?? ""
    }
}

/// One model of /api/tags.
public struct OllamaModel: Codable, Sendable, Equatable, Hashable {
    public var name: String
    public var model: String
    /// RFC 3339 time.
    public var modifiedAt: String
    /// File size in bytes.
    public var size: Int64
    /// `sha256:<hex>` or another stable identifier of the file.
    public var digest: String
    public var details: OllamaModelDetails

    public init(name: String, model: String? = nil, modifiedAt: String, size: Int64, digest: String, details: OllamaModelDetails) {
        self.name = name
        self.model = model ?? name
        self.modifiedAt = modifiedAt
        self.size = size
        self.digest = digest
        self.details = details
    }

    enum CodingKeys: String, CodingKey {
        case name, model
        case modifiedAt = "modified_at"
        case size, digest, details
    }
}

/// GET /api/tags.
public struct OllamaTags: Codable, Sendable, Equatable, Hashable {
    public var models: [OllamaModel]
    public init(models: [OllamaModel]) { self.models = models }

    enum CodingKeys: String, CodingKey {
        case models
    }
}

/// GET /api/version.
public struct OllamaVersion: Codable, Sendable, Equatable, Hashable {
    public var version: String
    public init(version: String) { self.version = version }

    enum CodingKeys: String, CodingKey {
        case version
    }
}

/// One loaded model of /api/ps.
public struct OllamaRunningModel: Codable, Sendable, Equatable, Hashable {
    public var name: String
    public var model: String
    /// Bytes the model occupies in memory.
    public var size: Int64
    public var digest: String
    public var details: OllamaModelDetails
    /// RFC 3339 time when keep_alive unloads it (far future for forever).
    public var expiresAt: String
    /// Bytes on a GPU; always 0 for Roost.
    public var sizeVRAM: Int64
    public var contextLength: Int?

    public init(
        name: String, model: String? = nil, size: Int64, digest: String, details: OllamaModelDetails,
        expiresAt: String, sizeVRAM: Int64 = 0, contextLength: Int? = nil
    ) {
        self.name = name
        self.model = model ?? name
        self.size = size
        self.digest = digest
        self.details = details
        self.expiresAt = expiresAt
        self.sizeVRAM = sizeVRAM
        self.contextLength = contextLength
    }

    enum CodingKeys: String, CodingKey {
        case name, model, size, digest, details
        case expiresAt = "expires_at"
        case sizeVRAM = "size_vram"
        case contextLength = "context_length"
    }
}

/// GET /api/ps.
public struct OllamaPS: Codable, Sendable, Equatable, Hashable {
    public var models: [OllamaRunningModel]
    public init(models: [OllamaRunningModel]) { self.models = models }

    enum CodingKeys: String, CodingKey {
        case models
    }
}

/// Ollama's timestamps: RFC 3339 in UTC with fractional seconds.
public enum OllamaTime {
    public static func string(from date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}
