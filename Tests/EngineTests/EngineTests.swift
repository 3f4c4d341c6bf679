import Foundation
import Logging
import Models
import Sampling
import Tensors
import Testing
import Tokenizers

@testable import Engine

/// ../shared/fixtures/rwkv-tiny beside the repository.
let fixtureDir = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("shared/fixtures/rwkv-tiny")
let tinyModel = fixtureDir.appendingPathComponent("tiny-rwkv-7v0-834K-FP32.gguf").path

func fixturePresent() -> Bool {
    if FileManager.default.fileExists(atPath: tinyModel) { return true }
    if ProcessInfo.processInfo.environment["CI"] == "true" {
        Issue.record("shared fixture missing: \(tinyModel)")
    } else {
        print("skipped: shared fixture missing: \(tinyModel)")
    }
    return false
}

func tempDir() -> String {
    let d = NSTemporaryDirectory() + "roost-engine-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

func makeEngine(stateDir: String? = nil, limits: SchedulerLimits = SchedulerLimits()) throws -> InferenceEngine {
    try InferenceEngine(configuration: EngineConfiguration(modelFiles: [tinyModel], threads: 2, limits: limits,
                                                           stateDirectory: stateDir),
                        logger: { var l = Logger(label: "test"); l.logLevel = .error; return l }())
}

let me = Principal(uid: getuid())

/// Collects a request's text and end.
func run(_ engine: InferenceEngine, _ request: GenerationRequest) async throws -> (String, FinishReason, GenerationUsage) {
    let handle = try engine.generate(request)
    var text = ""
    var reason = FinishReason.cancelled
    var usage = GenerationUsage()
    for await e in handle.events {
        switch e {
        case .started: break
        case let .text(t, _): text += t
        case let .finished(r, u): reason = r; usage = u
        }
    }
    return (text, reason, usage)
}

func greedy(_ prompt: String, max: Int = 24, session: String? = nil) -> GenerationRequest {
    GenerationRequest(model: "tiny-rwkv-7v0-834K-FP32", prompt: .text(prompt), sampling: .greedy, maxTokens: max,
                      session: session, principal: me)
}

/// Greedy continuation computed directly on the model (the engine's pipeline is not involved).
func directGreedy(_ prompt: String, max: Int) throws -> String {
    let model = try RWKVModel(path: tinyModel, kernels: .best)
    let tok = try loadTokenizer(model.file)
    let pool = WorkerPool(threads: 1)
    let ws = try RWKVWorkspace(model: model, maxTokens: 16, pool: pool)
    let state = model.makeState()
    try model.forward(try tok.encode(prompt), state: state, workspace: ws, logits: .last)
    var out: [UInt8] = []
    for _ in 0..<max {
        var best: Int32 = 0
        for i in 1..<model.config.vocabulary where ws.logits[i] > ws.logits[Int(best)] { best = Int32(i) }
        if best == tok.eosTokenID { break }
        try tok.appendDecoded(best, to: &out)
        try model.forward(token: best, state: state, workspace: ws, logits: .last)
    }
    return String(decoding: out, as: UTF8.self)
}

@Suite(.serialized) struct EngineTests {
    @Test func greedyMatchesTheModelRunDirectly() async throws {
        guard fixturePresent() else { return }
        let engine = try makeEngine()
        defer { engine.shutdown() }
        let (text, reason, usage) = try await run(engine, greedy("The quick brown fox", max: 20))
        #expect(reason == .length)
        #expect(usage.completionTokens == 20)
        #expect(text == (try directGreedy("The quick brown fox", max: 20)))
    }

    @Test func concurrentRequestsGiveTheSingleRequestOutput() async throws {
        guard fixturePresent() else { return }
        let prompts = (0..<10).map { "Prompt number \($0) says" }
        let single = try makeEngine()
        var expected: [String] = []
        for p in prompts { expected.append(try await run(single, greedy(p, max: 16)).0) }
        single.shutdown()
        let engine = try makeEngine(limits: SchedulerLimits(maxActive: 4, maxQueue: 64, prefillChunk: 5))
        defer { engine.shutdown() }
        let results = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for (i, p) in prompts.enumerated() {
                group.addTask { (i, try await run(engine, greedy(p, max: 16)).0) }
            }
            var out = [String](repeating: "", count: prompts.count)
            for try await (i, t) in group { out[i] = t }
            return out
        }
        #expect(results == expected)
    }

    @Test func identicalPromptReusesTheCachedState() async throws {
        guard fixturePresent() else { return }
        let engine = try makeEngine()
        defer { engine.shutdown() }
        let a = try await run(engine, greedy("Cache me if you can", max: 12))
        let b = try await run(engine, greedy("Cache me if you can", max: 12))
        #expect(a.0 == b.0)
        #expect(a.2.cachedPromptTokens == 0)
        #expect(b.2.cachedPromptTokens == b.2.promptTokens)
        // A longer prompt starting with the cached one reuses its prefix.
        let c = try await run(engine, greedy("Cache me if you can, then more", max: 12))
        #expect(c.2.cachedPromptTokens == a.2.promptTokens)
        let fresh = try makeEngine()
        defer { fresh.shutdown() }
        #expect(c.0 == (try await run(fresh, greedy("Cache me if you can, then more", max: 12))).0)
    }

    @Test func sessionStateHoldsTheWholeTurn() async throws {
        guard fixturePresent() else { return }
        let engine = try makeEngine()
        defer { engine.shutdown() }
        let s = try engine.createSession(model: "tiny-rwkv-7v0-834K-FP32", principal: me)
        let (text, _, usage) = try await run(engine, greedy("Hello there", max: 10, session: s.id))
        // Independent: the prompt, the answer and the turn separator run through a fresh state.
        let model = try RWKVModel(path: tinyModel, kernels: .best)
        let tok = try loadTokenizer(model.file)
        let prompt = try tok.encode("Hello there")
        #expect(usage.promptTokens == prompt.count)
        let info = try engine.session(s.id, principal: me)
        #expect(info.turns == 1)
        #expect(info.tokens == prompt.count + usage.completionTokens + (try tok.encode("\n\n")).count
                || text.hasSuffix("\n\n"))
        // A second turn continues from the saved state: same as a fresh engine given the same history.
        let second = try await run(engine, greedy("And then?", max: 8, session: s.id))
        #expect(second.2.promptTokens == (try tok.encode("And then?")).count)
        #expect(try engine.session(s.id, principal: me).turns == 2)
        // Other users do not see it.
        #expect(throws: EngineError.unknownSession(s.id)) { try engine.session(s.id, principal: Principal(uid: 4242)) }
    }

    @Test func sessionsSurviveARestartAndExportImport() async throws {
        guard fixturePresent() else { return }
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try makeEngine(stateDir: dir)
        let s = try a.createSession(model: "tiny-rwkv-7v0-834K-FP32", principal: me)
        _ = try await run(a, greedy("Remember this", max: 10, session: s.id))
        let blob = try a.exportSession(s.id, principal: me)
        let continued = try await run(a, greedy("Go on", max: 10, session: s.id))
        a.shutdown()
        // The file on disk is the state after both turns; import the blob from after turn 1 instead.
        let b = try makeEngine(stateDir: dir)
        defer { b.shutdown() }
        #expect(try b.session(s.id, principal: me).turns == 2)
        let imported = try b.importSession(blob, principal: me)
        #expect(imported.id != s.id)
        #expect(imported.turns == 1)
        let again = try await run(b, greedy("Go on", max: 10, session: imported.id))
        #expect(again.0 == continued.0)
        let perms = try FileManager.default.attributesOfItem(atPath: dir + "/sessions/\(s.id).session")
        #expect((perms[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    }

    @Test func sessionFilesRefuseDamage() throws {
        let record = SessionRecord(id: SessionID.make(), model: "m", modelFingerprint: "00", owner: 1, created: 1,
                                   updated: 2, tokens: 3, turns: 4)
        let bytes = SessionFile.encode(record, state: [1, 2, 3, 4, 5])
        let (r, st) = try SessionFile.decode(bytes)
        #expect(r == record)
        #expect(st == [1, 2, 3, 4, 5])
        for i in stride(from: 0, to: bytes.count, by: 7) {
            var bad = bytes
            bad[i] ^= 0x40
            #expect(throws: EngineError.self) { try SessionFile.decode(bad) }
        }
        for n in [0, 10, bytes.count / 2, bytes.count - 1] {
            #expect(throws: EngineError.self) { try SessionFile.decode(Array(bytes.prefix(n))) }
        }
    }

    @Test func cancellationEndsAGenerationQuickly() async throws {
        guard fixturePresent() else { return }
        let engine = try makeEngine()
        defer { engine.shutdown() }
        let handle = try engine.generate(greedy("Long story", max: 100_000))
        var tokens = 0
        var reason: FinishReason?
        for await e in handle.events {
            switch e {
            case .text:
                tokens += 1
                if tokens == 3 { handle.cancel() }
            case .finished(let r, _): reason = r
            case .started: break
            }
        }
        #expect(reason == .cancelled)
        // Events are buffered: the model thread may have produced a few more tokens before this
        // consumer read the third one; the point is that a 100,000-token request stops early.
        #expect(tokens < 1_000)
    }

    @Test func admissionAndBadRequests() async throws {
        guard fixturePresent() else { return }
        let engine = try makeEngine(limits: SchedulerLimits(maxActive: 1, maxQueue: 1))
        defer { engine.shutdown() }
        #expect(throws: EngineError.unknownModel("nope")) {
            try engine.generate(GenerationRequest(model: "nope", prompt: .text("x"), principal: me))
        }
        let h1 = try engine.generate(greedy("one", max: 100_000))
        // Wait until the first is running, so the second waits in the queue.
        var it = h1.events.makeAsyncIterator()
        _ = await it.next()
        let h2 = try engine.generate(greedy("two", max: 5))
        #expect(throws: EngineError.self) { try engine.generate(greedy("three", max: 5)) }
        h1.cancel()
        h2.cancel()
        #expect(throws: EngineError.self) {
            try engine.generate(GenerationRequest(model: "tiny-rwkv-7v0-834K-FP32", prompt: .tokens([1_000_000]),
                                                  principal: me))
        }
    }
}
