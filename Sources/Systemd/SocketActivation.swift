import CSystemd
import Foundation

/// Errors of taking over sockets passed by the service manager.
public enum SocketActivationError: Error, Sendable, Equatable, CustomStringConvertible {
    case failed(reason: String)
    case unexpectedCount(Int)
    case notAListeningUnixStreamSocket(fd: Int32)

    public var description: String {
        switch self {
        case let .failed(reason): "socket activation: sd_listen_fds failed: \(reason)"
        case let .unexpectedCount(n):
            "socket activation: expected one listening socket from the service manager, got \(n)"
        case let .notAListeningUnixStreamSocket(fd):
            "socket activation: fd \(fd) is not a listening AF_UNIX stream socket (check ListenStream= in roostd.socket)"
        }
    }
}

/// An inherited listening socket.
public struct ActivatedSocket: Sendable, Equatable {
    public var fd: Int32
    /// The path the socket is bound to, when it has one (abstract and unnamed sockets: nil).
    public var path: String?
}

/// Socket activation (sd_listen_fds(3)): the service manager binds the socket and passes it
/// as fd 3, with `$LISTEN_FDS` and `$LISTEN_PID` naming this process.
public enum SocketActivation {
    /// The listening AF_UNIX stream socket passed to this process, or nil when none was. The
    /// LISTEN_* variables are removed so that child processes do not take them for their own.
    public static func inheritedUnixSocket() throws(SocketActivationError) -> ActivatedSocket? {
        let n = sd_listen_fds(1)
        if n < 0 { throw .failed(reason: String(cString: strerror(-n))) }
        if n == 0 { return nil }
        guard n == 1 else { throw .unexpectedCount(Int(n)) }
        let fd = SD_LISTEN_FDS_START
        guard sd_is_socket_unix(fd, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0 else {
            throw .notAListeningUnixStreamSocket(fd: fd)
        }
        return ActivatedSocket(fd: fd, path: boundPath(fd))
    }

    /// The filesystem path a Unix socket is bound to (getsockname), or nil.
    public static func boundPath(_ fd: Int32) -> String? {
        var addr = sockaddr_un()
        var len = socklen_t(MemoryLayout<sockaddr_un>.size)
        let rc = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard rc == 0, addr.sun_family == sa_family_t(AF_UNIX) else { return nil }
        guard let offset = MemoryLayout.offset(of: \sockaddr_un.sun_path) else { return nil }
        let pathBytes = Int(len) - offset
        guard pathBytes > 0 else { return nil }
        return withUnsafeBytes(of: &addr.sun_path) { raw -> String? in
            let bytes = raw.prefix(min(pathBytes, raw.count))
            guard let first = bytes.first, first != 0 else { return nil }  // abstract or unnamed
            return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
