/// GET /roost/v1/stats: the daemon's figures (the same as /metrics, as JSON).
public struct RoostStats: Codable, Sendable, Equatable {
    public struct Model: Codable, Sendable, Equatable {
        public var name: String
        public var loaded: Bool
        public var architecture: String?
        public var quantization: String?
        public var sizeBytes: Int
        /// Sequences generating now.
        public var active: Int
        public var queued: Int
        /// Generation tokens/s per sequence over recent requests (smoothed).
        public var tokensPerSecond: Double
        public var generatedTokens: Int
        public var promptTokens: Int
        /// Why the model cannot be loaded, when it cannot.
        public var error: String?

        public init(name: String, loaded: Bool, architecture: String?, quantization: String?, sizeBytes: Int,
                    active: Int, queued: Int, tokensPerSecond: Double, generatedTokens: Int, promptTokens: Int,
                    error: String?) {
            self.name = name
            self.loaded = loaded
            self.architecture = architecture
            self.quantization = quantization
            self.sizeBytes = sizeBytes
            self.active = active
            self.queued = queued
            self.tokensPerSecond = tokensPerSecond
            self.generatedTokens = generatedTokens
            self.promptTokens = promptTokens
            self.error = error
        }

        enum CodingKeys: String, CodingKey {
            case name, loaded, architecture, quantization, active, queued, error
            case sizeBytes = "size_bytes"
            case tokensPerSecond = "tokens_per_s"
            case generatedTokens = "generated_tokens"
            case promptTokens = "prompt_tokens"
        }
    }

    public var version: String
    public var models: [Model]
    public var sessions: Int
    public var queue: Int
    public var active: Int
    public var rssBytes: Int

    public init(version: String, models: [Model], sessions: Int, queue: Int, active: Int, rssBytes: Int) {
        self.version = version
        self.models = models
        self.sessions = sessions
        self.queue = queue
        self.active = active
        self.rssBytes = rssBytes
    }

    enum CodingKeys: String, CodingKey {
        case version, models, sessions, queue, active
        case rssBytes = "rss_bytes"
    }
}
