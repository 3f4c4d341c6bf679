import Foundation
import Testing
@testable import Tokenizers

private final class ResultBox: @unchecked Sendable {
    var errors: [ChatTemplateError?] = []
}

private func render(_ source: String, _ context: [String: TemplateValue] = [:]) throws(ChatTemplateError) -> String {
    try ChatTemplate(source: source).render(context: context)
}

private func renderError(_ source: String, _ context: [String: TemplateValue] = [:]) -> ChatTemplateError? {
    do {
        _ = try render(source, context)
        return nil
    } catch {
        return error
    }
}

/// A ChatML template in the style of Qwen2.5's, used by the speed and fuzz tests.
let chatMLTemplate = """
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
    {%- set ns = namespace(last_user=-1) %}
    {%- for message in messages %}
        {%- if message.role == 'user' %}{% set ns.last_user = loop.index0 %}{% endif %}
    {%- endfor %}
    {%- for message in messages %}
        {%- if message.role == 'system' and loop.first %}
        {%- elif message.role in ['user', 'assistant'] %}
            {%- set content = message.content | default('', true) %}
            {%- if message.reasoning_content is defined and loop.index0 > ns.last_user %}
                {%- set content = '<think>\\n' + message.reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') %}
            {%- endif %}
            {{- '<|im_start|>' + message.role + '\\n' + content | trim + '<|im_end|>\\n' }}
        {%- else %}
            {{- raise_exception('Unexpected role: ' ~ message.role) }}
        {%- endif %}
    {%- endfor %}
    {%- if add_generation_prompt %}
        {{- '<|im_start|>assistant\\n' }}
    {%- endif %}
    """

@Suite struct ChatTemplateTests {
    @Test func whitespaceControlAndBlockTrimming() throws {
        // lstrip_blocks removes the indentation before a block tag, trim_blocks the newline after it.
        #expect(try render("a\n  {% if true %}\n  b\n  {% endif %}\nc") == "a\n  b\nc")
        #expect(try render("a  {%- if true -%}  b  {%- endif -%}  c") == "abc")
        // Variable tags are not trimmed; one trailing newline of the source is dropped.
        #expect(try render("{{ 'x' }}\n{{ 'y' }}\n") == "x\ny")
        #expect(try render("x {# note #}\ny") == "x y")
        #expect(try render("  {# note #}\ny") == "y")
        #expect(try render("{%+ if true %}x{% endif +%}\ny") == "x\ny")
        #expect(try render("a\r\nb{% if true %}\r\nc{% endif %}") == "a\nbc")
    }

    @Test func expressionsAndLiterals() throws {
        #expect(try render("{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }}") == "7 3 -4 2 3.5 1024")
        #expect(try render("{{ 'a' ~ 1 ~ none ~ true }} {{ [1, 'b'] }} {{ {'k': none} }} {{ (1,) }}") == "a1NoneTrue [1, 'b'] {'k': None} (1,)")
        #expect(try render("{{ 'it\\'s' }} {{ \"say \\\"hi\\\"\" }} {{ 'a\\tb' }}") == "it's say \"hi\" a\tb")
        #expect(try render("{{ 'yes' if x is defined else 'no' }} {{ 'abc'[::-1] }} {{ [1, 2, 3][1:] }} {{ 'héllo'[1] }}") == "no cba [2, 3] é")
        #expect(try render("{{ 1 < 2 < 3 }} {{ 'ell' in 'hello' }} {{ 2 not in [1] }} {{ true and 'x' }} {{ none or 'y' }}") == "True True True x y")
        #expect(try render("{{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e-5 }} {{ 2.0 }}") == "0.30000000000000004 1e+16 1e-05 2.0")
    }

    @Test func loops() throws {
        let ctx: [String: TemplateValue] = ["l": .array([.int(3), .int(1), .int(2)]),
                                            "d": .dict([("b", .int(2)), ("a", .int(1))])]
        #expect(try render("{% for i in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}", ctx)
                == "103TrueFalse3;212FalseFalse3;321FalseTrue3;")
        #expect(try render("{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}", ctx) == "b=2,a=1,")
        #expect(try render("{% for i in l if i > 1 %}{{ i }}/{{ loop.length }} {% endfor %}", ctx) == "3/2 2/2 ")
        #expect(try render("{% for i in [] %}x{% else %}empty{% endfor %}") == "empty")
        #expect(try render("{% for i in l %}{% if i == 1 %}{% break %}{% endif %}{{ i }}{% endfor %}", ctx) == "3")
        #expect(try render("{% for i in l %}{% if i == 1 %}{% continue %}{% endif %}{{ i }}{% endfor %}", ctx) == "32")
        #expect(try render("{% for m in undefined_list %}x{% endfor %}") == "")
    }

    @Test func scopingAndNamespace() throws {
        // A `set` inside a loop stays in that iteration; namespace attributes carry across.
        #expect(try render("{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + 10 %}{{ x }},{% endfor %}{{ x }}") == "11,11,1")
        #expect(try render("{% set ns = namespace(n=0) %}{% for i in [1, 2, 3] %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}") == "6")
        #expect(try render("{% if true %}{% set y = 5 %}{% endif %}{{ y }}") == "5")
        #expect(try render("{% set b %}[{{ 1 + 1 }}]{% endset %}{{ b }}{{ b }}") == "[2][2]")
        #expect(try render("{% macro m(a, b='B') %}{{ a }}{{ b }}{% endmacro %}{{ m(1) }}{{ m(1, b=2) }}") == "1B12")
        #expect(try render("{% filter upper %}ab{{ 'c' }}{% endfilter %}") == "ABC")
    }

    @Test func filtersAndMethods() throws {
        let ctx: [String: TemplateValue] = [
            "tools": .array([.dict([("name", .string("f")), ("type", .string("function"))]),
                             .dict([("name", .string("g")), ("type", .string("code"))])]),
            "s": .string("  Hi, there  "),
        ]
        #expect(try render("{{ tools | selectattr('type', 'equalto', 'function') | map(attribute='name') | join(',') }}", ctx) == "f")
        #expect(try render("{{ tools[0] | tojson }}", ctx) == "{\"name\": \"f\", \"type\": \"function\"}")
        #expect(try render("{{ {'a': [1, 'é']} | tojson(indent=2) }}") == "{\n  \"a\": [\n    1,\n    \"é\"\n  ]\n}")
        #expect(try render("{{ s | trim }}|{{ s.strip() }}|{{ s | length }}|{{ s.split(',') }}", ctx) == "Hi, there|Hi, there|13|['  Hi', ' there  ']")
        #expect(try render("{{ 'a<b' | safe + '<' }} {{ 'x' | upper }} {{ 'hello world' | title }} {{ [3, 1, 2] | sort | list }}") == "a<b&lt; X Hello World [1, 2, 3]")
        #expect(try render("{{ '{}-{}'.format(1, 'a') }} {{ 'a,b'.split(',')[-1] }} {{ 'x'.startswith(('y', 'x')) }}") == "1-a b True")
        #expect(try render("{{ {'k': 1}.get('k') }}{{ {'k': 1}.get('z', 'd') }} {{ x | default('dflt') }} {{ [1, 2] | first }}") == "1d dflt 1")
    }

    @Test func undefinedValues() throws {
        #expect(try render("[{{ x }}]{{ x is defined }}{{ x | length }}{% if x %}t{% else %}f{% endif %}{{ x ~ 'a' }}") == "[]False0fa")
        #expect(try render("{{ d.missing is defined }}", ["d": .dict([])]) == "False")
        let e = renderError("{{ x.y }}")
        #expect(e?.kind == .runtime)
        #expect(e?.description.contains("'x' is undefined") == true)
        #expect(renderError("{{ nothing() }}")?.kind == .runtime)
        #expect(renderError("{{ x + 1 }}")?.kind == .runtime)
        #expect(renderError("{{ [1].append(2) }}")?.description.contains("unsafe") == true)
    }

    @Test func errorsSayWhereAndWhat() {
        let syntax = renderError("line one\n{{ 1 + }}")
        #expect(syntax?.kind == .syntax)
        #expect(syntax?.line == 2)
        #expect(syntax?.column == 8)
        #expect(syntax?.description == "template syntax error at 2:8: unexpected '}}'")

        let unclosed = renderError("ok\n  {% if x %}abc")
        #expect(unclosed?.kind == .syntax)
        #expect(unclosed?.description.contains("'endif'") == true)
        #expect(unclosed?.line == 2)

        let unknownTag = renderError("{% include 'other.jinja' %}")
        #expect(unknownTag?.kind == .unsupported)
        #expect(unknownTag?.description == "unsupported template feature at 1:4: unknown or unsupported tag 'include'")

        // Like jinja2: an unknown filter is a parse error, unless it sits inside an `if`.
        let unknownFilter = renderError("{{ 'a' | frobnicate }}")
        #expect(unknownFilter?.kind == .syntax)
        #expect(unknownFilter?.description == "template syntax error at 1:10: no filter named 'frobnicate'")
        #expect((try? render("{% if false %}{{ 'a' | frobnicate }}{% endif %}")) == "")
        #expect(renderError("{% if true %}{{ 'a' | frobnicate }}{% endif %}")?.kind == .runtime)
        #expect(renderError("{{ x is frobnicated }}")?.kind == .syntax)
        // Filters jinja2 has and Roost lacks fail when reached.
        #expect(renderError("{{ [1, 2] | batch(1) }}")?.kind == .unsupported)

        let raised = renderError("{% if true %}\n  {{ raise_exception('Roles must alternate') }}{% endif %}")
        #expect(raised?.kind == .raised)
        #expect(raised?.message == "Roles must alternate")
        #expect(raised?.description == "template raised an exception at 2:6: Roles must alternate")

        #expect(renderError("{{ 'abc")?.kind == .syntax)
        #expect(renderError("{% endfor %}")?.kind == .syntax)
        #expect(renderError("{{ 1 / 0 }}")?.kind == .runtime)
    }

    @Test func limitsStopRunawayTemplates() {
        let recursion = renderError("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}")
        #expect(recursion?.kind == .runtime)
        #expect(recursion?.message.contains("nest deeper") == true)
        let output = renderError("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}")
        #expect(output?.message.contains("output exceeds") == true)
        #expect(renderError("{{ range(10000000) }}")?.kind == .runtime)
        let deep = String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000)
        #expect(renderError("{{ \(deep) }}")?.kind == .syntax)
        let deepTags = String(repeating: "{% if true %}", count: 2000) + String(repeating: "{% endif %}", count: 2000)
        #expect(renderError(deepTags)?.kind == .syntax)
        let deepValue = renderError("{% set ns = namespace(a=[]) %}{% for i in range(100000) %}{% set ns.a = [ns.a] %}{% endfor %}{{ ns.a }}")
        #expect(deepValue?.message.contains("nests deeper") == true)
    }

    @Test func limitsHoldOnASmallStack() throws {
        // The nesting limits (parser depth, macro calls) keep the deepest allowed template
        // within 2 MiB of stack even in unoptimized builds (threads get 8 MiB on Linux).
        let box = ResultBox()
        let done = DispatchSemaphore(value: 0)
        let ifs = String(repeating: "{% if true %}", count: 10), endifs = String(repeating: "{% endif %}", count: 10)
        let thread = Thread {
            box.errors = [
                renderError("{% macro f(n) %}{{ [[[[n]]]] }}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
                renderError("{{ " + String(repeating: "(", count: 100) + "1" + String(repeating: ")", count: 100) + " }}"),
                renderError(String(repeating: "{% if true %}", count: 100) + String(repeating: "{% endif %}", count: 100)),
                renderError("{% macro f(n) %}" + ifs + "{{ " + String(repeating: "(", count: 15) + "f(n + 1)"
                            + String(repeating: ")", count: 15) + " }}" + endifs + "{% endmacro %}{{ f(0) }}"),
            ]
            done.signal()
        }
        thread.stackSize = 2 << 20
        thread.start()
        done.wait()
        #expect(box.errors.count == 4)
        #expect(box.errors.allSatisfy { $0 != nil })
    }

    @Test func chatMessagesAndGenerationPrompt() throws {
        let t = try ChatTemplate(source: chatMLTemplate)
        let msgs = [ChatMessage(role: "user", content: "Hi"),
                    ChatMessage(role: "assistant", content: "Hello!", reasoningContent: "\ngreet\n")]
        #expect(try t.render(messages: msgs, addGenerationPrompt: false, bosToken: "", eosToken: "")
                == "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                + "<|im_start|>assistant\n<think>\ngreet\n</think>\n\nHello!<|im_end|>\n")
        #expect(try t.render(messages: [ChatMessage(role: "system", content: "S"), ChatMessage(role: "user", content: "U")],
                             addGenerationPrompt: true, bosToken: "", eosToken: "")
                == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n")
        #expect(throws: ChatTemplateError.self) {
            try t.render(messages: [ChatMessage(role: "tool", content: "x")], addGenerationPrompt: false, bosToken: "", eosToken: "")
        }
    }

    @Test func rwkvWorldConvention() throws {
        let msgs = [ChatMessage(role: "system", content: "You are helpful."),
                    ChatMessage(role: "user", content: "  Hi\n\n\nthere \n"),
                    ChatMessage(role: "assistant", content: "Hello!\n\nHow can I help?")]
        let t = ChatTemplate.rwkvWorld
        #expect(try t.render(messages: msgs, addGenerationPrompt: true, bosToken: "", eosToken: "")
                == "System: You are helpful.\n\nUser: Hi\nthere\n\nAssistant: Hello!\nHow can I help?\n\nAssistant:")
        #expect(try t.render(messages: Array(msgs.prefix(2)), addGenerationPrompt: false, bosToken: "", eosToken: "")
                == "System: You are helpful.\n\nUser: Hi\nthere\n\n")
        #expect(try t.render(messages: [], addGenerationPrompt: true, bosToken: "", eosToken: "") == "Assistant:")
        #expect(!t.source.isEmpty)
    }

    @Test func jsonRoundTripKeepsKeyOrder() throws {
        let v = try TemplateValue.parseJSON(#"{"z": 1, "a": [true, null, 2.5, "é\n"], "m": {"y": -3}}"#)
        #expect(v.jsonText == #"{"z": 1, "a": [true, null, 2.5, "é\n"], "m": {"y": -3}}"#)
        #expect(throws: ChatTemplateError.self) { try TemplateValue.parseJSON("{\"a\": }") }
    }

    @Test func rendersShortChatsQuickly() throws {
        let t = try ChatTemplate(source: chatMLTemplate)
        let msgs = [ChatMessage(role: "system", content: "You are a helpful assistant."),
                    ChatMessage(role: "user", content: "What is the capital of France?"),
                    ChatMessage(role: "assistant", content: "Paris."),
                    ChatMessage(role: "user", content: "And of Italy?")]
        let clock = ContinuousClock()
        let n = 200
        let elapsed = try clock.measure {
            for _ in 0..<n { _ = try t.render(messages: msgs, addGenerationPrompt: true, bosToken: "", eosToken: "") }
        }
        // Well under a millisecond in release builds; generous here for unoptimized test builds.
        #expect(elapsed / n < .milliseconds(5))
    }

    @Test func malformedTemplatesNeverCrash() {
        var rng = SplitMix64(seed: 0x5EED)
        let source = Array(chatMLTemplate.unicodeScalars)
        let alphabet = Array("{}%#-+()[]'\"|.,:~=!<> \n\\abcdefgnorst0123456789_".unicodeScalars)
        let msgs: TemplateValue = .array([ChatMessage(role: "user", content: "Hi").templateValue,
                                          ChatMessage(role: "assistant", content: "Yo").templateValue])
        let context: [String: TemplateValue] = ["messages": msgs, "add_generation_prompt": .bool(true)]
        var parsed = 0
        for round in 0..<1500 {
            var s = source
            if round % 3 == 0 {
                s = Array(s.prefix(Int(rng.next() % UInt64(s.count + 1))))
            } else {
                for _ in 0..<(1 + Int(rng.next() % 4)) where !s.isEmpty {
                    let i = Int(rng.next() % UInt64(s.count))
                    switch rng.next() % 3 {
                    case 0: s.remove(at: i)
                    case 1: s.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: i)
                    default: s[i] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                    }
                }
            }
            var text = ""
            text.unicodeScalars.append(contentsOf: s)
            if let t = try? ChatTemplate(source: text) {
                parsed += 1
                _ = try? t.render(context: context)
            }
        }
        #expect(parsed > 0)
    }
}
