import Foundation

/// A stream socket connected to the daemon's Unix socket: blocking I/O with `poll` so that a
/// caller can wake up every so often (spinner, Ctrl-C) while it waits.
final class UnixConnection {
    let path: String
    private let fd: Int32
    private var isClosed = false

    enum ReadResult {
        case data([UInt8])
        case eof
        /// Nothing arrived within the timeout, or a signal interrupted the wait.
        case idle
    }

    init(path: String) throws {
        self.path = path
        guard path.utf8.count < 108 else {
            throw ClientError.usage("the socket path \(path) is longer than the 107 bytes a Unix socket address holds")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClientError.io("socket(): \(errnoText())") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.prefix(raw.count - 1).enumerated() { raw[i] = b }
        }
        var rc: Int32
        repeat {
            rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
        } while rc != 0 && errno == EINTR
        if rc != 0 {
            let code = errno
            Glibc.close(fd)
            switch code {
            case ENOENT: throw ClientError.notRunning(path: path, reason: "no such socket")
            case ENOTDIR: throw ClientError.notRunning(path: path, reason: "a parent is not a directory")
            case ECONNREFUSED: throw ClientError.notRunning(path: path, reason: "connection refused")
            case ENOTSOCK: throw ClientError.notRunning(path: path, reason: "not a socket")
            case EACCES, EPERM: throw ClientError.socketPermission(path: path)
            default: throw ClientError.io("cannot connect to \(path): \(errnoText(code))")
            }
        }
        self.fd = fd
    }

    deinit { close() }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        Glibc.close(fd)
    }

    /// Writes all of `bytes`; throws on failure (EPIPE when the daemon closed the connection).
    func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return send(fd, base + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw ClientError.io("writing to \(path): \(errnoText())")
            }
            offset += n
        }
    }

    /// Waits up to `timeoutMs` (-1: forever) for bytes.
    func read(timeoutMs: Int32) throws -> ReadResult {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&pfd, 1, timeoutMs)
        if ready == 0 { return .idle }
        if ready < 0 {
            if errno == EINTR { return .idle }
            throw ClientError.io("waiting for \(path): \(errnoText())")
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = buffer.withUnsafeMutableBytes { raw -> Int in
            guard let base = raw.baseAddress else { return 0 }
            return recv(fd, base, raw.count, 0)
        }
        if n < 0 {
            if errno == EINTR || errno == EAGAIN { return .idle }
            if errno == ECONNRESET { return .eof }
            throw ClientError.io("reading from \(path): \(errnoText())")
        }
        if n == 0 { return .eof }
        return .data(Array(buffer[0..<n]))
    }
}

/// The caller gave up on a request (Ctrl-C).
struct Cancelled: Error {}

/// One HTTP/1.1 request and its response on a fresh connection (`Connection: close`).
final class HTTPExchange {
    let connection: UnixConnection
    private var buffer: [UInt8] = []
    private(set) var head: ResponseHead?
    private var framing: BodyFraming = .untilClose
    private var remaining = 0
    private var chunked = ChunkedDecoder()
    private var finished = false

    /// How often `idle` runs while nothing arrives.
    static let tickMs: Int32 = 100

    /// Connects and sends the request. A write error is kept back: a daemon that refuses the
    /// peer answers 403 and closes before reading the body, and that answer is still readable.
    init(socket: String, method: String, path: String, headers: [(String, String)] = [], body: [UInt8]? = nil) throws {
        connection = try UnixConnection(path: socket)
        var text = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nUser-Agent: roost/\(RoostVersion.string)\r\nConnection: close\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if let body { text += "Content-Length: \(body.count)\r\n" }
        text += "\r\n"
        var bytes = Array(text.utf8)
        if let body { bytes += body }
        do { try connection.write(bytes) } catch {
            // Read what the daemon said, if anything; readHead reports a missing answer.
        }
    }

    /// Reads up to the end of the headers. `idle` runs every `tickMs` of silence and may throw.
    func readHead(idle: () throws -> Void = {}) throws -> ResponseHead {
        if let head { return head }
        while true {
            if let end = Self.headEnd(buffer) {
                let parsed: ResponseHead
                do { parsed = try ResponseHead.parse(Array(buffer[0..<end])) } catch {
                    throw ClientError.protocolError("\(error)")
                }
                buffer.removeFirst(end + 4)
                if parsed.status == 100 { continue }
                head = parsed
                framing = parsed.framing
                if case .length(let n) = framing {
                    remaining = n
                    finished = n == 0
                }
                return parsed
            }
            guard buffer.count < 1 << 20 else { throw ClientError.protocolError("response headers over 1 MiB") }
            switch try connection.read(timeoutMs: Self.tickMs) {
            case .data(let bytes): buffer += bytes
            case .idle: try idle()
            case .eof:
                throw ClientError.io("roostd on \(connection.path) closed the connection without an answer")
            }
        }
    }

    private static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i
        }
        return nil
    }

    /// The next piece of the body, or nil at its end.
    func readBody(idle: () throws -> Void = {}) throws -> [UInt8]? {
        _ = try readHead(idle: idle)
        while !finished {
            if !buffer.isEmpty {
                let bytes = buffer
                buffer.removeAll()
                if let piece = try consume(bytes), !piece.isEmpty { return piece }
                continue
            }
            switch try connection.read(timeoutMs: Self.tickMs) {
            case .data(let bytes):
                if let piece = try consume(bytes), !piece.isEmpty { return piece }
            case .idle:
                try idle()
            case .eof:
                finished = true
                switch framing {
                case .untilClose: return nil
                case .length: if remaining > 0 { throw ClientError.io("the answer ended \(remaining) bytes early") }
                case .chunked: throw ClientError.io("the answer ended before its last chunk")
                }
            }
        }
        return nil
    }

    /// Decodes raw bytes by the framing; nil or empty when they carried no body bytes.
    private func consume(_ bytes: [UInt8]) throws -> [UInt8]? {
        switch framing {
        case .untilClose:
            return bytes
        case .length:
            let take = min(remaining, bytes.count)
            remaining -= take
            if remaining == 0 { finished = true }
            return Array(bytes[0..<take])
        case .chunked:
            do {
                let out = try chunked.feed(bytes)
                if chunked.isDone { finished = true }
                return out
            } catch {
                throw ClientError.protocolError("\(error)")
            }
        }
    }

    /// The whole body.
    func readAll(idle: () throws -> Void = {}) throws -> [UInt8] {
        var body: [UInt8] = []
        while let piece = try readBody(idle: idle) { body += piece }
        return body
    }

    func close() { connection.close() }
}
