import APITypes
import Foundation

/// A complete response.
struct HTTPResponse {
    var head: ResponseHead
    var body: [UInt8]
    var status: Int { head.status }
}

/// The daemon's API as the client uses it.
struct Daemon {
    let socket: String

    // MARK: plain requests

    func send(_ method: String, _ path: String, body: [UInt8]? = nil,
              contentType: String = "application/json") throws -> HTTPResponse {
        var headers = [("Accept", "application/json")]
        if body != nil { headers.append(("Content-Type", contentType)) }
        let exchange = try HTTPExchange(socket: socket, method: method, path: path, headers: headers, body: body)
        defer { exchange.close() }
        let head = try exchange.readHead()
        let data = try exchange.readAll()
        let response = HTTPResponse(head: head, body: data)
        guard (200..<300).contains(response.status) else { throw error(status: response.status, body: data) }
        return response
    }

    func get<T: Decodable>(_ path: String, as type: T.Type = T.self) throws -> T {
        try decode(type, from: send("GET", path).body, path: path)
    }

    func post<T: Decodable>(_ path: String, json: some Encodable, as type: T.Type = T.self) throws -> T {
        let body: Data
        do { body = try APICoding.encode(json) } catch { throw ClientError.other("cannot encode the request: \(error)") }
        return try decode(type, from: send("POST", path, body: Array(body)).body, path: path)
    }

    func delete<T: Decodable>(_ path: String, as type: T.Type = T.self) throws -> T {
        try decode(type, from: send("DELETE", path).body, path: path)
    }

    func decode<T: Decodable>(_ type: T.Type, from body: [UInt8], path: String) throws -> T {
        do { return try APICoding.decoder.decode(type, from: Data(body)) } catch {
            throw ClientError.protocolError("\(path): \(error)")
        }
    }

    /// The error for a non-2xx answer: OpenAI's error body, Ollama's, or the text itself.
    func error(status: Int, body: [UInt8]) -> ClientError {
        var message = String(decoding: body.prefix(500), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        var code: String?
        if let e = try? APICoding.decoder.decode(APIErrorBody.self, from: Data(body)) {
            message = e.error.message
            code = e.error.code
        } else if let e = try? APICoding.decoder.decode(OllamaErrorBody.self, from: Data(body)) {
            message = e.error
        }
        if message.isEmpty { message = "HTTP \(status)" }
        if status == 403 { return .forbidden(path: socket, message: message) }
        return .api(status: status, message: message, code: code)
    }

    // MARK: models

    func models() throws -> [String] {
        try get("/v1/models", as: ModelList.self).data.map(\.id)
    }

    /// `explicit`, else the only model; with several or none, an error listing them.
    func resolveModel(_ explicit: String?) throws -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        let names = try models()
        if names.count == 1, let only = names.first { return only }
        if names.isEmpty {
            throw ClientError.other("roostd on \(socket) has no models; put .gguf files into its models directory")
        }
        throw ClientError.usage("roostd has \(names.count) models; choose one with --model: \(names.joined(separator: ", "))")
    }

    // MARK: sessions

    static func sessionPath(_ id: String, _ suffix: String = "") -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/?#")
        return "/v1/sessions/" + (id.addingPercentEncoding(withAllowedCharacters: allowed) ?? id) + suffix
    }

    // MARK: streaming chat

    enum StreamEnd {
        case finished(FinishReason?, Usage?)
        case cancelled
    }

    /// POST /v1/chat/completions with `stream: true`; `onChunk` gets every chunk as it arrives,
    /// `idle` runs every 100 ms of silence (and throws `Cancelled` to stop: the connection
    /// closes and the daemon cancels the generation).
    func streamChat(_ request: ChatCompletionRequest, idle: () throws -> Void,
                    onChunk: (ChatCompletionChunk) throws -> Void) throws -> StreamEnd {
        var request = request
        request.stream = true
        let body: Data
        do { body = try APICoding.encode(request) } catch { throw ClientError.other("cannot encode the request: \(error)") }
        let exchange = try HTTPExchange(socket: socket, method: "POST", path: "/v1/chat/completions",
                                        headers: [("Content-Type", "application/json"), ("Accept", "text/event-stream")],
                                        body: Array(body))
        defer { exchange.close() }
        do {
            let head = try exchange.readHead(idle: idle)
            guard (200..<300).contains(head.status) else {
                throw error(status: head.status, body: try exchange.readAll())
            }
            var parser = SSEParser()
            var finish: FinishReason?
            var usage: Usage?
            func handle(_ event: SSEEvent) throws -> Bool {
                if event.data == "[DONE]" { return true }
                let data = Data(event.data.utf8)
                if let e = try? APICoding.decoder.decode(APIErrorBody.self, from: data) {
                    throw ClientError.api(status: 200, message: e.error.message, code: e.error.code)
                }
                let chunk: ChatCompletionChunk
                do { chunk = try APICoding.decoder.decode(ChatCompletionChunk.self, from: data) } catch {
                    throw ClientError.protocolError("a stream event that is not a chat chunk: \(event.data.prefix(200))")
                }
                if let u = chunk.usage { usage = u }
                if let reason = chunk.choices.first?.finishReason { finish = reason }
                try onChunk(chunk)
                return false
            }
            while let piece = try exchange.readBody(idle: idle) {
                for event in parser.feed(piece) where try handle(event) {
                    return .finished(finish, usage)
                }
                // A Ctrl-C that came between two reads (not during a wait) is seen here,
                // even when tokens keep arriving.
                try idle()
            }
            if let event = parser.finish(), try handle(event) { return .finished(finish, usage) }
            return .finished(finish, usage)
        } catch is Cancelled {
            return .cancelled
        }
    }
}
