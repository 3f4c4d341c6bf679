import Foundation

/// Checks shared by the OpenAI and Ollama request types. Each failure is a 400 naming the
/// parameter; NaN fails every range.
enum ParameterCheck {
    static func closed(_ value: Double?, _ range: ClosedRange<Double>, _ param: String) throws(APIError) {
        guard let value else { return }
        if !range.contains(value) {
            throw APIError.outOfRange(
                param, expected: "between \(format(range.lowerBound)) and \(format(range.upperBound))",
                found: format(value))
        }
    }

    /// (0, 1]
    static func probability(_ value: Double?, _ param: String) throws(APIError) {
        guard let value else { return }
        if !(value > 0 && value <= 1) {
            throw APIError.outOfRange(param, expected: "greater than 0 and at most 1", found: format(value))
        }
    }

    static func positive(_ value: Double?, _ param: String) throws(APIError) {
        guard let value else { return }
        if !(value > 0 && value.isFinite) {
            throw APIError.outOfRange(param, expected: "greater than 0", found: format(value))
        }
    }

    static func atLeast(_ value: Int?, _ minimum: Int, _ param: String) throws(APIError) {
        guard let value else { return }
        if value < minimum {
            throw APIError.outOfRange(param, expected: "at least \(minimum)", found: String(value))
        }
    }

    /// At most 4 non-empty stop strings.
    static func stop(_ values: [String], _ param: String, maximum: Int = 4) throws(APIError) {
        if values.count > maximum {
            throw APIError.outOfRange(
                param, expected: "at most \(maximum) strings", found: "\(values.count)")
        }
        if values.contains(where: \.isEmpty) {
            throw APIError.invalid("'\(param)' must not contain empty strings", param: param, code: "invalid_value")
        }
    }

    static func model(_ model: String) throws(APIError) {
        if model.trimmingCharacters(in: .whitespaces).isEmpty {
            throw APIError.invalid("'model' must name a model", param: "model", code: "invalid_value")
        }
    }

    static func format(_ value: Double) -> String {
        if value.isFinite, value.rounded() == value, abs(value) < 1e15 {
            return String(Int64(value))
        }
        return String(value)
    }
}

extension ChatCompletionRequest {
    /// Checks the request against the API contract: unsupported parameters that would
    /// change the output are refused by name, values out of range are refused, and
    /// parameters that change nothing (`user`, `metadata`, `store`) are accepted.
    public func validate(limits: APILimits = APILimits()) throws(APIError) {
        try ParameterCheck.model(model)
        if messages.isEmpty {
            throw APIError.invalid("'messages' must contain at least one message", param: "messages", code: "invalid_value")
        }
        var promptCharacters = 0
        for (i, message) in messages.enumerated() {
            switch message.content {
            case .none:
                if message.role != .assistant {
                    throw APIError.invalid(
                        "'messages[\(i)].content' is required for role '\(message.role.rawValue)'",
                        param: "messages[\(i)].content", code: "invalid_value")
                }
            case .text(let text)?:
                promptCharacters += text.count
            case .parts(let parts)?:
                for (j, part) in parts.enumerated() {
                    switch part {
                    case .text(let text):
                        promptCharacters += text.count
                    case .other(let type, _):
                        throw APIError.unsupported(
                            "messages[\(i)].content[\(j)].type",
                            "content parts of type '\(type)' are not supported; only 'text'")
                    }
                }
            }
        }
        try limits.checkPromptLength(promptCharacters, param: "messages")

        // Parameters Roost does not support and that would change the output.
        if let tools, !tools.isEmpty {
            throw APIError.unsupported("tools", "tool calling is not available yet")
        }
        if let toolChoice {
            switch toolChoice {
            case .null, .string("none"), .string("auto"):
                break  // without tools, both mean "answer in text"
            default:
                throw APIError.unsupported("tool_choice", "tool calling is not available yet")
            }
        }
        if let functions, !functions.isEmpty {
            throw APIError.unsupported("functions", "function calling is not available yet")
        }
        if let functionCall {
            switch functionCall {
            case .null, .string("none"), .string("auto"):
                break
            default:
                throw APIError.unsupported("function_call", "function calling is not available yet")
            }
        }
        if let modalities, modalities.contains(where: { $0 != "text" }) {
            throw APIError.unsupported("modalities", "only text output is available")
        }
        if let audio, !audio.isNull {
            throw APIError.unsupported("audio", "audio output is not available")
        }
        if let n {
            if n < 1 { throw APIError.outOfRange("n", expected: "at least 1", found: String(n)) }
            if n > 1 { throw APIError.unsupported("n", "only one choice per request (n = 1)") }
        }
        if let logitBias, !logitBias.isEmpty {
            throw APIError.unsupported("logit_bias", "logit bias is not available")
        }
        if let responseFormat {
            switch responseFormat.type {
            case .text, .jsonObject:
                break
            case .jsonSchema:
                if responseFormat.jsonSchema == nil {
                    throw APIError.invalid(
                        "'response_format.json_schema' is required when 'response_format.type' is 'json_schema'",
                        param: "response_format.json_schema", code: "missing_required_parameter")
                }
            case .other(let name):
                throw APIError.unsupported(
                    "response_format.type",
                    "unknown type '\(name)'; expected 'text', 'json_object' or 'json_schema'")
            }
        }
        if let topLogprobs {
            if topLogprobs < 0 {
                throw APIError.outOfRange("top_logprobs", expected: "between 0 and 20", found: String(topLogprobs))
            }
            if topLogprobs > 20 {
                throw APIError.unsupported("top_logprobs", "at most 20 alternatives per token; found \(topLogprobs)")
            }
            if logprobs != true {
                throw APIError.invalid(
                    "'top_logprobs' requires 'logprobs' to be true", param: "top_logprobs", code: "invalid_value")
            }
        }
        if streamOptions != nil, !isStreaming {
            throw APIError.invalid(
                "'stream_options' is only allowed when 'stream' is true", param: "stream_options",
                code: "invalid_value")
        }

        // Ranges.
        try ParameterCheck.closed(temperature, 0...2, "temperature")
        try ParameterCheck.probability(topP, "top_p")
        try ParameterCheck.atLeast(topK, 0, "top_k")
        try ParameterCheck.closed(minP, 0...1, "min_p")
        try ParameterCheck.closed(presencePenalty, -2...2, "presence_penalty")
        try ParameterCheck.closed(frequencyPenalty, -2...2, "frequency_penalty")
        try ParameterCheck.positive(repeatPenalty, "repeat_penalty")
        try ParameterCheck.atLeast(maxTokens, 1, "max_tokens")
        try ParameterCheck.atLeast(maxCompletionTokens, 1, "max_completion_tokens")
        try ParameterCheck.stop(stopSequences, "stop")
        if let session, session.isEmpty {
            throw APIError.invalid("'session' must not be empty", param: "session", code: "invalid_value")
        }
    }
}

extension CompletionRequest {
    /// Checks the request like `ChatCompletionRequest.validate(limits:)`.
    public func validate(limits: APILimits = APILimits()) throws(APIError) {
        try ParameterCheck.model(model)
        if prompt.count != 1 {
            throw APIError.unsupported("prompt", "exactly one prompt per request; found \(prompt.count)")
        }
        let characters = prompt.texts.reduce(0) { $0 + $1.count }
        try limits.checkPromptLength(characters, param: "prompt")
        if let suffix, !suffix.isEmpty {
            throw APIError.unsupported("suffix", "fill-in-the-middle is not available")
        }
        if let n {
            if n < 1 { throw APIError.outOfRange("n", expected: "at least 1", found: String(n)) }
            if n > 1 { throw APIError.unsupported("n", "only one choice per request (n = 1)") }
        }
        if let bestOf {
            if bestOf < 1 { throw APIError.outOfRange("best_of", expected: "at least 1", found: String(bestOf)) }
            if bestOf > 1 { throw APIError.unsupported("best_of", "only best_of = 1") }
        }
        if let logprobs {
            if logprobs < 0 { throw APIError.outOfRange("logprobs", expected: "between 0 and 5", found: String(logprobs)) }
            if logprobs > 5 { throw APIError.unsupported("logprobs", "at most 5 alternatives per token; found \(logprobs)") }
        }
        if let logitBias, !logitBias.isEmpty {
            throw APIError.unsupported("logit_bias", "logit bias is not available")
        }
        if streamOptions != nil, !isStreaming {
            throw APIError.invalid(
                "'stream_options' is only allowed when 'stream' is true", param: "stream_options",
                code: "invalid_value")
        }
        try ParameterCheck.closed(temperature, 0...2, "temperature")
        try ParameterCheck.probability(topP, "top_p")
        try ParameterCheck.atLeast(topK, 0, "top_k")
        try ParameterCheck.closed(minP, 0...1, "min_p")
        try ParameterCheck.closed(presencePenalty, -2...2, "presence_penalty")
        try ParameterCheck.closed(frequencyPenalty, -2...2, "frequency_penalty")
        try ParameterCheck.positive(repeatPenalty, "repeat_penalty")
        try ParameterCheck.atLeast(maxTokens, 1, "max_tokens")
        try ParameterCheck.stop(stopSequences, "stop")
    }
}
