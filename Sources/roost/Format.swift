import APITypes
import Foundation

enum Format {
    /// `1.5 MiB` style sizes.
    static func bytes(_ n: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(n)
        var unit = 0
        while abs(value) >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[unit])
    }

    static func bytes(_ n: Int) -> String { bytes(Int64(n)) }

    /// Local date and time of Unix seconds, `2026-11-25 17:41`.
    static func time(_ seconds: Int) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    /// An RFC 3339 time from the Ollama API, shortened to local `yyyy-MM-dd HH:mm`.
    static func time(rfc3339 text: String) -> String {
        let withFraction = ISO8601DateFormatter()
        withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        guard let date = withFraction.date(from: text) ?? plain.date(from: text) else { return text }
        if date.timeIntervalSinceNow > 10 * 365 * 86400 { return "forever" }
        return time(Int(date.timeIntervalSince1970))
    }

    /// Left-aligned columns separated by two spaces; the header row first.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            var text = ""
            for (i, cell) in cells.enumerated() {
                if i == cells.count - 1 { text += cell } else {
                    text += cell + String(repeating: " ", count: widths[i] - cell.count + 2)
                }
            }
            return text + "\n"
        }
        return ([header] + rows).map(line).joined()
    }

    /// Pretty JSON for `--json`, with a final newline.
    static func json(_ value: some Encodable) throws -> String {
        let encoder = APICoding.encoder
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do { return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n" } catch {
            throw ClientError.other("cannot encode the output: \(error)")
        }
    }

    /// One compact JSON line (for `stats --watch --json`).
    static func jsonLine(_ value: some Encodable) throws -> String {
        let encoder = APICoding.encoder
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n" } catch {
            throw ClientError.other("cannot encode the output: \(error)")
        }
    }
}
