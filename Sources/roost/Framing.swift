import Foundation

/// Pure decoders for what comes back over the socket: HTTP/1.1 chunked transfer coding and
/// Server-Sent Events. Both take bytes in whatever pieces the socket delivers them.

/// Decodes `Transfer-Encoding: chunked` incrementally (RFC 9112 §7.1). Chunk extensions
/// and trailers are read and dropped.
struct ChunkedDecoder {
    enum Failure: Error, Equatable, CustomStringConvertible {
        case badChunkSize(String)
        case missingCRLF

        var description: String {
            switch self {
            case .badChunkSize(let line): "bad chunk size line '\(line)'"
            case .missingCRLF: "chunk data not followed by CRLF"
            }
        }
    }

    private enum State {
        case size          // reading the chunk-size line
        case data(Int)     // bytes of chunk data still to come
        case dataEnd       // the CRLF after chunk data
        case trailer       // trailer lines up to the empty line
        case done
    }

    private var state: State = .size
    private var line: [UInt8] = []

    /// True once the last chunk and the trailer have been read.
    var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    /// Feeds raw bytes; returns the body bytes they complete. Bytes after the end are ignored.
    mutating func feed(_ bytes: some Collection<UInt8>) throws(Failure) -> [UInt8] {
        var out: [UInt8] = []
        var index = bytes.startIndex
        while index != bytes.endIndex {
            switch state {
            case .done:
                return out
            case .data(let remaining):
                let available = bytes.distance(from: index, to: bytes.endIndex)
                let take = min(remaining, available)
                let end = bytes.index(index, offsetBy: take)
                out.append(contentsOf: bytes[index..<end])
                index = end
                state = remaining - take == 0 ? .dataEnd : .data(remaining - take)
            case .size, .dataEnd, .trailer:
                let byte = bytes[index]
                index = bytes.index(after: index)
                guard byte == 0x0A else {
                    line.append(byte)
                    if line.count > 4096 { throw .badChunkSize(String(decoding: line.prefix(40), as: UTF8.self)) }
                    continue
                }
                if line.last == 0x0D { line.removeLast() }
                let text = String(decoding: line, as: UTF8.self)
                line.removeAll(keepingCapacity: true)
                try finishLine(text)
            }
        }
        return out
    }

    private mutating func finishLine(_ text: String) throws(Failure) {
        switch state {
        case .size:
            let hex = text.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let trimmed = hex.trimmingCharacters(in: [" ", "\t"])
            guard !trimmed.isEmpty, trimmed.count <= 15, let size = Int(trimmed, radix: 16), size >= 0 else {
                throw .badChunkSize(text)
            }
            state = size == 0 ? .trailer : .data(size)
        case .dataEnd:
            guard text.isEmpty else { throw .missingCRLF }
            state = .size
        case .trailer:
            if text.isEmpty { state = .done }
        case .data, .done:
            break
        }
    }
}

/// One Server-Sent Event: its `event:` name (empty when absent) and its data lines joined by `\n`.
struct SSEEvent: Equatable {
    var event: String = ""
    var data: String
}

/// Splits an SSE stream into events (WHATWG HTML §9.2.6): lines end with LF, CRLF or CR;
/// `data:` lines accumulate, an empty line dispatches, `:` lines are comments.
struct SSEParser {
    private var line: [UInt8] = []
    private var dataLines: [String] = []
    private var eventName = ""
    private var hasData = false
    private var lastWasCR = false

    mutating func feed(_ bytes: some Collection<UInt8>) -> [SSEEvent] {
        var events: [SSEEvent] = []
        for byte in bytes {
            if lastWasCR {
                lastWasCR = false
                if byte == 0x0A { continue }
            }
            if byte == 0x0A || byte == 0x0D {
                lastWasCR = byte == 0x0D
                if let event = finishLine() { events.append(event) }
            } else {
                line.append(byte)
            }
        }
        return events
    }

    /// The event still open when the stream ends without a final empty line, if any.
    mutating func finish() -> SSEEvent? {
        if !line.isEmpty, let event = finishLine() { return event }
        return finishLine()
    }

    private mutating func finishLine() -> SSEEvent? {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty {
            guard hasData else {
                eventName = ""
                return nil
            }
            let event = SSEEvent(event: eventName, data: dataLines.joined(separator: "\n"))
            dataLines.removeAll()
            eventName = ""
            hasData = false
            return event
        }
        let text = String(decoding: line, as: UTF8.self)
        if text.hasPrefix(":") { return nil }
        let field: Substring
        var value: Substring
        if let colon = text.firstIndex(of: ":") {
            field = text[..<colon]
            value = text[text.index(after: colon)...]
            if value.hasPrefix(" ") { value = value.dropFirst() }
        } else {
            field = text[...]
            value = ""
        }
        switch field {
        case "data":
            dataLines.append(String(value))
            hasData = true
        case "event":
            eventName = String(value)
        default:
            break
        }
        return nil
    }
}

/// The status line and headers of an HTTP/1.1 response.
struct ResponseHead: Equatable {
    var status: Int
    var reason: String
    /// Header names lowercased; a repeated header keeps its last value.
    var headers: [String: String]

    enum Failure: Error, Equatable {
        case malformed(String)
    }

    /// Parses the bytes up to (not including) the empty line that ends the head.
    static func parse(_ bytes: [UInt8]) throws(Failure) -> ResponseHead {
        // Split the bytes, not a String: "\r\n" is one Character in Swift.
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { line -> Substring in
            let trimmed = line.last == 0x0D ? line.dropLast() : line
            return Substring(String(decoding: trimmed, as: UTF8.self))
        }
        guard !lines.isEmpty else { throw .malformed("empty response") }
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]), (100...999).contains(status) else {
            throw .malformed("bad status line '\(statusLine.prefix(80))'")
        }
        var headers: [String: String] = [:]
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { throw .malformed("bad header line '\(line.prefix(80))'") }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: [" ", "\t"])
            headers[name] = value
        }
        return ResponseHead(status: status, reason: parts.count > 2 ? String(parts[2]) : "", headers: headers)
    }

    /// How the body is delimited.
    var framing: BodyFraming {
        if status == 204 || status == 304 || (100..<200).contains(status) { return .length(0) }
        if let te = headers["transfer-encoding"], te.lowercased().contains("chunked") { return .chunked }
        if let cl = headers["content-length"], let n = Int(cl), n >= 0 { return .length(n) }
        return .untilClose
    }
}

enum BodyFraming: Equatable {
    case length(Int)
    case chunked
    case untilClose
}
