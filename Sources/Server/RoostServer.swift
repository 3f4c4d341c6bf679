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
    /// A listening Unix socket passed in by the service manager (socket activation): served
    /// instead of binding `socketPath`; its file, mode and group belong to the socket unit.
    public var inheritedSocket: Int32?

    public init(socketPath: String, socketMode: mode_t = 0o660, socketGroup: String? = nil, tcp: (host: String, port: Int)? = nil,
                access: AccessPolicy = AccessPolicy(), shutdownGraceSeconds: Double = 10, inheritedSocket: Int32? = nil) {
        self.socketPath = socketPath
        self.socketMode = socketMode
        self.socketGroup = socketGroup
        self.tcp = tcp
        self.access = access
        self.shutdownGraceSeconds = shutdownGraceSeconds
        self.inheritedSocket = inheritedSocket
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.socketPath == b.socketPath && a.socketMode == b.socketMode && a.socketGroup == b.socketGroup
            && a.tcp?.host == b.tcp?.host && a.tcp?.port == b.tcp?.port && a.access == b.access
            && a.shutdownGraceSeconds == b.shutdownGraceSeconds && a.inheritedSocket == b.inheritedSocket
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
    /// Binds (or takes over the inherited socket), serves until SIGTERM/SIGINT, shuts down
    /// gracefully. `onReady` runs once the socket is bound and permissions are set.
    /// `services` run beside the server; at shutdown they are told first.
    public static func run(api: RoostAPI, listen: ListenConfiguration, logger: Logger,
                           services extra: [any Service] = [],
                           onReady: @escaping @Sendable () -> Void = {}) async throws {
        if listen.inheritedSocket == nil { try SocketPath.prepare(listen.socketPath) }
        let router = api.router()
        let policy = listen.access
        let log = logger
        let denied: @Sendable (UInt32) -> Void = { uid in
            log.notice("refused a connection from a uid not on the allow-list", metadata: ["uid": "\(uid)"])
        }
        let channelConfiguration = HTTP1Channel.Configuration(
            additionalChannelHandlers: [PeerAccessHandler(policy: policy, onDenied: denied)],
            idleTimeout: .seconds(300))
        let server = HTTPServerBuilder.http1(configuration: channelConfiguration)
        let path = listen.socketPath
        let mode = listen.socketMode
        let group = listen.socketGroup
        var services: [any Service] = []
        if let fd = listen.inheritedSocket {
            services.append(InheritedSocketServer(
                fd: fd, responder: router.buildResponder(), configuration: channelConfiguration, serverName: "roostd",
                logger: logger,
                onRunning: { _ in
                    log.info("listening on the socket passed by the service manager", metadata: ["socket": "\(path)"])
                    onReady()
                }))
        } else {
            services.append(Application(
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
                logger: logger))
        }
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
        services += extra
        let group2 = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        defer {
            // A socket passed in by the service manager is its to keep (and to remove).
            if listen.inheritedSocket == nil && SocketPath.isLive(path) == false { unlink(path) }
        }
        try await group2.run()
    }
}
