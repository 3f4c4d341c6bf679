import APITypes
import Engine
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Sampling

extension RoostAPI {
    func addOpenAIRoutes(_ router: Router<Ctx>) {
        router.get("/v1/models") { _, _ -> Response in
            let models = self.engine.listModels().filter { $0.error == nil }
            return Reply.json(ModelList(data: models.map { ModelInfo(id: $0.name, created: Int($0.modified)) }))
        }
        router.get("/v1/models/:id") { _, ctx -> Response in
            let id = ctx.parameters.get("id") ?? ""
            guard let m = self.engine.listModels().first(where: { $0.name == id && $0.error == nil }) else {
                return Reply.error(.modelNotFound(id))
            }
            return Reply.json(ModelInfo(id: m.name, created: Int(m.modified)))
        }
        router.post("/v1/chat/completions") { request, _ -> Response in
            await self.counted("chat") { () async throws(APIError) -> Response in
                try await self.chatCompletions(request)
            }
        }
        router.post("/v1/completions") { request, _ -> Response in
            await self.counted("completions") { () async throws(APIError) -> Response in
                try await self.completions(request)
            }
        }
    }

    // MARK: - chat

    func chatCompletions(_ request: Request) async throws(APIError) -> Response {
        let body = try await readBody(request, limits: limits)
        let req = try APICoding.decodeRequest(ChatCompletionRequest.self, from: Data(body), limits: limits)
        try req.validate(limits: limits)
        var grammar: GrammarSpec?
        if let format = req.responseFormat {
            switch format.type {
            case .text: break
            case .jsonObject: grammar = .jsonObject
            case .jsonSchema:
                guard let raw = RawJSON.value(at: ["response_format", "json_schema", "schema"], in: body) else {
                    throw APIError.invalid("response_format.json_schema.schema is required", param: "response_format.json_schema.schema")
                }
                grammar = .jsonSchema(raw)
            case .other(let name):
                throw APIError.unsupported("response_format", "type '\(name)' is not supported")
            }
        }
        let sampling = try samplingParameters(
            temperature: req.temperature, topP: req.topP, topK: req.topK, minP: req.minP,
            repeatPenalty: req.repeatPenalty, presencePenalty: req.presencePenalty,
            frequencyPenalty: req.frequencyPenalty, seed: req.seed, logprobs: req.logprobs ?? false,
            topLogprobs: req.topLogprobs ?? 0)
        let messages = req.messages.map {
            PromptMessage(role: $0.role.rawValue, content: $0.content?.text ?? "", reasoningContent: $0.reasoningContent)
        }
        let gen = GenerationRequest(
            model: req.model, prompt: .chat(messages), sampling: sampling,
            maxTokens: req.maxCompletionTokens ?? req.maxTokens, stop: req.stop?.values ?? [], session: req.session,
            principal: peer(request), grammar: grammar)
        let handle = try await start(gen, request: request)
        let id = requestID("chatcmpl-")
        let created = unixTime()
        let model = req.model
        let wantLogprobs = req.logprobs ?? false
        if req.stream ?? false {
            let includeUsage = req.streamOptions?.includeUsage ?? false
            return sse { (send) async throws -> Void in
                var splitter = ThinkSplitter(insideThink: handle.startsInReasoning)
                func chunk(_ delta: ChatDelta, logprobs: ChatLogprobs? = nil, finish: APITypes.FinishReason? = nil) -> ChatCompletionChunk {
                    ChatCompletionChunk(id: id, created: created, model: model,
                                        choices: [ChatCompletionChunkChoice(delta: delta, logprobs: logprobs, finishReason: finish)])
                }
                try await send(try SSE.event(chunk(ChatDelta(role: .assistant, content: ""))))
                for await event in handle.events {
                    switch event {
                    case .started: break
                    case let .text(text, tokens):
                        let (reasoning, content) = splitter.feed(text)
                        let lp = wantLogprobs ? ChatLogprobs(content: tokens.map(Self.tokenLogprob)) : nil
                        if !reasoning.isEmpty || !content.isEmpty || lp != nil {
                            try await send(try SSE.event(chunk(ChatDelta(content: content.isEmpty ? nil : content,
                                                                         reasoningContent: reasoning.isEmpty ? nil : reasoning),
                                                               logprobs: lp)))
                        }
                    case let .finished(reason, usage):
                        let (reasoning, content) = splitter.finish()
                        if !reasoning.isEmpty || !content.isEmpty {
                            try await send(try SSE.event(chunk(ChatDelta(content: content.isEmpty ? nil : content,
                                                                         reasoningContent: reasoning.isEmpty ? nil : reasoning))))
                        }
                        self.record(usage)
                        if let e = Self.endError(reason, handle) {
                            try await send(SSE.event(data: String(decoding: try APICoding.encode(e.body), as: UTF8.self)))
                        } else {
                            try await send(try SSE.event(chunk(ChatDelta(), finish: Self.finish(reason))))
                            if includeUsage {
                                try await send(try SSE.event(ChatCompletionChunk(
                                    id: id, created: created, model: model, choices: [],
                                    usage: Usage(promptTokens: usage.promptTokens, completionTokens: usage.completionTokens))))
                            }
                        }
                        try await send(SSE.event(data: "[DONE]"))
                    }
                }
            } onCancel: { handle.cancel() }
        }
        let out = try await collect(handle)
        let (text, infos, final, finalReason) = (out.text, out.tokens, out.usage, out.reason)
        var splitter = ThinkSplitter(insideThink: handle.startsInReasoning)
        var (reasoning, content) = splitter.feed(text)
        let rest = splitter.finish()
        reasoning += rest.reasoning
        content += rest.content
        let message = AssistantMessage(content: content, reasoningContent: reasoning.isEmpty ? nil : reasoning)
        let choice = ChatCompletionChoice(
            message: message, logprobs: wantLogprobs ? ChatLogprobs(content: infos.map(Self.tokenLogprob)) : nil,
            finishReason: Self.finish(finalReason))
        return Reply.json(ChatCompletion(id: id, created: created, model: model, choices: [choice],
                                         usage: Usage(promptTokens: final.promptTokens, completionTokens: final.completionTokens)))
    }

    static func finish(_ r: Engine.FinishReason) -> APITypes.FinishReason {
        switch r {
        case .stop: .stop
        case .length, .timeout, .cancelled: .length
        }
    }

    static func tokenLogprob(_ t: TokenInfo) -> APITypes.TokenLogprob {
        APITypes.TokenLogprob(
            token: textOf(t.bytes), logprob: Double(t.logprob), bytes: t.bytes,
            topLogprobs: t.top.map { TopLogprob(token: textOf($0.bytes), logprob: Double($0.logprob), bytes: $0.bytes) })
    }

    // MARK: - completions

    func completions(_ request: Request) async throws(APIError) -> Response {
        let body = try await readBody(request, limits: limits)
        let req = try APICoding.decodeRequest(CompletionRequest.self, from: Data(body), limits: limits)
        try req.validate(limits: limits)
        let prompt: Engine.PromptInput
        switch req.prompt {
        case .text(let s): prompt = .text(s)
        case .tokens(let t):
            guard t.allSatisfy({ $0 >= 0 && $0 <= Int(Int32.max) }) else {
                throw APIError.invalid("prompt tokens must be non-negative 32-bit integers", param: "prompt")
            }
            prompt = .tokens(t.map { Int32($0) })
        case .texts, .tokenBatches:
            throw APIError.unsupported("prompt", "exactly one prompt per request")
        }
        let topLogprobs = req.logprobs ?? 0
        let sampling = try samplingParameters(
            temperature: req.temperature, topP: req.topP, topK: req.topK, minP: req.minP,
            repeatPenalty: req.repeatPenalty, presencePenalty: req.presencePenalty,
            frequencyPenalty: req.frequencyPenalty, seed: req.seed, logprobs: req.logprobs != nil,
            topLogprobs: topLogprobs)
        let gen = GenerationRequest(model: req.model, prompt: prompt, sampling: sampling, maxTokens: req.maxTokens ?? 16,
                                    stop: req.stop?.values ?? [], principal: peer(request))
        let handle = try await start(gen, request: request)
        let id = requestID("cmpl-")
        let created = unixTime()
        let model = req.model
        let echo = (req.echo ?? false) ? { if case .text(let s) = req.prompt { return s } else { return "" } }() : ""
        if req.stream ?? false {
            let includeUsage = req.streamOptions?.includeUsage ?? false
            return sse { (send) async throws -> Void in
                if !echo.isEmpty {
                    try await send(try SSE.event(Completion(id: id, created: created, model: model,
                                                            choices: [CompletionChoice(text: echo, finishReason: nil)], usage: nil)))
                }
                for await event in handle.events {
                    switch event {
                    case .started: break
                    case let .text(text, tokens):
                        let lp = req.logprobs != nil ? Self.completionLogprobs(tokens, offset: 0) : nil
                        try await send(try SSE.event(Completion(id: id, created: created, model: model,
                                                                choices: [CompletionChoice(text: text, logprobs: lp, finishReason: nil)],
                                                                usage: nil)))
                    case let .finished(reason, usage):
                        self.record(usage)
                        if let e = Self.endError(reason, handle) {
                            try await send(SSE.event(data: String(decoding: try APICoding.encode(e.body), as: UTF8.self)))
                        } else {
                            try await send(try SSE.event(Completion(
                                id: id, created: created, model: model,
                                choices: [CompletionChoice(text: "", finishReason: Self.finish(reason))],
                                usage: includeUsage ? Usage(promptTokens: usage.promptTokens, completionTokens: usage.completionTokens) : nil)))
                        }
                        try await send(SSE.event(data: "[DONE]"))
                    }
                }
            } onCancel: { handle.cancel() }
        }
        let out = try await collect(handle)
        let (text, infos, final, finalReason) = (echo + out.text, out.tokens, out.usage, out.reason)
        let lp = req.logprobs != nil ? Self.completionLogprobs(infos, offset: echo.utf8.count) : nil
        return Reply.json(Completion(id: id, created: created, model: model,
                                     choices: [CompletionChoice(text: text, logprobs: lp, finishReason: Self.finish(finalReason))],
                                     usage: Usage(promptTokens: final.promptTokens, completionTokens: final.completionTokens)))
    }

    static func completionLogprobs(_ infos: [TokenInfo], offset: Int) -> CompletionLogprobs {
        var offsets: [Int] = []
        var at = offset
        for i in infos { offsets.append(at); at += i.bytes.count }
        return CompletionLogprobs(
            tokens: infos.map { textOf($0.bytes) }, tokenLogprobs: infos.map { Double($0.logprob) },
            topLogprobs: infos.map { i in
                var d: [String: Double] = [:]
                for t in i.top { d[textOf(t.bytes)] = Double(t.logprob) }
                return d
            }, textOffset: offsets)
    }
}
