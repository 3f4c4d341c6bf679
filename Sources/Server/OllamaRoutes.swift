import APITypes
import Engine
import Foundation
import Hummingbird
import NIOCore
import Sampling

extension RoostAPI {
    func addOllamaRoutes(_ router: Router<Ctx>) {
        router.get("/api/version") { _, _ -> Response in Reply.json(OllamaVersion(version: self.version)) }
        router.get("/api/tags") { _, _ -> Response in
            Reply.json(OllamaTags(models: self.engine.listModels().filter { $0.error == nil }.map(Self.ollamaModel)))
        }
        router.get("/api/ps") { _, _ -> Response in
            let running = self.engine.listModels().filter(\.loaded).map { m in
                OllamaRunningModel(name: m.name, size: Int64(m.sizeBytes), digest: Self.digest(m), details: Self.details(m),
                                   expiresAt: iso8601(m.expiresAt ?? 0))
            }
            return Reply.json(OllamaPS(models: running))
        }
        router.post("/api/show") { request, _ -> Response in
            await self.counted("ollama_show", ollama: true) { () async throws(APIError) -> Response in
                let body = try await readBody(request, limits: self.limits)
                struct Show: Decodable { var model: String?; var name: String? }
                let req = try APICoding.decodeRequest(Show.self, from: Data(body), limits: self.limits)
                let name = req.model ?? req.name ?? ""
                guard let m = self.engine.listModels().first(where: { $0.name == name && $0.error == nil }) else {
                    throw APIError.modelNotFound(name)
                }
                struct ShowReply: Encodable {
                    var details: OllamaModelDetails
                    var model_info: [String: String]
                    var modified_at: String
                }
                return Reply.json(ShowReply(details: Self.details(m),
                                            model_info: ["general.architecture": m.architecture ?? ""],
                                            modified_at: iso8601(m.modified)))
            }
        }
        for path in ["/api/pull", "/api/push", "/api/create", "/api/copy", "/api/delete", "/api/embed", "/api/embeddings"] {
            router.on(RouterPath(path), method: path == "/api/delete" ? .delete : .post) { _, _ -> Response in
                Reply.error(APIError(.invalidRequest, message: "\(path) is not available in Roost: put GGUF files into the models directory"),
                            ollama: true).withStatus(501)
            }
        }
        router.post("/api/chat") { request, _ -> Response in
            await self.counted("ollama_chat", ollama: true) { () async throws(APIError) -> Response in
                try await self.ollamaChat(request)
            }
        }
        router.post("/api/generate") { request, _ -> Response in
            await self.counted("ollama_generate", ollama: true) { () async throws(APIError) -> Response in
                try await self.ollamaGenerate(request)
            }
        }
    }

    static func ollamaMetrics(_ u: GenerationUsage) -> OllamaMetrics {
        OllamaMetrics(totalDuration: Int64((u.queueSeconds + u.promptSeconds + u.generationSeconds) * 1e9), loadDuration: 0,
                      promptEvalCount: u.promptTokens, promptEvalDuration: Int64(u.promptSeconds * 1e9),
                      evalCount: u.completionTokens, evalDuration: Int64(u.generationSeconds * 1e9))
    }

    static func details(_ m: ModelDescription) -> OllamaModelDetails {
        let b = Double(m.parameterCount)
        let size = b >= 1e9 ? String(format: "%.1fB", b / 1e9) : String(format: "%.0fM", b / 1e6)
        return OllamaModelDetails(family: m.architecture ?? "unknown", families: m.architecture.map { [$0] },
                                  parameterSize: size, quantizationLevel: (m.quantization ?? "unknown").uppercased())
    }

    static func digest(_ m: ModelDescription) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in "\(m.path)|\(m.sizeBytes)|\(m.modified)".utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let s = String(h, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    static func ollamaModel(_ m: ModelDescription) -> OllamaModel {
        OllamaModel(name: m.name, modifiedAt: iso8601(m.modified), size: Int64(m.sizeBytes), digest: digest(m),
                    details: details(m))
    }

    func ollamaSampling(_ o: OllamaOptions?) throws(APIError) -> (SamplingParametersBox, Int?, [String]) {
        let p = try samplingParameters(
            temperature: o?.temperature ?? 0.8, topP: o?.topP ?? 0.9, topK: o?.topK ?? 40, minP: o?.minP,
            repeatPenalty: o?.repeatPenalty ?? 1.1, presencePenalty: o?.presencePenalty,
            frequencyPenalty: o?.frequencyPenalty, seed: o?.seed, logprobs: false, topLogprobs: 0,
            repeatLastN: o?.repeatLastN)
        let limit = o?.numPredict.flatMap { $0 < 0 ? nil : $0 }
        return (SamplingParametersBox(value: p), limit, o?.stop ?? [])
    }

    static func grammar(_ f: OllamaFormat?, body: [UInt8]) -> GrammarSpec? {
        switch f {
        case .none: return nil
        case .json: return .jsonObject
        case .schema: return RawJSON.value(at: ["format"], in: body).map { .jsonSchema($0) }
        }
    }

    func ollamaChat(_ request: Request) async throws(APIError) -> Response {
        let body = try await readBody(request, limits: limits)
        let req = try APICoding.decodeRequest(OllamaChatRequest.self, from: Data(body), limits: limits)
        try req.validate(limits: limits)
        let (sampling, limit, stops) = try ollamaSampling(req.options)
        let messages = req.messages.map { PromptMessage(role: $0.role.rawValue, content: $0.content, reasoningContent: $0.thinking) }
        if req.messages.isEmpty {
            // Ollama loads the model for an empty chat and answers done.
            return Reply.json(OllamaChatResponse(model: req.model, createdAt: iso8601(Date().timeIntervalSince1970),
                                                 message: OllamaMessage(role: .assistant, content: ""), done: true,
                                                 doneReason: .load))
        }
        let gen = GenerationRequest(model: req.model, prompt: .chat(messages), sampling: sampling.value, maxTokens: limit,
                                    stop: stops, principal: peer(request), grammar: Self.grammar(req.format, body: body),
                                    keepAliveSeconds: req.keepAlive.map { $0.seconds ?? Double.greatestFiniteMagnitude })
        let handle = try await start(gen, request: request)
        let model = req.model
        if req.isStreaming {
            return sse(contentType: "application/x-ndjson", { (send) async throws -> Void in
                var splitter = ThinkSplitter(insideThink: handle.startsInReasoning)
                for await event in handle.events {
                    switch event {
                    case .started: break
                    case let .text(text, _):
                        let (thinking, content) = splitter.feed(text)
                        if thinking.isEmpty && content.isEmpty { continue }
                        let line = OllamaChatResponse(
                            model: model, createdAt: iso8601(Date().timeIntervalSince1970),
                            message: OllamaMessage(role: .assistant, content: content, thinking: thinking.isEmpty ? nil : thinking),
                            done: false)
                        try await send(String(decoding: try NDJSON.line(line), as: UTF8.self))
                    case let .finished(reason, usage):
                        self.record(usage)
                        let (thinking, content) = splitter.finish()
                        if let e = Self.endError(reason, handle) {
                            try await send(String(decoding: try NDJSON.line(OllamaErrorBody(error: e.message)), as: UTF8.self))
                            continue
                        }
                        let line = OllamaChatResponse(
                            model: model, createdAt: iso8601(Date().timeIntervalSince1970),
                            message: OllamaMessage(role: .assistant, content: content, thinking: thinking.isEmpty ? nil : thinking),
                            done: true, doneReason: reason == .length ? .length : .stop, metrics: Self.ollamaMetrics(usage))
                        try await send(String(decoding: try NDJSON.line(line), as: UTF8.self))
                    }
                }
            }, onCancel: { handle.cancel() })
        }
        let out = try await collect(handle)
        let (text, final, finalReason) = (out.text, out.usage, out.reason)
        var splitter = ThinkSplitter(insideThink: handle.startsInReasoning)
        var (thinking, content) = splitter.feed(text)
        let rest = splitter.finish()
        thinking += rest.reasoning
        content += rest.content
        return Reply.json(OllamaChatResponse(
            model: model, createdAt: iso8601(Date().timeIntervalSince1970),
            message: OllamaMessage(role: .assistant, content: content, thinking: thinking.isEmpty ? nil : thinking),
            done: true, doneReason: finalReason == .length ? .length : .stop, metrics: Self.ollamaMetrics(final)))
    }

    func ollamaGenerate(_ request: Request) async throws(APIError) -> Response {
        let body = try await readBody(request, limits: limits)
        let req = try APICoding.decodeRequest(OllamaGenerateRequest.self, from: Data(body), limits: limits)
        try req.validate(limits: limits)
        let (sampling, limit, stops) = try ollamaSampling(req.options)
        let promptText = req.prompt ?? ""
        if promptText.isEmpty {
            return Reply.json(OllamaGenerateResponse(model: req.model, createdAt: iso8601(Date().timeIntervalSince1970),
                                                     response: "", done: true, doneReason: .load))
        }
        let prompt: Engine.PromptInput
        if req.raw ?? false {
            prompt = .text(promptText)
        } else {
            var messages: [PromptMessage] = []
            if let s = req.system, !s.isEmpty { messages.append(PromptMessage(role: "system", content: s)) }
            messages.append(PromptMessage(role: "user", content: promptText))
            prompt = .chat(messages)
        }
        let gen = GenerationRequest(model: req.model, prompt: prompt, sampling: sampling.value, maxTokens: limit, stop: stops,
                                    principal: peer(request), grammar: Self.grammar(req.format, body: body),
                                    keepAliveSeconds: req.keepAlive.map { $0.seconds ?? Double.greatestFiniteMagnitude })
        let handle = try await start(gen, request: request)
        let model = req.model
        if req.isStreaming {
            return sse(contentType: "application/x-ndjson", { (send) async throws -> Void in
                for await event in handle.events {
                    switch event {
                    case .started: break
                    case let .text(text, _):
                        if text.isEmpty { continue }
                        try await send(String(decoding: try NDJSON.line(OllamaGenerateResponse(
                            model: model, createdAt: iso8601(Date().timeIntervalSince1970), response: text, done: false)), as: UTF8.self))
                    case let .finished(reason, usage):
                        self.record(usage)
                        if let e = Self.endError(reason, handle) {
                            try await send(String(decoding: try NDJSON.line(OllamaErrorBody(error: e.message)), as: UTF8.self))
                            continue
                        }
                        try await send(String(decoding: try NDJSON.line(OllamaGenerateResponse(
                            model: model, createdAt: iso8601(Date().timeIntervalSince1970), response: "", done: true,
                            doneReason: reason == .length ? .length : .stop, metrics: Self.ollamaMetrics(usage))), as: UTF8.self))
                    }
                }
            }, onCancel: { handle.cancel() })
        }
        let out = try await collect(handle)
        let (text, final, finalReason) = (out.text, out.usage, out.reason)
        return Reply.json(OllamaGenerateResponse(model: model, createdAt: iso8601(Date().timeIntervalSince1970), response: text,
                                                 done: true, doneReason: finalReason == .length ? .length : .stop,
                                                 metrics: Self.ollamaMetrics(final)))
    }
}

/// Carries sampling parameters out of a throwing tuple-returning helper.
struct SamplingParametersBox: Sendable {
    var value: SamplingParametersValue
}

typealias SamplingParametersValue = Sampling.SamplingParameters

extension Response {
    func withStatus(_ code: Int) -> Response {
        var r = self
        r.status = .init(code: code)
        return r
    }
}
