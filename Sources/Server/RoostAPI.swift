import APITypes
import Engine
import Foundation
import HTTPTypes
import Hummingbird
import Metrics
import NIOCore
import Models
import Prometheus
import Synchronization

/// The daemon's HTTP API: OpenAI- and Ollama-compatible routes, sessions, health, metrics.
public final class RoostAPI: Sendable {
    public let engine: InferenceEngine
    public let limits: APILimits
    public let version: String
    let metrics: ServerMetrics
    let ready: @Sendable () -> Bool

    public init(engine: InferenceEngine, limits: APILimits = APILimits(), version: String,
                registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
                ready: @escaping @Sendable () -> Bool = { true }) {
        self.engine = engine
        self.limits = limits
        self.version = version
        self.metrics = ServerMetrics(registry: registry)
        self.ready = ready
    }

    /// A router with every route.
    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("/health") { _, _ -> Response in
            let ok = self.ready()
            return Reply.json(["status": ok ? "ok" : "starting", "ready": ok ? "true" : "false"],
                              status: ok ? .ok : .serviceUnavailable)
        }
        router.get("/metrics") { _, _ -> Response in
            self.metrics.refresh(self.engine.stats())
            return Reply.bytes(self.metrics.registry.emitToBuffer(), contentType: "text/plain; version=0.0.4")
        }
        addOpenAIRoutes(router)
        addOllamaRoutes(router)
        addSessionRoutes(router)
        router.get("/roost/v1/stats") { _, _ -> Response in
            Reply.json(self.statsJSON())
        }
        return router
    }

    /// Starts a generation and cancels it when the client's connection closes.
    func start(_ gen: GenerationRequest, request: Request) async throws(APIError) -> GenerationHandle {
        let engine = self.engine
        let handle: GenerationHandle
        do {
            handle = try await offload { () throws(EngineError) -> GenerationHandle in try engine.generate(gen) }
        } catch {
            throw error.apiError
        }
        if let conn = connectionID(request) {
            ConnectionRegistry.shared.cancelOnClose(conn, handle.cancellation) { handle.cancel() }
        }
        return handle
    }

    /// A streamed response body: `produce` sends chunks; a failed write (client gone) cancels.
    func sse(contentType: String = "text/event-stream",
             _ produce: @escaping @Sendable (_ send: (String) async throws -> Void) async throws -> Void,
             onCancel: @escaping @Sendable () -> Void) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            do {
                try await produce { text in
                    try await writer.write(ByteBuffer(string: text))
                }
                try await writer.finish(nil)
            } catch {
                onCancel()
                throw error
            }
        })
    }

    /// Runs a handler, counting the request by route and status; maps thrown API errors to responses.
    func counted(_ route: String, ollama: Bool = false, _ body: () async throws(APIError) -> Response) async -> Response {
        let response: Response
        do { response = try await body() } catch { response = Reply.error(error, ollama: ollama) }
        metrics.request(route: route, status: response.status.code)
        return response
    }

    func record(_ usage: GenerationUsage) {
        metrics.generation(usage)
    }

    /// A non-streamed request's whole output.
    struct Collected {
        var text = ""
        var tokens: [TokenInfo] = []
        var usage = GenerationUsage()
        var reason = Engine.FinishReason.stop
    }

    /// Waits for a request's output, records its usage, and turns a cancelled or timed-out
    /// generation into a 503.
    func collect(_ handle: GenerationHandle) async throws(APIError) -> Collected {
        var out = Collected()
        for await event in handle.events {
            switch event {
            case .started: break
            case let .text(t, tokens):
                out.text += t
                out.tokens += tokens
            case let .finished(reason, usage):
                out.usage = usage
                out.reason = reason
            }
        }
        record(out.usage)
        if let e = Self.endError(out.reason, handle) { throw e }
        return out
    }

    /// The error a generation that did not finish normally ends with: a model failure (an
    /// expert that could not be read, say) is a 500 with its message; a cancel or a timeout
    /// a 503. nil for a normal end.
    static func endError(_ reason: Engine.FinishReason, _ handle: GenerationHandle) -> APIError? {
        guard reason == .cancelled || reason == .timeout else { return nil }
        if reason == .cancelled, let why = handle.cancellation.failure {
            return APIError(.internalError, message: "generation failed: \(why)", code: "generation_failed")
        }
        return APIError(.unavailable(retryAfter: nil),
                        message: reason == .timeout ? "the request timed out" : "generation was cancelled",
                        code: reason.rawValue)
    }

    // MARK: - stats

    func statsJSON() -> RoostStats {
        let s = engine.stats()
        return RoostStats(
            version: version,
            models: s.models.map {
                .init(name: $0.name, loaded: $0.loaded, architecture: $0.architecture, quantization: $0.quantization,
                      sizeBytes: $0.sizeBytes, active: $0.stats?.active ?? 0, queued: $0.stats?.queued ?? 0,
                      tokensPerSecond: $0.stats?.tokensPerSecond ?? 0, generatedTokens: $0.stats?.generatedTokens ?? 0,
                      promptTokens: $0.stats?.promptTokens ?? 0, error: $0.error, experts: $0.experts.map(Self.experts))
            },
            sessions: s.sessions, queue: s.queued, active: s.active, rssBytes: ServerMetrics.residentBytes())
    }

    /// An expert store's counters as the API shows them: totals, and each layer with routed experts.
    static func experts(_ e: ExpertStoreStats) -> RoostStats.Experts {
        let tokens = e.tokens
        func counters(_ l: ExpertLayerStats, layer: Int?) -> RoostStats.ExpertCounters {
            let n = Double(max(1, tokens))
            return .init(layer: layer, hits: l.hits, misses: l.misses, prefetched: l.prefetched, prefetchUsed: l.prefetchUsed,
                         bytesRead: l.bytesRead, stallSeconds: l.stallSeconds, residentBytes: l.residentBytes,
                         hitRate: l.hitRate, prefetchAccuracy: l.prefetchAccuracy,
                         bytesReadPerToken: tokens == 0 ? 0 : Double(l.bytesRead) / n,
                         stallSecondsPerToken: tokens == 0 ? 0 : l.stallSeconds / n)
        }
        return RoostStats.Experts(budgetBytes: e.budgetBytes, poolBytes: e.poolBytes, slots: e.slots, slotBytes: e.slotBytes,
                                  tokens: tokens, total: counters(e.total, layer: nil),
                                  layers: e.routedLayers.map { counters($0.stats, layer: $0.index) })
    }
}

/// Prometheus metrics through swift-metrics, on the API's own registry.
final class ServerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    let promptTokens: Metrics.Counter
    let generatedTokens: Metrics.Counter
    let timeToFirstToken: Metrics.Timer
    let queueDepth: Metrics.Gauge
    let activeSequences: Metrics.Gauge
    let sessions: Metrics.Gauge
    let tokensPerSecond: Metrics.Gauge
    let residentMemory: Metrics.Gauge
    let loadedModels: Metrics.Gauge
    /// Expert-store counters last seen per series ("metric model layer"), so the Prometheus
    /// counters grow by the difference; a reloaded model's store starts again from zero.
    private let expertSeen = Mutex<[String: Double]>([:])

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        var f = PrometheusMetricsFactory(registry: registry)
        f.durationHistogramBuckets["roost_time_to_first_token_seconds"] = [
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30),
        ]
        factory = f
        promptTokens = Metrics.Counter(label: "roost_prompt_tokens_total", factory: f)
        generatedTokens = Metrics.Counter(label: "roost_generated_tokens_total", factory: f)
        timeToFirstToken = Metrics.Timer(label: "roost_time_to_first_token_seconds", factory: f)
        queueDepth = Metrics.Gauge(label: "roost_queue_depth", factory: f)
        activeSequences = Metrics.Gauge(label: "roost_active_sequences", factory: f)
        sessions = Metrics.Gauge(label: "roost_sessions", factory: f)
        tokensPerSecond = Metrics.Gauge(label: "roost_generation_tokens_per_second", factory: f)
        residentMemory = Metrics.Gauge(label: "roost_resident_memory_bytes", factory: f)
        loadedModels = Metrics.Gauge(label: "roost_loaded_models", factory: f)
    }

    func request(route: String, status: Int) {
        Metrics.Counter(label: "roost_requests_total", dimensions: [("route", route), ("status", String(status))], factory: factory)
            .increment()
    }

    func generation(_ u: GenerationUsage) {
        promptTokens.increment(by: u.promptTokens)
        generatedTokens.increment(by: u.completionTokens)
        if u.completionTokens > 0 {
            timeToFirstToken.recordNanoseconds(Int64((u.queueSeconds + u.promptSeconds) * 1e9))
        }
    }

    func refresh(_ s: InferenceEngine.Stats) {
        queueDepth.record(s.queued)
        activeSequences.record(s.active)
        sessions.record(s.sessions)
        tokensPerSecond.record(s.models.reduce(0.0) { $0 + ($1.stats?.tokensPerSecond ?? 0) })
        residentMemory.record(Self.residentBytes())
        loadedModels.record(s.models.filter(\.loaded).count)
        refreshExperts(s.models)
    }

    /// roost_expert_* series: counters and resident bytes per model and layer, the pool per
    /// model. A model without a budgeted store (unloaded, or never had one) keeps its counters
    /// and reports 0 resident and pool bytes.
    private func refreshExperts(_ models: [ModelDescription]) {
        var values: [(label: String, model: String, layer: Int?, value: Double, counter: Bool)] = []
        for m in models {
            guard let e = m.experts else { continue }
            for (i, l) in e.routedLayers {
                values += [("roost_expert_hits_total", m.name, i, Double(l.hits), true),
                           ("roost_expert_misses_total", m.name, i, Double(l.misses), true),
                           ("roost_expert_prefetched_total", m.name, i, Double(l.prefetched), true),
                           ("roost_expert_prefetch_used_total", m.name, i, Double(l.prefetchUsed), true),
                           ("roost_expert_read_bytes_total", m.name, i, Double(l.bytesRead), true),
                           ("roost_expert_stall_seconds_total", m.name, i, l.stallSeconds, true),
                           ("roost_expert_resident_bytes", m.name, i, Double(l.residentBytes), false)]
            }
            values += [("roost_expert_tokens_total", m.name, nil, Double(e.tokens), true),
                       ("roost_expert_pool_bytes", m.name, nil, Double(e.poolBytes), false)]
        }
        expertSeen.withLock { seen in
            var present = Set<String>()
            for v in values {
                let key = "\(v.label) \(v.model) \(v.layer.map(String.init) ?? "")"
                present.insert(key)
                let dims = [("model", v.model)] + (v.layer.map { [("layer", String($0))] } ?? [])
                if v.counter {
                    let last = seen[key] ?? 0
                    let delta = v.value >= last ? v.value - last : v.value
                    if delta > 0 || seen[key] == nil {
                        FloatingPointCounter(label: v.label, dimensions: dims, factory: factory).increment(by: delta)
                    }
                } else {
                    Metrics.Gauge(label: v.label, dimensions: dims, factory: factory).record(v.value)
                }
                seen[key] = v.value
            }
            // Gone stores: their gauges drop to 0; their counters restart from 0 when a store returns.
            for key in seen.keys where !present.contains(key) {
                let parts = key.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
                guard parts.count == 3 else { continue }
                if parts[0].hasSuffix("_total") {
                    seen[key] = 0
                } else if seen[key] != 0 {
                    let dims = [("model", parts[1])] + (parts[2].isEmpty ? [] : [("layer", parts[2])])
                    Metrics.Gauge(label: parts[0], dimensions: dims, factory: factory).record(0)
                    seen[key] = 0
                }
            }
        }
    }

    /// The process's resident set size (from /proc/self/statm).
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let parts = text.split(separator: " ")
        guard parts.count > 1, let pages = Int(parts[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
