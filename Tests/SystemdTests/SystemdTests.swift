import Foundation
import Logging
import Systemd
import Testing

@Suite struct NotifyMessageTests {
    @Test func linesAreSdNotifyAssignments() {
        #expect(NotifyMessage.ready.line == "READY=1")
        #expect(NotifyMessage.watchdog.line == "WATCHDOG=1")
        #expect(NotifyMessage.stopping.line == "STOPPING=1")
        #expect(NotifyMessage.extendTimeout(microseconds: 30_000_000).line == "EXTEND_TIMEOUT_USEC=30000000")
        #expect(NotifyMessage.status("2 models, 1 session").line == "STATUS=2 models, 1 session")
    }

    @Test func statusNewlinesCannotInjectAssignments() {
        #expect(NotifyMessage.status("a\nREADY=1\r").line == "STATUS=a READY=1 ")
    }
}

@Suite struct JournalFieldTests {
    @Test func metadataKeysBecomeUpperCaseFieldNames() {
        #expect(JournalLogHandler.fieldName("session_id") == "SESSION_ID")
        #expect(JournalLogHandler.fieldName("model") == "MODEL")
        #expect(JournalLogHandler.fieldName("request-id") == "REQUEST_ID")
        #expect(JournalLogHandler.fieldName("hb.request.id") == "HB_REQUEST_ID")
        #expect(JournalLogHandler.fieldName("_trusted") == "TRUSTED")
        #expect(JournalLogHandler.fieldName("9lives") == "META_9LIVES")
        #expect(JournalLogHandler.fieldName("message") == "META_MESSAGE")
        #expect(JournalLogHandler.fieldName("priority") == "META_PRIORITY")
        #expect(JournalLogHandler.fieldName("é") == "META")
        #expect(JournalLogHandler.fieldName(String(repeating: "k", count: 100)).count == 64)
    }

    @Test func prioritiesFollowSyslog() {
        #expect(JournalLogHandler.priority(.trace) == 7)
        #expect(JournalLogHandler.priority(.debug) == 7)
        #expect(JournalLogHandler.priority(.info) == 6)
        #expect(JournalLogHandler.priority(.notice) == 5)
        #expect(JournalLogHandler.priority(.warning) == 4)
        #expect(JournalLogHandler.priority(.error) == 3)
        #expect(JournalLogHandler.priority(.critical) == 2)
    }

    @Test func fieldsOfOneMessage() {
        let fields = JournalLogHandler.fields(
            level: .warning, message: "model unloaded\nafter idle", metadata: ["session_id": "s1", "model": "tiny7", "request_id": .stringConvertible(42)],
            label: "roostd", identifier: "roostd", file: "Engine.swift", function: "unload(_:)", line: 12)
        #expect(fields == [
            "MESSAGE=model unloaded\nafter idle", "PRIORITY=4", "SYSLOG_IDENTIFIER=roostd", "ROOST_LOGGER=roostd",
            "CODE_FILE=Engine.swift", "CODE_LINE=12", "CODE_FUNC=unload(_:)",
            "MODEL=tiny7", "REQUEST_ID=42", "SESSION_ID=s1",
        ])
    }

    @Test func collidingKeysKeepTheFirst() {
        let fields = JournalLogHandler.fields(level: .info, message: "m", metadata: ["a-b": "1", "a_b": "2"], label: "l",
                                              identifier: "roostd", file: "f", function: "g", line: 1)
        #expect(fields.filter { $0.hasPrefix("A_B=") } == ["A_B=1"])
    }
}

@Suite(.serialized) struct EnvironmentTests {
    @Test func journalStreamMustNameStderr() {
        let socket = "/"  // stands in for journald's socket: it exists
        #expect(!SystemdLogging.stderrIsJournal(environment: [:], journalSocket: socket))
        #expect(!SystemdLogging.stderrIsJournal(environment: ["JOURNAL_STREAM": "garbage"], journalSocket: socket))
        var st = stat()
        #expect(fstat(STDERR_FILENO, &st) == 0)
        let stream = ["JOURNAL_STREAM": "\(st.st_dev):\(st.st_ino)"]
        #expect(SystemdLogging.stderrIsJournal(environment: stream, journalSocket: socket))
        #expect(!SystemdLogging.stderrIsJournal(environment: stream, journalSocket: "/nonexistent/journal/socket"))
        #expect(!SystemdLogging.stderrIsJournal(environment: ["JOURNAL_STREAM": "\(st.st_dev):\(st.st_ino &+ 1)"],
                                                journalSocket: socket))
        #expect(SystemdLogging.handler(label: "x", level: .info, environment: [:]) is StreamLogHandler)
    }

    @Test func notifyReachesTheNotifySocket() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("roost-notify-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.path + "/notify"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(rc == 0)

        unsetenv("NOTIFY_SOCKET")
        #expect(!SystemdNotifier.isEnabled)
        #expect(!SystemdNotifier.notify(.ready))
        setenv("NOTIFY_SOCKET", path, 1)
        defer { unsetenv("NOTIFY_SOCKET") }
        #expect(SystemdNotifier.isEnabled)
        #expect(SystemdNotifier.notify(.ready, .status("1 models")))
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        #expect(n > 0)
        #expect(String(decoding: buffer.prefix(max(0, n)), as: UTF8.self) == "READY=1\nSTATUS=1 models")
    }

    @Test func watchdogNeedsOurPid() {
        setenv("WATCHDOG_USEC", "4000000", 1)
        setenv("WATCHDOG_PID", "\(getpid())", 1)
        #expect(SystemdNotifier.watchdogInterval() == .seconds(4))
        setenv("WATCHDOG_PID", "1", 1)
        #expect(SystemdNotifier.watchdogInterval() == nil)
        unsetenv("WATCHDOG_PID")
        unsetenv("WATCHDOG_USEC")
        #expect(SystemdNotifier.watchdogInterval() == nil)
    }

    @Test func noListenFdsMeansNoActivation() throws {
        unsetenv("LISTEN_FDS")
        unsetenv("LISTEN_PID")
        #expect(try SocketActivation.inheritedUnixSocket() == nil)
    }
}
