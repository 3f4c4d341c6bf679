/// One chat message as chat templates see it: a dict with "role", "content" and, when
/// set, "reasoning_content".
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String?
    public var reasoningContent: String?

    public init(role: String, content: String?, reasoningContent: String? = nil) {
        self.role = role
        self.content = content
        self.reasoningContent = reasoningContent
    }

    public var templateValue: TemplateValue {
        var pairs: [(String, TemplateValue)] = [("role", .string(role)), ("content", content.map { .string($0) } ?? .none)]
        if let reasoningContent { pairs.append(("reasoning_content", .string(reasoningContent))) }
        return .dict(pairs)
    }
}

/// A parsed chat template: the Jinja subset that Hugging Face chat templates use, rendered
/// as transformers renders them (jinja2's ImmutableSandboxedEnvironment with
/// trim_blocks and lstrip_blocks, loop controls, `tojson`, `raise_exception`, `strftime_now`).
public struct ChatTemplate: Sendable {
    public let source: String
    let nodes: [Node]

    /// Parses `source` once. Syntax this engine does not know is an error naming line:column.
    public init(source: String) throws(ChatTemplateError) {
        var lexer = Lexer(source: source)
        let tokens = try lexer.tokenize()
        var parser = Parser(tokens: tokens)
        let nodes = try parser.parseTemplate()
        try Validator().check(nodes, soft: false)
        self.nodes = nodes
        self.source = source
    }

    /// Renders a conversation. The context holds `messages`, `add_generation_prompt`,
    /// `bos_token`, `eos_token`, `tools` and `documents` (none), plus `extraContext`
    /// (which wins over the others, e.g. `enable_thinking` or `tools`).
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String, eosToken: String,
                       extraContext: [String: TemplateValue] = [:]) throws(ChatTemplateError) -> String {
        var context: [String: TemplateValue] = [
            "messages": .array(messages.map(\.templateValue)),
            "add_generation_prompt": .bool(addGenerationPrompt),
            "bos_token": .string(bosToken),
            "eos_token": .string(eosToken),
            "tools": .none,
            "documents": .none,
        ]
        for (k, v) in extraContext { context[k] = v }
        return try render(context: context)
    }

    /// Renders with an arbitrary context (the template's global variables).
    public func render(context: [String: TemplateValue]) throws(ChatTemplateError) -> String {
        let renderer = Renderer(context: context)
        return try renderer.render(nodes)
    }

    /// Source of the RWKV World chat convention, for models without `tokenizer.chat_template`:
    /// "User: X\n\nAssistant: Y\n\n" with roles capitalized, content trimmed and blank lines
    /// inside content collapsed (a blank line ends a turn), and "Assistant:" as the prompt.
    public static let rwkvWorldSource = """
        {%- for message in messages -%}
        {{ message.role | capitalize }}: {{ ((message.content or '') | trim).split('\\n') | select | join('\\n') }}

        {% endfor -%}
        {%- if add_generation_prompt -%}
        Assistant:
        {%- endif -%}
        """

    /// The RWKV World convention as a template.
    public static let rwkvWorld: ChatTemplate = {
        do {
            return try ChatTemplate(source: rwkvWorldSource)
        } catch {
            // The source is a constant checked by the unit tests; an empty template is the
            // only fallback that does not trap.
            return ChatTemplate(nodes: [])
        }
    }()

    private init(nodes: [Node]) {
        self.nodes = nodes
        self.source = ""
    }
}
