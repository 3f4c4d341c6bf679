import CSystemd
import Foundation

/// A message to the service manager (sd_notify(3)). Each renders as one `KEY=VALUE` line.
public enum NotifyMessage: Sendable, Equatable {
    /// Start-up is finished (Type=notify units become active).
    case ready
    /// Free-form status shown by `systemctl status`.
    case status(String)
    /// The watchdog keep-alive ping.
    case watchdog
    /// Shutdown has begun.
    case stopping
    /// Asks for more time before the start/stop timeout fires, in microseconds from now.
    case extendTimeout(microseconds: UInt64)

    /// The line sent on the notification socket. Newlines in a status are replaced by spaces,
    /// since each line of a notification is a separate assignment.
    public var line: String {
        switch self {
        case .ready: "READY=1"
        case let .status(text):
            "STATUS=" + String(text.map { $0 == "\n" || $0 == "\r" ? " " : $0 })
        case .watchdog: "WATCHDOG=1"
        case .stopping: "STOPPING=1"
        case let .extendTimeout(us): "EXTEND_TIMEOUT_USEC=\(us)"
        }
    }
}

/// Talks to the service manager through `$NOTIFY_SOCKET`. Without that variable (not started
/// by systemd, or not Type=notify) every call does nothing and returns false.
public enum SystemdNotifier {
    /// True when `$NOTIFY_SOCKET` is set.
    public static var isEnabled: Bool {
        guard let s = getenv("NOTIFY_SOCKET") else { return false }
        return s.pointee != 0
    }

    /// Sends the messages in one datagram. True when the service manager got it.
    @discardableResult
    public static func notify(_ messages: NotifyMessage...) -> Bool {
        notify(messages)
    }

    @discardableResult
    public static func notify(_ messages: [NotifyMessage]) -> Bool {
        guard !messages.isEmpty, isEnabled else { return false }
        let text = messages.map(\.line).joined(separator: "\n")
        return sd_notify(0, text) > 0
    }

    /// The watchdog interval the service manager expects pings within (`WatchdogSec=`, passed as
    /// `$WATCHDOG_USEC` for this process: `$WATCHDOG_PID`, when set, must be our pid), or nil.
    public static func watchdogInterval() -> Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(clamping: usec))
    }
}
