import APITypes
import ArgumentParser
import Foundation

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The daemon's figures per model: tokens/s, active and queued requests, memory, sessions.")

    @OptionGroup var options: ClientOptions

    @Flag(name: .long, help: "Refresh until Ctrl-C (with --json: one JSON line per refresh).")
    var watch = false

    @Option(name: .long, help: ArgumentHelp("Seconds between refreshes with --watch.", valueName: "seconds"))
    var interval: Double = 2

    func validate() throws {
        guard interval >= 0.1, interval <= 86400 else { throw ValidationError("--interval must be in 0.1...86400 seconds") }
    }

    func run() throws {
        let daemon = options.daemon
        guard watch else {
            let stats = try daemon.get("/roost/v1/stats", as: RoostStats.self)
            Console.out(options.json ? try Format.json(stats) : Self.render(stats, socket: daemon.socket))
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
                            + Self.render(stats, socket: daemon.socket) + (clear ? "" : "\n"))
            }
            usleep(useconds_t(interval * 1_000_000))
        }
    }

    static func render(_ s: RoostStats, socket: String) -> String {
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
        // A per-layer expert heat map for MoE models belongs here. /roost/v1/stats does not
        // report expert residency yet (DESIGN.md promises "expert residency per layer"); when
        // RoostStats.Model gains it, draw one row per layer with one cell per expert
        // (resident / hit rate) below that model's row. Until then nothing is drawn.
        return text
    }
}
