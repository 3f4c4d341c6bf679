import APITypes
import Foundation
import Testing
@testable import roost

@Suite struct SocketResolution {
    @Test func order() {
        let env = ["ROOST_SOCKET": "/tmp/env.sock", "XDG_RUNTIME_DIR": "/run/user/1000"]
        #expect(SocketLocation.resolve(flag: "/tmp/flag.sock", environment: env, uid: 1000) == "/tmp/flag.sock")
        #expect(SocketLocation.resolve(flag: nil, environment: env, uid: 1000) == "/tmp/env.sock")
        #expect(SocketLocation.resolve(flag: nil, environment: ["XDG_RUNTIME_DIR": "/run/user/1000"], uid: 1000)
                == "/run/user/1000/roost/roost.sock")
        #expect(SocketLocation.resolve(flag: nil, environment: ["XDG_RUNTIME_DIR": "/run/user/0"], uid: 0)
                == "/run/roost/roost.sock")
        #expect(SocketLocation.resolve(flag: "", environment: ["ROOST_SOCKET": ""], uid: 1000) == "/run/roost/roost.sock")
    }

    @Test func nothingListening() throws {
        let path = NSTemporaryDirectory() + "roost-test-\(getpid()).sock"
        #expect {
            _ = try UnixConnection(path: path)
        } throws: { error in
            guard case ClientError.notRunning(let p, _)? = error as? ClientError else { return false }
            return p == path && error.localizedDescription.isEmpty == false
                && "\(error)".contains("systemctl start roostd.socket")
        }
    }
}

@Suite struct LineEditing {
    @Test func editing() {
        var e = LineEditorState()
        e.insert("hello world")
        e.deleteWordBackward()
        #expect(e.text == "hello ")
        e.home()
        e.insert(">")
        e.end()
        e.insert("ü")
        e.left()
        e.deleteBackward()
        #expect(e.text == ">helloü")
        e.home()
        e.right()
        e.killToEnd()
        #expect(e.text == ">" && e.cursor == 1)
    }

    @Test func history() {
        var e = LineEditorState(history: ["one", "two"])
        e.insert("draft")
        e.historyUp()
        #expect(e.text == "two")
        e.historyUp()
        e.historyUp()
        #expect(e.text == "one")
        e.historyDown()
        e.historyDown()
        #expect(e.text == "draft")
    }
}

@Suite struct Conversation {
    func user(_ s: String) -> ChatMessage { ChatMessage(role: .user, content: .text(s)) }

    @Test func statelessResendsHistory() {
        var s = ChatState(model: "m", session: nil, system: "be brief")
        #expect(s.outgoing(user("a")).count == 2)
        s.record(user: user("a"), answer: "A", reasoning: "")
        let next = s.outgoing(user("b"))
        #expect(next.map(\.role) == [.system, .user, .assistant, .user])
    }

    @Test func sessionSendsOnlyNewMessages() {
        var s = ChatState(model: "m", session: "sid", system: nil)
        s.record(user: user("a"), answer: "A", reasoning: "")
        #expect(s.outgoing(user("b")).map(\.role) == [.user])
    }

    @Test func saveCarriesTheHistoryWithTheNextMessage() {
        var s = ChatState(model: "m", session: nil, system: nil)
        s.record(user: user("a"), answer: "A", reasoning: "")
        let pending = s.attach(session: "new")
        #expect(pending)
        #expect(s.outgoing(user("b")).count == 3)
        s.record(user: user("b"), answer: "B", reasoning: "")
        #expect(s.outgoing(user("c")).count == 1)
        s.reset()
        #expect(s.session == nil && s.history.isEmpty)
    }
}

@Suite struct StatsRendering {
    static func counters(layer: Int?, hits: Int, misses: Int) -> RoostStats.ExpertCounters {
        .init(layer: layer, hits: hits, misses: misses, prefetched: 4, prefetchUsed: 3, bytesRead: 2_000_000,
              stallSeconds: 0.01, residentBytes: 1 << 20, hitRate: Double(hits) / Double(hits + misses + 3),
              prefetchAccuracy: 0.75, bytesReadPerToken: 200_000, stallSecondsPerToken: 0.001)
    }

    static let stats = RoostStats(version: "t", models: [
        .init(name: "moe", loaded: true, architecture: "qwen3moe", quantization: "q8_0", sizeBytes: 1 << 30, active: 0,
              queued: 0, tokensPerSecond: 1, generatedTokens: 10, promptTokens: 0, error: nil,
              experts: .init(budgetBytes: 3 << 20, poolBytes: 2 << 20, slots: 4, slotBytes: 512 << 10, tokens: 10,
                             total: counters(layer: nil, hits: 9, misses: 8),
                             layers: [counters(layer: 0, hits: 5, misses: 4), counters(layer: 1, hits: 4, misses: 4)])),
        .init(name: "dense", loaded: true, architecture: "llama", quantization: "q8_0", sizeBytes: 1, active: 0,
              queued: 0, tokensPerSecond: 1, generatedTokens: 1, promptTokens: 0, error: nil),
    ], sessions: 0, queue: 0, active: 0, rssBytes: 1)

    @Test func anExpertStoreGetsItsSection() {
        let text = Stats.render(Self.stats, socket: "/s")
        #expect(text.contains("experts of moe: resident 1.0 MiB of a 2.0 MiB pool (4 slots of 512.0 KiB), 10 tokens"))
        #expect(text.contains("hit rate 0.450, prefetch accuracy 0.750, 0.20 MB read/token, 1.00 ms stall/token"))
        #expect(!text.contains("experts of dense"))
        #expect(!text.contains("LAYER"))
        let layers = Stats.render(Self.stats, socket: "/s", layers: true)
        #expect(layers.contains("LAYER") && layers.split(separator: "\n").filter { $0.hasPrefix("1 ") }.count == 1)
    }

    @Test func theJSONKeepsTheExpertsObjectAndLeavesItOutForOthers() throws {
        let data = try JSONEncoder().encode(Self.stats)
        let o = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let models = o?["models"] as? [[String: Any]] ?? []
        #expect((models[0]["experts"] as? [String: Any])?["slot_bytes"] as? Int == 512 << 10)
        #expect(models[1].keys.contains("experts") == false)
        #expect(try JSONDecoder().decode(RoostStats.self, from: data) == Self.stats)
        // A reply without the field (an older daemon) still decodes.
        let old = #"{"version":"1","models":[{"name":"m","loaded":false,"size_bytes":1,"active":0,"queued":0,"tokens_per_s":0,"generated_tokens":0,"prompt_tokens":0}],"sessions":0,"queue":0,"active":0,"rss_bytes":0}"#
        #expect(try JSONDecoder().decode(RoostStats.self, from: Data(old.utf8)).models.first?.experts == nil)
    }
}
