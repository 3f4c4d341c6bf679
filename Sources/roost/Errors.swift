import Foundation

/// Everything that can go wrong talking to the daemon. Each case prints one clear message
/// (to stderr) and maps to the exit code: 1 for errors, 2 for usage errors.
enum ClientError: Error, CustomStringConvertible {
    /// Nothing listens on the socket (no file, or connection refused).
    case notRunning(path: String, reason: String)
    /// The socket file exists but this user may not open it (file permissions).
    case socketPermission(path: String)
    /// The daemon answered 403: this uid is not on its allow-list.
    case forbidden(path: String, message: String)
    /// A non-2xx answer (or an error object at the end of a stream).
    case api(status: Int, message: String, code: String?)
    /// Reading or writing the socket failed.
    case io(String)
    /// The daemon's answer could not be understood.
    case protocolError(String)
    /// A wrong combination of arguments found at run time.
    case usage(String)
    /// Local files and other failures.
    case other(String)

    var exitCode: Int32 {
        switch self {
        case .usage: 2
        case .notRunning, .socketPermission, .forbidden, .api, .io, .protocolError, .other: 1
        }
    }

    var description: String {
        switch self {
        case let .notRunning(path, reason):
            """
            roost: roostd is not running: nothing listens on \(path) (\(reason)).
            Start it with `systemctl start roostd.socket` (the system service), or `make run` in a source \
            checkout, or point --socket or ROOST_SOCKET at a running daemon.
            """
        case let .socketPermission(path):
            """
            roost: permission denied opening \(path).
            The socket is open to root, the daemon's user and the group `roost`: ask an administrator to \
            add you (`sudo usermod -aG roost $USER`, then log in again).
            """
        case let .forbidden(path, message):
            """
            roost: roostd on \(path) refused this user (uid \(getuid())): \(message)
            Allowed are root, the daemon's own user, members of the group `roost`, and the uids and groups \
            given to roostd with --allow-uid / --allow-group.
            """
        case let .api(status, message, code):
            "roost: \(message) (HTTP \(status)\(code.map { ", \($0)" } ?? ""))"
        case let .io(message): "roost: \(message)"
        case let .protocolError(message): "roost: unexpected answer from roostd: \(message)"
        case let .usage(message): "roost: \(message)"
        case let .other(message): "roost: \(message)"
        }
    }
}

/// `strerror` as a Swift string.
func errnoText(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}
