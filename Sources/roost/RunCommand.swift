import APITypes
import ArgumentParser
import Foundation

/// Sampling options shared by `run` and `chat`.
struct GenerationOptions: ParsableArguments {
    @Option(name: .long, help: "The model (default: the only one the daemon has).")
    var model: String?

    @Option(name: .long, help: ArgumentHelp("Most tokens to generate.", valueName: "n"))
    var maxTokens: Int?

    @Option(name: .long, help: ArgumentHelp("Sampling temperature, 0...2 (0: greedy).", valueName: "t"))
    var temperature: Double?

    @Option(name: .long, help: ArgumentHelp("Seed: the same seed and request give the same answer.", valueName: "n"))
    var seed: Int?

    @Option(name: .long, help: ArgumentHelp("A system message.", valueName: "text"))
    var system: String?

    func validate() throws {
        if let maxTokens, maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
        if let temperature, !(0...2).contains(temperature) { throw ValidationError("--temperature must be in 0...2") }
    }

    func request(model: String, messages: [ChatMessage], session: String?) -> ChatCompletionRequest {
        ChatCompletionRequest(model: model, messages: messages, maxTokens: maxTokens, temperature: temperature,
                              seed: seed, session: session)
    }
}

/// Prints a streamed answer: content as it comes, reasoning dimmed on a terminal (left out
/// of a pipe, so that piped output is the answer alone), a spinner until the first token.
struct AnswerPrinter {
    var spinner = Spinner()
    let styled = Console.styled
    let showReasoning = Console.stdoutIsTTY
    private(set) var content = ""
    private(set) var reasoning = ""
    private var inReasoning = false

    mutating func idle() throws {
        if Interrupt.take() { throw Cancelled() }
        if content.isEmpty && reasoning.isEmpty { spinner.tick() }
    }

    mutating func print(_ chunk: ChatCompletionChunk) {
        guard let delta = chunk.choices.first?.delta else { return }
        if let r = delta.reasoningContent, !r.isEmpty {
            spinner.stop()
            reasoning += r
            if showReasoning {
                Console.out((styled && !inReasoning ? Console.dim : "") + r)
                inReasoning = true
            }
        }
        if let c = delta.content, !c.isEmpty {
            spinner.stop()
            if inReasoning {
                Console.out((styled ? Console.reset : "") + "\n")
                inReasoning = false
            }
            content += c
            Console.out(c)
        }
    }

    /// Ends the answer with a newline (and resets the style).
    mutating func finish() {
        spinner.stop()
        if inReasoning && styled { Console.out(Console.reset) }
        inReasoning = false
        Console.out("\n")
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "One answer, streamed to stdout.",
        discussion: """
            The prompt is the arguments joined by spaces, or stdin when there are none. The answer \
            is followed by one newline. With --json the answer is not streamed: the daemon's \
            chat.completion object is printed.
            """)

    @OptionGroup var options: ClientOptions
    @OptionGroup var generation: GenerationOptions

    @Option(name: .long, help: ArgumentHelp("Continue this saved session.", valueName: "id"))
    var session: String?

    @Argument(help: "The prompt (default: read from stdin).")
    var prompt: [String] = []

    func run() throws {
        let daemon = options.daemon
        var text = prompt.joined(separator: " ")
        if prompt.isEmpty {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        }
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw ClientError.usage("the prompt is empty; give it as arguments or on stdin")
        }
        var model = generation.model
        if model == nil, let session {
            model = try daemon.get(Daemon.sessionPath(session), as: SessionObject.self).model
        }
        let resolved = try daemon.resolveModel(model)
        var messages: [ChatMessage] = []
        if let system = generation.system { messages.append(ChatMessage(role: .system, content: .text(system))) }
        messages.append(ChatMessage(role: .user, content: .text(text)))
        var request = generation.request(model: resolved, messages: messages, session: session)

        if options.json {
            request.stream = false
            let completion = try daemon.post("/v1/chat/completions", json: request, as: ChatCompletion.self)
            Console.out(try Format.json(completion))
            return
        }
        // Ctrl-C stops the answer: the connection closes (the daemon cancels the generation),
        // the terminal is left tidy, and the exit code is 130 as for a shell's SIGINT.
        Interrupt.install()
        var printer = AnswerPrinter()
        let end = try daemon.streamChat(request, idle: { try printer.idle() }, onChunk: { printer.print($0) })
        printer.finish()
        if case .cancelled = end { throw ExitCode(130) }
    }
}
