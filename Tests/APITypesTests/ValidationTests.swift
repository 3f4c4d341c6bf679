import Foundation
import Testing
@testable import APITypes

private func chat(_ change: (inout ChatCompletionRequest) -> Void = { _ in }) -> ChatCompletionRequest {
    var request = ChatCompletionRequest(model: "m", messages: [ChatMessage(role: .user, content: "Hi")])
    change(&request)
    return request
}

/// The error `validate()` throws, or nil when it accepts the request.
private func failure(_ request: ChatCompletionRequest) -> APIError? {
    do {
        try request.validate()
        return nil
    } catch {
        return error
    }
}

private func failure(_ request: CompletionRequest) -> APIError? {
    do {
        try request.validate()
        return nil
    } catch {
        return error
    }
}

@Suite struct ChatValidation {
    @Test func refusedParametersNameTheParam() {
        let cases: [(String, ChatCompletionRequest, String, String?)] = [
            ("empty model", chat { $0.model = "" }, "model", "invalid_value"),
            ("no messages", chat { $0.messages = [] }, "messages", "invalid_value"),
            ("user without content", chat { $0.messages = [ChatMessage(role: .user, content: nil)] }, "messages[0].content", "invalid_value"),
            ("tools", chat { $0.tools = [["type": "function", "function": ["name": "f"]]] }, "tools", "unsupported_parameter"),
            ("tool_choice required", chat { $0.toolChoice = "required" }, "tool_choice", "unsupported_parameter"),
            ("tool_choice object", chat { $0.toolChoice = ["type": "function", "function": ["name": "f"]] }, "tool_choice", "unsupported_parameter"),
            ("functions", chat { $0.functions = [["name": "f"]] }, "functions", "unsupported_parameter"),
            ("function_call", chat { $0.functionCall = ["name": "f"] }, "function_call", "unsupported_parameter"),
            ("audio modality", chat { $0.modalities = ["text", "audio"] }, "modalities", "unsupported_parameter"),
            ("audio", chat { $0.audio = ["voice": "alloy", "format": "wav"] }, "audio", "unsupported_parameter"),
            ("n = 2", chat { $0.n = 2 }, "n", "unsupported_parameter"),
            ("n = 0", chat { $0.n = 0 }, "n", "invalid_value"),
            ("logit_bias", chat { $0.logitBias = ["50256": -100] }, "logit_bias", "unsupported_parameter"),
            ("unknown response_format", chat { $0.responseFormat = ResponseFormat(type: .other("xml")) }, "response_format.type", "unsupported_parameter"),
            ("json_schema without schema", chat { $0.responseFormat = ResponseFormat(type: .jsonSchema) }, "response_format.json_schema", "missing_required_parameter"),
            ("top_logprobs 21", chat { $0.logprobs = true; $0.topLogprobs = 21 }, "top_logprobs", "unsupported_parameter"),
            ("top_logprobs -1", chat { $0.logprobs = true; $0.topLogprobs = -1 }, "top_logprobs", "invalid_value"),
            ("top_logprobs without logprobs", chat { $0.topLogprobs = 2 }, "top_logprobs", "invalid_value"),
            ("stream_options without stream", chat { $0.streamOptions = StreamOptions(includeUsage: true) }, "stream_options", "invalid_value"),
            ("temperature 2.5", chat { $0.temperature = 2.5 }, "temperature", "invalid_value"),
            ("temperature -0.1", chat { $0.temperature = -0.1 }, "temperature", "invalid_value"),
            ("temperature NaN", chat { $0.temperature = .nan }, "temperature", "invalid_value"),
            ("top_p 0", chat { $0.topP = 0 }, "top_p", "invalid_value"),
            ("top_p 1.01", chat { $0.topP = 1.01 }, "top_p", "invalid_value"),
            ("top_k -1", chat { $0.topK = -1 }, "top_k", "invalid_value"),
            ("min_p 1.5", chat { $0.minP = 1.5 }, "min_p", "invalid_value"),
            ("presence_penalty 3", chat { $0.presencePenalty = 3 }, "presence_penalty", "invalid_value"),
            ("frequency_penalty -2.1", chat { $0.frequencyPenalty = -2.1 }, "frequency_penalty", "invalid_value"),
            ("repeat_penalty 0", chat { $0.repeatPenalty = 0 }, "repeat_penalty", "invalid_value"),
            ("max_tokens 0", chat { $0.maxTokens = 0 }, "max_tokens", "invalid_value"),
            ("max_completion_tokens 0", chat { $0.maxCompletionTokens = 0 }, "max_completion_tokens", "invalid_value"),
            ("five stops", chat { $0.stop = .multiple(["a", "b", "c", "d", "e"]) }, "stop", "invalid_value"),
            ("empty stop", chat { $0.stop = .single("") }, "stop", "invalid_value"),
            ("empty session", chat { $0.session = "" }, "session", "invalid_value"),
        ]
        for (name, request, param, code) in cases {
            let error = failure(request)
            #expect(error?.httpStatus == 400, "\(name)")
            #expect(error?.param == param, "\(name)")
            #expect(error?.code == code, "\(name)")
            #expect(error?.message.contains(param) == true, "\(name): \(error?.message ?? "accepted")")
        }
    }

    @Test func acceptedRequests() {
        let cases: [(String, ChatCompletionRequest)] = [
            ("plain", chat()),
            ("user and metadata change nothing", chat { $0.user = "u"; $0.metadata = ["k": "v"]; $0.store = false }),
            ("empty tools", chat { $0.tools = [] }),
            ("tool_choice none", chat { $0.toolChoice = "none" }),
            ("tool_choice auto without tools", chat { $0.toolChoice = "auto" }),
            ("n = 1", chat { $0.n = 1 }),
            ("text modality", chat { $0.modalities = ["text"]; $0.functionCall = "none"; $0.functions = [] }),
            ("empty logit_bias", chat { $0.logitBias = [:] }),
            ("json_object", chat { $0.responseFormat = ResponseFormat(type: .jsonObject) }),
            ("text", chat { $0.responseFormat = ResponseFormat(type: .text) }),
            ("json_schema", chat { $0.responseFormat = ResponseFormat(type: .jsonSchema, jsonSchema: JSONSchemaFormat(name: "x", schema: ["type": "object"])) }),
            ("top_logprobs 20", chat { $0.logprobs = true; $0.topLogprobs = 20 }),
            ("edges", chat {
                $0.temperature = 0; $0.topP = 1; $0.topK = 0; $0.minP = 0; $0.presencePenalty = -2
                $0.frequencyPenalty = 2; $0.maxTokens = 1; $0.stop = .multiple(["a", "b", "c", "d"])
            }),
            ("temperature 2", chat { $0.temperature = 2 }),
            ("streaming with usage", chat { $0.stream = true; $0.streamOptions = StreamOptions(includeUsage: true) }),
            ("assistant with null content", chat { $0.messages.append(ChatMessage(role: .assistant, content: nil)) }),
        ]
        for (name, request) in cases {
            #expect(failure(request) == nil, "\(name)")
        }
    }
}

@Suite struct CompletionValidation {
    private func completion(_ change: (inout CompletionRequest) -> Void = { _ in }) -> CompletionRequest {
        var request = CompletionRequest(model: "m", prompt: .text("Once"))
        change(&request)
        return request
    }

    @Test func table() {
        #expect(failure(completion()) == nil)
        #expect(failure(completion { $0.prompt = .texts(["a"]) }) == nil)
        #expect(failure(completion { $0.echo = true; $0.logprobs = 5; $0.suffix = "" }) == nil)
        let cases: [(CompletionRequest, String)] = [
            (completion { $0.prompt = .texts(["a", "b"]) }, "prompt"),
            (completion { $0.prompt = .texts([]) }, "prompt"),
            (completion { $0.suffix = "end" }, "suffix"),
            (completion { $0.n = 3 }, "n"),
            (completion { $0.bestOf = 2 }, "best_of"),
            (completion { $0.logprobs = 6 }, "logprobs"),
            (completion { $0.temperature = 3 }, "temperature"),
            (completion { $0.model = " " }, "model"),
            (completion { $0.stop = .multiple(["", "x"]) }, "stop"),
        ]
        for (request, param) in cases {
            let error = failure(request)
            #expect(error?.httpStatus == 400, "\(param)")
            #expect(error?.param == param)
        }
    }
}

@Suite struct OllamaValidation {
    @Test func table() throws {
        let ok = OllamaChatRequest(
            model: "m", messages: [OllamaMessage(role: .user, content: "hi")],
            options: OllamaOptions(temperature: 0.8, numPredict: -1))
        try ok.validate()
        let cases: [(OllamaChatRequest, String)] = [
            (OllamaChatRequest(model: "", messages: []), "model"),
            (OllamaChatRequest(model: "m", messages: [OllamaMessage(role: .user, content: "x", images: ["AAAA"])]), "messages[0].images"),
            (OllamaChatRequest(model: "m", messages: [], tools: [["type": "function"]]), "tools"),
            (OllamaChatRequest(model: "m", messages: [], options: OllamaOptions(temperature: 9)), "options.temperature"),
            (OllamaChatRequest(model: "m", messages: [], options: OllamaOptions(topP: 0)), "options.top_p"),
            (OllamaChatRequest(model: "m", messages: [], options: OllamaOptions(numCtx: 0)), "options.num_ctx"),
        ]
        for (request, param) in cases {
            do {
                try request.validate()
                Issue.record("accepted; expected an error naming \(param)")
            } catch {
                #expect(error.httpStatus == 400)
                #expect(error.param == param)
            }
        }
        let generate = OllamaGenerateRequest(model: "m", prompt: "x", template: "{{ .Prompt }}")
        #expect(throws: APIError.unsupported("template", "Go templates are not supported; the model's own chat template is used")) {
            try generate.validate()
        }
    }
}
