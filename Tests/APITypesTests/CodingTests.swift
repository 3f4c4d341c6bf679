import Foundation
import Testing
@testable import APITypes

@Suite struct NestingScanner {
    @Test func depths() {
        let cases: [(String, Int)] = [
            ("42", 0),
            ("\"[[[{{{\"", 0),
            ("[]", 1),
            ("{}", 1),
            ("[[[]]]", 3),
            (#"{"a": [{"b": [1, 2]}, {"c": {}}]}"#, 4),
            (#"{"a": "]]]]", "b": [[["x"]]]}"#, 4),
            (#"{"a": "\"[[[[\"", "b": []}"#, 2),
            (#"{"a": "\\", "b": [[1]]}"#, 3),
            (#"["\\\"[", "{"]"#, 1),
            (#"[1, 2], [3]"#, 1),
            ("]]]][", 1),
        ]
        for (json, depth) in cases {
            #expect(JSONNesting.maxDepth(of: Array(json.utf8)) == depth, "\(json)")
        }
    }

    @Test func limitIsEnforcedBeforeDecoding() {
        let limits = APILimits(maxNestingDepth: 8)
        let deep = Data((String(repeating: "[", count: 9) + String(repeating: "]", count: 9)).utf8)
        let ok = Data((String(repeating: "[", count: 8) + String(repeating: "]", count: 8)).utf8)
        #expect(throws: Never.self) { try limits.checkNesting(ok) }
        do {
            try limits.checkNesting(deep)
            Issue.record("expected an error")
        } catch {
            #expect(error.httpStatus == 400)
            #expect(error.code == "nesting_too_deep")
        }
        // A hostile body far deeper than the limit is refused without decoding it.
        let hostile = Data((#"{"model": "m", "messages": "# + String(repeating: "[", count: 100_000)).utf8)
        do {
            _ = try APICoding.decodeRequest(ChatCompletionRequest.self, from: hostile, limits: limits)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == "nesting_too_deep")
        }
        // Brackets inside strings do not count.
        let stringy = Data(#"{"model": "m", "messages": [{"role": "user", "content": "[[[[[[[[[[{{{{{{{{\"[[[["}]}"#.utf8)
        #expect(throws: Never.self) { try limits.checkNesting(stringy) }
        #expect(throws: Never.self) { _ = try APICoding.decodeRequest(ChatCompletionRequest.self, from: stringy, limits: limits) }
    }

    @Test func bodySizeAndPromptLength() {
        let limits = APILimits(maxBodyBytes: 100, maxPromptCharacters: 10)
        do {
            try limits.checkBodySize(101)
            Issue.record("expected an error")
        } catch {
            #expect(error.httpStatus == 413)
        }
        let request = ChatCompletionRequest(
            model: "m", messages: [ChatMessage(role: .user, content: "0123456789X")])
        do {
            try request.validate(limits: limits)
            Issue.record("expected an error")
        } catch {
            #expect(error.httpStatus == 413)
            #expect(error.param == "messages")
            #expect(error.code == "prompt_too_long")
        }
    }
}

@Suite struct SSEFraming {
    @Test func bytes() throws {
        #expect(SSE.event(data: "{\"a\":1}") == "data: {\"a\":1}\n\n")
        #expect(SSE.done == "data: [DONE]\n\n")
        #expect(Array(SSE.done.utf8) == Array("data: [DONE]\n\n".utf8))
        #expect(SSE.event(data: "a\nb") == "data: a\ndata: b\n\n")
        #expect(SSE.event(data: "") == "data: \n\n")
        let chunk = ChatCompletionChunk(
            id: "c", created: 1, model: "m/x",
            choices: [ChatCompletionChunkChoice(delta: ChatDelta(content: "a/b\n"))])
        let event = try SSE.event(chunk)
        #expect(event.hasPrefix("data: {"))
        #expect(event.contains("\"object\":\"chat.completion.chunk\""))
        let payload = try #require(event.dropFirst("data: ".count).split(separator: "\n").first)
        let decoded = try APICoding.decoder.decode(ChatCompletionChunk.self, from: Data(payload.utf8))
        #expect(decoded == chunk)
        #expect(event.hasSuffix("}\n\n"))
        #expect(event.contains("\"model\":\"m/x\""), "slashes are not escaped")
        #expect(event.filter { $0 == "\n" }.count == 2, "one event, newlines in content are escaped")
    }
}

@Suite struct KeepAliveParsing {
    @Test func table() throws {
        let cases: [(String, KeepAlive)] = [
            ("5m", .duration(seconds: 300)),
            ("1h30m", .duration(seconds: 5400)),
            ("1.5h", .duration(seconds: 5400)),
            ("300", .duration(seconds: 300)),
            ("300s", .duration(seconds: 300)),
            ("500ms", .duration(seconds: 0.5)),
            ("2h45m30s", .duration(seconds: 9930)),
            ("0", .duration(seconds: 0)),
            ("0s", .duration(seconds: 0)),
            ("-1", .forever),
            ("-1m", .forever),
            ("+10s", .duration(seconds: 10)),
        ]
        for (text, expected) in cases {
            #expect(try KeepAlive(parsing: text) == expected, "\(text)")
        }
    }

    @Test func garbage() {
        let cases: [(String, KeepAliveError)] = [
            ("", .empty),
            ("  ", .empty),
            ("soon", .invalid("soon")),
            ("5x", .unknownUnit("x", in: "5x")),
            ("1h30", .missingUnit("1h30")),
            ("m", .invalid("m")),
            ("1..5s", .invalid("1..5s")),
            ("-", .invalid("-")),
        ]
        for (text, expected) in cases {
            #expect(throws: expected, "\(text)") { try KeepAlive(parsing: text) }
        }
    }

    @Test func json() throws {
        let decoder = APICoding.decoder
        func decode(_ json: String) throws -> KeepAlive {
            try decoder.decode(KeepAlive.self, from: Data(json.utf8))
        }
        #expect(try decode("300") == .duration(seconds: 300))
        #expect(try decode("0") == .unloadImmediately)
        #expect(try decode("-1") == .forever)
        #expect(try decode("-0.5") == .forever)
        #expect(try decode("\"10m\"") == .duration(seconds: 600))
        #expect(throws: DecodingError.self) { try decode("\"later\"") }
        #expect(throws: DecodingError.self) { try decode("true") }
        #expect(try APICoding.encodeString(KeepAlive.forever) == "-1")
        #expect(try APICoding.encodeString(KeepAlive.default) == "300")
        #expect(try APICoding.encodeString(KeepAlive.duration(seconds: 0.5)) == "0.5")
        #expect(KeepAlive.forever.seconds == nil)
    }
}

@Suite struct JSONValueTests {
    @Test func roundTrip() throws {
        let value: JSONValue = [
            "null": nil, "bool": true, "int": 3, "float": 2.5, "string": "a/b",
            "array": [1, "two", [false]], "object": ["nested": ["deep": -1]],
        ]
        let data = try APICoding.encode(value)
        let back = try APICoding.decoder.decode(JSONValue.self, from: data)
        #expect(back == value)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"int\":3"))
        #expect(text.contains("\"float\":2.5"))
        #expect(text.contains("\"a/b\""))
        #expect(value["object"]?["nested"]?["deep"]?.numberValue == -1)
        #expect(value["null"]?.isNull == true)
        #expect(value["bool"]?.boolValue == true)
        #expect(value["array"]?.arrayValue?.count == 3)
        #expect(value["string"]?.stringValue == "a/b")
    }

    @Test func booleansAreNotNumbers() throws {
        let back = try APICoding.decoder.decode(JSONValue.self, from: Data("[true, 1, 0, false]".utf8))
        #expect(back == [true, 1, 0, false])
    }
}
