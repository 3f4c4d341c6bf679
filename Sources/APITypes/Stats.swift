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
        /// The expert store of a loaded MoE model whose routed experts live in a buffer pool
        /// (absent for every other model).
        public var experts: Experts?

        public init(name: String, loaded: Bool, architecture: String?, quantization: String?, sizeBytes: Int,
                    active: Int, queued: Int, tokensPerSecond: Double, generatedTokens: Int, promptTokens: Int,
                    error: String?, experts: Experts? = nil) {
            self.experts = experts
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
            case name, loaded, architecture, quantization, active, queued, error, experts
            case sizeBytes = "size_bytes"
            case tokensPerSecond = "tokens_per_s"
            case generatedTokens = "generated_tokens"
            case promptTokens = "prompt_tokens"
        }
    }

    /// Counters of an expert store, over all layers or for one layer, since the model loaded.
    public struct ExpertCounters: Codable, Sendable, Equatable {
        /// The layer (absent in the totals).
        public var layer: Int?
        /// Chosen experts that were resident without a read for this use.
        public var hits: Int
        /// Chosen experts read on demand.
        public var misses: Int
        /// Experts read ahead of the router's choice, and those of them it then chose.
        public var prefetched: Int
        public var prefetchUsed: Int
        /// Bytes read from the model file.
        public var bytesRead: Int
        /// Seconds the compute thread waited for experts.
        public var stallSeconds: Double
        /// Bytes of experts resident now.
        public var residentBytes: Int
        /// hits / (hits + misses + prefetch_used); 1 before any use.
        public var hitRate: Double
        /// prefetch_used / prefetched; 0 before any read ahead.
        public var prefetchAccuracy: Double
        /// bytes_read and stall_seconds divided by the store's tokens (0 before any token).
        public var bytesReadPerToken: Double
        public var stallSecondsPerToken: Double

        public init(layer: Int? = nil, hits: Int, misses: Int, prefetched: Int, prefetchUsed: Int, bytesRead: Int,
                    stallSeconds: Double, residentBytes: Int, hitRate: Double, prefetchAccuracy: Double,
                    bytesReadPerToken: Double, stallSecondsPerToken: Double) {
            self.layer = layer
            self.hits = hits
            self.misses = misses
            self.prefetched = prefetched
            self.prefetchUsed = prefetchUsed
            self.bytesRead = bytesRead
            self.stallSeconds = stallSeconds
            self.residentBytes = residentBytes
            self.hitRate = hitRate
            self.prefetchAccuracy = prefetchAccuracy
            self.bytesReadPerToken = bytesReadPerToken
            self.stallSecondsPerToken = stallSecondsPerToken
        }

        enum CodingKeys: String, CodingKey {
            case layer, hits, misses, prefetched
            case prefetchUsed = "prefetch_used"
            case bytesRead = "bytes_read"
            case stallSeconds = "stall_seconds"
            case residentBytes = "resident_bytes"
            case hitRate = "hit_rate"
            case prefetchAccuracy = "prefetch_accuracy"
            case bytesReadPerToken = "bytes_read_per_token"
            case stallSecondsPerToken = "stall_seconds_per_token"
        }
    }

    /// A model's expert store: its buffer pool and its counters, in total and per layer with
    /// routed experts.
    public struct Experts: Codable, Sendable, Equatable {
        /// Bytes the store was given for its pool, and the pool's bytes (whole slots).
        public var budgetBytes: Int
        public var poolBytes: Int
        /// Slots of the pool (one expert each) and bytes of one slot.
        public var slots: Int
        public var slotBytes: Int
        /// Tokens the model has run since it loaded (prompt and generated).
        public var tokens: Int
        public var total: ExpertCounters
        public var layers: [ExpertCounters]

        public init(budgetBytes: Int, poolBytes: Int, slots: Int, slotBytes: Int, tokens: Int, total: ExpertCounters,
                    layers: [ExpertCounters]) {
            self.budgetBytes = budgetBytes
            self.poolBytes = poolBytes
            self.slots = slots
            self.slotBytes = slotBytes
            self.tokens = tokens
            self.total = total
            self.layers = layers
        }

        enum CodingKeys: String, CodingKey {
            case slots, tokens, total, layers
            case budgetBytes = "budget_bytes"
            case poolBytes = "pool_bytes"
            case slotBytes = "slot_bytes"
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
