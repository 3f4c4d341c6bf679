import Models
import Sampling

/// Why a request could not be served. Each case maps to one HTTP status in `Server`.
public enum EngineError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No model of that name is known (404).
    case unknownModel(String)
    /// The model file exists but cannot be loaded; the message names the file and the cause (500 / 422).
    case modelUnavailable(name: String, reason: String)
    /// Loading the model would exceed the memory budget even with every idle model unloaded (503).
    case overBudget(name: String, neededBytes: Int, budgetBytes: Int)
    /// Too many requests are queued (429, Retry-After).
    case queueFull(retryAfterSeconds: Int)
    /// The request is invalid for this model (400): prompt too long, bad parameter, bad token.
    case invalidRequest(param: String?, message: String)
    /// No session with that id (for this user) (404).
    case unknownSession(String)
    /// The session is in use by another request (409).
    case sessionBusy(String)
    /// The session blob or file cannot be used (400 on import, logged at start).
    case badSession(String)
    /// The daemon is shutting down (503).
    case shuttingDown
    /// The loaded model's file was replaced, truncated or removed since it loaded (503): the
    /// model was unloaded, and the next request loads the file as it is now.
    case modelFileChanged(name: String, path: String, change: String)
    /// Anything the model code reported while running (500).
    case internalFailure(String)

    public var description: String {
        switch self {
        case let .unknownModel(name): "model '\(name)' not found"
        case let .modelUnavailable(name, reason): "model '\(name)' cannot be loaded: \(reason)"
        case let .overBudget(name, needed, budget):
            "model '\(name)' needs \(needed) bytes, more than the memory budget of \(budget) bytes allows"
        case let .queueFull(after): "the server is busy; retry in \(after) s"
        case let .invalidRequest(_, message): message
        case let .unknownSession(id): "session '\(id)' not found"
        case let .sessionBusy(id): "session '\(id)' is in use by another request"
        case let .badSession(why): "session is unusable: \(why)"
        case .shuttingDown: "the server is shutting down"
        case let .modelFileChanged(name, path, change):
            "the file of model '\(name)' (\(path)) changed while it was loaded: \(change); the model was unloaded, retry to load the file as it is now"
        case let .internalFailure(why): "internal error: \(why)"
        }
    }
}

/// What the model is asked to continue.
public enum PromptInput: Sendable, Equatable {
    /// Raw text, tokenized as is.
    case text(String)
    /// Token ids.
    case tokens([Int32])
    /// Chat messages rendered with the model's chat template (with the generation prompt).
    case chat([PromptMessage])
}

/// One chat message as the engine sees it.
public struct PromptMessage: Sendable, Equatable {
    public var role: String
    public var content: String
    public var reasoningContent: String?

    public init(role: String, content: String, reasoningContent: String? = nil) {
        self.role = role
        self.content = content
        self.reasoningContent = reasoningContent
    }
}

/// Who sent a request (from the socket's peer credentials); sessions belong to a uid.
public struct Principal: Sendable, Equatable, Hashable {
    public var uid: UInt32
    public init(uid: UInt32) { self.uid = uid }
    /// Connections without credentials (the optional TCP listener).
    public static let network = Principal(uid: UInt32.max)
}

/// One generation request, after the API layer has validated it.
public struct GenerationRequest: Sendable {
    public var model: String
    public var prompt: PromptInput
    public var sampling: SamplingParameters
    /// Tokens to generate at most (nil: until a stop, EOS or the context length).
    public var maxTokens: Int?
    public var stop: [String]
    /// Continue this session (its state and history) and save the result into it.
    public var session: String?
    public var principal: Principal
    /// Compiled JSON grammar for constrained output, if any.
    public var grammar: GrammarSpec?
    /// Whole-request deadline in seconds (nil: the engine default).
    public var timeoutSeconds: Double?
    /// Keep the model loaded this long after the request (nil: the engine default).
    public var keepAliveSeconds: Double?

    public init(model: String, prompt: PromptInput, sampling: SamplingParameters = .greedy, maxTokens: Int? = nil,
                stop: [String] = [], session: String? = nil, principal: Principal, grammar: GrammarSpec? = nil,
                timeoutSeconds: Double? = nil, keepAliveSeconds: Double? = nil) {
        self.model = model
        self.prompt = prompt
        self.sampling = sampling
        self.maxTokens = maxTokens
        self.stop = stop
        self.session = session
        self.principal = principal
        self.grammar = grammar
        self.timeoutSeconds = timeoutSeconds
        self.keepAliveSeconds = keepAliveSeconds
    }
}

/// A grammar constraint on the output, as the API asked for it.
public enum GrammarSpec: Sendable, Equatable {
    /// Any JSON object.
    case jsonObject
    /// JSON matching this schema (raw JSON bytes, key order preserved).
    case jsonSchema([UInt8])
}

/// Why generation ended.
public enum FinishReason: String, Sendable, Equatable {
    case stop
    case length
    case cancelled
    case timeout
}

/// Token counts of one request.
public struct GenerationUsage: Sendable, Equatable {
    public var promptTokens: Int
    /// Prompt tokens whose state came from a cache or a session instead of being computed.
    public var cachedPromptTokens: Int
    public var completionTokens: Int
    public var promptSeconds: Double
    public var generationSeconds: Double
    public var queueSeconds: Double

    public init(promptTokens: Int = 0, cachedPromptTokens: Int = 0, completionTokens: Int = 0,
                promptSeconds: Double = 0, generationSeconds: Double = 0, queueSeconds: Double = 0) {
        self.promptTokens = promptTokens
        self.cachedPromptTokens = cachedPromptTokens
        self.completionTokens = completionTokens
        self.promptSeconds = promptSeconds
        self.generationSeconds = generationSeconds
        self.queueSeconds = queueSeconds
    }
}

/// One generated token's logprob information.
public struct TokenInfo: Sendable, Equatable {
    public var token: Int32
    /// The token's bytes (may be part of a UTF-8 sequence).
    public var bytes: [UInt8]
    public var logprob: Float
    public var top: [(token: Int32, bytes: [UInt8], logprob: Float)]

    public init(token: Int32, bytes: [UInt8], logprob: Float, top: [(token: Int32, bytes: [UInt8], logprob: Float)]) {
        self.token = token
        self.bytes = bytes
        self.logprob = logprob
        self.top = top
    }

    public static func == (a: TokenInfo, b: TokenInfo) -> Bool {
        a.token == b.token && a.bytes == b.bytes && a.logprob == b.logprob && a.top.count == b.top.count
            && zip(a.top, b.top).allSatisfy { $0.token == $1.token && $0.bytes == $1.bytes && $0.logprob == $1.logprob }
    }
}

/// What a running request reports, in order: `.started`, any number of `.text`, then `.finished`.
public enum GenerationEvent: Sendable, Equatable {
    /// The prompt is in (prefill done); `promptTokens` were computed, `cachedTokens` reused.
    case started(promptTokens: Int, cachedTokens: Int)
    /// New text (always whole UTF-8 characters; stop strings are never part of it), with the
    /// tokens that completed it when logprobs were requested.
    case text(String, tokens: [TokenInfo])
    /// The end; `text` is what was held back for stop matching and is now final.
    case finished(reason: FinishReason, usage: GenerationUsage)
}
