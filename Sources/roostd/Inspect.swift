import ArgumentParser
import Foundation
import GGUF

/// `roostd inspect FILE [--json] [--checksums]`: what a GGUF file holds. The JSON keys are
/// documented in docs/INSPECT.md and are kept stable.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a GGUF file's metadata and tensors.",
        discussion: "--checksums adds the 64-bit FNV-1a hash of each tensor's data bytes.")
    @Argument(help: "The GGUF file.") var file: String
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Hash each tensor's data (64-bit FNV-1a); reads the whole file.") var checksums = false

    func run() throws {
        let f: GGUFFile
        do {
            f = try GGUFFile(path: file)
        } catch {
            // File-system errors already start with the path.
            let message = error.description.hasPrefix(file) ? error.description : "\(file): \(error.description)"
            FileHandle.standardError.write(Data("roostd inspect: \(message)\n".utf8))
            throw ExitCode(1)
        }
        let report = InspectReport(file: f, checksums: checksums)
        var out = json ? report.json().rendered() : report.text()
        out += "\n"
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}

// MARK: - Report

struct InspectReport {
    struct TypeTotal {
        var type: GGMLType
        var tensors = 0
        var elements = 0
        var bytes = 0
    }

    struct MoELayer {
        var layer: Int
        var experts: Int
        var bytesPerExpert = 0
        var tensors: [String] = []
    }

    let file: GGUFFile
    let checksums: [UInt64]?
    let typeTotals: [TypeTotal]
    let totalElements: Int
    let totalBytes: Int
    let moeLayers: [MoELayer]

    /// Longest array printed in full in JSON; tokenizer.* arrays never print more than
    /// `tokenizerItems`.
    static let jsonArrayLimit = 64
    static let jsonArrayPrefix = 16
    static let tokenizerItems = 8
    static let textArrayItems = 8

    init(file: GGUFFile, checksums: Bool) {
        self.file = file
        self.checksums = checksums ? file.tensors.map { fnv1a64(file.data(of: $0)) } : nil
        var totals: [GGMLType: TypeTotal] = [:]
        var elements = 0
        var bytes = 0
        var layers: [Int: MoELayer] = [:]
        for t in file.tensors {
            totals[t.type, default: TypeTotal(type: t.type)].tensors += 1
            totals[t.type, default: TypeTotal(type: t.type)].elements &+= t.elementCount
            totals[t.type, default: TypeTotal(type: t.type)].bytes &+= t.byteCount
            elements &+= t.elementCount
            bytes &+= t.byteCount
            if let layer = Self.expertLayer(t.name), t.dims.count == 3 {
                let n = t.dims[2]
                var l = layers[layer] ?? MoELayer(layer: layer, experts: n)
                l.experts = max(l.experts, n)
                l.bytesPerExpert += t.byteCount / n
                l.tensors.append(t.name)
                layers[layer] = l
            }
        }
        typeTotals = totals.values.sorted { $0.type.rawValue < $1.type.rawValue }
        totalElements = elements
        totalBytes = bytes
        moeLayers = layers.values.sorted { $0.layer < $1.layer }
    }

    /// N for `blk.N.ffn_{gate,up,down}_exps.weight`.
    static func expertLayer(_ name: String) -> Int? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "blk", parts[3] == "weight",
              ["ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"].contains(parts[2]),
              let n = Int(parts[1]), n >= 0 else { return nil }
        return n
    }

    var expertCountMetadata: Int? {
        guard let arch = file.architecture else { return nil }
        return file.metadata["\(arch).expert_count"]?.int
    }

    var expertBytesTotal: Int { moeLayers.reduce(0) { $0 + $1.bytesPerExpert * $1.experts } }

    // MARK: JSON

    func json() -> JSONValue {
        var obj: [(String, JSONValue)] = [
            ("file", .string(file.path)),
            ("file_size", .int(file.fileSize)),
            ("gguf_version", .int(Int(file.version))),
            ("architecture", file.architecture.map(JSONValue.string) ?? .null),
            ("name", file.name.map(JSONValue.string) ?? .null),
            ("alignment", .int(file.alignment)),
            ("data_offset", .int(file.dataOffset)),
            ("metadata_count", .int(file.metadata.count)),
        ]
        var meta: [(String, JSONValue)] = []
        for (key, value) in file.metadata.pairs {
            let limit = key.hasPrefix("tokenizer.") ? Self.tokenizerItems : nil
            meta.append((key, Self.jsonValue(value, tokenizerLimit: limit)))
        }
        obj.append(("metadata", .object(meta)))
        var tensors: [JSONValue] = []
        for (i, t) in file.tensors.enumerated() {
            var o: [(String, JSONValue)] = [
                ("name", .string(t.name)),
                ("type", .string(t.type.name)),
                ("type_id", .int(Int(t.type.rawValue))),
                ("shape", .array(t.dims.map { .int($0) })),
                ("elements", .int(t.elementCount)),
                ("bytes", .int(t.byteCount)),
                ("offset", .int(t.offset)),
                ("file_offset", .int(file.absoluteOffset(of: t))),
            ]
            if let checksums { o.append(("fnv1a64", .string(Self.hex(checksums[i])))) }
            tensors.append(.object(o))
        }
        obj.append(("tensor_count", .int(file.tensors.count)))
        obj.append(("tensors", .array(tensors)))
        obj.append(("type_totals", .array(typeTotals.map {
            .object([("type", .string($0.type.name)), ("tensors", .int($0.tensors)),
                     ("elements", .int($0.elements)), ("bytes", .int($0.bytes))])
        })))
        obj.append(("totals", .object([
            ("tensors", .int(file.tensors.count)), ("elements", .int(totalElements)), ("bytes", .int(totalBytes)),
        ])))
        if moeLayers.isEmpty {
            obj.append(("moe", .null))
        } else {
            obj.append(("moe", .object([
                ("expert_count", expertCountMetadata.map(JSONValue.int) ?? .null),
                ("layers", .array(moeLayers.map {
                    .object([("layer", .int($0.layer)), ("experts", .int($0.experts)),
                             ("bytes_per_expert", .int($0.bytesPerExpert)),
                             ("bytes", .int($0.bytesPerExpert * $0.experts))])
                })),
                ("expert_bytes_total", .int(expertBytesTotal)),
                ("dense_bytes_total", .int(totalBytes - expertBytesTotal)),
            ])))
        }
        return .object(obj)
    }

    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    static func scalarJSON(_ v: GGUFValue) -> JSONValue {
        switch v {
        case let .uint8(x): .int(Int(x))
        case let .int8(x): .int(Int(x))
        case let .uint16(x): .int(Int(x))
        case let .int16(x): .int(Int(x))
        case let .uint32(x): .int(Int(x))
        case let .int32(x): .int(Int(x))
        case let .uint64(x): .uint(x)
        case let .int64(x): .int(Int(x))
        case let .float32(x): .double(Double(x))
        case let .float64(x): .double(x)
        case let .bool(x): .bool(x)
        case let .string(s): .string(s)
        case let .array(a): arrayJSON(a, tokenizerLimit: nil)
        }
    }

    static func arrayJSON(_ a: GGUFArray, tokenizerLimit: Int?) -> JSONValue {
        let shown: Int
        if let tokenizerLimit {
            shown = min(a.count, tokenizerLimit)
        } else {
            shown = a.count <= jsonArrayLimit ? a.count : jsonArrayPrefix
        }
        return .object([
            ("type", .string("array")),
            ("element_type", .string(a.elementType.description)),
            ("length", .int(a.count)),
            ("values", .array(a.values.prefix(shown).map { scalarJSON($0) })),
            ("truncated", .bool(shown < a.count)),
        ])
    }

    static func jsonValue(_ v: GGUFValue, tokenizerLimit: Int?) -> JSONValue {
        if case let .array(a) = v { return arrayJSON(a, tokenizerLimit: tokenizerLimit) }
        return .object([("type", .string(v.type.description)), ("value", scalarJSON(v))])
    }

    // MARK: Text

    func text() -> String {
        var lines: [String] = []
        let header: [(String, String)] = [
            ("file", file.path),
            ("file size", "\(Self.size(file.fileSize)) (\(file.fileSize) bytes)"),
            ("gguf version", "\(file.version)"),
            ("architecture", file.architecture ?? "-"),
            ("name", file.name ?? "-"),
            ("alignment", "\(file.alignment)"),
            ("data offset", "\(file.dataOffset)"),
        ]
        lines += Self.table(header.map { [$0.0, $0.1] }, rightAligned: [])
        lines.append("")
        lines.append("metadata (\(file.metadata.count) keys)")
        lines += Self.table(
            [["key", "type", "value"]] + file.metadata.pairs.map { [$0.key, $0.value.typeName, Self.textValue($0.value, key: $0.key)] },
            rightAligned: [], indent: "  ")
        lines.append("")
        lines.append("tensors (\(file.tensors.count))")
        var rows = [["name", "type", "shape", "elements", "bytes", "size", "offset"] + (checksums == nil ? [] : ["fnv1a64"])]
        for (i, t) in file.tensors.enumerated() {
            rows.append([t.name, t.type.name, "[" + t.dims.map(String.init).joined(separator: ", ") + "]",
                         "\(t.elementCount)", "\(t.byteCount)", Self.size(t.byteCount), "\(t.offset)"]
                        + (checksums.map { [Self.hex($0[i])] } ?? []))
        }
        lines += Self.table(rows, rightAligned: [3, 4, 5, 6], indent: "  ")
        lines.append("")
        lines.append("totals per type")
        var totals = [["type", "tensors", "elements", "bytes", "size"]]
        for t in typeTotals {
            totals.append([t.type.name, "\(t.tensors)", "\(t.elements)", "\(t.bytes)", Self.size(t.bytes)])
        }
        totals.append(["all", "\(file.tensors.count)", "\(totalElements)", "\(totalBytes)", Self.size(totalBytes)])
        lines += Self.table(totals, rightAligned: [1, 2, 3, 4], indent: "  ")
        if !moeLayers.isEmpty {
            lines.append("")
            let declared = expertCountMetadata.map { ", \(file.architecture ?? "")" + ".expert_count = \($0)" } ?? ""
            lines.append("experts (\(moeLayers.count) MoE layers\(declared))")
            var moe = [["layer", "experts", "bytes/expert", "size/expert", "layer bytes", "layer size"]]
            for l in moeLayers {
                moe.append(["\(l.layer)", "\(l.experts)", "\(l.bytesPerExpert)", Self.size(l.bytesPerExpert),
                            "\(l.bytesPerExpert * l.experts)", Self.size(l.bytesPerExpert * l.experts)])
            }
            moe.append(["all", "", "", "", "\(expertBytesTotal)", Self.size(expertBytesTotal)])
            lines += Self.table(moe, rightAligned: [0, 1, 2, 3, 4, 5], indent: "  ")
            lines.append("  dense (non-expert) bytes: \(totalBytes - expertBytesTotal) (\(Self.size(totalBytes - expertBytesTotal)))")
        }
        return lines.joined(separator: "\n")
    }

    static func size(_ n: Int) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB"]
        if n < 1024 { return "\(n) B" }
        var v = Double(n) / 1024
        var u = 0
        while v >= 1024 && u < units.count - 1 {
            v /= 1024
            u += 1
        }
        return String(format: "%.2f %@", v, units[u])
    }

    static func quoted(_ s: String, max: Int = 48) -> String {
        var body = ""
        for ch in s.unicodeScalars {
            switch ch {
            case "\n": body += "\\n"
            case "\t": body += "\\t"
            case "\r": body += "\\r"
            case "\"": body += "\\\""
            case "\\": body += "\\\\"
            default:
                if ch.value < 0x20 || ch.value == 0x7F {
                    body += "\\u{\(String(ch.value, radix: 16))}"
                } else {
                    body.unicodeScalars.append(ch)
                }
            }
        }
        if body.count > max { body = String(body.prefix(max)) + "…" }
        return "\"" + body + "\""
    }

    static func textValue(_ v: GGUFValue, key: String) -> String {
        switch v {
        case let .string(s): return quoted(s)
        case let .array(a):
            let limit = key.hasPrefix("tokenizer.") ? 5 : textArrayItems
            let items = a.values.prefix(limit).map { textValue($0, key: key) }.joined(separator: ", ")
            if a.count <= limit { return "[" + items + "]" }
            return "\(a.count) items: [" + items + ", …]"
        default: return v.description
        }
    }

    /// Rows padded to aligned columns; columns in `rightAligned` are right-justified.
    static func table(_ rows: [[String]], rightAligned: Set<Int>, indent: String = "") -> [String] {
        var widths: [Int] = []
        for r in rows {
            for (i, c) in r.enumerated() {
                if i >= widths.count { widths.append(0) }
                widths[i] = max(widths[i], c.count)
            }
        }
        return rows.map { r in
            var parts: [String] = []
            for (i, c) in r.enumerated() {
                let pad = String(repeating: " ", count: widths[i] - c.count)
                if i == r.count - 1 && !rightAligned.contains(i) {
                    parts.append(c)
                } else {
                    parts.append(rightAligned.contains(i) ? pad + c : c + pad)
                }
            }
            return indent + parts.joined(separator: "  ")
        }
    }
}

// MARK: - A small JSON writer with ordered keys

indirect enum JSONValue {
    case null
    case bool(Bool)
    case int(Int)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    func rendered() -> String {
        var out = ""
        render(into: &out, indent: 0)
        return out
    }

    private func render(into out: inout String, indent: Int) {
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .int(i): out += String(i)
        case let .uint(u): out += String(u)
        case let .double(d):
            // JSON has no NaN or infinity: those become strings.
            if d.isNaN { out += "\"nan\"" } else if d.isInfinite { out += d < 0 ? "\"-inf\"" : "\"inf\"" } else { out += "\(d)" }
        case let .string(s): JSONValue.escape(s, into: &out)
        case let .array(items):
            if items.isEmpty { out += "[]"; return }
            if items.allSatisfy(\.isScalar) {
                out += "["
                for (i, item) in items.enumerated() {
                    if i > 0 { out += ", " }
                    item.render(into: &out, indent: indent)
                }
                out += "]"
                return
            }
            out += "[\n"
            for (i, item) in items.enumerated() {
                out += String(repeating: " ", count: indent + 2)
                item.render(into: &out, indent: indent + 2)
                out += i + 1 < items.count ? ",\n" : "\n"
            }
            out += String(repeating: " ", count: indent) + "]"
        case let .object(pairs):
            if pairs.isEmpty { out += "{}"; return }
            out += "{\n"
            for (i, (k, v)) in pairs.enumerated() {
                out += String(repeating: " ", count: indent + 2)
                JSONValue.escape(k, into: &out)
                out += ": "
                v.render(into: &out, indent: indent + 2)
                out += i + 1 < pairs.count ? ",\n" : "\n"
            }
            out += String(repeating: " ", count: indent) + "}"
        }
    }

    private var isScalar: Bool {
        switch self {
        case .array, .object: false
        default: true
        }
    }

    private static func escape(_ s: String, into out: inout String) {
        out += "\""
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if ch.value < 0x20 {
                    let h = String(ch.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(ch)
                }
            }
        }
        out += "\""
    }
}
