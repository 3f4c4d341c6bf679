import Foundation
import GGUF
import Tokenizers

/// How chat messages become a prompt for one model, and which strings end an answer.
///
/// RWKV World models (no `tokenizer.chat_template`) use their training convention:
/// "User: ...\n\nAssistant: ...\n\n", a blank line ending every turn, so "\n\n" stops an answer.
struct ChatFormat: Sendable {
    let stops: [String]

    init(file: GGUFFile, tokenizer: AnyTokenizer) {
        stops = ["\n\n"]
    }

    /// The prompt text for `messages`; with `continuing`, only these messages are rendered (a
    /// session's state already holds the conversation before them).
    func render(_ messages: [PromptMessage], addGenerationPrompt: Bool, continuing: Bool) throws(EngineError) -> String {
        var out = ""
        for m in messages {
            let role: String
            switch m.role {
            case "system", "developer": role = "System"
            case "user": role = "User"
            case "assistant": role = "Assistant"
            case "tool": role = "Tool"
            default:
                throw .invalidRequest(param: "messages", message: "unknown role '\(m.role)'")
            }
            out += role + ": " + Self.clean(m.content) + "\n\n"
        }
        if addGenerationPrompt { out += "Assistant:" }
        return out
    }

    /// Strips the text and collapses blank lines (a blank line ends a turn in this convention).
    static func clean(_ s: String) -> String {
        var t = s.trimmingCharacters(in: .whitespacesAndNewlines)
        while t.contains("\n\n") { t = t.replacingOccurrences(of: "\n\n", with: "\n") }
        return t
    }
}
