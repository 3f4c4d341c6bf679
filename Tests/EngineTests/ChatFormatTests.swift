import Testing
import Tokenizers

@testable import Engine

/// Session turns with a model's own template: the text a new turn adds and the text that
/// closes an answer, cut out of whole-conversation renders.
@Suite struct ChatFormatTests {
    // Qwen2's template (ChatML with a default system prompt).
    static let chatML = """
        {% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}\
        {{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}\
        {{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}\
        {% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}
        """
    // Llama 3's template (BOS in the first message).
    static let llama3 = """
        {% set loop_messages = messages %}{% for message in loop_messages %}\
        {% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}\
        {% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}\
        {% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}
        """

    func format(_ source: String, bos: String) throws -> ChatFormat {
        ChatFormat(template: try ChatTemplate(source: source), bosToken: bos, eosToken: "</s>")
    }

    @Test func chatMLTurns() throws {
        let f = try format(Self.chatML, bos: "")
        #expect(f.turnClose == "<|im_end|>\n")
        let first = try f.render([PromptMessage(role: "user", content: "hi")], addGenerationPrompt: true, continuing: false)
        #expect(first == "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
        // A later turn: no second system prompt.
        let next = try f.render([PromptMessage(role: "user", content: "and?")], addGenerationPrompt: true, continuing: true)
        #expect(next == "<|im_start|>user\nand?<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test func llama3Turns() throws {
        let f = try format(Self.llama3, bos: "<|begin_of_text|>")
        #expect(f.turnClose == "<|eot_id|>")
        let first = try f.render([PromptMessage(role: "user", content: "hi")], addGenerationPrompt: true, continuing: false)
        #expect(first.hasPrefix("<|begin_of_text|><|start_header_id|>user"))
        // A later turn: no BOS.
        let next = try f.render([PromptMessage(role: "user", content: "and?")], addGenerationPrompt: true, continuing: true)
        #expect(next == "<|start_header_id|>user<|end_header_id|>\n\nand?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    }

    @Test func rwkvWorldTurns() throws {
        let f = ChatFormat(template: .rwkvWorld, bosToken: "", eosToken: "")
        #expect(f.turnClose == "\n\n")
        let next = try f.render([PromptMessage(role: "user", content: "and?")], addGenerationPrompt: true, continuing: true)
        #expect(next == "User: and?\n\nAssistant:")
    }
}
