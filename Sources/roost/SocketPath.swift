import Foundation

/// Where the daemon listens, resolved in the daemon's order (DESIGN.md, "Contracts"):
/// `--socket`, else `$ROOST_SOCKET`, else `$XDG_RUNTIME_DIR/roost/roost.sock` for a non-root
/// user with that variable, else `/run/roost/roost.sock`.
enum SocketLocation {
    static func resolve(flag: String?, environment: [String: String], uid: uid_t) -> String {
        if let flag, !flag.isEmpty { return flag }
        if let s = environment["ROOST_SOCKET"], !s.isEmpty { return s }
        if uid != 0, let xdg = environment["XDG_RUNTIME_DIR"], !xdg.isEmpty { return xdg + "/roost/roost.sock" }
        return "/run/roost/roost.sock"
    }

    static func resolve(flag: String?) -> String {
        resolve(flag: flag, environment: ProcessInfo.processInfo.environment, uid: getuid())
    }
}
