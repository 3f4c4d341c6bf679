import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Serves the API on a listening socket the service manager passed in (socket activation).
///
/// Hummingbird's `BindAddress` has no case for an existing descriptor, so this does what its
/// `Server` does for a path: a NIO `ServerBootstrap` takes over the bound socket, and each accepted
/// connection gets HummingbirdCore's HTTP/1 child channel (with the same additional handlers, so
/// the peer-credential check runs here too). The socket file belongs to the socket unit: it is
/// never unlinked, and closing our descriptor leaves systemd's copy listening.
final class InheritedSocketServer<Responder: HTTPResponder>: Service
where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
    let fd: Int32
    let childChannel: HTTP1Channel
    let logger: Logger
    let onRunning: @Sendable (any Channel) async -> Void
    private let children = Mutex<[ObjectIdentifier: any Channel]>([:])
    private let serverChannel = Mutex<(any Channel)?>(nil)

    init(fd: Int32, responder: Responder, configuration: HTTP1Channel.Configuration, serverName: String,
         logger: Logger, onRunning: @escaping @Sendable (any Channel) async -> Void) {
        self.fd = fd
        self.logger = logger
        self.onRunning = onRunning
        // The same steps as Hummingbird's `Application.run` responder: a context per request,
        // errors the router did not turn into responses become 500.
        childChannel = HTTP1Channel(responder: { (request, responseWriter: consuming ResponseWriter, channel) in
            var requestLogger = logger
            requestLogger[metadataKey: "hb.request.id"] = .stringConvertible(RequestID())
            let context = Responder.Context(source: .init(channel: channel, logger: requestLogger))
            var response: Response
            do {
                response = try await responder.respond(to: request, context: context)
            } catch {
                requestLogger.debug("unrecognised error", metadata: ["error.type": "\(error)"])
                response = Response(status: .internalServerError, body: .init())
            }
            response.headers[.server] = serverName
            try await responseWriter.write(response: response.head, body: response.body)
        }, configuration: configuration)
    }

    func run() async throws {
        let child = childChannel
        let logger = logger
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        let asyncChannel = try await bootstrap.bind(fd, cleanupExistingSocketFile: false) { [self] channel in
            track(channel)
            return child.setup(channel: channel, logger: logger)
        }
        serverChannel.withLock { $0 = asyncChannel.channel }
        await withGracefulShutdownHandler {
            await onRunning(asyncChannel.channel)
            await withDiscardingTaskGroup { group in
                do {
                    try await asyncChannel.executeThenClose { inbound in
                        for try await connection in inbound {
                            group.addTask { await child.handle(value: connection, logger: logger) }
                        }
                    }
                } catch {
                    logger.error("inherited socket: accepting connections failed: \(error)")
                }
            }
        } onGracefulShutdown: { [self] in
            quiesce()
        }
    }

    private func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        children.withLock { $0[id] = channel }
        channel.closeFuture.whenComplete { [self] _ in
            _ = children.withLock { $0.removeValue(forKey: id) }
        }
    }

    /// Stops accepting and asks every open connection to close once its current request is done
    /// (HummingbirdCore's connection handler closes idle connections on this event at once).
    private func quiesce() {
        serverChannel.withLock { $0 }?.close(promise: nil)
        for channel in children.withLock({ Array($0.values) }) {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }
}
