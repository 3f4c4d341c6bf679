import Foundation

/// Errors of preparing or binding the listening socket.
public enum ListenerError: Error, Sendable, Equatable, CustomStringConvertible {
    case alreadyListening(path: String)
    case notASocket(path: String)
    case cannotPrepare(path: String, reason: String)
    case pathTooLong(path: String)
    case unknownGroup(String)

    public var description: String {
        switch self {
        case let .alreadyListening(path):
            "another roostd is listening on \(path); stop it first or choose another --socket"
        case let .notASocket(path): "\(path) exists and is not a socket; refusing to replace it"
        case let .cannotPrepare(path, reason): "cannot prepare the socket \(path): \(reason)"
        case let .pathTooLong(path): "socket path \(path) is longer than the 107 bytes a Unix socket address holds"
        case let .unknownGroup(name): "no group named '\(name)'"
        }
    }
}

public enum SocketPath {
    /// The default socket: `$ROOST_SOCKET`, else `$XDG_RUNTIME_DIR/roost/roost.sock` for a
    /// non-root user with that variable, else `/run/roost/roost.sock`.
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let s = environment["ROOST_SOCKET"], !s.isEmpty { return s }
        if getuid() != 0, let xdg = environment["XDG_RUNTIME_DIR"], !xdg.isEmpty { return xdg + "/roost/roost.sock" }
        return "/run/roost/roost.sock"
    }

    /// Makes `path` ready for bind: creates its directory, refuses a live socket (a daemon
    /// answers `connect`), removes a stale one (left by a crash), refuses a non-socket file.
    public static func prepare(_ path: String) throws(ListenerError) {
        guard path.utf8.count < 108 else { throw .pathTooLong(path: path) }
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty && !FileManager.default.fileExists(atPath: dir) {
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o755])
            } catch {
                throw .cannotPrepare(path: path, reason: "cannot create \(dir): \(error.localizedDescription)")
            }
        }
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else { throw .notASocket(path: path) }
        if isLive(path) { throw .alreadyListening(path: path) }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw .cannotPrepare(path: path, reason: "cannot remove the stale socket: \(String(cString: strerror(errno)))")
        }
    }

    /// True when something accepts connections on `path`.
    public static func isLive(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.prefix(raw.count - 1).enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return rc == 0
    }

    /// Sets the socket file's mode and, when given, its group.
    public static func applyPermissions(_ path: String, mode: mode_t, group: String?) throws(ListenerError) {
        if let group {
            let gid: gid_t
            if let n = UInt32(group) { gid = n } else {
                guard let g = getgrnam(group) else { throw .unknownGroup(group) }
                gid = g.pointee.gr_gid
            }
            guard chown(path, uid_t.max, gid) == 0 else {
                throw .cannotPrepare(path: path, reason: "chown to group \(group): \(String(cString: strerror(errno)))")
            }
        }
        guard chmod(path, mode) == 0 else {
            throw .cannotPrepare(path: path, reason: "chmod: \(String(cString: strerror(errno)))")
        }
    }

    /// A group's id by name or number.
    public static func groupID(_ name: String) throws(ListenerError) -> UInt32 {
        if let n = UInt32(name) { return n }
        guard let g = getgrnam(name) else { throw .unknownGroup(name) }
        return g.pointee.gr_gid
    }
}
