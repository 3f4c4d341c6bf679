import APITypes
import Engine
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Sampling

typealias Ctx = BasicRequestContext

/// Runs engine calls that may block (model loading) off Swift's cooperative pool.
func offload<T: Sendable>(_ body: @escaping @Sendable () throws(EngineError) -> T) async throws(EngineError) -> T {
    let result: Result<T, EngineError> = await withCheckedContinuation { cont in
        let thread = Thread {
            do throws(EngineError) { cont.resume(returning: .success(try body())) } catch {
                cont.resume(returning: .failure(error))
            }
        }
        thread.stackSize = 1 << 22
        thread.start()
    }
    return try result.get()
}

extension EngineError {
    /// The API error (status, OpenAI type, param) for an engine error.
    var apiError: APIError {
        switch self {
        case .unknownModel(let name): return .modelNotFound(name)
        case .modelUnavailable: return APIError(.internalError, message: description, param: "model", code: "model_unavailable")
        case .overBudget: return APIError(.unavailable(retryAfter: 5), message: description, code: "memory_budget")
        case .queueFull(let after): return APIError(.rateLimited(retryAfter: after), message: description, code: "queue_full")
        case let .invalidRequest(param, message): return APIError(.invalidRequest, message: message, param: param)
        case .unknownSession: return APIError(.notFound, message: description, param: "session", code: "session_not_found")
        case .sessionBusy: return APIError(.invalidRequest, message: description, param: "session", code: "session_busy")
        case .badSession: return APIError(.invalidRequest, message: description, code: "bad_session")
        case .shuttingDown: return APIError(.unavailable(retryAfter: 5), message: description, code: "shutting_down")
        case .modelFileChanged:
            return APIError(.unavailable(retryAfter: 1), message: description, param: "model", code: "model_file_changed")
        case .internalFailure: return APIError(.internalError, message: description)
        }
    }
}

/// JSON responses and errors in the API's shapes.
enum Reply {
    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        do {
            let data = try APICoding.encode(value)
            return bytes(Array(data), status: status, contentType: "application/json")
        } catch {
            return self.error(APIError(.internalError, message: "cannot encode the response: \(error)"))
        }
    }

    static func bytes(_ b: [UInt8], status: HTTPResponse.Status = .ok, contentType: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.contentLength] = String(b.count)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: b)))
    }

    static func error(_ e: APIError, ollama: Bool = false) -> Response {
        var r: Response = ollama ? json(e.ollamaBody, status: .init(code: e.httpStatus)) : json(e.body, status: .init(code: e.httpStatus))
        if let after = e.kind.retryAfter { r.headers[.retryAfter] = String(after) }
        return r
    }
}

/// Reads the body (up to the limit), then decodes it with the API's checks.
func readBody(_ request: Request, limits: APILimits) async throws(APIError) -> [UInt8] {
    var request = request
    do {
        let buffer = try await request.collectBody(upTo: limits.maxBodyBytes)
        return Array(buffer.readableBytesView)
    } catch is NIOTooManyBytesError {
        throw APIError(.tooLarge, message: "The request body is larger than \(limits.maxBodyBytes) bytes", code: "body_too_large")
    } catch let e as HTTPError where e.status == .contentTooLarge {
        throw APIError(.tooLarge, message: "The request body is larger than \(limits.maxBodyBytes) bytes", code: "body_too_large")
    } catch {
        throw APIError.invalid("Could not read the request body: \(error)")
    }
}

func peer(_ request: Request) -> Principal {
    if let v = request.headers[InternalHeaders.peerUID], let uid = UInt32(v) { return Principal(uid: uid) }
    return Principal(uid: getuid())
}

func connectionID(_ request: Request) -> UInt64? {
    request.headers[InternalHeaders.connection].flatMap { UInt64($0) }
}

/// Sampling parameters from API numbers (already range-checked by the API types).
func samplingParameters(temperature: Double?, topP: Double?, topK: Int?, minP: Double?, repeatPenalty: Double?,
                        presencePenalty: Double?, frequencyPenalty: Double?, seed: Int?, logprobs: Bool,
                        topLogprobs: Int, repeatLastN: Int? = nil) throws(APIError) -> SamplingParameters {
    let p = SamplingParameters(
        temperature: Float(temperature ?? 1), topK: topK ?? 0, topP: Float(topP ?? 1), minP: Float(minP ?? 0),
        repeatPenalty: Float(repeatPenalty ?? 1), presencePenalty: Float(presencePenalty ?? 0),
        frequencyPenalty: Float(frequencyPenalty ?? 0), repeatLastN: repeatLastN ?? 64,
        seed: seed.map { UInt64(bitPattern: Int64($0)) }, logprobs: logprobs, topLogprobs: topLogprobs)
    do { try p.validate() } catch { throw APIError.invalid(error.description) }
    return p
}

func unixTime() -> Int { Int(Date().timeIntervalSince1970) }

func iso8601(_ seconds: Double) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return f.string(from: Date(timeIntervalSince1970: seconds))
}

func requestID(_ prefix: String) -> String {
    var g = SystemRandomNumberGenerator()
    return prefix + String(g.next() as UInt64, radix: 36) + String(g.next() as UInt32, radix: 36)
}

func textOf(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
