import APITypes
import ArgumentParser
import Foundation

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk with a model; answers stream as they are generated.",
        discussion: """
            Without --session the conversation lives in this process and the whole history is \
            sent with every message (the daemon reuses the cached prefix). With --session (or \
            after /save) the daemon keeps the conversation's state and only new messages are sent.
            Commands: /save, /load ID, /reset, /help, /quit. Ctrl-C stops an answer; Ctrl-D or \
            /quit leaves.
            """)

    @OptionGroup var options: ClientOptions
    @OptionGroup var generation: GenerationOptions

    @Option(name: .long, help: ArgumentHelp("Continue this saved session.", valueName: "id"))
    var session: String?

    func run() throws {
        let daemon = options.daemon
        var model = generation.model
        var system = generation.system
        if let session {
            // Fails early (404) for an unknown session; the model defaults to the session's.
            let saved = try daemon.get(Daemon.sessionPath(session), as: SessionObject.self)
            if model == nil { model = saved.model }
            if system != nil && saved.turns > 0 {
                Console.err("roost: --system is ignored: session \(session) already has a conversation\n")
                system = nil
            }
        }
        var state = ChatState(model: try daemon.resolveModel(model), session: session, system: system)
        Interrupt.install()
        let reader = LineReader()
        let styled = Console.styled
        if reader.interactive {
            Console.out((styled ? Console.dim : "") + "\(state.model)\(session.map { ", session \($0)" } ?? "")."
                        + " /help for commands, Ctrl-D to leave." + (styled ? Console.reset : "") + "\n")
        }
        let prompt = reader.interactive ? (styled ? Console.bold + ">>> " + Console.reset : ">>> ") : ""
        while true {
            let input = reader.readLine(prompt: prompt)
            switch input {
            case .eof:
                return
            case .interrupted:
                continue
            case .line(let line):
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty { continue }
                if trimmed.hasPrefix("/") {
                    if try command(trimmed, state: &state, daemon: daemon) { return }
                    continue
                }
                do {
                    try turn(line, state: &state, daemon: daemon)
                } catch let error as ClientError {
                    if case .notRunning = error { throw error }
                    if case .forbidden = error { throw error }
                    Console.err(error.description + "\n")
                }
            }
        }
    }

    /// One exchange: send, stream the answer, keep it in the history.
    private func turn(_ text: String, state: inout ChatState, daemon: Daemon) throws {
        let user = ChatMessage(role: .user, content: .text(text))
        let request = generation.request(model: state.model, messages: state.outgoing(user), session: state.session)
        var printer = AnswerPrinter()
        _ = Interrupt.take()
        let end = try daemon.streamChat(request, idle: { try printer.idle() }, onChunk: { printer.print($0) })
        printer.finish()
        switch end {
        case .finished:
            state.record(user: user, answer: printer.content, reasoning: printer.reasoning)
        case .cancelled:
            Console.err("[answer stopped]\n")
        }
    }

    /// Handles a slash command; true when the program should end.
    private func command(_ line: String, state: inout ChatState, daemon: Daemon) throws -> Bool {
        let parts = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        let name = parts.first ?? ""
        let info = { (text: String) in Console.out(text + "\n") }
        do {
            switch name {
            case "/quit", "/exit", "/bye":
                return true
            case "/help", "/?":
                info("""
                    /save      keep this conversation on the daemon as a session; prints its id
                    /load ID   continue a saved session
                    /reset     start over (a saved session stays saved)
                    /quit      leave (also Ctrl-D)
                    Ctrl-C stops an answer.
                    """)
            case "/reset":
                state.reset()
                info("Conversation cleared.")
            case "/save":
                if let id = state.session {
                    info("Session \(id) (the daemon saves it after every answer).")
                } else {
                    let s = try daemon.post("/v1/sessions", json: SessionCreateRequest(model: state.model), as: SessionObject.self)
                    let pending = state.attach(session: s.id)
                    info("Saved as session \(s.id)."
                         + (pending ? " The conversation so far goes into it with your next message." : ""))
                }
            case "/load":
                guard parts.count == 2 else {
                    info("usage: /load ID")
                    return false
                }
                let s = try daemon.get(Daemon.sessionPath(parts[1]), as: SessionObject.self)
                state = ChatState(model: s.model, session: s.id, system: nil)
                info("Loaded session \(s.id) (model \(s.model), \(s.turns) turns).")
            default:
                info("Unknown command \(name); /help lists them.")
            }
        } catch let error as ClientError {
            if case .notRunning = error { throw error }
            Console.err(error.description + "\n")
        }
        return false
    }
}

/// The conversation as the client keeps it.
///
/// Stateless: `history` holds every message and all of it is sent each turn. With a session
/// the daemon holds the state and only `unsent` messages go out (plus the new one); after
/// /save the history so far is unsent until the next turn carries it.
struct ChatState {
    var model: String
    var session: String?
    var system: String?
    private(set) var history: [ChatMessage] = []
    /// Messages of `history` the session's state does not hold yet.
    private(set) var unsent = 0

    init(model: String, session: String?, system: String?) {
        self.model = model
        self.session = session
        self.system = system
        if let system { history.append(ChatMessage(role: .system, content: .text(system))) }
        unsent = history.count
    }

    /// The messages to send with a new user message.
    func outgoing(_ user: ChatMessage) -> [ChatMessage] {
        if session == nil { return history + [user] }
        return Array(history.suffix(unsent)) + [user]
    }

    mutating func record(user: ChatMessage, answer: String, reasoning: String) {
        history.append(user)
        history.append(ChatMessage(role: .assistant, content: .text(answer),
                                   reasoningContent: reasoning.isEmpty ? nil : reasoning))
        unsent = 0
    }

    /// Starts sending to a new session; true when earlier messages still have to go into it.
    mutating func attach(session id: String) -> Bool {
        session = id
        unsent = history.count
        return history.contains { $0.role != .system }
    }

    mutating func reset() {
        session = nil
        history = system.map { [ChatMessage(role: .system, content: .text($0))] } ?? []
        unsent = history.count
    }
}
