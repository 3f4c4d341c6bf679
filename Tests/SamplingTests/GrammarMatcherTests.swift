import Testing
@testable import Sampling

let syntheticVocabulary: GrammarVocabulary = {
    let (tokens, eos) = GrammarVocabulary.syntheticTokens()
    do { return try GrammarVocabulary(tokens: tokens, eosTokens: [eos]) } catch { preconditionFailure("\(error)") }
}()

func matcher(_ schema: String) throws -> GrammarMatcher {
    GrammarMatcher(grammar: try Grammar.jsonSchema(Array(schema.utf8)), vocabulary: syntheticVocabulary)
}

/// Whether the whole of `doc` is a complete document under `m`'s grammar.
func accepts(_ m: GrammarMatcher, _ doc: [UInt8]) -> Bool {
    m.reset()
    return m.accept(bytes: doc) && m.isComplete
}

func accepts(_ m: GrammarMatcher, _ doc: String) -> Bool { accepts(m, Array(doc.utf8)) }

/// Whether `doc` is a valid prefix (not necessarily complete).
func acceptsPrefix(_ m: GrammarMatcher, _ doc: [UInt8]) -> Bool {
    m.reset()
    return m.accept(bytes: doc)
}

@Suite struct GrammarMatcherTests {
    @Test func objectPropertiesInOrder() throws {
        let m = try matcher(##"{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},"c":{"type":"boolean"}},"required":["a","c"]}"##)
        for good in [##"{"a":1,"c":true}"##, ##"{"a": -12, "b": "x", "c": false}"##, ##"{"a":0,"b":"","c":true}"##,
                     ##"{"a":-0,"c":false}"##] {
            #expect(accepts(m, good), "\(good)")
        }
        for bad in [##"{"c":true}"##, ##"{"a":1}"##, ##"{"c":true,"a":1}"##, ##"{"a":1,"c":true,}"##, ##"{"a":01,"c":true}"##,
                    ##"{"a":1.5,"c":true}"##, ##"{ "a":1,"c":true}"##, ##"{"a":  1,"c":true}"##, ##"{"a":1,"c":true,"d":1}"##,
                    ##"{"a":1,"c":true}x"##, ##"{"a":1,"c":true} "##, ##"{"a":1,"c":tru}"##, ##"{"a":1 ,"c":true}"##,
                    ##"{"a":1,"b":"x","b":"y","c":true}"##, "{\"a\":1,\n\"c\":true}"] {
            #expect(!accepts(m, bad), "\(bad)")
        }
    }

    @Test func prefixesAndCompleteness() throws {
        let m = try matcher(##"{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}"##)
        #expect(acceptsPrefix(m, Array(##"{"a":12"##.utf8)))
        #expect(!m.isComplete)
        #expect(m.accept(bytes: Array("}".utf8)))
        #expect(m.isComplete && !m.canContinue)
        #expect(m.allowedTokens() == syntheticVocabulary.eosTokens)
        // A top-level integer is complete after a digit yet can go on.
        let n = try matcher(##"{"type":"integer"}"##)
        #expect(acceptsPrefix(n, Array("12".utf8)))
        #expect(n.isComplete && n.canContinue)
        let allowed = n.allowedTokens()
        #expect(allowed.contains(syntheticVocabulary.eosTokens[0]) && allowed.contains(Int32(UInt8(ascii: "7"))))
        #expect(!allowed.contains(Int32(UInt8(ascii: "."))))
    }

    @Test func stringsEscapesAndUTF8() throws {
        let m = try matcher(##"{"type":"string"}"##)
        for good in [##""""##, ##""a\"b\\c\/\b\f\n\r\t""##, ##""\u00e9\u20AC""##, "\"é日本😀\""] {
            #expect(accepts(m, good), "\(good)")
        }
        for bad in [##""\x""##, ##""\ud83d\ude00""##, ##""\u12""##, "\"a\nb\"", "\"a\tb\"", ##""abc"##] {
            #expect(!accepts(m, bad), "\(bad)")
        }
        let invalidUTF8: [[UInt8]] = [
            [0x22, 0xC0, 0x80, 0x22],              // overlong
            [0x22, 0xE0, 0x80, 0x80, 0x22],        // overlong 3-byte
            [0x22, 0xED, 0xA0, 0x80, 0x22],        // surrogate
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // above U+10FFFF
            [0x22, 0xE6, 0x97, 0x22],              // truncated
            [0x22, 0x80, 0x22],                    // lone continuation
            [0x22, 0xFF, 0x22],
        ]
        for bad in invalidUTF8 { #expect(!accepts(m, bad), "\(bad)") }
        #expect(accepts(m, [0x22, 0xF0, 0x9F, 0x98, 0x80, 0x22]))
    }

    @Test func stringLengthCountsCodePoints() throws {
        let m = try matcher(##"{"type":"string","minLength":2,"maxLength":3}"##)
        #expect(accepts(m, ##""éé""##))
        #expect(accepts(m, ##""日本語""##))
        #expect(accepts(m, ##""a\n""##))
        #expect(!accepts(m, ##""日本語x""##))
        #expect(!accepts(m, ##""é""##))
    }

    @Test func utf8SplitAcrossTokens() throws {
        let m = try matcher(##"{"type":"string"}"##)
        let v = syntheticVocabulary
        let partial = Int32(v.size - 3)  // E6 97
        let rest = Int32(v.size - 2)     // A5 "
        try m.accept(token: Int32(UInt8(ascii: "\"")))
        try m.accept(token: partial)
        // Only tokens starting with A5 may follow E6 97 (E6 takes 80...BF next, 97 was that; A5 ends it).
        let allowed = m.allowedTokens()
        #expect(allowed.contains(rest) && allowed.contains(0xA5))
        #expect(!allowed.contains(0x22) && !allowed.contains(0x41) && !allowed.contains(0xC0))
        for id in allowed { #expect(v.tokenBytes[Int(id)].first.map { $0 >= 0x80 && $0 <= 0xBF } == true) }
        #expect(throws: GrammarError.tokenRejected(token: 0x22)) { try m.accept(token: 0x22) }
        try m.accept(token: rest)
        #expect(m.isComplete)
        // Byte by byte across three tokens.
        m.reset()
        for b: UInt8 in [0x22, 0xE6, 0x97, 0xA5, 0x22] { try m.accept(token: Int32(b)) }
        #expect(m.isComplete)
    }

    @Test func arraysAndTuples() throws {
        let m = try matcher(##"{"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3}"##)
        for good in ["[1]", "[1,2]", "[1, 2, 3]", "[-5,0]"] { #expect(accepts(m, good), "\(good)") }
        for bad in ["[]", "[1,2,3,4]", "[ 1]", "[1 ]", "[1,]", "[\"a\"]"] { #expect(!accepts(m, bad), "\(bad)") }
        let tuple = try matcher(##"{"type":"array","prefixItems":[{"type":"string"},{"type":"number"}],"items":false}"##)
        for good in ["[]", ##"["a"]"##, ##"["a",1.5e3]"##] { #expect(accepts(tuple, good), "\(good)") }
        for bad in ["[1]", ##"["a",1,2]"##, ##"["a","b"]"##] { #expect(!accepts(tuple, bad), "\(bad)") }
    }

    @Test func enumsConstsAndNullable() throws {
        let m = try matcher(##"{"enum":["red","green",1,null,{"k":[true]}]}"##)
        for good in [##""red""##, ##""green""##, "1", "null", ##"{"k":[true]}"##] { #expect(accepts(m, good), "\(good)") }
        for bad in [##""re""##, "12", ##""blue""##, ##"{"k": [true]}"##, "true"] { #expect(!accepts(m, bad), "\(bad)") }
        let c = try matcher(##"{"const":"é"}"##)
        #expect(accepts(c, "\"é\""))
        #expect(!accepts(c, "\"e\""))
        let n = try matcher(##"{"type":"string","nullable":true,"maxLength":1}"##)
        #expect(accepts(n, "null") && accepts(n, ##""x""##) && !accepts(n, ##""xy""##))
        let types = try matcher(##"{"type":["integer","boolean"]}"##)
        #expect(accepts(types, "3") && accepts(types, "false") && !accepts(types, "null"))
    }

    @Test func anyOfAndOneOf() throws {
        let m = try matcher(##"{"anyOf":[{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"]},{"type":"object","properties":{"y":{"type":"string"}},"required":["y"]},{"type":"string","maxLength":2}]}"##)
        for good in [##"{"x":1}"##, ##"{"y":"a"}"##, ##""ab""##] { #expect(accepts(m, good), "\(good)") }
        for bad in [##"{"x":"a"}"##, ##"{"y":1}"##, ##""abc""##, "{}", ##"{"x":1,"y":"a"}"##] { #expect(!accepts(m, bad), "\(bad)") }
        let o = try matcher(##"{"oneOf":[{"type":"null"},{"type":"number"}]}"##)
        #expect(accepts(o, "null") && accepts(o, "2.5") && !accepts(o, "true"))
    }

    @Test func recursiveRefs() throws {
        let m = try matcher(##"{"$ref":"#/$defs/Node","$defs":{"Node":{"type":"object","properties":{"value":{"type":"integer"},"children":{"type":"array","items":{"$ref":"#/$defs/Node"}}},"required":["value"]}}}"##)
        for good in [##"{"value":1}"##, ##"{"value":1,"children":[]}"##, ##"{"value":1,"children":[{"value":2,"children":[{"value":3}]}]}"##] {
            #expect(accepts(m, good), "\(good)")
        }
        #expect(!accepts(m, ##"{"value":1,"children":[{}]}"##))
        // "#/definitions/..." and a root reference.
        let d = try matcher(##"{"type":"object","properties":{"next":{"anyOf":[{"$ref":"#"},{"type":"null"}]}},"required":["next"]}"##)
        #expect(accepts(d, ##"{"next":{"next":null}}"##) && !accepts(d, ##"{"next":{}}"##))
        let defs = try matcher(##"{"definitions":{"S":{"type":"string"}},"type":"array","items":{"$ref":"#/definitions/S"}}"##)
        #expect(accepts(defs, ##"["a","b"]"##) && !accepts(defs, "[1]"))
    }

    @Test func jsonObjectMode() throws {
        let m = GrammarMatcher(grammar: .jsonObject(), vocabulary: syntheticVocabulary)
        for good in ["{}", ##"{"a":[1,{"b":null}],"c":"x","d":-1.5e-3,"e":true, "f": []}"##, ##"{"a":{"a":{}}}"##] {
            #expect(accepts(m, good), "\(good)")
        }
        for bad in ["[1]", ##""x""##, "1", "null", "{1:2}", ##"{"a"}"##, " {}"] { #expect(!accepts(m, bad), "\(bad)") }
        // Nesting is bounded by maxDepth (32 frames): 31 nested objects fit, 32 do not.
        let nest = { (k: Int) in String(repeating: ##"{"a":"##, count: k) + "1" + String(repeating: "}", count: k) }
        #expect(accepts(m, nest(31)))
        #expect(!accepts(m, nest(32)))
        // At the limit no container may open, but a scalar can: never an empty mask.
        #expect(acceptsPrefix(m, Array(String(repeating: ##"{"a":"##, count: 31).utf8)))
        let allowed = m.allowedTokens()
        #expect(!allowed.isEmpty && !allowed.contains(Int32(UInt8(ascii: "{"))) && !allowed.contains(Int32(UInt8(ascii: "["))))
    }

    @Test func patterns() throws {
        func pattern(_ p: String) throws -> GrammarMatcher {
            var quoted: [UInt8] = []
            OrderedJSON.serializeString(Array(p.utf8), into: &quoted)
            return try matcher(#"{"type":"string","pattern":"# + String(decoding: quoted, as: UTF8.self) + "}")
        }
        let cases: [(String, [String], [String])] = [
            (#"^[a-z]{2,4}-\d{3}$"#, ["ab-123", "abcd-000"], ["abcde-123", "ab-12", "AB-123", "ab-1234", ""]),
            ("ab", ["ab", "xxabyy", "éab日"], ["a", "", "ba"]),
            ("^(foo|bar)+$", ["foo", "barfoo"], ["", "fo", "foob"]),
            ("^[^,]*$", ["", "é日x"], ["a,b"]),
            (#"^\w+@\w+\.com$"#, ["a_1@b.com"], ["a@b.org", "@b.com", "é@b.com"]),
            ("colou?r", ["color", "my colour"], ["colr"]),
            (#"^a.b$"#, ["axb", "a日b"], ["ab", "a\\nb", "a\\\"b"]),
            (#"^\D\W\S$"#, ["a-x"], ["1-x", "aax", "a- ", "é-x"]),
            (#"^(?:x|\.){2}$"#, ["x.", ".."], ["x", "x.x"]),
        ]
        for (p, good, bad) in cases {
            let m = try pattern(p)
            for g in good { #expect(accepts(m, "\"" + g + "\""), "\(p) should match \(g)") }
            for b in bad { #expect(!accepts(m, "\"" + b + "\""), "\(p) should not match \(b)") }
        }
    }

    @Test func eosOnlyWhenComplete() throws {
        let m = try matcher(##"{"type":"boolean"}"##)
        let eos = syntheticVocabulary.eosTokens[0]
        #expect(throws: GrammarError.tokenRejected(token: eos)) { try m.accept(token: eos) }
        #expect(!m.allowedTokens().contains(eos))
        let trueToken = try #require(syntheticVocabulary.tokenBytes.firstIndex(of: Array("true".utf8)))
        try m.accept(token: Int32(trueToken))
        #expect(m.allowedTokens() == [eos])
        try m.accept(token: eos)
        #expect(m.isFinished)
        #expect(throws: GrammarError.alreadyFinished) { try m.accept(token: 0x20) }
        #expect(throws: GrammarError.tokenOutOfRange(token: -1, vocabularySize: syntheticVocabulary.size)) {
            try m.accept(token: -1)
        }
        m.reset()
        #expect(!m.isComplete && !m.isFinished)
    }

    @Test func maskMatchesByteLevelAcceptance() throws {
        // For several states, a token is allowed exactly when its bytes are accepted.
        let m = try matcher(##"{"type":"object","properties":{"name":{"type":"string","maxLength":4},"n":{"type":"number"},"tags":{"type":"array","items":{"enum":["a","bc"]}}},"required":["tags"]}"##)
        let v = syntheticVocabulary
        for prefix in ["", "{", ##"{"name":"##, ##"{"name": "x"##, ##"{"name":"é日"##, ##"{"name":"\u00e9\"x"##, ##"{"name":"ab\"##, ##"{"name":"x","##, ##"{"n":1"##, ##"{"n":1.5,"tags":["##, ##"{"tags":["a""##] {
            #expect(acceptsPrefix(m, Array(prefix.utf8)), "\(prefix)")
            let allowed = Set(m.allowedTokens())
            #expect(!allowed.isEmpty)
            for id in 0..<Int32(v.size) where !v.eosTokens.contains(id) {
                let probe = m.copy()
                let ok = probe.accept(bytes: v.tokenBytes[Int(id)])
                #expect(allowed.contains(id) == (ok && !v.tokenBytes[Int(id)].isEmpty), "\(prefix) + token \(id)")
            }
        }
    }

    @Test func maskMatchesByteLevelAcceptanceWithSeveralStacks() throws {
        // Two string alternatives with different room, and a string next to a number.
        let cases: [(String, [String])] = [
            (##"{"anyOf":[{"type":"string","maxLength":2},{"type":"string","maxLength":5}]}"##, ["\"", "\"a", "\"ab", "\"abc", "\"abcde"]),
            (##"{"type":"array","items":{"anyOf":[{"type":"string","maxLength":1},{"type":"integer"}]}}"##, ["[", "[\"", "[1", "[\"x\","]),
            (##"{"type":"array","items":{"anyOf":[{"type":"string","pattern":"^[a-c]+é?$"},{"type":"string","pattern":"日"}]}}"##, ["[", "[\"", "[\"ab", "[\"abé", "[\"x日", "[\"\u{E9}"]),
        ]
        let v = syntheticVocabulary
        for (schema, prefixes) in cases {
            let m = try matcher(schema)
            for prefix in prefixes {
                #expect(acceptsPrefix(m, Array(prefix.utf8)), "\(prefix)")
                let allowed = Set(m.allowedTokens())
                #expect(!allowed.isEmpty)
                for id in 0..<Int32(v.size) where !v.eosTokens.contains(id) {
                    let probe = m.copy()
                    let ok = probe.accept(bytes: v.tokenBytes[Int(id)])
                    #expect(allowed.contains(id) == (ok && !v.tokenBytes[Int(id)].isEmpty), "\(schema) \(prefix) + token \(id)")
                }
            }
        }
    }

    @Test func vocabularyCheck() throws {
        let g = try Grammar.jsonSchema(Array(##"{"enum":["x~"]}"##.utf8))
        try syntheticVocabulary.check(g)
        let bytes = "{}[],:\"0123456789a".utf8.map { [$0] }
        let small = try GrammarVocabulary(tokens: bytes + [[]], eosTokens: [Int32(bytes.count)])
        #expect(throws: GrammarError.vocabularyCannotExpress(byte: UInt8(ascii: "x"))) { try small.check(g) }
        #expect(throws: GrammarError.self) { _ = try GrammarVocabulary(tokens: [[1]], eosTokens: [5]) }
    }
}

@Suite struct GrammarSamplingTests {
    static let schemas = [
        ##"{"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer"},"tags":{"type":"array","items":{"type":"string","maxLength":5},"maxItems":3},"ok":{"type":"boolean"}},"required":["name","age"]}"##,
        ##"{"type":"array","items":{"enum":["red","green",1,null]},"minItems":2,"maxItems":4}"##,
        ##"{"anyOf":[{"type":"object","properties":{"x":{"type":"number"}},"required":["x"]},{"type":"string","maxLength":8}]}"##,
        ##"{"$ref":"#/$defs/N","$defs":{"N":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/N"},"maxItems":2}},"required":["v"]}}}"##,
    ]

    /// Random logits, temperature 1: every run must end with end-of-sequence
    /// on a complete document, and the mask is never empty.
    @Test(arguments: Array(schemas.indices))
    func randomConstrainedSamplingFinishes(_ index: Int) throws {
        let grammar = try Grammar.jsonSchema(Array(Self.schemas[index].utf8))
        try runSamples(grammar, seeds: 0..<8)
    }

    @Test func randomJSONObjectSamplingFinishes() throws {
        try runSamples(.jsonObject(), seeds: 0..<8)
    }

    func runSamples(_ grammar: Grammar, seeds: Range<UInt64>) throws {
        let v = syntheticVocabulary
        let eos = v.eosTokens[0]
        let m = GrammarMatcher(grammar: grammar, vocabulary: v)
        for seed in seeds {
            m.reset()
            let sampler = try Sampler(parameters: SamplingParameters(temperature: 1, seed: seed), vocabularySize: v.size)
            var g = Xoshiro256StarStar(seed: seed &+ 1000)
            var text: [UInt8] = []
            var finished = false
            for _ in 0..<20_000 {
                // Structure-closing tokens get a bonus so that documents end in a reasonable number of steps.
                var logits = (0..<v.size).map { id -> Float in
                    let bytes = v.tokenBytes[id]
                    let bonus: Float = bytes.contains(0x22) || bytes.contains(0x7D) || bytes.contains(0x5D) ? 3 : 0
                    return Float(g.nextUnitDouble()) * 4 + bonus
                }
                let token = try sampler.sample(logits: &logits, grammar: m).token
                #expect(!m.hitDeadEnd)
                if token == eos { finished = true; break }
                text += v.tokenBytes[Int(token)]
            }
            #expect(finished, "seed \(seed) did not finish")
            #expect(m.isFinished)
            let doc = try OrderedJSONParser.parse(text)
            // The document is also accepted byte by byte from scratch.
            #expect(accepts(GrammarMatcher(grammar: grammar, vocabulary: v), text), "\(String(decoding: text, as: UTF8.self))")
            _ = doc
        }
    }
}
