import APITypes
import Engine
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle

/// Where and how the daemon listens.
public struct ListenConfiguration: Sendable, Equatable {
    public var socketPath: String
    public var socketMode: mode_t
    public var socketGroup: String?
    /// "127.0.0.1:PORT" or "[::1]:PORT"; nil: no TCP listener.
    public var tcp: (host: String, port: Int)?
    public var access: AccessPolicy
    /// Seconds running requests get to finish at shutdown before they are cancelled.
    public var shutdownGraceSeconds: Double

    public init(socketPath: String, socketMode: mode_t = 0o660, socketGroup: String? = nil, tcp: (host: String, port: Int)? = nil,
                access: AccessPolicy = AccessPolicy(), shutdownGraceSeconds: Double = 10) {
        self.socketPath = socketPath
        self.socketMode = socketMode
        self.socketGroup = socketGroup
        self.tcp = tcp
        self.access = access
        self.shutdownGraceSeconds = shutdownGraceSeconds
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.socketPath == b.socketPath && a.socketMode == b.socketMode && a.socketGroup == b.socketGroup
            && a.tcp?.host == b.tcp?.host && a.tcp?.port == b.tcp?.port && a.access == b.access
            && a.shutdownGraceSeconds == b.shutdownGraceSeconds
    }
}

/// Runs the engine's janitor (unloading idle models) and, at graceful shutdown, drains running
/// requests for the grace period, then cancels the rest and saves every session.
final class EngineService: Service, Sendable {
    let engine: InferenceEngine
    let grace: Double
    let logger: Logger

    init(engine: InferenceEngine, grace: Double, logger: Logger) {
        self.engine = engine
        self.grace = grace
        self.logger = logger
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                try? await Task.sleep(for: .seconds(2))
                engine.unloadExpired()
            }
        } onGracefulShutdown: {
            self.logger.info("shutting down: draining running requests", metadata: ["grace_s": "\(self.grace)"])
        }
        engine.beginShutdown()
        let deadline = Date().addingTimeInterval(grace)
        while Date() < deadline && engine.stats().active + engine.stats().queued > 0 {
            try? await Task.sleep(for: .milliseconds(50))
        }
        engine.shutdown()
        logger.info("engine stopped; sessions saved")
    }
}

/// The daemon: the API on the Unix socket (and optionally loopback TCP), under service-lifecycle.
public enum RoostServer {
    /// Binds, serves until SIGTERM/SIGINT, shuts down gracefully. `onReady` runs once the
    /// socket is bound and permissions are set.
    public static func run(api: RoostAPI, listen: ListenConfiguration, logger: Logger,
                           onReady: @escaping @Sendable () -> Void = {}) async throws {
        try SocketPath.prepare(listen.socketPath)
        let router = api.router()
        let policy = listen.access
        let log = logger
        let denied: @Sendable (UInt32) -> Void = { uid in
            log.notice("refused a connection from a uid not on the allow-list", metadata: ["uid": "\(uid)"])
        }
        let server = HTTPServerBuilder.http1(configuration: .init(
            additionalChannelHandlers: [PeerAccessHandler(policy: policy, onDenied: denied)],
            idleTimeout: .seconds(300)))
        let path = listen.socketPath
        let mode = listen.socketMode
        let group = listen.socketGroup
        var services: [any Service] = []
        let unixApp = Application(
            router: router, server: server,
            configuration: .init(address: .unixDomainSocket(path: path), serverName: "roostd"),
            onServerRunning: { _ in
                do {
                    try SocketPath.applyPermissions(path, mode: mode, group: group)
                } catch {
                    log.error("socket permissions: \(error)")
                }
                log.info("listening", metadata: ["socket": "\(path)"])
                onReady()
            },
            logger: logger)
        services.append(unixApp)
        if let tcp = listen.tcp {
            let tcpApp = Application(
                router: router, server: server,
                configuration: .init(address: .hostname(tcp.host, port: tcp.port), serverName: "roostd"),
                onServerRunning: { channel in
                    log.info("listening", metadata: ["tcp": "\(channel.localAddress?.description ?? "?")"])
                },
                logger: logger)
            services.append(tcpApp)
        }
        services.append(EngineService(engine: api.engine, grace: listen.shutdownGraceSeconds, logger: logger))
        let group2 = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        defer {
            if SocketPath.isLive(path) == false { unlink(path) }
        }
        try await group2.run()
    }
}
