import Engine
import Foundation
import Logging
import ServiceLifecycle
import Systemd

/// Keeps the service manager informed while the daemon runs: `STATUS=` lines with the engine's
/// figures, `WATCHDOG=1` at half the watchdog interval as long as the engine answers, and
/// `STOPPING=1` (with more time to stop) when graceful shutdown begins. Runs only under systemd
/// (`$NOTIFY_SOCKET` set).
final class SystemdService: Service, Sendable {
    let engine: InferenceEngine
    let watchdog: Duration?
    let stopSeconds: Double
    let logger: Logger

    init(engine: InferenceEngine, watchdog: Duration?, stopSeconds: Double, logger: Logger) {
        self.engine = engine
        self.watchdog = watchdog
        self.stopSeconds = stopSeconds
        self.logger = logger
    }

    /// One `STATUS=` line: "2 models (1 loaded), 3 sessions, 1 active, 0 queued, 41.7 tokens/s".
    static func statusLine(_ stats: InferenceEngine.Stats) -> String {
        let loaded = stats.models.filter(\.loaded).count
        let rate = stats.models.reduce(0.0) { $0 + ($1.stats?.tokensPerSecond ?? 0) }
        return "\(stats.models.count) models (\(loaded) loaded), \(stats.sessions) sessions, \(stats.active) active, "
            + "\(stats.queued) queued, \(String(format: "%.1f", rate)) tokens/s"
    }

    func run() async throws {
        // Half the watchdog interval, as sd_watchdog_enabled(3) advises; status every 10 s without one.
        let tick = watchdog.map { $0 / 2 } ?? .seconds(10)
        if let watchdog { logger.info("systemd watchdog enabled", metadata: ["interval": "\(watchdog)"]) }
        var last = ""
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                // The heartbeat: the engine's stats take its locks; a wedged engine never gets here,
                // so the pings stop and systemd restarts the service.
                let status = Self.statusLine(engine.stats())
                var messages: [NotifyMessage] = []
                if status != last {
                    messages.append(.status(status))
                    last = status
                }
                if watchdog != nil { messages.append(.watchdog) }
                SystemdNotifier.notify(messages)
                try? await Task.sleep(for: tick)
            }
        } onGracefulShutdown: { [stopSeconds] in
            SystemdNotifier.notify(.stopping, .status("stopping: finishing running requests, saving sessions"),
                                   .extendTimeout(microseconds: UInt64(max(0, stopSeconds) * 1_000_000)))
        }
    }
}
