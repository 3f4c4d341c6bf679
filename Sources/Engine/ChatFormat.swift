import Foundation
import GGUF
import Logging
import Tokenizers

/// How chat messages become a prompt for one model, and which strings end an answer.
///
/// The GGUF's `tokenizer.chat_template` (a Jinja template, rendered as transformers does) when it
/// has one; otherwise, for RWKV World models, their training convention
/// "User: ...\n\nAssistant: ...\n\n", where a blank line ends every turn, so "\n\n" stops an answer.
struct ChatFormat: Sendable {
    let template: ChatTemplate
    let stops: [String]
    let bosToken: String
    let eosToken: String
    /// True when the model's own template is used (not the RWKV World fallback).
    let fromModel: Bool

    init(file: GGUFFile, tokenizer: AnyTokenizer, logger: Logger) {
        func tokenText(_ id: Int32?) -> String {
            guard let id, let bytes = tokenizer.tokenBytes(id) else { return "" }
            return String(decoding: bytes, as: UTF8.self)
        }
        bosToken = tokenText(tokenizer.bosTokenID)
        eosToken = tokenText(tokenizer.eosTokenID)
        if let source = file.metadata["tokenizer.chat_template"]?.string, !source.isEmpty {
            do {
                template = try ChatTemplate(source: source)
                stops = []
                fromModel = true
                return
            } catch {
                logger.warning("the model's chat template cannot be used; using the RWKV World convention",
                               metadata: ["file": "\(file.path)", "error": "\(error)"])
            }
        }
        template = .rwkvWorld
        stops = ["\n\n"]
        fromModel = false
    }

    /// The prompt text for `messages`; with `continuing`, only these messages are rendered (a
    /// session's state already holds the conversation before them).
    func render(_ messages: [PromptMessage], addGenerationPrompt: Bool, continuing: Bool) throws(EngineError) -> String {
        let converted = messages.map { m in
            ChatMessage(role: !fromModel && m.role == "developer" ? "system" : m.role, content: m.content,
                        reasoningContent: m.reasoningContent)
        }
        do {
            return try template.render(messages: converted, addGenerationPrompt: addGenerationPrompt,
                                       bosToken: continuing ? "" : bosToken, eosToken: eosToken)
        } catch {
            throw .invalidRequest(param: "messages", message: "the chat template refused the messages: \(error)")
        }
    }
}
