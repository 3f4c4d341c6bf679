import Testing
@testable import Sampling

@Suite struct GrammarParserTests {
    func parse(_ s: String) throws(GrammarError) -> OrderedJSON { try OrderedJSONParser.parse(Array(s.utf8)) }

    @Test func keepsMemberOrder() throws {
        let v = try parse(##"{"zeta": 1, "alpha": {"m": true, "b": null, "a": [1, 2]}, "mid": "x"}"##)
        guard case let .object(members) = v else { Issue.record("not an object"); return }
        #expect(members.map(\.key) == ["zeta", "alpha", "mid"])
        guard case let .object(inner)? = v["alpha"] else { Issue.record("alpha not an object"); return }
        #expect(inner.map(\.key) == ["m", "b", "a"])
        #expect(String(decoding: v.compactBytes, as: UTF8.self)
                == ##"{"zeta":1,"alpha":{"m":true,"b":null,"a":[1,2]},"mid":"x"}"##)
    }

    @Test func stringsAndNumbers() throws {
        #expect(try parse(#""a\"b\\c\u00e9\ud83d\ude00\n""#) == .string("a\"b\\cé😀\n"))
        #expect(try parse("-1.5e+3") == .number(text: "-1.5e+3", value: -1500))
        #expect(try parse(" [ ] ") == .array([]))
        // Serialization escapes quotes, backslashes and control characters only.
        #expect(String(decoding: OrderedJSON.string("é\"\u{1}\n").compactBytes, as: UTF8.self) == #""é\"\u0001\n""#)
    }

    @Test func rejectsInvalidJSON() {
        for bad in ["", "{", ##"{"a" 1}"##, "[1,]", "01", "1.", #""\x""#, #""\ud800""#, "tru", "{} x", "\"a\nb\""] {
            #expect(throws: GrammarError.self, "\(bad)") { _ = try parse(bad) }
        }
        // Invalid UTF-8 inside a string.
        #expect(throws: GrammarError.self) { _ = try OrderedJSONParser.parse([0x22, 0xC0, 0x80, 0x22]) }
    }

    @Test func deepNestingIsAnErrorNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: GrammarError.tooDeep(path: "byte \(OrderedJSONParser.maximumDepth)", limit: OrderedJSONParser.maximumDepth)) {
            _ = try parse(deep)
        }
    }
}

@Suite struct GrammarSchemaErrorTests {
    func compile(_ s: String) throws(GrammarError) -> Grammar { try Grammar.jsonSchema(Array(s.utf8)) }

    @Test func unsupportedKeywordsNameKeywordAndPath() {
        #expect(throws: GrammarError.unsupportedKeyword(keyword: "multipleOf", path: "#/properties/name")) {
            _ = try compile(##"{"type":"object","properties":{"name":{"type":"number","multipleOf":2}}}"##)
        }
        #expect(throws: GrammarError.unsupportedKeyword(keyword: "minimum", path: "#/$defs/N")) {
            _ = try compile(##"{"$defs":{"N":{"type":"integer","minimum":3}},"type":"object","properties":{"n":{"$ref":"#/$defs/N"}}}"##)
        }
        #expect(throws: GrammarError.unsupportedKeyword(keyword: "allOf", path: "#/items")) {
            _ = try compile(##"{"type":"array","items":{"allOf":[{"type":"string"}]}}"##)
        }
        #expect(throws: GrammarError.unsupportedKeyword(keyword: "uniqueItems", path: "#")) {
            _ = try compile(##"{"type":"array","uniqueItems":true}"##)
        }
        #expect(throws: GrammarError.unsupportedKeyword(
            keyword: "additionalProperties", path: "# (only false is supported together with properties)")) {
            _ = try compile(##"{"type":"object","properties":{"a":{}},"additionalProperties":true}"##)
        }
        // The message names both.
        let e = GrammarError.unsupportedKeyword(keyword: "multipleOf", path: "#/properties/name")
        #expect(e.description.contains("multipleOf") && e.description.contains("#/properties/name"))
    }

    @Test func descriptiveKeywordsAreIgnored() throws {
        _ = try compile(##"{"$schema":"https://json-schema.org/draft/2020-12/schema","title":"T","description":"d","type":"string","examples":["a"],"default":"a","format":"email"}"##)
    }

    @Test func invalidSchemas() {
        #expect(throws: GrammarError.unresolvedReference(ref: "#/components/X", path: "#/$ref")) {
            _ = try compile(##"{"$ref":"#/components/X"}"##)
        }
        #expect(throws: GrammarError.unresolvedReference(ref: "#/$defs/Missing", path: "#/properties/a/$ref")) {
            _ = try compile(##"{"type":"object","properties":{"a":{"$ref":"#/$defs/Missing"}}}"##)
        }
        #expect(throws: GrammarError.self) { _ = try compile(##"{"type":"strin"}"##) }
        #expect(throws: GrammarError.self) { _ = try compile(##"{"type":"string","minLength":3,"maxLength":2}"##) }
        #expect(throws: GrammarError.self) { _ = try compile(##"{"type":"array","minItems":-1}"##) }
        #expect(throws: GrammarError.self) { _ = try compile(##"{"enum":[]}"##) }
        #expect(throws: GrammarError.self) { _ = try compile(##"{"type":"object","properties":{"a":{}},"required":["b"]}"##) }
        #expect(throws: GrammarError.invalidJSON(offset: 1, message: "expected a member name")) { _ = try compile("{,}") }
    }

    @Test func unsatisfiableRecursionIsAnError() {
        // Every A requires another A: no finite document.
        #expect(throws: GrammarError.unsatisfiable(path: "#", message: "no finite JSON value matches")) {
            _ = try compile(##"{"$ref":"#/$defs/A","$defs":{"A":{"type":"object","properties":{"a":{"$ref":"#/$defs/A"}},"required":["a"]}}}"##)
        }
        // A pure alias cycle.
        #expect(throws: GrammarError.self) {
            _ = try compile(##"{"$ref":"#/$defs/A","$defs":{"A":{"$ref":"#/$defs/B"},"B":{"$ref":"#/$defs/A"}}}"##)
        }
    }

    @Test func deepSchemasAreBounded() {
        var s = ##"{"type":"string"}"##
        for _ in 0..<100 { s = ##"{"type":"array","items":"## + s + "}" }
        #expect(throws: GrammarError.tooDeep(path: "#" + String(repeating: "/items", count: 65), limit: 64)) {
            _ = try compile(s)
        }
        // Within the schema limit but deeper than the matcher's nesting limit.
        var t = ##"{"type":"string"}"##
        for _ in 0..<40 { t = ##"{"type":"array","minItems":1,"items":"## + t + "}" }
        #expect(throws: GrammarError.tooDeep(path: "#", limit: Grammar.defaultMaxDepth)) { _ = try compile(t) }
    }
}

@Suite struct GrammarPatternErrorTests {
    func compile(_ pattern: String, _ extra: String = "") throws(GrammarError) -> Grammar {
        var quoted: [UInt8] = []
        OrderedJSON.serializeString(Array(pattern.utf8), into: &quoted)
        let schema = #"{"type":"object","properties":{"p":{"type":"string","pattern":"# + String(decoding: quoted, as: UTF8.self) + extra + "}}}"
        return try Grammar.jsonSchema(Array(schema.utf8))
    }

    @Test func unsupportedRegexFeaturesNameThePattern() {
        for bad in ["(?=a)", "(?i)a", "a++", #"\bfoo"#, "^a|b$", "[é]", "(a", "a)", "*a", #"\1"#, "a{2,1}", "x{1001}", "^a$b"] {
            do {
                _ = try compile(bad)
                Issue.record("\(bad) compiled")
            } catch {
                #expect(error.description.contains("pattern") && error.description.contains("#/properties/p"), "\(bad): \(error)")
            }
        }
        #expect(throws: GrammarError.unsupportedKeyword(keyword: "pattern", path: "#/properties/p (together with minLength/maxLength)")) {
            _ = try compile("^a+$", #","maxLength":3"#)
        }
        // Only control characters can match: no JSON string (raw, without escapes) does.
        #expect(throws: GrammarError.unsatisfiable(path: "#/properties/p/pattern", message: "no JSON string matches the pattern")) {
            _ = try compile(#"^\n$"#)
        }
    }
}

