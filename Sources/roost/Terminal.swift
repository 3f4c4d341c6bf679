import Foundation
import Synchronization

enum RoostVersion {
    static let string = "0.1.0"
}

/// Unbuffered writes to stdout and stderr (one `write` per call, so streamed text shows up
/// at once and the two streams interleave in order).
enum Console {
    static func out(_ text: String) { write(1, Array(text.utf8)) }
    static func err(_ text: String) { write(2, Array(text.utf8)) }

    static func write(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.write(fd, base + offset, raw.count - offset)
            }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
    }

    static var stdoutIsTTY: Bool { isatty(1) == 1 }
    static var stdinIsTTY: Bool { isatty(0) == 1 }
    static var stderrIsTTY: Bool { isatty(2) == 1 }

    /// ANSI styling on stdout: only on a terminal, and not with NO_COLOR set.
    static var styled: Bool {
        stdoutIsTTY && (ProcessInfo.processInfo.environment["NO_COLOR"] ?? "").isEmpty
    }

    static let dim = "\u{1B}[2m"
    static let bold = "\u{1B}[1m"
    static let reset = "\u{1B}[0m"
}

/// Ctrl-C while a command runs: the handler only counts; loops that wait on the socket or the
/// keyboard wake up (the handler is installed without SA_RESTART) and look at the count.
enum Interrupt {
    static let count = Atomic<Int>(0)

    static func install() {
        _ = count.load(ordering: .relaxed)
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            _ = Interrupt.count.add(1, ordering: .relaxed)
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGINT, &action, nil)
    }

    /// True (once) when Ctrl-C was pressed since the last call.
    static func take() -> Bool {
        count.exchange(0, ordering: .relaxed) > 0
    }
}

/// A spinner on stderr while waiting for the first token; drawn only when stdout is a terminal.
struct Spinner {
    private static let frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]
    private var frame = 0
    private(set) var visible = false
    let enabled: Bool

    init(enabled: Bool = Console.stdoutIsTTY && Console.stderrIsTTY) {
        self.enabled = enabled
    }

    mutating func tick() {
        guard enabled else { return }
        Console.err("\r" + Console.dim + Self.frames[frame % Self.frames.count] + Console.reset + " ")
        frame += 1
        visible = true
    }

    mutating func stop() {
        guard visible else { return }
        Console.err("\r\u{1B}[K")
        visible = false
    }
}

/// What reading a line gave.
enum LineInput: Equatable {
    case line(String)
    /// Ctrl-C at the prompt: the line was dropped.
    case interrupted
    /// Ctrl-D on an empty line, or the end of piped input.
    case eof
}

/// Reads lines from stdin: a small raw-mode editor with history on a terminal, plain lines
/// otherwise (pipes, files).
final class LineReader {
    private var history: [String] = []
    private var pendingBytes: [UInt8] = []
    private var inputEnded = false
    let interactive: Bool

    init(interactive: Bool = Console.stdinIsTTY && Console.stdoutIsTTY) {
        self.interactive = interactive
    }

    func readLine(prompt: String) -> LineInput {
        if interactive, let result = readEdited(prompt: prompt) { return result }
        return readPlain()
    }

    // MARK: plain

    private func readPlain() -> LineInput {
        while true {
            if let newline = pendingBytes.firstIndex(of: 0x0A) {
                var line = Array(pendingBytes[..<newline])
                pendingBytes.removeFirst(newline + 1)
                if line.last == 0x0D { line.removeLast() }
                return .line(String(decoding: line, as: UTF8.self))
            }
            if inputEnded {
                guard !pendingBytes.isEmpty else { return .eof }
                let line = String(decoding: pendingBytes, as: UTF8.self)
                pendingBytes.removeAll()
                return .line(line)
            }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = buffer.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return read(0, base, raw.count)
            }
            if n < 0 {
                if errno == EINTR {
                    if Interrupt.take() {
                        pendingBytes.removeAll()
                        return .interrupted
                    }
                    continue
                }
                inputEnded = true
            } else if n == 0 {
                inputEnded = true
            } else {
                pendingBytes += buffer[0..<n]
            }
        }
    }

    // MARK: editor

    /// nil when the terminal cannot be put into raw mode (then plain reading takes over).
    private func readEdited(prompt: String) -> LineInput? {
        var saved = termios()
        guard tcgetattr(0, &saved) == 0 else { return nil }
        var raw = saved
        raw.c_iflag &= ~tcflag_t(ICRNL | IXON | BRKINT | INPCK | ISTRIP)
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        raw.c_cflag |= tcflag_t(CS8)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        guard tcsetattr(0, TCSAFLUSH, &raw) == 0 else { return nil }
        defer { tcsetattr(0, TCSAFLUSH, &saved) }

        var editor = LineEditorState(history: history)
        Console.out(prompt)
        while true {
            guard let byte = readByte() else { Console.out("\r\n"); return .eof }
            if byte >= 0x80 {
                // A UTF-8 sequence: its lead byte says how many bytes follow.
                var bytes = [byte]
                let length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
                while bytes.count < length, let next = readByte() { bytes.append(next) }
                editor.insert(String(decoding: bytes, as: UTF8.self))
                redraw(prompt, editor)
                continue
            }
            switch byte {
            case 0x0D, 0x0A:
                Console.out("\r\n")
                let line = editor.text
                if !line.trimmingCharacters(in: .whitespaces).isEmpty && history.last != line { history.append(line) }
                return .line(line)
            case 0x03:
                Console.out("^C\r\n")
                return .interrupted
            case 0x04:
                if editor.text.isEmpty { Console.out("\r\n"); return .eof }
                editor.deleteForward()
            case 0x7F, 0x08: editor.deleteBackward()
            case 0x01: editor.home()
            case 0x05: editor.end()
            case 0x02: editor.left()
            case 0x06: editor.right()
            case 0x0B: editor.killToEnd()
            case 0x15: editor.killToStart()
            case 0x17: editor.deleteWordBackward()
            case 0x10: editor.historyUp()
            case 0x0E: editor.historyDown()
            case 0x0C: Console.out("\u{1B}[H\u{1B}[2J")
            case 0x1B: readEscape(&editor)
            default:
                if byte >= 0x20 { editor.insert(String(UnicodeScalar(byte))) }
            }
            redraw(prompt, editor)
        }
    }

    private func readEscape(_ editor: inout LineEditorState) {
        guard let first = readByte() else { return }
        guard first == UInt8(ascii: "[") || first == UInt8(ascii: "O") else { return }
        var params: [UInt8] = []
        while let b = readByte() {
            if (0x40...0x7E).contains(b) {
                switch (b, params) {
                case (UInt8(ascii: "A"), _): editor.historyUp()
                case (UInt8(ascii: "B"), _): editor.historyDown()
                case (UInt8(ascii: "C"), _): editor.right()
                case (UInt8(ascii: "D"), _): editor.left()
                case (UInt8(ascii: "H"), _): editor.home()
                case (UInt8(ascii: "F"), _): editor.end()
                case (UInt8(ascii: "~"), [UInt8(ascii: "3")]): editor.deleteForward()
                case (UInt8(ascii: "~"), [UInt8(ascii: "1")]), (UInt8(ascii: "~"), [UInt8(ascii: "7")]): editor.home()
                case (UInt8(ascii: "~"), [UInt8(ascii: "4")]), (UInt8(ascii: "~"), [UInt8(ascii: "8")]): editor.end()
                default: break
                }
                return
            }
            params.append(b)
            if params.count > 16 { return }
        }
    }

    private func readByte() -> UInt8? {
        var byte: UInt8 = 0
        while true {
            let n = read(0, &byte, 1)
            if n == 1 { return byte }
            if n < 0 && errno == EINTR { continue }
            return nil
        }
    }

    private func redraw(_ prompt: String, _ editor: LineEditorState) {
        var text = "\r" + prompt + editor.text + "\u{1B}[K"
        let back = editor.characters.count - editor.cursor
        if back > 0 { text += "\u{1B}[\(back)D" }
        Console.out(text)
    }
}

/// The line being edited: characters, cursor and history browsing. Pure, so it is testable.
struct LineEditorState {
    private(set) var characters: [Character] = []
    private(set) var cursor = 0
    private var history: [String]
    private var historyIndex: Int
    private var draft = ""

    init(history: [String] = []) {
        self.history = history
        self.historyIndex = history.count
    }

    var text: String { String(characters) }

    mutating func insert(_ s: String) {
        let new = Array(s)
        characters.insert(contentsOf: new, at: cursor)
        cursor += new.count
    }

    mutating func deleteBackward() {
        guard cursor > 0 else { return }
        characters.remove(at: cursor - 1)
        cursor -= 1
    }

    mutating func deleteForward() {
        guard cursor < characters.count else { return }
        characters.remove(at: cursor)
    }

    mutating func deleteWordBackward() {
        var start = cursor
        while start > 0 && characters[start - 1] == " " { start -= 1 }
        while start > 0 && characters[start - 1] != " " { start -= 1 }
        characters.removeSubrange(start..<cursor)
        cursor = start
    }

    mutating func killToEnd() { characters.removeSubrange(cursor...) }

    mutating func killToStart() {
        characters.removeSubrange(..<cursor)
        cursor = 0
    }

    mutating func left() { cursor = max(0, cursor - 1) }
    mutating func right() { cursor = min(characters.count, cursor + 1) }
    mutating func home() { cursor = 0 }
    mutating func end() { cursor = characters.count }

    mutating func historyUp() {
        guard historyIndex > 0 else { return }
        if historyIndex == history.count { draft = text }
        historyIndex -= 1
        set(history[historyIndex])
    }

    mutating func historyDown() {
        guard historyIndex < history.count else { return }
        historyIndex += 1
        set(historyIndex == history.count ? draft : history[historyIndex])
    }

    private mutating func set(_ s: String) {
        characters = Array(s)
        cursor = characters.count
    }
}
