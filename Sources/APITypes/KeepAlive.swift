import Foundation

/// Ollama's `keep_alive`: how long a model stays loaded after a request.
///
/// Accepts a Go duration string (`"5m"`, `"1h30m"`, `"1.5h"`, `"300ms"`), a string of
/// plain seconds (`"300"`) or a JSON number of seconds. Zero unloads the model right after
/// the request; any negative value keeps it loaded forever.
public enum KeepAlive: Sendable, Equatable, Hashable {
    case forever
    /// Seconds after the last request; 0 unloads at once.
    case duration(seconds: Double)

    /// Ollama's default, five minutes.
    public static let `default` = KeepAlive.duration(seconds: 300)
    public static let unloadImmediately = KeepAlive.duration(seconds: 0)

    /// From seconds: negative means forever.
    public init(seconds: Double) throws(KeepAliveError) {
        guard seconds.isFinite else { throw KeepAliveError.notFinite(String(seconds)) }
        self = seconds < 0 ? .forever : .duration(seconds: seconds)
    }

    /// Parses a duration string.
    public init(parsing text: String) throws(KeepAliveError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { throw KeepAliveError.empty }
        if let seconds = Double(trimmed), trimmed.allSatisfy({ $0.isNumber || $0 == "." || $0 == "-" || $0 == "+" }) {
            try self.init(seconds: seconds)
            return
        }
        try self.init(seconds: try KeepAlive.parseGoDuration(trimmed))
    }

    /// The number of seconds, or nil for forever.
    public var seconds: Double? {
        switch self {
        case .forever: nil
        case .duration(let seconds): seconds
        }
    }

    /// Whether the model is unloaded right after the request.
    public var unloadsImmediately: Bool { self == .duration(seconds: 0) }

    /// Go's `time.ParseDuration` grammar: `[-+]` then one or more `<number><unit>`,
    /// units ns, us, µs, ms, s, m, h; a bare `0` is allowed. Returns seconds.
    static func parseGoDuration(_ text: String) throws(KeepAliveError) -> Double {
        var scalars = Substring(text).unicodeScalars[...]
        var sign = 1.0
        if let first = scalars.first, first == "-" || first == "+" {
            if first == "-" { sign = -1 }
            scalars = scalars.dropFirst()
        }
        if String(scalars) == "0" { return 0 }
        if scalars.isEmpty { throw KeepAliveError.invalid(text) }
        var total = 0.0
        while !scalars.isEmpty {
            // Number: digits, optionally "." and more digits.
            var number = ""
            while let c = scalars.first, ("0"..."9").contains(c) || c == "." {
                number.unicodeScalars.append(c)
                scalars = scalars.dropFirst()
            }
            guard !number.isEmpty, number != ".", number.filter({ $0 == "." }).count <= 1,
                let value = Double(number.hasPrefix(".") ? "0" + number : number)
            else { throw KeepAliveError.invalid(text) }
            var unit = ""
            while let c = scalars.first, !(("0"..."9").contains(c) || c == ".") {
                unit.unicodeScalars.append(c)
                scalars = scalars.dropFirst()
            }
            let scale: Double
            switch unit {
            case "": throw KeepAliveError.missingUnit(text)
            case "ns": scale = 1e-9
            case "us", "µs", "μs": scale = 1e-6
            case "ms": scale = 1e-3
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3600
            default: throw KeepAliveError.unknownUnit(unit, in: text)
            }
            total += value * scale
        }
        guard total.isFinite else { throw KeepAliveError.notFinite(text) }
        return sign * total
    }
}

/// Why a `keep_alive` value was refused.
public enum KeepAliveError: Error, Sendable, Equatable, Hashable, CustomStringConvertible {
    case empty
    case invalid(String)
    case missingUnit(String)
    case unknownUnit(String, in: String)
    case notFinite(String)

    public var description: String {
        switch self {
        case .empty:
            "keep_alive is empty; expected a duration like \"5m\" or a number of seconds"
        case .invalid(let text):
            "keep_alive \"\(text)\" is not a duration; expected e.g. \"5m\", \"1h30m\", \"300\" or -1"
        case .missingUnit(let text):
            "keep_alive \"\(text)\" has a number without a unit; units are ns, us, ms, s, m, h"
        case .unknownUnit(let unit, let text):
            "keep_alive \"\(text)\" has unknown unit \"\(unit)\"; units are ns, us, ms, s, m, h"
        case .notFinite(let text):
            "keep_alive \"\(text)\" is not a finite duration"
        }
    }
}

extension KeepAlive: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        do {
            if let seconds = try? container.decode(Double.self) {
                try self.init(seconds: seconds)
            } else {
                try self.init(parsing: try container.decode(String.self))
            }
        } catch let error as KeepAliveError {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    /// Written as seconds (`-1` for forever), which Ollama accepts.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .forever:
            try container.encode(-1)
        case .duration(let seconds):
            if seconds.rounded() == seconds, seconds < 9e15 {
                try container.encode(Int64(seconds))
            } else {
                try container.encode(seconds)
            }
        }
    }
}
