import Foundation
import Testing
import GGUF

/// Files written by GGUFWriter must read back identically in gguf-py's GGUFReader.
/// `make test` exports ROOST_PYTHON (the venv's python with gguf==0.19.0).
@Suite struct PythonRoundTripTests {
    static let env = ProcessInfo.processInfo.environment
    static let python = env["ROOST_PYTHON"]
    static let required = env["CI"] == "true"

    static var repoRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    @Test(.enabled(if: python != nil || required, "ROOST_PYTHON is not set (make test sets it); skipping the gguf-py cross-check"))
    func ggufPyReadsWhatSwiftWrites() throws {
        guard let python = Self.python else {
            Issue.record("CI=true but ROOST_PYTHON is not set: the gguf-py cross-check must run in CI")
            return
        }
        let dir = try tempDirectory("pyrt")
        defer { try? FileManager.default.removeItem(at: dir) }

        var files: [JSON] = []
        var rng = SeededRNG(seed: 42)

        // 1: every metadata type (gguf-py reads all of them), v3, default alignment.
        var a = try GGUFWriter()
        for (k, v) in everyTypeMetadata() { a.add(k, v) }
        try a.addTensor(name: "f32.3d", type: .f32, dims: [4, 3, 2], data: randomBytes(96, &rng))
        files.append(try Self.emit(a, name: "every-type.gguf", in: dir))

        // 2: a tensor of every ggml type, alignment 64.
        var b = try GGUFWriter(alignment: 64)
        b.add("general.architecture", .string("test"))
        for t in GGMLType.allCases {
            try b.addTensor(name: "t.\(t.name)", type: t, dims: [t.blockSize * 2, 3],
                            data: randomBytes(t.bytesPerBlock * 6, &rng))
        }
        files.append(try Self.emit(b, name: "every-ggml-type.gguf", in: dir))

        // 3: version 2, MoE-shaped 3-D tensor.
        var c = try GGUFWriter(version: 2)
        c.add("general.architecture", .string("olmoe"))
        c.add("olmoe.expert_count", .uint32(4))
        try c.addTensor(name: "blk.0.ffn_gate_exps.weight", type: .q8_0, dims: [64, 2, 4], data: randomBytes(34 * 2 * 2 * 4, &rng))
        try c.addTensor(name: "blk.0.ffn_down_exps.weight", type: .q4_K, dims: [256, 1, 4], data: randomBytes(144 * 4, &rng))
        files.append(try Self.emit(c, name: "v2-moe.gguf", in: dir))

        let spec = JSON.object([("files", .array(files))])
        try Data(spec.rendered().utf8).write(to: dir.appendingPathComponent("expected.json"))

        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [Self.repoRoot.appendingPathComponent("tools/gguf_roundtrip.py").path, "check", dir.path]
        let pipe = Pipe()
        p.standardError = pipe
        p.standardOutput = pipe
        try p.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: output, as: UTF8.self)
        #expect(p.terminationStatus == 0, "gguf_roundtrip.py check failed:\n\(text)")
    }

    static func emit(_ w: GGUFWriter, name: String, in dir: URL) throws -> JSON {
        let path = dir.appendingPathComponent(name).path
        try w.write(to: path)
        let f = try GGUFFile(path: path)
        var meta: [(String, JSON)] = []
        for (k, v) in f.metadata.pairs { meta.append((k, JSON.metadata(v))) }
        let tensors: [JSON] = f.tensors.map { t in
            let h = String(fnv1a64(f.data(of: t)), radix: 16)
            return .object([
                ("name", .string(t.name)), ("type", .string(t.type.name)),
                ("shape", .array(t.dims.map { .int(Int64($0)) })),
                ("offset", .int(Int64(t.offset))), ("bytes", .int(Int64(t.byteCount))),
                ("fnv1a64", .string(String(repeating: "0", count: 16 - h.count) + h)),
            ])
        }
        return .object([
            ("file", .string(name)), ("version", .int(Int64(f.version))),
            ("alignment", .int(Int64(f.alignment))), ("data_offset", .int(Int64(f.dataOffset))),
            ("metadata", .object(meta)), ("tensors", .array(tensors)),
        ])
    }
}

/// Just enough JSON for the expected-values file (ordered keys, exact numbers).
indirect enum JSON {
    case int(Int64), uint(UInt64), double(Double), bool(Bool), string(String)
    case array([JSON]), object([(String, JSON)])

    static func scalar(_ v: GGUFValue) -> JSON {
        switch v {
        case let .uint8(x): .int(Int64(x))
        case let .int8(x): .int(Int64(x))
        case let .uint16(x): .int(Int64(x))
        case let .int16(x): .int(Int64(x))
        case let .uint32(x): .int(Int64(x))
        case let .int32(x): .int(Int64(x))
        case let .uint64(x): .uint(x)
        case let .int64(x): .int(x)
        case let .float32(x): .double(Double(x))
        case let .float64(x): .double(x)
        case let .bool(x): .bool(x)
        case let .string(s): .string(s)
        case let .array(a): .object([
            ("type", .string("array")), ("element_type", .string(a.elementType.description)),
            ("values", .array(a.values.map(scalar))),
        ])
        }
    }

    static func metadata(_ v: GGUFValue) -> JSON {
        if case .array = v { return scalar(v) }
        return .object([("type", .string(v.type.description)), ("value", scalar(v))])
    }

    func rendered() -> String {
        switch self {
        case let .int(i): return String(i)
        case let .uint(u): return String(u)
        case let .double(d): return d.isFinite ? "\(d)" : "\"\(d)\""
        case let .bool(b): return b ? "true" : "false"
        case let .string(s):
            var out = "\""
            for ch in s.unicodeScalars {
                switch ch {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                default:
                    if ch.value < 0x20 {
                        let h = String(ch.value, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                    } else {
                        out.unicodeScalars.append(ch)
                    }
                }
            }
            return out + "\""
        case let .array(items): return "[" + items.map { $0.rendered() }.joined(separator: ",") + "]"
        case let .object(pairs):
            return "{" + pairs.map { JSON.string($0.0).rendered() + ":" + $0.1.rendered() }.joined(separator: ",") + "}"
        }
    }
}
