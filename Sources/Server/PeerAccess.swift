import Engine
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization

/// Who may talk to the daemon: peers identified by SO_PEERCRED on the Unix socket.
/// Root and the daemon's own uid are always allowed; `uids` and members of `groups` too.
public struct AccessPolicy: Sendable, Equatable {
    public var uids: Set<UInt32>
    public var groups: Set<UInt32>
    /// Connections to the optional TCP listener have no credentials; they are let in when true.
    public var allowNetwork: Bool

    public init(uids: Set<UInt32> = [], groups: Set<UInt32> = [], allowNetwork: Bool = true) {
        self.uids = uids
        self.groups = groups
        self.allowNetwork = allowNetwork
    }

    public func allows(uid: UInt32, gid: UInt32, pid: Int32) -> Bool {
        if uid == 0 || uid == getuid() || uids.contains(uid) || groups.contains(gid) { return true }
        if groups.isEmpty { return false }
        return Self.supplementaryGroups(uid: uid).contains { groups.contains($0) }
    }

    /// The groups `uid` is a member of (its primary group and supplementary ones).
    static func supplementaryGroups(uid: UInt32) -> [UInt32] {
        guard let pw = getpwuid(uid) else { return [] }
        let name = String(cString: pw.pointee.pw_name)
        var count: Int32 = 64
        var list = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, pw.pointee.pw_gid, &list, &count) < 0 {
            list = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, pw.pointee.pw_gid, &list, &count)
        }
        return Array(list.prefix(Int(max(0, count))))
    }
}

/// `struct ucred` of SO_PEERCRED (Glibc hides it without _GNU_SOURCE).
struct PeerCredentials: Sendable {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32
}

/// Header names the access handler sets on every request it lets through (client-sent values
/// are removed first, so they cannot be forged).
enum InternalHeaders {
    static let peerUID = HTTPField.Name("X-Roost-Peer-Uid")!
    static let connection = HTTPField.Name("X-Roost-Connection")!
}

/// Tracks open connections so that a request can learn when its client has gone.
final class ConnectionRegistry: Sendable {
    static let shared = ConnectionRegistry()
    private let state = Mutex<(next: UInt64, open: [UInt64: [(flag: CancellationFlag, cancel: @Sendable () -> Void)]])>((1, [:]))

    func open() -> UInt64 {
        state.withLock { s in
            let id = s.next
            s.next += 1
            s.open[id] = []
            return id
        }
    }

    /// Cancels `flag` when connection `id` closes (at once if it already has). Entries of
    /// requests that have finished are dropped, so a long keep-alive connection holds only
    /// its running requests.
    func cancelOnClose(_ id: UInt64, _ flag: CancellationFlag, _ cancel: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { s -> Bool in
            guard s.open[id] != nil else { return true }
            s.open[id]?.removeAll { $0.flag.isFinished }
            s.open[id]?.append((flag, cancel))
            return false
        }
        if runNow { cancel() }
    }

    /// Requests registered on connection `id` (for tests).
    func registered(_ id: UInt64) -> Int { state.withLock { $0.open[id]?.count ?? 0 } }

    func isOpen(_ id: UInt64) -> Bool { state.withLock { $0.open[id] != nil } }

    func close(_ id: UInt64) {
        let handlers = state.withLock { s in s.open.removeValue(forKey: id) ?? [] }
        for h in handlers where !h.flag.isFinished { h.cancel() }
    }
}

/// Checks the peer's credentials when a connection opens, answers 403 (and closes) for a peer
/// that is not allowed before any request body is read, and tags allowed requests with the
/// peer's uid and a connection id (for ownership of sessions and cancellation on disconnect).
final class PeerAccessHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let policy: AccessPolicy
    private let onDenied: @Sendable (UInt32) -> Void
    private var uid: UInt32?
    private var denied = false
    private var checked = false
    private let connection: UInt64

    init(policy: AccessPolicy, onDenied: @escaping @Sendable (UInt32) -> Void) {
        self.policy = policy
        self.onDenied = onDenied
        connection = ConnectionRegistry.shared.open()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { check(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        check(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        ConnectionRegistry.shared.close(connection)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ConnectionRegistry.shared.close(connection)
    }

    private func check(_ context: ChannelHandlerContext) {
        guard !checked else { return }
        checked = true
        if case .unixDomainSocket = context.channel.localAddress {
            guard let provider = context.channel as? any SocketOptionProvider else {
                denied = true
                return
            }
            let future: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
            // On the channel's own loop the option is read synchronously.
            future.assumeIsolated().whenComplete { [self] (result: Result<PeerCredentials, any Error>) in
                switch result {
                case .success(let cred):
                    if policy.allows(uid: cred.uid, gid: cred.gid, pid: cred.pid) {
                        uid = cred.uid
                    } else {
                        denied = true
                        onDenied(cred.uid)
                    }
                case .failure:
                    denied = true
                }
            }
        } else {
            if policy.allowNetwork { uid = Principal.network.uid } else { denied = true }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if denied || uid == nil {
            if case .head = part { refuse(context) }
            return
        }
        switch part {
        case .head(var head):
            head.headerFields[InternalHeaders.peerUID] = nil
            head.headerFields[InternalHeaders.connection] = nil
            head.headerFields[InternalHeaders.peerUID] = String(uid ?? 0)
            head.headerFields[InternalHeaders.connection] = String(connection)
            context.fireChannelRead(wrapInboundOut(.head(head)))
        default:
            context.fireChannelRead(data)
        }
    }

    private func refuse(_ context: ChannelHandlerContext) {
        let body = #"{"error":{"message":"This user may not use roostd (not on its allow-list)","type":"permission_error","param":null,"code":"peer_not_allowed"}}"#
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
        buffer.writeString(body)
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        fields[.contentLength] = String(body.utf8.count)
        fields[.connection] = "close"
        context.write(wrapOutboundOut(.head(HTTPResponse(status: .forbidden, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(buffer)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
