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
    /// The text the template puts after an assistant's answer to end the turn (ChatML's
    /// "<|im_end|>\n", RWKV World's "\n\n"); a session's state gets it after each answer.
    let turnClose: String

    /// Placeholders for a conversation's earlier turn, to cut renders apart (private-use
    /// characters no template changes).
    private static let earlierUser = "\u{E000}"
    private static let earlierAnswer = "\u{E001}"

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
                turnClose = ChatFormat.closingText(template, bosToken: bosToken, eosToken: eosToken) ?? ""
                return
            } catch {
                logger.warning("the model's chat template cannot be used; using the RWKV World convention",
                               metadata: ["file": "\(file.path)", "error": "\(error)"])
            }
        }
        template = .rwkvWorld
        stops = ["\n\n"]
        fromModel = false
        turnClose = "\n\n"
    }

    /// A format with the model's own template (tests).
    init(template: ChatTemplate, bosToken: String, eosToken: String) {
        self.template = template
        self.bosToken = bosToken
        self.eosToken = eosToken
        stops = []
        fromModel = true
        turnClose = ChatFormat.closingText(template, bosToken: bosToken, eosToken: eosToken) ?? ""
    }

    /// What `template` renders after an assistant answer: the render of [user, assistant]
    /// minus the render of [user] with the generation prompt and the answer. nil when the
    /// two renders do not line up that way.
    static func closingText(_ template: ChatTemplate, bosToken: String, eosToken: String) -> String? {
        let user = ChatMessage(role: "user", content: earlierUser, reasoningContent: nil)
        let answer = ChatMessage(role: "assistant", content: earlierAnswer, reasoningContent: nil)
        guard let open = try? template.render(messages: [user], addGenerationPrompt: true,
                                              bosToken: bosToken, eosToken: eosToken),
              let both = try? template.render(messages: [user, answer], addGenerationPrompt: false,
                                              bosToken: bosToken, eosToken: eosToken) else { return nil }
        // Templates may put a space before the answer ("Assistant: ..."), nothing else.
        guard both.hasPrefix(open) else { return nil }
        let rest = both.dropFirst(open.count)
        guard let r = rest.range(of: earlierAnswer), rest[..<r.lowerBound].allSatisfy({ $0 == " " }) else { return nil }
        return String(rest[r.upperBound...])
    }

    /// The prompt text for `messages`; with `continuing`, the text these messages add to a
    /// conversation whose earlier turns (closed with `turnClose`) a session's state already
    /// holds: the render after an earlier user/assistant turn, minus that turn's render, so
    /// the BOS and default system prompts of the template are not repeated.
    func render(_ messages: [PromptMessage], addGenerationPrompt: Bool, continuing: Bool) throws(EngineError) -> String {
        let converted = messages.map { m in
            ChatMessage(role: !fromModel && m.role == "developer" ? "system" : m.role, content: m.content,
                        reasoningContent: m.reasoningContent)
        }
        if continuing {
            let earlier = [ChatMessage(role: "user", content: ChatFormat.earlierUser, reasoningContent: nil),
                           ChatMessage(role: "assistant", content: ChatFormat.earlierAnswer, reasoningContent: nil)]
            if let before = try? template.render(messages: earlier, addGenerationPrompt: false,
                                                 bosToken: bosToken, eosToken: eosToken),
               let after = try? template.render(messages: earlier + converted, addGenerationPrompt: addGenerationPrompt,
                                                bosToken: bosToken, eosToken: eosToken),
               after.hasPrefix(before) {
                return String(after.dropFirst(before.count))
            }
        }
        do {
            return try template.render(messages: converted, addGenerationPrompt: addGenerationPrompt,
                                       bosToken: continuing ? "" : bosToken, eosToken: eosToken)
        } catch {
            throw .invalidRequest(param: "messages", message: "the chat template refused the messages: \(error)")
        }
    }
}
