import APITypes
import ArgumentParser
import Foundation

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The daemon's figures per model: tokens/s, active and queued requests, memory, sessions, expert stores.")

    @OptionGroup var options: ClientOptions

    @Flag(name: .long, help: "Refresh until Ctrl-C (with --json: one JSON line per refresh).")
    var watch = false

    @Option(name: .long, help: ArgumentHelp("Seconds between refreshes with --watch.", valueName: "seconds"))
    var interval: Double = 2

    @Flag(name: .long, help: "Also print each layer of a model's expert store (MoE models with a memory budget).")
    var layers = false

    func validate() throws {
        guard interval >= 0.1, interval <= 86400 else { throw ValidationError("--interval must be in 0.1...86400 seconds") }
    }

    func run() throws {
        let daemon = options.daemon
        guard watch else {
            let stats = try daemon.get("/roost/v1/stats", as: RoostStats.self)
            Console.out(options.json ? try Format.json(stats) : Self.render(stats, socket: daemon.socket, layers: layers))
            return
        }
        let clear = Console.stdoutIsTTY && !options.json
        while true {
            let stats = try daemon.get("/roost/v1/stats", as: RoostStats.self)
            if options.json {
                Console.out(try Format.jsonLine(stats))
            } else {
                let stamp = Format.time(Int(Date().timeIntervalSince1970))
                Console.out((clear ? "\u{1B}[H\u{1B}[2J" : "") + "\(stamp)  every \(interval)s, Ctrl-C to stop\n\n"
                            + Self.render(stats, socket: daemon.socket, layers: layers) + (clear ? "" : "\n"))
            }
            usleep(useconds_t(interval * 1_000_000))
        }
    }

    static func render(_ s: RoostStats, socket: String, layers: Bool = false) -> String {
        var text = "roostd \(s.version) on \(socket)\n"
        text += "memory (rss) \(Format.bytes(s.rssBytes))   sessions \(s.sessions)   active \(s.active)   queued \(s.queue)\n\n"
        if s.models.isEmpty {
            return text + "No models.\n"
        }
        let rows = s.models.map { m in
            [m.name, m.loaded ? "yes" : "no", m.architecture ?? "-", m.quantization ?? "-", Format.bytes(m.sizeBytes),
             String(m.active), String(m.queued), String(format: "%.1f", m.tokensPerSecond),
             String(m.generatedTokens), String(m.promptTokens)]
        }
        text += Format.table(["MODEL", "LOADED", "ARCH", "QUANT", "SIZE", "ACTIVE", "QUEUED", "TOK/S", "GENERATED", "PROMPT"], rows)
        for m in s.models { if let error = m.error { text += "unusable: \(m.name): \(error)\n" } }
        for m in s.models { if let e = m.experts { text += "\n" + renderExperts(m.name, e, layers: layers) } }
        return text
    }

    /// A model's expert store: its totals on two lines, and with `layers` one row per layer.
    static func renderExperts(_ name: String, _ e: RoostStats.Experts, layers: Bool) -> String {
        let t = e.total
        var text = "experts of \(name): resident \(Format.bytes(t.residentBytes)) of a \(Format.bytes(e.poolBytes)) pool "
            + "(\(e.slots) slots of \(Format.bytes(e.slotBytes))), \(e.tokens) tokens\n"
        text += "  " + Self.figures(t) + "\n"
        guard layers, !e.layers.isEmpty else { return text }
        let rows = e.layers.map { l in
            [String(l.layer ?? 0), String(format: "%.3f", l.hitRate), String(format: "%.3f", l.prefetchAccuracy),
             String(format: "%.2f", l.bytesReadPerToken / 1e6), String(format: "%.2f", 1000 * l.stallSecondsPerToken),
             Format.bytes(l.residentBytes), String(l.hits), String(l.misses), String(l.prefetched), String(l.prefetchUsed)]
        }
        return text + Format.table(["LAYER", "HIT RATE", "PREFETCH ACC", "MB READ/TOK", "MS STALL/TOK", "RESIDENT", "HITS",
                                    "MISSES", "PREFETCHED", "PREFETCH USED"], rows)
    }

    static func figures(_ c: RoostStats.ExpertCounters) -> String {
        String(format: "hit rate %.3f, prefetch accuracy %.3f, %.2f MB read/token, %.2f ms stall/token",
               c.hitRate, c.prefetchAccuracy, c.bytesReadPerToken / 1e6, 1000 * c.stallSecondsPerToken)
            + " (hits \(c.hits), misses \(c.misses), prefetched \(c.prefetched), used \(c.prefetchUsed))"
    }
}
