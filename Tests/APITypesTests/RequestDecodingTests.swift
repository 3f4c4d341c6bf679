import Foundation
import Testing
@testable import APITypes

private func decode<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
    try APICoding.decoder.decode(type, from: Data(json.utf8))
}

@Suite struct OpenAIRequestDecoding {
    @Test func streamingChatWithStreamOptions() throws {
        let json = """
            {
              "model": "rwkv7-0.1b",
              "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Hello!"}
              ],
              "stream": true,
              "stream_options": {"include_usage": true},
              "temperature": 0.7,
              "top_p": 0.9,
              "top_k": 40,
              "min_p": 0.05,
              "max_completion_tokens": 256,
              "presence_penalty": 0.5,
              "frequency_penalty": -0.5,
              "repeat_penalty": 1.1,
              "seed": 42,
              "stop": ["\\n\\nUser:", "###"],
              "logprobs": true,
              "top_logprobs": 3,
              "user": "user-1234",
              "metadata": {"app": "notes"},
              "session": "s_abc",
              "some_future_field": {"ignored": [1, 2, 3]}
            }
            """
        let request = try decode(ChatCompletionRequest.self, json)
        #expect(request.model == "rwkv7-0.1b")
        #expect(request.messages.count == 2)
        #expect(request.messages[0].role == .system)
        #expect(request.messages[1].content == .text("Hello!"))
        #expect(request.isStreaming)
        #expect(request.includesUsage)
        #expect(request.temperature == 0.7)
        #expect(request.topP == 0.9)
        #expect(request.topK == 40)
        #expect(request.minP == 0.05)
        #expect(request.tokenLimit == 256)
        #expect(request.maxTokens == nil)
        #expect(request.presencePenalty == 0.5)
        #expect(request.frequencyPenalty == -0.5)
        #expect(request.repeatPenalty == 1.1)
        #expect(request.seed == 42)
        #expect(request.stopSequences == ["\n\nUser:", "###"])
        #expect(request.logprobs == true)
        #expect(request.topLogprobs == 3)
        #expect(request.user == "user-1234")
        #expect(request.metadata == ["app": "notes"])
        #expect(request.session == "s_abc")
        try request.validate()
    }

    @Test func jsonSchemaResponseFormat() throws {
        let json = """
            {
              "model": "m",
              "messages": [{"role": "user", "content": "Give me a person."}],
              "max_tokens": 100,
              "stop": "END",
              "response_format": {
                "type": "json_schema",
                "json_schema": {
                  "name": "person",
                  "strict": true,
                  "schema": {
                    "type": "object",
                    "properties": {
                      "name": {"type": "string"},
                      "age": {"type": "integer", "minimum": 0}
                    },
                    "required": ["name", "age"],
                    "additionalProperties": false
                  }
                }
              }
            }
            """
        let request = try decode(ChatCompletionRequest.self, json)
        #expect(request.isStreaming == false)
        #expect(request.tokenLimit == 100)
        #expect(request.stop == .single("END"))
        #expect(request.stopSequences == ["END"])
        let format = try #require(request.responseFormat)
        #expect(format.type == .jsonSchema)
        let schema = try #require(format.jsonSchema)
        #expect(schema.name == "person")
        #expect(schema.strict == true)
        #expect(schema.schema?["type"] == "object")
        #expect(schema.schema?["required"] == ["name", "age"])
        #expect(schema.schema?["properties"]?["age"]?["minimum"] == 0)
        #expect(schema.schema?["additionalProperties"] == false)
        try request.validate()
    }

    @Test func arrayContentParts() throws {
        let json = """
            {
              "model": "m",
              "messages": [
                {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
                {"role": "user", "content": [
                  {"type": "text", "text": "Describe"},
                  {"type": "text", "text": "this."}
                ]},
                {"role": "assistant", "content": null, "tool_calls": []},
                {"role": "tool", "content": "42", "tool_call_id": "call_1"}
              ]
            }
            """
        let request = try decode(ChatCompletionRequest.self, json)
        #expect(request.messages[0].role == .developer)
        #expect(request.messages[1].content == .parts([.text("Describe"), .text("this.")]))
        #expect(request.messages[1].content?.text == "Describe\nthis.")
        #expect(request.messages[2].content == nil)
        #expect(request.messages[3].toolCallID == "call_1")
        try request.validate()
    }

    @Test func imagePartIsKeptAndRefused() throws {
        let json = """
            {"model": "m", "messages": [{"role": "user", "content": [
              {"type": "text", "text": "What is this?"},
              {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
            ]}]}
            """
        let request = try decode(ChatCompletionRequest.self, json)
        guard case .parts(let parts)? = request.messages[0].content else {
            Issue.record("expected parts")
            return
        }
        #expect(parts[1].typeName == "image_url")
        #expect(throws: APIError.self) { try request.validate() }
        do {
            try request.validate()
        } catch {
            #expect(error.param == "messages[0].content[1].type")
            #expect(error.httpStatus == 400)
        }
    }

    @Test func legacyCompletionWithArrayPrompt() throws {
        let json = """
            {
              "model": "gpt-3.5-turbo-instruct",
              "prompt": ["Say this is a test"],
              "max_tokens": 7,
              "temperature": 0,
              "echo": true,
              "logprobs": 2,
              "suffix": null,
              "n": 1,
              "stream": false
            }
            """
        let request = try decode(CompletionRequest.self, json)
        #expect(request.prompt == .texts(["Say this is a test"]))
        #expect(request.prompt.count == 1)
        #expect(request.maxTokens == 7)
        #expect(request.temperature == 0)
        #expect(request.echo == true)
        #expect(request.logprobs == 2)
        #expect(request.suffix == nil)
        try request.validate()

        let tokens = try decode(CompletionRequest.self, #"{"model": "m", "prompt": [1, 2, 3]}"#)
        #expect(tokens.prompt == .tokens([1, 2, 3]))
        let single = try decode(CompletionRequest.self, #"{"model": "m", "prompt": "Once upon a time"}"#)
        #expect(single.prompt == .text("Once upon a time"))
        #expect(single.isStreaming == false)
    }

    @Test func decodeRequestMapsTypeErrorsToParam() {
        let body = Data(#"{"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}"#.utf8)
        do {
            _ = try APICoding.decodeRequest(ChatCompletionRequest.self, from: body)
            Issue.record("expected an error")
        } catch {
            #expect(error.httpStatus == 400)
            #expect(error.param == "temperature")
        }
        let badRole = Data(#"{"model": "m", "messages": [{"role": "user"}, {"role": "wizard", "content": "x"}]}"#.utf8)
        do {
            _ = try APICoding.decodeRequest(ChatCompletionRequest.self, from: badRole)
            Issue.record("expected an error")
        } catch {
            #expect(error.param == "messages[1].role")
        }
        let missing = Data(#"{"messages": []}"#.utf8)
        do {
            _ = try APICoding.decodeRequest(ChatCompletionRequest.self, from: missing)
            Issue.record("expected an error")
        } catch {
            #expect(error.param == "model")
            #expect(error.code == "missing_required_parameter")
        }
        do {
            _ = try APICoding.decodeRequest(ChatCompletionRequest.self, from: Data("{not json".utf8))
            Issue.record("expected an error")
        } catch {
            #expect(error.httpStatus == 400)
            #expect(error.param == nil)
        }
    }
}

@Suite struct OllamaRequestDecoding {
    @Test func chatWithOptionsAndKeepAlive() throws {
        let json = """
            {
              "model": "llama3.2",
              "messages": [
                {"role": "system", "content": "Answer in one word."},
                {"role": "user", "content": "why is the sky blue?"}
              ],
              "options": {
                "temperature": 0.2,
                "top_p": 0.8,
                "top_k": 20,
                "min_p": 0.1,
                "seed": 101,
                "num_predict": 128,
                "stop": ["\\n"],
                "repeat_penalty": 1.2,
                "presence_penalty": 0.1,
                "frequency_penalty": 0.2,
                "num_ctx": 4096,
                "num_gpu": 0
              },
              "keep_alive": "10m",
              "think": false
            }
            """
        let request = try decode(OllamaChatRequest.self, json)
        #expect(request.model == "llama3.2")
        #expect(request.messages.map(\.role) == [.system, .user])
        #expect(request.isStreaming, "Ollama streams by default")
        #expect(request.keepAlive == .duration(seconds: 600))
        #expect(request.think == .enabled(false))
        let options = try #require(request.options)
        #expect(options.temperature == 0.2)
        #expect(options.topP == 0.8)
        #expect(options.topK == 20)
        #expect(options.minP == 0.1)
        #expect(options.seed == 101)
        #expect(options.numPredict == 128)
        #expect(options.stop == ["\n"])
        #expect(options.repeatPenalty == 1.2)
        #expect(options.presencePenalty == 0.1)
        #expect(options.frequencyPenalty == 0.2)
        #expect(options.numCtx == 4096)
        try request.validate()
    }

    @Test func chatFormatAndStreamFalse() throws {
        let json = """
            {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": false,
             "format": {"type": "object", "properties": {"age": {"type": "integer"}}},
             "keep_alive": -1, "think": "high"}
            """
        let request = try decode(OllamaChatRequest.self, json)
        #expect(request.isStreaming == false)
        #expect(request.keepAlive == .forever)
        #expect(request.think == .level("high"))
        guard case .schema(let schema)? = request.format else {
            Issue.record("expected a schema format")
            return
        }
        #expect(schema["type"] == "object")
        let json2 = #"{"model": "m", "messages": [], "format": "json", "keep_alive": 0}"#
        let request2 = try decode(OllamaChatRequest.self, json2)
        #expect(request2.format == .json)
        #expect(request2.keepAlive?.unloadsImmediately == true)
        let request3 = try decode(OllamaChatRequest.self, #"{"model": "m", "format": ""}"#)
        #expect(request3.format == nil)
        #expect(request3.messages.isEmpty)
    }

    @Test func generateRequest() throws {
        let json = """
            {"model": "m", "prompt": "Why is the sky blue?", "system": "Be terse.", "raw": false,
             "context": [1, 2, 3], "stream": false, "keep_alive": "1h30m", "options": {"num_predict": -1}}
            """
        let request = try decode(OllamaGenerateRequest.self, json)
        #expect(request.prompt == "Why is the sky blue?")
        #expect(request.system == "Be terse.")
        #expect(request.raw == false)
        #expect(request.context == [1, 2, 3])
        #expect(request.isStreaming == false)
        #expect(request.keepAlive == .duration(seconds: 5400))
        #expect(request.options?.numPredict == -1)
        try request.validate()
    }

    @Test func badKeepAliveNamesTheField() {
        let body = Data(#"{"model": "m", "messages": [], "keep_alive": "soon"}"#.utf8)
        do {
            _ = try APICoding.decodeRequest(OllamaChatRequest.self, from: body)
            Issue.record("expected an error")
        } catch {
            #expect(error.httpStatus == 400)
            #expect(error.param == "keep_alive")
        }
    }
}

/// The `roost` client encodes the same request types the server decodes.
@Suite struct RequestRoundTrip {
    private func roundTrip<T: Codable & Equatable>(_ value: T) throws {
        let data = try APICoding.encode(value)
        #expect(try APICoding.decoder.decode(T.self, from: data) == value, "\(String(decoding: data, as: UTF8.self))")
    }

    @Test func requests() throws {
        try roundTrip(ChatCompletionRequest(
            model: "m",
            messages: [
                ChatMessage(role: .system, content: "s"),
                ChatMessage(role: .user, content: .parts([.text("a"), .text("b")])),
                ChatMessage(role: .assistant, content: nil, reasoningContent: "r"),
            ],
            maxTokens: 5, temperature: 0.5, stop: .multiple(["x"]), stream: true,
            streamOptions: StreamOptions(includeUsage: true),
            responseFormat: ResponseFormat(type: .jsonSchema, jsonSchema: JSONSchemaFormat(name: "n", schema: ["type": "object"], strict: true)),
            metadata: ["k": "v"], session: "s1"))
        try roundTrip(CompletionRequest(model: "m", prompt: .tokenBatches([[1, 2], [3]]), echo: true, maxTokens: 3, stop: .single("\n")))
        try roundTrip(OllamaChatRequest(
            model: "m", messages: [OllamaMessage(role: .user, content: "hi")], stream: false, format: .json,
            options: OllamaOptions(temperature: 0.1, seed: 3, numPredict: 10, stop: ["a"], numCtx: 2048),
            keepAlive: .forever, think: .enabled(true)))
        try roundTrip(OllamaGenerateRequest(
            model: "m", prompt: "p", system: "s", raw: true, context: [1], format: .schema(["type": "string"]),
            keepAlive: .duration(seconds: 90), think: .level("low")))
    }
}
