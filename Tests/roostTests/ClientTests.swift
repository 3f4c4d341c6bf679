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
