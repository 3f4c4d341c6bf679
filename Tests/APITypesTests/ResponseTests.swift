import Foundation
import Testing
@testable import APITypes

/// Encodes with `APICoding.encoder`, decodes back, and checks equality.
private func roundTrip<T: Codable & Equatable>(_ value: T) throws -> T {
    let data = try APICoding.encode(value)
    let back = try APICoding.decoder.decode(T.self, from: data)
    #expect(back == value, "round trip of \(T.self): \(String(decoding: data, as: UTF8.self))")
    return back
}

/// The encoded value as a Foundation object, to check keys and nesting.
private func jsonObject<T: Encodable>(_ value: T) throws -> [String: Any] {
    let data = try APICoding.encode(value)
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

@Suite struct OpenAIResponses {
    static let logprobs = ChatLogprobs(content: [
        TokenLogprob(
            token: "Hi", logprob: -0.25, bytes: [72, 105],
            topLogprobs: [
                TopLogprob(token: "Hi", logprob: -0.25, bytes: [72, 105]),
                TopLogprob(token: "Hello", logprob: -1.5, bytes: Array("Hello".utf8)),
            ])
    ])

    @Test func chatCompletion() throws {
        let completion = ChatCompletion(
            id: "chatcmpl-123", created: 1_700_000_000, model: "rwkv7-0.1b",
            choices: [
                ChatCompletionChoice(
                    message: AssistantMessage(content: "Hi there", reasoningContent: "User greets."),
                    logprobs: Self.logprobs, finishReason: .stop)
            ],
            usage: Usage(promptTokens: 9, completionTokens: 3))
        #expect(completion.usage?.totalTokens == 12)
        _ = try roundTrip(completion)
        let object = try jsonObject(completion)
        #expect(object["object"] as? String == "chat.completion")
        let choice = try #require((object["choices"] as? [[String: Any]])?.first)
        #expect(choice["finish_reason"] as? String == "stop")
        let message = try #require(choice["message"] as? [String: Any])
        #expect(message["role"] as? String == "assistant")
        #expect(message["reasoning_content"] as? String == "User greets.")
        let content = try #require((choice["logprobs"] as? [String: Any])?["content"] as? [[String: Any]])
        #expect(content[0]["bytes"] as? [Int] == [72, 105])
        #expect((content[0]["top_logprobs"] as? [Any])?.count == 2)
        let usage = try #require(object["usage"] as? [String: Any])
        #expect(Set(usage.keys) == ["prompt_tokens", "completion_tokens", "total_tokens"])
    }

    @Test func chatCompletionWithoutLogprobsWritesNull() throws {
        let completion = ChatCompletion(
            id: "c", created: 1, model: "m",
            choices: [ChatCompletionChoice(message: AssistantMessage(content: "x"), finishReason: .length)],
            usage: Usage(promptTokens: 1, completionTokens: 1))
        _ = try roundTrip(completion)
        let choice = try #require((try jsonObject(completion)["choices"] as? [[String: Any]])?.first)
        #expect(choice["logprobs"] is NSNull)
        #expect(choice["finish_reason"] as? String == "length")
    }

    @Test func infiniteLogprobIsClamped() throws {
        let logprob = TokenLogprob(token: "x", logprob: -.infinity)
        let data = try APICoding.encode(logprob)
        let back = try APICoding.decoder.decode(TokenLogprob.self, from: data)
        #expect(back.logprob == -9999)
    }

    @Test func chatCompletionChunks() throws {
        let first = ChatCompletionChunk(
            id: "chatcmpl-1", created: 1, model: "m",
            choices: [ChatCompletionChunkChoice(delta: ChatDelta(role: .assistant, content: ""))])
        let thinking = ChatCompletionChunk(
            id: "chatcmpl-1", created: 1, model: "m",
            choices: [ChatCompletionChunkChoice(delta: ChatDelta(reasoningContent: "hmm"))])
        let last = ChatCompletionChunk(
            id: "chatcmpl-1", created: 1, model: "m",
            choices: [ChatCompletionChunkChoice(delta: ChatDelta(content: "!"), logprobs: Self.logprobs, finishReason: .contentFilter)])
        let usage = ChatCompletionChunk(
            id: "chatcmpl-1", created: 1, model: "m", choices: [], usage: Usage(promptTokens: 5, completionTokens: 2))
        for chunk in [first, thinking, last, usage] { _ = try roundTrip(chunk) }

        let object = try jsonObject(first)
        #expect(object["object"] as? String == "chat.completion.chunk")
        let choice = try #require((object["choices"] as? [[String: Any]])?.first)
        #expect(choice["finish_reason"] is NSNull, "finish_reason is an explicit null until the end")
        let delta = try #require(choice["delta"] as? [String: Any])
        #expect(delta["role"] as? String == "assistant")
        #expect(delta["reasoning_content"] == nil)
        let lastChoice = try #require((try jsonObject(last)["choices"] as? [[String: Any]])?.first)
        #expect(lastChoice["finish_reason"] as? String == "content_filter")
        let usageObject = try jsonObject(usage)
        #expect((usageObject["choices"] as? [Any])?.isEmpty == true)
        #expect((usageObject["usage"] as? [String: Any])?["total_tokens"] as? Int == 7)
    }

    @Test func legacyCompletion() throws {
        let completion = Completion(
            id: "cmpl-1", created: 2, model: "m",
            choices: [
                CompletionChoice(
                    text: " test.", logprobs: CompletionLogprobs(
                        tokens: [" test", "."], tokenLogprobs: [-0.1, -.infinity],
                        topLogprobs: [[" test": -0.1], [".": -0.2]], textOffset: [0, 5]),
                    finishReason: .length)
            ],
            usage: Usage(promptTokens: 5, completionTokens: 2))
        let data = try APICoding.encode(completion)
        let back = try APICoding.decoder.decode(Completion.self, from: data)
        #expect(back.choices[0].logprobs?.tokenLogprobs == [-0.1, -9999])
        #expect(back.object == "text_completion")
        let plain = Completion(
            id: "cmpl-2", created: 2, model: "m", choices: [CompletionChoice(text: "a", finishReason: nil)], usage: nil)
        _ = try roundTrip(plain)
        let choice = try #require((try jsonObject(plain)["choices"] as? [[String: Any]])?.first)
        #expect(choice["finish_reason"] is NSNull)
        #expect(choice["logprobs"] is NSNull)
    }

    @Test func modelList() throws {
        let list = ModelList(data: [ModelInfo(id: "rwkv7-0.1b", created: 1_700_000_000), ModelInfo(id: "olmoe", created: 5)])
        _ = try roundTrip(list)
        let object = try jsonObject(list)
        #expect(object["object"] as? String == "list")
        let first = try #require((object["data"] as? [[String: Any]])?.first)
        #expect(first["object"] as? String == "model")
        #expect(first["owned_by"] as? String == "roost")
        #expect(first["id"] as? String == "rwkv7-0.1b")
    }

    @Test func errorBodyMatchesOpenAIShape() throws {
        let error = APIError.modelNotFound("nope")
        #expect(error.httpStatus == 404)
        let object = try jsonObject(error.body)
        #expect(Set(object.keys) == ["error"])
        let inner = try #require(object["error"] as? [String: Any])
        #expect(Set(inner.keys) == ["message", "type", "param", "code"])
        #expect(inner["type"] as? String == "not_found_error")
        #expect(inner["param"] as? String == "model")
        #expect(inner["code"] as? String == "model_not_found")
        #expect((inner["message"] as? String)?.contains("nope") == true)

        // Absent param and code are explicit nulls, as OpenAI sends them.
        let plain = APIError(.internalError, message: "boom").body
        let plainInner = try #require(try jsonObject(plain)["error"] as? [String: Any])
        #expect(Set(plainInner.keys) == ["message", "type", "param", "code"])
        #expect(plainInner["param"] is NSNull)
        #expect(plainInner["code"] is NSNull)
        _ = try roundTrip(plain)
        _ = try roundTrip(error.body)

        // An error body as OpenAI itself sends it decodes.
        let openAI = """
            {"error": {"message": "Invalid 'messages': empty array.", "type": "invalid_request_error", "param": "messages", "code": "empty_array"}}
            """
        let decoded = try APICoding.decoder.decode(APIErrorBody.self, from: Data(openAI.utf8))
        #expect(decoded.error.param == "messages")
        #expect(decoded.error.code == "empty_array")
        #expect(decoded.error.type == "invalid_request_error")
    }

    @Test func errorKindsCarryStatusAndType() {
        let table: [(APIErrorKind, Int, String)] = [
            (.invalidRequest, 400, "invalid_request_error"),
            (.authentication, 401, "authentication_error"),
            (.permissionDenied, 403, "permission_error"),
            (.notFound, 404, "not_found_error"),
            (.tooLarge, 413, "request_too_large"),
            (.rateLimited(retryAfter: 2), 429, "rate_limit_error"),
            (.internalError, 500, "server_error"),
            (.unavailable(retryAfter: 5), 503, "service_unavailable"),
        ]
        for (kind, status, type) in table {
            #expect(kind.httpStatus == status)
            #expect(kind.typeName == type)
        }
        #expect(APIErrorKind.unavailable(retryAfter: 5).retryAfter == 5)
        #expect(APIErrorKind.rateLimited(retryAfter: 2).retryAfter == 2)
        #expect(APIErrorKind.notFound.retryAfter == nil)
        #expect(APIError.modelNotFound("x").ollamaBody == OllamaErrorBody(error: "The model 'x' does not exist or is not installed"))
    }
}

@Suite struct OllamaResponses {
    static let details = OllamaModelDetails(family: "rwkv7", families: ["rwkv7"], parameterSize: "191M", quantizationLevel: "Q8_0")

    @Test func chatResponses() throws {
        let partial = OllamaChatResponse(
            model: "m", createdAt: "2024-05-01T12:00:00.123456Z",
            message: OllamaMessage(role: .assistant, content: "The"), done: false)
        let final = OllamaChatResponse(
            model: "m", createdAt: "2024-05-01T12:00:01Z",
            message: OllamaMessage(role: .assistant, content: "", thinking: "..."), done: true, doneReason: .stop,
            metrics: OllamaMetrics(
                totalDuration: 5_000_000_000, loadDuration: 1_000_000, promptEvalCount: 26,
                promptEvalDuration: 130_000_000, evalCount: 290, evalDuration: 4_700_000_000))
        _ = try roundTrip(partial)
        _ = try roundTrip(final)
        let partialObject = try jsonObject(partial)
        #expect(Set(partialObject.keys) == ["model", "created_at", "message", "done"])
        let object = try jsonObject(final)
        #expect(object["done_reason"] as? String == "stop")
        #expect(object["eval_count"] as? Int == 290)
        #expect(object["total_duration"] as? Int == 5_000_000_000)
        #expect(object["prompt_eval_duration"] as? Int == 130_000_000)
        #expect(final.metrics.evalDuration == 4_700_000_000)
    }

    @Test func generateResponse() throws {
        let response = OllamaGenerateResponse(
            model: "m", createdAt: OllamaTime.string(from: Date(timeIntervalSince1970: 0)), response: "Blue.",
            done: true, doneReason: .length, context: [1, 2, 3],
            metrics: OllamaMetrics(totalDuration: 10, evalCount: 2))
        _ = try roundTrip(response)
        #expect(response.createdAt.hasPrefix("1970-01-01T00:00:00"))
        #expect(response.createdAt.hasSuffix("Z"))
        let object = try jsonObject(response)
        #expect(object["response"] as? String == "Blue.")
        #expect(object["context"] as? [Int] == [1, 2, 3])
    }

    @Test func tagsPsVersion() throws {
        let tags = OllamaTags(models: [
            OllamaModel(
                name: "rwkv7-0.1b:latest", modifiedAt: "2024-05-01T12:00:00Z", size: 191_000_000,
                digest: "sha256:abc", details: Self.details)
        ])
        _ = try roundTrip(tags)
        let model = try #require((try jsonObject(tags)["models"] as? [[String: Any]])?.first)
        #expect(model["model"] as? String == "rwkv7-0.1b:latest")
        #expect(model["modified_at"] as? String == "2024-05-01T12:00:00Z")
        let details = try #require(model["details"] as? [String: Any])
        #expect(details["format"] as? String == "gguf")
        #expect(details["parameter_size"] as? String == "191M")
        #expect(details["quantization_level"] as? String == "Q8_0")

        let ps = OllamaPS(models: [
            OllamaRunningModel(
                name: "m", size: 200_000_000, digest: "sha256:abc", details: Self.details,
                expiresAt: "2024-05-01T12:05:00Z", contextLength: 4096)
        ])
        _ = try roundTrip(ps)
        let running = try #require((try jsonObject(ps)["models"] as? [[String: Any]])?.first)
        #expect(running["size_vram"] as? Int == 0)
        #expect(running["expires_at"] as? String == "2024-05-01T12:05:00Z")

        let version = OllamaVersion(version: "0.1.0")
        _ = try roundTrip(version)
        #expect(try APICoding.encodeString(version) == #"{"version":"0.1.0"}"#)
    }

    @Test func ndjsonLine() throws {
        let line = try NDJSON.line(OllamaVersion(version: "1"))
        #expect(String(decoding: line, as: UTF8.self) == "{\"version\":\"1\"}\n")
    }
}
