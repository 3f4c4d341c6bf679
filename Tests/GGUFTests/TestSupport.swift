import Foundation
import GGUF

/// SplitMix64: small, seeded, reproducible.
struct SeededRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The enum case of a GGUFError, without its payload ("truncated", "badMagic", ...).
func caseName(_ error: GGUFError) -> String {
    Mirror(reflecting: error).children.first?.label ?? String(describing: error)
}

/// Parses in-memory bytes; returns the error case name, or "ok".
func parseOutcome(_ bytes: [UInt8]) -> String {
    do {
        _ = try GGUFFile(bytes: bytes)
        return "ok"
    } catch {
        return caseName(error)
    }
}

func randomBytes(_ n: Int, _ rng: inout SeededRNG) -> [UInt8] {
    (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
}

/// A metadata set that uses every value type, nested arrays and empty arrays.
func everyTypeMetadata() -> [(String, GGUFValue)] {
    [
        ("general.architecture", .string("llama")),
        ("general.name", .string("round trip ✓ ünïcode")),
        ("t.u8", .uint8(250)),
        ("t.i8", .int8(-120)),
        ("t.u16", .uint16(65000)),
        ("t.i16", .int16(-32000)),
        ("t.u32", .uint32(4_000_000_000)),
        ("t.i32", .int32(-2_000_000_000)),
        ("t.u64", .uint64(18_000_000_000_000_000_000)),
        ("t.i64", .int64(-9_000_000_000_000_000_000)),
        ("t.f32", .float32(3.25)),
        ("t.f64", .float64(-1.0e-300)),
        ("t.bool.true", .bool(true)),
        ("t.bool.false", .bool(false)),
        ("t.str.empty", .string("")),
        ("t.arr.u8", .array(GGUFArray(elementType: .uint8, values: [.uint8(0), .uint8(255)]))),
        ("t.arr.i8", .array(GGUFArray(elementType: .int8, values: [.int8(-128), .int8(127)]))),
        ("t.arr.u16", .array(GGUFArray(elementType: .uint16, values: [.uint16(1), .uint16(65535)]))),
        ("t.arr.i16", .array(GGUFArray(elementType: .int16, values: [.int16(-32768), .int16(7)]))),
        ("t.arr.u32", .array(GGUFArray(elementType: .uint32, values: [.uint32(1), .uint32(2), .uint32(3)]))),
        ("t.arr.i32", .array(GGUFArray(elementType: .int32, values: [.int32(-1), .int32(Int32.max)]))),
        ("t.arr.u64", .array(GGUFArray(elementType: .uint64, values: [.uint64(UInt64.max)]))),
        ("t.arr.i64", .array(GGUFArray(elementType: .int64, values: [.int64(Int64.min), .int64(5)]))),
        ("t.arr.f32", .array(GGUFArray(elementType: .float32, values: [.float32(0.5), .float32(-2)]))),
        ("t.arr.f64", .array(GGUFArray(elementType: .float64, values: [.float64(1e100), .float64(-0.25)]))),
        ("t.arr.bool", .array(GGUFArray(elementType: .bool, values: [.bool(true), .bool(false), .bool(true)]))),
        ("t.arr.str", .array(GGUFArray(elementType: .string, values: [.string("a"), .string(""), .string("<|end|>")]))),
        ("t.arr.empty", .array(GGUFArray(elementType: .uint32, values: []))),
        ("t.arr.nested", .array(GGUFArray(elementType: .array, values: [
            .array(GGUFArray(elementType: .int32, values: [.int32(1), .int32(2)])),
            .array(GGUFArray(elementType: .string, values: [.string("x")])),
            .array(GGUFArray(elementType: .array, values: [
                .array(GGUFArray(elementType: .uint8, values: [.uint8(9)])),
            ])),
        ]))),
    ]
}

/// A small valid file: a few keys and two tensors; also returns its layout.
func smallFile(alignment: Int = 32) throws -> (bytes: [UInt8], layout: GGUFWriter.Layout) {
    var rng = SeededRNG(seed: 7)
    var w = try GGUFWriter(alignment: alignment)
    w.add("general.architecture", .string("llama"))
    w.add("a.x", .uint32(7))
    w.add("a.y", .string("hello"))
    w.add("a.z", .array(GGUFArray(elementType: .uint32, values: [.uint32(1), .uint32(2)])))
    try w.addTensor(name: "t.one", type: .f32, dims: [8, 2], data: randomBytes(64, &rng))
    try w.addTensor(name: "t.two", type: .q8_0, dims: [32, 2], data: randomBytes(68, &rng))
    return w.serializeWithLayout()
}

func putLE<T: FixedWidthInteger>(_ value: T, at offset: Int, in bytes: inout [UInt8]) {
    withUnsafeBytes(of: value.littleEndian) { raw in
        for (i, b) in raw.enumerated() where offset + i < bytes.count { bytes[offset + i] = b }
    }
}

func tempDirectory(_ label: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("roost-gguf-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
