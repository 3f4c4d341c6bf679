import Foundation
import Server
import TOMLKit

/// The effective configuration of `roostd serve`: defaults, then the config file, then flags.
/// Every key is a flag's name without the dashes (`--memory-budget 6GiB` ⇔ `memory-budget = "6GiB"`).
struct ServeSettings: Equatable {
    var socket: String
    var socketMode: String = "0660"
    var socketGroup: String?
    var allowUID: [Int] = []
    var allowGroup: [String] = []
    var tcp: String?
    var models: String?
    var model: [String] = []
    var stateDir: String
    var threads: Int
    var memoryBudget: String = "80%"
    var keepAlive: String = "5m"
    var maxSessions: Int = 8
    var prefillChunk: Int = 64
    var kvCache: String = "f16"
    var maxQueue: Int = 64
    var maxBody: String = "8MiB"
    var maxPromptTokens: Int = 65536
    var defaultMaxTokens: Int = 2048
    var requestTimeout: String = "10m"
    var shutdownGrace: String = "10s"
    var logLevel: String = "info"

    /// Keys the config file may set, in the order `--print-config` prints them.
    static let keys = [
        "socket", "socket-mode", "socket-group", "allow-uid", "allow-group", "tcp", "models", "model", "state-dir",
        "threads", "memory-budget", "keep-alive", "max-sessions", "prefill-chunk", "kv-cache", "max-queue", "max-body", "max-prompt-tokens",
        "default-max-tokens", "request-timeout", "shutdown-grace", "log-level",
    ]

    static func defaults(environment env: [String: String], threads: Int) -> ServeSettings {
        let root = getuid() == 0
        let home = env["HOME"] ?? "/tmp"
        let dataHome = env["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.local/share"
        let stateHome = env["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.local/state"
        var s = ServeSettings(socket: SocketPath.defaultPath(environment: env),
                              stateDir: root ? "/var/lib/roost" : stateHome + "/roost", threads: threads)
        s.models = root ? "/var/lib/roost/models" : dataHome + "/roost/models"
        // Under systemd with StateDirectory=roost (the packaged unit, which runs as the user
        // roost), $STATE_DIRECTORY is /var/lib/roost: the service's paths, whatever its user.
        if let state = env["STATE_DIRECTORY"]?.split(separator: ":").first, !state.isEmpty {
            s.stateDir = String(state)
            s.models = String(state) + "/models"
        }
        return s
    }

    /// Applies a TOML document; unknown keys and wrong types are errors naming the key.
    mutating func apply(toml text: String, file: String) throws {
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch {
            throw CommandFailure("\(file): not valid TOML: \(error)")
        }
        for key in table.keys {
            guard Self.keys.contains(key), let value = table[key] else {
                throw CommandFailure("\(file): unknown key '\(key)' (known: \(Self.keys.joined(separator: ", ")))")
            }
            func string() throws -> String {
                guard let s = value.string else { throw CommandFailure("\(file): '\(key)' must be a string") }
                return s
            }
            func int() throws -> Int {
                guard let i = value.int else { throw CommandFailure("\(file): '\(key)' must be an integer") }
                return i
            }
            func stringOrInt() throws -> String {
                if let s = value.string { return s }
                if let i = value.int { return String(i) }
                throw CommandFailure("\(file): '\(key)' must be a string or an integer")
            }
            func strings() throws -> [String] {
                if let s = value.string { return [s] }
                guard let a = value.array else { throw CommandFailure("\(file): '\(key)' must be an array of strings") }
                return try a.map { v in
                    if let s = v.string { return s }
                    if let i = v.int { return String(i) }
                    throw CommandFailure("\(file): '\(key)' must be an array of strings")
                }
            }
            switch key {
            case "socket": socket = try string()
            case "socket-mode": socketMode = try stringOrInt()
            case "socket-group": socketGroup = try string()
            case "allow-uid":
                allowUID = try strings().map { s in
                    guard let n = Int(s), n >= 0 else { throw CommandFailure("\(file): 'allow-uid' has '\(s)', not a uid") }
                    return n
                }
            case "allow-group": allowGroup = try strings()
            case "tcp": tcp = try string()
            case "models": models = try string()
            case "model": model = try strings()
            case "state-dir": stateDir = try string()
            case "threads": threads = try int()
            case "memory-budget": memoryBudget = try stringOrInt()
            case "keep-alive": keepAlive = try stringOrInt()
            case "max-sessions": maxSessions = try int()
            case "prefill-chunk": prefillChunk = try int()
            case "kv-cache": kvCache = try string()
            case "max-queue": maxQueue = try int()
            case "max-body": maxBody = try stringOrInt()
            case "max-prompt-tokens": maxPromptTokens = try int()
            case "default-max-tokens": defaultMaxTokens = try int()
            case "request-timeout": requestTimeout = try stringOrInt()
            case "shutdown-grace": shutdownGrace = try stringOrInt()
            case "log-level": logLevel = try string()
            default: throw CommandFailure("\(file): unknown key '\(key)'")
            }
        }
    }

    /// The settings as a TOML document (what `--print-config` shows).
    func toml() -> String {
        func q(_ s: String) -> String {
            var out = "\""
            for c in s.unicodeScalars {
                switch c {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\t": out += "\\t"
                default:
                    if c.value < 0x20 { out += String(format: "\\u%04X", c.value) } else { out.unicodeScalars.append(c) }
                }
            }
            return out + "\""
        }
        var lines: [String] = []
        lines.append("socket = \(q(socket))")
        lines.append("socket-mode = \(q(socketMode))")
        lines.append(socketGroup.map { "socket-group = \(q($0))" } ?? "# socket-group = \"roost\"")
        lines.append("allow-uid = [\(allowUID.map(String.init).joined(separator: ", "))]")
        lines.append("allow-group = [\(allowGroup.map(q).joined(separator: ", "))]")
        lines.append(tcp.map { "tcp = \(q($0))" } ?? "# tcp = \"127.0.0.1:11434\"")
        lines.append(models.map { "models = \(q($0))" } ?? "# models = \"/var/lib/roost/models\"")
        lines.append("model = [\(model.map(q).joined(separator: ", "))]")
        lines.append("state-dir = \(q(stateDir))")
        lines.append("threads = \(threads)")
        lines.append("memory-budget = \(q(memoryBudget))")
        lines.append("keep-alive = \(q(keepAlive))")
        lines.append("max-sessions = \(maxSessions)")
        lines.append("prefill-chunk = \(prefillChunk)")
        lines.append("kv-cache = \(q(kvCache))")
        lines.append("max-queue = \(maxQueue)")
        lines.append("max-body = \(q(maxBody))")
        lines.append("max-prompt-tokens = \(maxPromptTokens)")
        lines.append("default-max-tokens = \(defaultMaxTokens)")
        lines.append("request-timeout = \(q(requestTimeout))")
        lines.append("shutdown-grace = \(q(shutdownGrace))")
        lines.append("log-level = \(q(logLevel))")
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Sizes: "123", "4KiB", "6GiB", "500MB", "75%" (of physical memory, or of the cgroup's limit when lower).
enum SizeParser {
    static func bytes(_ text: String, what: String) throws -> Int {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.hasSuffix("%") {
            guard let p = Double(t.dropLast()), p > 0, p <= 100 else {
                throw CommandFailure("\(what): '\(text)' is not a percentage in (0, 100]")
            }
            return Int(Double(MemoryInfo.limitBytes()) * p / 100)
        }
        let units: [(String, Double)] = [("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("TiB", Double(1 << 40)),
                                         ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("B", 1)]
        for (suffix, factor) in units where t.hasSuffix(suffix) {
            guard let v = Double(t.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), v >= 0 else { break }
            return Int(v * factor)
        }
        guard let v = Int(t), v >= 0 else {
            throw CommandFailure("\(what): '\(text)' is not a size (B, KiB/MiB/GiB, KB/MB/GB or N%)")
        }
        return v
    }

    /// Durations: "300", "300s", "5m", "1h", "-1" (forever: nil).
    static func seconds(_ text: String, what: String) throws -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t == "-1" || t == "forever" { return nil }
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, factor) in units where t.hasSuffix(suffix) {
            if let v = Double(t.dropLast(suffix.count)), v >= 0 { return v * factor }
        }
        guard let v = Double(t), v >= 0 else {
            throw CommandFailure("\(what): '\(text)' is not a duration (like 30s, 5m, 1h, or -1 for forever)")
        }
        return v
    }
}

enum MemoryInfo {
    /// Physical memory, or the cgroup's memory limit when it is lower.
    static func limitBytes() -> Int {
        let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        var limit = physical
        for path in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            if let s = try? String(contentsOfFile: path, encoding: .utf8),
               let v = Int(s.trimmingCharacters(in: .whitespacesAndNewlines)), v > 0 {
                limit = min(limit, v)
            }
        }
        return limit
    }
}
