import APITypes
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@testable import Engine
@testable import Server

let fixtureDir = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("shared/fixtures/rwkv-tiny")
let tinyModel = fixtureDir.appendingPathComponent("tiny-rwkv-7v0-834K-FP32.gguf").path
let modelName = "tiny-rwkv-7v0-834K-FP32"

func fixturePresent() -> Bool {
    if FileManager.default.fileExists(atPath: tinyModel) { return true }
    if ProcessInfo.processInfo.environment["CI"] == "true" {
        Issue.record("shared fixture missing: \(tinyModel)")
    } else {
        print("skipped: shared fixture missing: \(tinyModel)")
    }
    return false
}

let quiet: Logger = { var l = Logger(label: "test"); l.logLevel = .critical; return l }()

func makeAPI(limits: APILimits = APILimits()) throws -> RoostAPI {
    let engine = try InferenceEngine(configuration: EngineConfiguration(modelFiles: [tinyModel], threads: 1),
                                     logger: quiet)
    return RoostAPI(engine: engine, limits: limits, version: "test")
}

func json(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }

func object(_ b: ByteBuffer) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(b.readableBytesView)) as? [String: Any] ?? [:]
}

@Suite struct ServerRouterTests {
    @Test func modelsHealthAndChat() async throws {
        guard fixturePresent() else { return }
        let api = try makeAPI()
        defer { api.engine.shutdown() }
        let app = Application(router: api.router(), logger: quiet)
        try await app.test(.router) { client in
            try await client.execute(uri: "/health", method: .get) { r in #expect(r.status == .ok) }
            try await client.execute(uri: "/v1/models", method: .get) { r in
                let o = try object(r.body)
                let ids = (o["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
                #expect(ids == [modelName])
            }
            let body = #"{"model":"\#(modelName)","messages":[{"role":"user","content":"Hi"}],"max_tokens":7,"temperature":0}"#
            var first = ""
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: json(body)) { r in
                #expect(r.status == .ok)
                let o = try object(r.body)
                let choice = (o["choices"] as? [[String: Any]])?.first
                first = ((choice?["message"] as? [String: Any])?["content"] as? String) ?? "?"
                #expect(choice?["finish_reason"] as? String == "length")
                #expect((o["usage"] as? [String: Any])?["completion_tokens"] as? Int == 7)
            }
            // Streamed: the deltas add up to the same text; usage comes last when asked for.
            let sbody = #"{"model":"\#(modelName)","messages":[{"role":"user","content":"Hi"}],"max_tokens":7,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}"#
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: json(sbody)) { r in
                #expect(r.headers[.contentType] == "text/event-stream")
                let text = String(buffer: r.body)
                var content = ""
                var sawUsage = false
                var sawDone = false
                for line in text.split(separator: "\n") where line.hasPrefix("data: ") {
                    let payload = line.dropFirst(6)
                    if payload == "[DONE]" { sawDone = true; continue }
                    let o = try JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any] ?? [:]
                    if o["usage"] is [String: Any] { sawUsage = true }
                    for c in o["choices"] as? [[String: Any]] ?? [] {
                        content += ((c["delta"] as? [String: Any])?["content"] as? String) ?? ""
                    }
                }
                #expect(content == first)
                #expect(sawUsage && sawDone)
            }
        }
    }

    @Test func errorsHaveTheRightStatusAndShape() async throws {
        guard fixturePresent() else { return }
        let api = try makeAPI(limits: APILimits(maxBodyBytes: 4096))
        defer { api.engine.shutdown() }
        let app = Application(router: api.router(), logger: quiet)
        try await app.test(.router) { client in
            let cases: [(String, HTTPResponse.Status, String?)] = [
                (#"{"model":"#, .badRequest, nil),
                (#"{"model":"\#(modelName)","messages":"hello"}"#, .badRequest, "messages"),
                (#"{"model":"nope","messages":[{"role":"user","content":"x"}]}"#, .notFound, "model"),
                (#"{"model":"\#(modelName)","messages":[{"role":"user","content":"x"}],"n":2}"#, .badRequest, "n"),
                (#"{"model":"\#(modelName)","messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#, .badRequest, "temperature"),
                (#"{"model":"\#(modelName)","messages":[{"role":"user","content":"\#(String(repeating: "x", count: 5000))"}]}"#, .contentTooLarge, nil),
            ]
            for (body, status, param) in cases {
                try await client.execute(uri: "/v1/chat/completions", method: .post, body: json(body)) { r in
                    #expect(r.status == status, "\(body.prefix(80))")
                    let e = try object(r.body)["error"] as? [String: Any]
                    #expect(e?["message"] is String)
                    #expect(e?["type"] is String)
                    if let param { #expect(e?["param"] as? String == param) }
                }
            }
            // Still serving.
            try await client.execute(uri: "/health", method: .get) { r in #expect(r.status == .ok) }
        }
    }

    @Test func ollamaAndSessions() async throws {
        guard fixturePresent() else { return }
        let api = try makeAPI()
        defer { api.engine.shutdown() }
        let app = Application(router: api.router(), logger: quiet)
        try await app.test(.router) { client in
            try await client.execute(uri: "/api/tags", method: .get) { r in
                let names = (try object(r.body)["models"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
                #expect(names == [modelName])
            }
            try await client.execute(uri: "/api/version", method: .get) { r in
                let v = try object(r.body)["version"] as? String
                #expect(v == "test")
            }
            let body = #"{"model":"\#(modelName)","messages":[{"role":"user","content":"Hi"}],"options":{"num_predict":4,"temperature":0}}"#
            try await client.execute(uri: "/api/chat", method: .post, body: json(body)) { r in
                let lines = String(buffer: r.body).split(separator: "\n")
                #expect(lines.count >= 2)
                let last = try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any]
                #expect(last?["done"] as? Bool == true)
                #expect(last?["eval_count"] as? Int == 4)
            }
            try await client.execute(uri: "/api/pull", method: .post, body: json("{}")) { r in
                #expect(r.status.code == 501)
            }
            var id = ""
            try await client.execute(uri: "/v1/sessions", method: .post, body: json(#"{"model":"\#(modelName)"}"#)) { r in
                #expect(r.status == .created)
                id = try object(r.body)["id"] as? String ?? ""
            }
            let chat = #"{"model":"\#(modelName)","session":"\#(id)","messages":[{"role":"user","content":"Hi"}],"max_tokens":3}"#
            try await client.execute(uri: "/v1/chat/completions", method: .post, body: json(chat)) { r in
                #expect(r.status == .ok)
            }
            try await client.execute(uri: "/v1/sessions/\(id)", method: .get) { r in
                let turns = try object(r.body)["turns"] as? Int
                #expect(turns == 1)
            }
            var blob = ByteBuffer()
            try await client.execute(uri: "/roost/v1/sessions/\(id)/export", method: .get) { r in
                #expect(r.headers[.contentType] == "application/octet-stream")
                blob = r.body
            }
            try await client.execute(uri: "/v1/sessions/import", method: .post, body: blob) { r in
                #expect(r.status == .created)
                let turns = try object(r.body)["turns"] as? Int
                #expect(turns == 1)
            }
            try await client.execute(uri: "/v1/sessions/\(id)", method: .delete) { r in #expect(r.status == .ok) }
            try await client.execute(uri: "/v1/sessions/\(id)", method: .get) { r in #expect(r.status == .notFound) }
            try await client.execute(uri: "/v1/sessions/import", method: .post, body: json("garbage")) { r in
                #expect(r.status == .badRequest)
            }
            try await client.execute(uri: "/metrics", method: .get) { r in
                let text = String(buffer: r.body)
                #expect(text.contains("roost_requests_total"))
                #expect(text.contains("roost_generated_tokens_total"))
                #expect(text.contains("roost_time_to_first_token_seconds_bucket"))
            }
        }
    }
}

@Suite struct ServerPieces {
    @Test func rawJSONKeepsTheSchemaBytes() {
        let body = Array(#"{"a":1,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"z":1, "a":[2,{"b":"}"}]}}}}"#.utf8)
        let raw = RawJSON.value(at: ["response_format", "json_schema", "schema"], in: body)
        #expect(raw.map { String(decoding: $0, as: UTF8.self) } == #"{"z":1, "a":[2,{"b":"}"}]}"#)
        #expect(RawJSON.value(at: ["missing"], in: body) == nil)
        #expect(RawJSON.value(at: ["a"], in: Array("{\"a\":".utf8)) == nil)
    }

    @Test func thinkSplitterAcrossChunks() {
        var s = ThinkSplitter()
        var reasoning = "", content = ""
        for piece in ["<th", "ink>plan", " a</th", "ink>\nAnswer", " here"] {
            let (r, c) = s.feed(piece)
            reasoning += r
            content += c
        }
        let (r, c) = s.finish()
        #expect(reasoning + r == "plan a")
        #expect(content + c == "Answer here")
        var plain = ThinkSplitter()
        #expect(plain.feed("Hello").content == "Hello")
    }

    @Test func socketPathLiveAndStale() throws {
        let dir = NSTemporaryDirectory() + "roost-sock-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/s.sock"
        // A stale socket: bound, then its owner gone (closed without unlink).
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        listen(fd, 1)
        #expect(SocketPath.isLive(path))
        #expect(throws: ListenerError.alreadyListening(path: path)) { try SocketPath.prepare(path) }
        close(fd)
        #expect(!SocketPath.isLive(path))
        try SocketPath.prepare(path)
        #expect(!FileManager.default.fileExists(atPath: path))
        _ = FileManager.default.createFile(atPath: path, contents: Data("x".utf8))
        #expect(throws: ListenerError.notASocket(path: path)) { try SocketPath.prepare(path) }
    }

    @Test func connectionRegistryCancelsOnlyRunningRequests() {
        let r = ConnectionRegistry()
        let conn = r.open()
        let done = CancellationFlag()
        done.markFinished()
        for _ in 0..<5 { r.cancelOnClose(conn, done) { done.cancel() } }
        let running = CancellationFlag()
        r.cancelOnClose(conn, running) { running.cancel() }
        #expect(r.registered(conn) == 1)
        r.close(conn)
        #expect(running.isCancelled)
        #expect(!done.isCancelled)
        // Registering on a closed connection cancels at once.
        let late = CancellationFlag()
        r.cancelOnClose(conn, late) { late.cancel() }
        #expect(late.isCancelled)
    }

    @Test func accessPolicy() {
        let p = AccessPolicy(uids: [1234], groups: [])
        #expect(p.allows(uid: 0, gid: 0, pid: 1))
        #expect(p.allows(uid: getuid(), gid: 99, pid: 1))
        #expect(p.allows(uid: 1234, gid: 99, pid: 1))
        #expect(!p.allows(uid: 4321, gid: 99, pid: 1) || getuid() == 4321)
        #expect(AccessPolicy(groups: [99]).allows(uid: 4321, gid: 99, pid: 1))
    }
}

@Suite struct ExpertStoreObservability {
    static let mixtral = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/transformers/mixtral/model-f32.gguf").path

    @Test func statsAndMetricsShowABudgetedStorePerModelAndLayer() async throws {
        let size = ((try? FileManager.default.attributesOfItem(atPath: Self.mixtral))?[.size] as? Int) ?? 0
        try #require(size > 0, "fixture missing: \(Self.mixtral)")
        // Just under the file: the experts live in a store of about one layer's experts.
        let engine = try InferenceEngine(configuration: EngineConfiguration(modelFiles: [Self.mixtral], threads: 1,
                                                                            limits: SchedulerLimits(maxActive: 1, prefillChunk: 8),
                                                                            memoryBudgetBytes: size - 4096),
                                         logger: quiet)
        let api = RoostAPI(engine: engine, version: "test")
        defer { api.engine.shutdown() }
        let app = Application(router: api.router(), logger: quiet)
        try await app.test(.router) { client in
            try await client.execute(uri: "/roost/v1/stats", method: .get) { r in
                let models = try object(r.body)["models"] as? [[String: Any]] ?? []
                #expect(models.count == 1 && models.first?["experts"] == nil)  // not loaded yet
            }
            let body = #"{"model":"model-f32","prompt":[2,3,4,5,6,7,8,9],"max_tokens":12,"temperature":0}"#
            try await client.execute(uri: "/v1/completions", method: .post, body: json(body)) { r in
                #expect(r.status == .ok)
            }
            try await client.execute(uri: "/roost/v1/stats", method: .get) { r in
                let stats = try JSONDecoder().decode(RoostStats.self, from: Data(r.body.readableBytesView))
                let e = try #require(stats.models.first?.experts)
                #expect(e.slots >= 8 && e.poolBytes == e.slots * e.slotBytes && e.budgetBytes >= e.poolBytes)
                #expect(e.tokens >= 8 && e.total.misses > 0 && e.total.bytesRead > 0)
                #expect(e.layers.map(\.layer) == [0, 1])
                #expect(e.layers.reduce(0) { $0 + $1.misses } == e.total.misses)
                #expect(e.total.residentBytes <= e.poolBytes && e.total.residentBytes > 0)
                let requests = Double(e.total.hits + e.total.misses + e.total.prefetchUsed)
                #expect(abs(e.total.hitRate - Double(e.total.hits) / requests) < 1e-12)
                #expect(abs(e.total.bytesReadPerToken - Double(e.total.bytesRead) / Double(e.tokens)) < 1e-9)
                let raw = try object(r.body)["models"] as? [[String: Any]] ?? []
                let experts = raw.first?["experts"] as? [String: Any]
                #expect(experts?["pool_bytes"] as? Int == e.poolBytes)
                #expect((experts?["total"] as? [String: Any])?["prefetch_used"] != nil)
            }
            try await client.execute(uri: "/metrics", method: .get) { r in
                let text = String(buffer: r.body)
                for name in ["roost_expert_hits_total", "roost_expert_misses_total", "roost_expert_prefetched_total",
                             "roost_expert_prefetch_used_total", "roost_expert_read_bytes_total",
                             "roost_expert_stall_seconds_total", "roost_expert_resident_bytes"] {
                    #expect(text.contains(#"\#(name){model="model-f32",layer="1"}"#) || text.contains(#"\#(name){layer="1",model="model-f32"}"#), "\(name)")
                }
                #expect(text.contains("roost_expert_pool_bytes{model=\"model-f32\"}"))
                let misses = text.split(separator: "\n").filter { $0.hasPrefix("roost_expert_misses_total{") }
                    .compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
                #expect(misses > 0)
            }
        }
    }

    @Test func modelsWithoutAStoreHaveNoExpertsObject() async throws {
        guard fixturePresent() else { return }
        let api = try makeAPI()
        defer { api.engine.shutdown() }
        let app = Application(router: api.router(), logger: quiet)
        try await app.test(.router) { client in
            let body = #"{"model":"\#(modelName)","prompt":"Hi","max_tokens":2,"temperature":0}"#
            try await client.execute(uri: "/v1/completions", method: .post, body: json(body)) { r in #expect(r.status == .ok) }
            try await client.execute(uri: "/roost/v1/stats", method: .get) { r in
                let models = try object(r.body)["models"] as? [[String: Any]] ?? []
                #expect(models.first?["loaded"] as? Bool == true)
                #expect(models.first?.keys.contains("experts") == false)
            }
            try await client.execute(uri: "/metrics", method: .get) { r in
                #expect(!String(buffer: r.body).contains("roost_expert_"))
            }
        }
    }
}

/// How a generation that did not end normally is reported: a model failure (the worker's
/// message, e.g. an expert read error) is a 500 carrying that message; a cancel or timeout
/// a 503; a normal end no error.
@Suite struct GenerationEndErrors {
    func handle(failure: String?) -> GenerationHandle {
        let flag = CancellationFlag()
        if let failure { flag.fail(failure) }
        return GenerationHandle(events: AsyncStream { $0.finish() }, cancellation: flag, promptTokenCount: 1,
                                startsInReasoning: false)
    }

    @Test func aModelFailureIsA500WithItsMessage() throws {
        let e = try #require(RoostAPI.endError(.cancelled, handle(failure: "layer 3 expert 7: cannot read (errno 5)")))
        #expect(e.httpStatus == 500)
        #expect(e.code == "generation_failed")
        #expect(e.message.contains("layer 3 expert 7: cannot read (errno 5)"))
    }

    @Test func cancelsAndTimeoutsAre503s() throws {
        let c = try #require(RoostAPI.endError(.cancelled, handle(failure: nil)))
        #expect(c.httpStatus == 503 && c.code == "cancelled")
        let t = try #require(RoostAPI.endError(.timeout, handle(failure: nil)))
        #expect(t.httpStatus == 503 && t.message == "the request timed out")
        #expect(RoostAPI.endError(.stop, handle(failure: "ignored")) == nil)
        #expect(RoostAPI.endError(.length, handle(failure: nil)) == nil)
    }
}
