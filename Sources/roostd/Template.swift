import ArgumentParser
import Foundation
import GGUF
import Tokenizers

/// `roostd template`: renders a chat template (from a GGUF's `tokenizer.chat_template`, a
/// file, or the RWKV World convention) for a conversation given as JSON.
struct Template: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render a chat template for a conversation.",
        discussion: """
            --messages takes a JSON array of {"role", "content", "reasoning_content"} objects, or an \
            object with "messages" and other template variables (e.g. "tools", "enable_thinking"). \
            Without a template in the model (or no model and no --template-file) the RWKV World \
            convention is used. --cases FILE renders many cases in one run: a JSON array of \
            {"template_file" (or "template": source), "messages", "add_generation_prompt", "bos", "eos", "extra", "raw_messages"}; \
            with "raw_messages": true the messages reach the template as given; prints a \
            JSON array of {"prompt": ...} or {"error": ..., "kind": ...}.
            """)

    @Argument(help: "A GGUF model whose tokenizer.chat_template (and BOS/EOS tokens) to use.") var model: String?
    @Option(name: .customLong("template-file"), help: "A Jinja chat template file.") var templateFile: String?
    @Option(help: "The conversation (JSON file; - for stdin).") var messages: String?
    @Option(help: "Render many cases from a JSON file (see below).") var cases: String?
    @Flag(name: .customLong("add-generation-prompt"), help: "End with the assistant's turn opener.") var addGenerationPrompt = false
    @Option(help: "BOS token string (default: the model's, else empty).") var bos: String?
    @Option(help: "EOS token string (default: the model's, else empty).") var eos: String?
    @Flag(help: "Print {\"prompt\": ...} as JSON.") var json = false

    func fail(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("roostd template: \(message)\n".utf8))
        return ExitCode(1)
    }

    func readText(_ path: String) throws -> String {
        if path == "-" { return String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) }
        // FileHandle also reads pipes (e.g. <(...) in a shell).
        guard let handle = FileHandle(forReadingAtPath: path) else { throw fail("\(path): cannot read file") }
        defer { try? handle.close() }
        return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    }

    func run() throws {
        if let cases {
            try runCases(cases)
            return
        }
        guard let messages else { throw fail("--messages FILE (or --cases FILE) is required") }
        var template = ChatTemplate.rwkvWorld
        var bosToken = ""
        var eosToken = ""
        if let templateFile {
            do {
                template = try ChatTemplate(source: try readText(templateFile))
            } catch let e as ChatTemplateError {
                throw fail("\(templateFile): \(e.description)")
            }
        } else if let model {
            let file: GGUFFile
            do {
                file = try GGUFFile(path: model)
            } catch {
                throw fail(error.description.hasPrefix(model) ? error.description : "\(model): \(error.description)")
            }
            (bosToken, eosToken) = Self.specialTokens(file)
            if let source = file.metadata["tokenizer.chat_template"]?.string {
                do {
                    template = try ChatTemplate(source: source)
                } catch {
                    throw fail("\(model): tokenizer.chat_template: \(error.description)")
                }
            }
        }
        let input: TemplateValue
        do {
            input = try TemplateValue.parseJSON(try readText(messages))
        } catch let e as ChatTemplateError {
            throw fail("\(messages): \(e.description)")
        }
        let prompt: String
        do {
            let (msgs, extra) = try Self.conversation(input)
            prompt = try template.render(messages: msgs, addGenerationPrompt: addGenerationPrompt,
                                         bosToken: bos ?? bosToken, eosToken: eos ?? eosToken, extraContext: extra)
        } catch {
            throw fail(error.description)
        }
        let out = json ? TemplateValue.dict([("prompt", .string(prompt))]).jsonText + "\n" : prompt
        FileHandle.standardOutput.write(Data(out.utf8))
    }

    /// The BOS and EOS token strings from the GGUF vocabulary, when it has them.
    static func specialTokens(_ file: GGUFFile) -> (String, String) {
        guard let tokens = file.metadata["tokenizer.ggml.tokens"]?.array,
              file.metadata["tokenizer.ggml.model"]?.string != "rwkv" else { return ("", "") }
        func token(_ key: String) -> String {
            guard let id = file.metadata[key]?.int, id >= 0, id < tokens.count else { return "" }
            return tokens[id].string ?? ""
        }
        return (token("tokenizer.ggml.bos_token_id"), token("tokenizer.ggml.eos_token_id"))
    }

    /// Messages and extra template variables from the --messages JSON.
    static func conversation(_ input: TemplateValue) throws(ChatTemplateError) -> ([ChatMessage], [String: TemplateValue]) {
        var list: TemplateValue = input
        var extra: [String: TemplateValue] = [:]
        if let pairs = input.objectPairs {
            list = input["messages"] ?? .array([])
            for (k, v) in pairs where k != "messages" { extra[k] = v }
        }
        guard case .array(let items) = list else {
            throw ChatTemplateError(.runtime, "messages must be a JSON array")
        }
        var out: [ChatMessage] = []
        for (i, item) in items.enumerated() {
            guard let role = item["role"]?.stringValue else {
                throw ChatTemplateError(.runtime, "message \(i) has no string \"role\"")
            }
            out.append(ChatMessage(role: role, content: item["content"]?.stringValue,
                                   reasoningContent: item["reasoning_content"]?.stringValue))
        }
        return (out, extra)
    }

    func runCases(_ path: String) throws {
        let input: TemplateValue
        do {
            input = try TemplateValue.parseJSON(try readText(path))
        } catch let e as ChatTemplateError {
            throw fail("\(path): \(e.description)")
        }
        guard case .array(let items) = input else { throw fail("\(path): expected a JSON array of cases") }
        var templates: [String: Result<ChatTemplate, ChatTemplateError>] = [:]
        var results: [TemplateValue] = []
        for item in items {
            func failure(_ e: ChatTemplateError) -> TemplateValue {
                .dict([("error", .string(e.description)), ("kind", .string(e.kind.rawValue))])
            }
            let template: ChatTemplate
            if let file = item["template_file"]?.stringValue ?? item["template"]?.stringValue.map({ "source:" + $0 }) {
                if templates[file] == nil {
                    let source: String
                    if file.hasPrefix("source:") {
                        source = String(file.dropFirst("source:".count))
                    } else {
                        guard let data = FileManager.default.contents(atPath: file) else { throw fail("\(file): cannot read file") }
                        source = String(decoding: data, as: UTF8.self)
                    }
                    do {
                        templates[file] = .success(try ChatTemplate(source: source))
                    } catch {
                        templates[file] = .failure(error)
                    }
                }
                switch templates[file] {
                case .success(let t): template = t
                case .failure(let e): results.append(failure(e)); continue
                case nil: continue
                }
            } else {
                template = ChatTemplate.rwkvWorld
            }
            do {
                var extra: [String: TemplateValue] = [:]
                if let e = item["extra"]?.objectPairs { for (k, v) in e { extra[k] = v } }
                var agp = false
                if case .bool(let b) = item["add_generation_prompt"] ?? .bool(false) { agp = b }
                let bos = item["bos"]?.stringValue ?? "", eos = item["eos"]?.stringValue ?? ""
                let prompt: String
                if case .bool(true) = item["raw_messages"] ?? .bool(false) {
                    // Messages go to the template as given (tool calls, tool results, ...).
                    var context: [String: TemplateValue] = [
                        "messages": item["messages"] ?? .array([]), "add_generation_prompt": .bool(agp),
                        "bos_token": .string(bos), "eos_token": .string(eos), "tools": .none, "documents": .none,
                    ]
                    for (k, v) in extra { context[k] = v }
                    prompt = try template.render(context: context)
                } else {
                    let (msgs, _) = try Self.conversation(.dict([("messages", item["messages"] ?? .array([]))]))
                    prompt = try template.render(messages: msgs, addGenerationPrompt: agp, bosToken: bos, eosToken: eos,
                                                 extraContext: extra)
                }
                results.append(.dict([("prompt", .string(prompt))]))
            } catch {
                results.append(failure(error))
            }
        }
        FileHandle.standardOutput.write(Data((TemplateValue.array(results).jsonText + "\n").utf8))
    }
}
