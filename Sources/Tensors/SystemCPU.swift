#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How many CPUs this process may use: the CPUs in its affinity mask, capped by its
/// cgroup's CPU quota (cgroup v2 `cpu.max`, or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`)
/// when that is lower. This is the default of `--threads`.
public enum SystemCPU {
    /// CPUs this process may use, at least 1.
    public static var usableCount: Int {
        let affinity = affinityCount ?? onlineCount
        guard let quota = cgroupQuotaCPUs else { return max(1, affinity) }
        return max(1, min(affinity, quota))
    }

    /// Size of the largest CPU cache of cpu0 (the last-level cache), from
    /// /sys/devices/system/cpu/cpu0/cache; nil when unknown.
    public static var lastLevelCacheBytes: Int? {
        var best: Int?
        for index in 0..<8 {
            guard let text = readSmallFile("/sys/devices/system/cpu/cpu0/cache/index\(index)/size") else { continue }
            guard let bytes = parseCacheSize(text) else { continue }
            best = max(best ?? bytes, bytes)
        }
        return best
    }

    /// "32768K" / "1M" / "512" -> bytes; nil when malformed.
    static func parseCacheSize(_ text: String) -> Int? {
        let t = text.trimmingWhitespace
        guard let last = t.last else { return nil }
        let scale: Int
        var digits = Substring(t)
        switch last {
        case "K", "k": scale = 1 << 10; digits = digits.dropLast()
        case "M", "m": scale = 1 << 20; digits = digits.dropLast()
        case "G", "g": scale = 1 << 30; digits = digits.dropLast()
        default: scale = 1
        }
        guard let v = Int(digits), v > 0 else { return nil }
        return v * scale
    }

    /// CPUs online in the system.
    public static var onlineCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// CPUs in this process's affinity mask (the `Cpus_allowed_list` that
    /// sched_getaffinity reports, read from /proc/self/status), or nil when unknown.
    public static var affinityCount: Int? {
        guard let status = readSmallFile("/proc/self/status", limit: 65_536) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("Cpus_allowed_list:") {
            return parseCPUList(String(line.dropFirst("Cpus_allowed_list:".count)))
        }
        return nil
    }

    /// "0-3,8,10-11" -> 7; nil when malformed or empty.
    static func parseCPUList(_ text: String) -> Int? {
        var total = 0
        for item in text.split(separator: ",") {
            let bounds = item.split(separator: "-").map { Int($0.trimmingWhitespace) }
            switch bounds.count {
            case 1:
                guard bounds[0] != nil else { return nil }
                total += 1
            case 2:
                guard let lo = bounds[0], let hi = bounds[1], hi >= lo else { return nil }
                total += hi - lo + 1
            default:
                return nil
            }
        }
        return total > 0 ? total : nil
    }

    /// The cgroup CPU quota of this process in whole CPUs (rounded up), or nil when there
    /// is none. Walks from the process's own cgroup up to the root and takes the lowest.
    public static var cgroupQuotaCPUs: Int? {
        let root = "/sys/fs/cgroup"
        var best: Int?
        func take(_ cpus: Int?) {
            guard let cpus else { return }
            best = min(best ?? cpus, cpus)
        }
        let membership = readSmallFile("/proc/self/cgroup") ?? ""
        for line in membership.split(separator: "\n") {
            // "hierarchy-id:controllers:path"
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let controllers = parts[1].split(separator: ",")
            let path = String(parts[2])
            if parts[0] == "0" && controllers.isEmpty {
                for dir in ancestors(root, path) { take(quotaV2(dir + "/cpu.max")) }
            } else if controllers.contains("cpu") {
                for mount in ["\(root)/cpu", "\(root)/cpu,cpuacct", "\(root)/cpuacct,cpu"] {
                    for dir in ancestors(mount, path) {
                        take(quotaV1(quota: dir + "/cpu.cfs_quota_us", period: dir + "/cpu.cfs_period_us"))
                    }
                }
            }
        }
        // Inside a container the namespace's root is the cgroup itself.
        take(quotaV2(root + "/cpu.max"))
        take(quotaV1(quota: root + "/cpu/cpu.cfs_quota_us", period: root + "/cpu/cpu.cfs_period_us"))
        return best
    }

    /// "quota period" or "max period" -> ceil(quota / period) CPUs.
    static func parseCPUMax(_ text: String) -> Int? {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count >= 2, let quota = Int(fields[0]), let period = Int(fields[1]), quota > 0, period > 0
        else { return nil }
        return max(1, (quota + period - 1) / period)
    }

    private static func quotaV2(_ file: String) -> Int? {
        readSmallFile(file).flatMap(parseCPUMax)
    }

    private static func quotaV1(quota: String, period: String) -> Int? {
        guard let q = readSmallFile(quota), let p = readSmallFile(period) else { return nil }
        return parseCPUMax("\(q.trimmingWhitespace) \(p.trimmingWhitespace)")
    }

    /// `mount + path` and each parent directory up to `mount`.
    private static func ancestors(_ mount: String, _ path: String) -> [String] {
        var components = path.split(separator: "/").map(String.init)
        var dirs: [String] = []
        while !components.isEmpty {
            dirs.append(mount + "/" + components.joined(separator: "/"))
            components.removeLast()
        }
        return dirs
    }

    /// The first `limit` bytes of a file as UTF-8, or nil when it cannot be read.
    static func readSmallFile(_ path: String, limit: Int = 4096) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: limit)
        var used = 0
        while used < limit {
            let n = buffer.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return -1 }
                return read(fd, base + used, limit - used)
            }
            if n <= 0 { break }
            used += n
        }
        guard used > 0 else { return nil }
        return String(decoding: buffer[0..<used], as: UTF8.self)
    }
}

extension StringProtocol {
    fileprivate var trimmingWhitespace: String {
        String(String(drop(while: \.isWhitespace).reversed()).drop(while: \.isWhitespace).reversed())
    }
}
