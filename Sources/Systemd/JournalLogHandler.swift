import CSystemd
import Foundation
import Logging

/// A swift-log handler that writes each message to the systemd journal with structured fields:
/// `MESSAGE`, `PRIORITY`, `SYSLOG_IDENTIFIER`, `ROOST_LOGGER` (the logger's label), `CODE_FILE`,
/// `CODE_LINE`, `CODE_FUNC`, and every metadata key upper-cased (`session` → `SESSION`,
/// `request-id` → `REQUEST_ID`). When the journal refuses a message it goes to stderr instead.
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    public let label: String
    public let identifier: String

    public init(label: String, identifier: String = "roostd", metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.identifier = identifier
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let fields = Self.fields(level: event.level, message: event.message.description, metadata: merged,
                                 label: label, identifier: identifier, file: event.file, function: event.function,
                                 line: event.line)
        if Self.send(fields) { return }
        var text = "\(event.level) \(label): \(event.message)"
        if !merged.isEmpty {
            text += " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    // MARK: - fields

    /// Syslog priority of a level (journal `PRIORITY`).
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// Fields the handler sets itself; a metadata key that maps onto one gets a `META_` prefix.
    static let reserved: Set<String> = [
        "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "ROOST_LOGGER", "CODE_FILE", "CODE_LINE", "CODE_FUNC",
        "MESSAGE_ID", "SYSLOG_FACILITY", "SYSLOG_PID", "SYSLOG_TIMESTAMP", "ERRNO",
    ]

    /// A journal field name for a metadata key: upper-cased, every character besides A-Z, 0-9
    /// and `_` replaced by `_`, no leading underscore or digit (those mark trusted fields or are
    /// invalid), at most 64 characters.
    public static func fieldName(_ key: String) -> String {
        var name = String(key.uppercased().unicodeScalars.map { c -> Character in
            switch c.value {
            case 0x41...0x5A, 0x30...0x39, 0x5F: Character(c)
            default: "_"
            }
        })
        while name.hasPrefix("_") { name.removeFirst() }
        if name.isEmpty { name = "META" }
        if let f = name.unicodeScalars.first, (0x30...0x39).contains(f.value) { name = "META_" + name }
        if reserved.contains(name) { name = "META_" + name }
        return String(name.prefix(64))
    }

    /// The `NAME=value` fields of one message, in the order they are sent.
    public static func fields(level: Logger.Level, message: String, metadata: Logger.Metadata, label: String,
                              identifier: String, file: String, function: String, line: UInt) -> [String] {
        var out = [
            "MESSAGE=" + message,
            "PRIORITY=\(priority(level))",
            "SYSLOG_IDENTIFIER=" + identifier,
            "ROOST_LOGGER=" + label,
            "CODE_FILE=" + file,
            "CODE_LINE=\(line)",
            "CODE_FUNC=" + function,
        ]
        var seen = Set<String>()
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            let name = fieldName(key)
            guard seen.insert(name).inserted else { continue }
            out.append(name + "=" + "\(value)")
        }
        return out
    }

    /// Sends fields with sd_journal_sendv (values may hold any bytes, newlines included).
    static func send(_ fields: [String]) -> Bool {
        var bytes = [UInt8]()
        var ranges = [(start: Int, count: Int)]()
        for f in fields {
            ranges.append((bytes.count, f.utf8.count))
            bytes.append(contentsOf: f.utf8)
        }
        return bytes.withUnsafeMutableBytes { raw -> Bool in
            guard let base = raw.baseAddress else { return false }
            var iovecs = ranges.map { iovec(iov_base: base + $0.start, iov_len: $0.count) }
            return iovecs.withUnsafeMutableBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) == 0 }
        }
    }
}

/// Chooses where the daemon's logs go.
public enum SystemdLogging {
    /// True when stderr is connected to the journal: `$JOURNAL_STREAM` ("DEVICE:INODE", set by
    /// systemd for services whose output goes to the journal) names the file stderr is, and
    /// journald's socket exists (without it sd_journal_sendv drops messages silently).
    public static func stderrIsJournal(environment: [String: String] = ProcessInfo.processInfo.environment,
                                       journalSocket: String = "/run/systemd/journal/socket") -> Bool {
        guard let value = environment["JOURNAL_STREAM"], access(journalSocket, F_OK) == 0 else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(STDERR_FILENO, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }

    /// A journal handler when stderr is the journal, else swift-log's stderr handler.
    public static func handler(label: String, level: Logger.Level,
                               environment: [String: String] = ProcessInfo.processInfo.environment) -> any LogHandler {
        if stderrIsJournal(environment: environment) {
            var h = JournalLogHandler(label: label)
            h.logLevel = level
            return h
        }
        var h = StreamLogHandler.standardError(label: label)
        h.logLevel = level
        return h
    }
}
