import Foundation
import Testing
import GGUF

@Suite struct RoundTripTests {
    @Test(arguments: [UInt32(2), 3])
    func everyMetadataTypeRoundTrips(version: UInt32) throws {
        var w = try GGUFWriter(version: version)
        for (k, v) in everyTypeMetadata() { w.add(k, v) }
        let f = try GGUFFile(bytes: w.serialize())
        #expect(f.version == version)
        #expect(f.metadata.keys == everyTypeMetadata().map(\.0))
        for (k, v) in everyTypeMetadata() {
            #expect(f.metadata[k] == v, "key \(k)")
        }
        #expect(f.tensors.isEmpty)
        #expect(f.alignment == 32)
    }

    @Test(arguments: GGMLType.allCases)
    func tensorOfEveryTypeRoundTrips(type: GGMLType) throws {
        var rng = SeededRNG(seed: UInt64(type.rawValue))
        var w = try GGUFWriter(alignment: 64)
        let ne0 = type.blockSize * 2
        let a = randomBytes(type.bytesPerBlock * 2 * 3, &rng)
        let b = randomBytes(type.bytesPerBlock * 2, &rng)
        try w.addTensor(name: "a", type: type, dims: [ne0, 3], data: a)
        try w.addTensor(name: "b", type: type, dims: [ne0], data: b)
        let (bytes, layout) = w.serializeWithLayout()
        let f = try GGUFFile(bytes: bytes)
        #expect(f.alignment == 64)
        #expect(f.dataOffset == layout.dataOffset)
        #expect(f.dataOffset % 64 == 0)
        let ta = try f.requireTensor("a")
        #expect(ta.type == type)
        #expect(ta.dims == [ne0, 3])
        #expect(ta.elementCount == ne0 * 3)
        #expect(ta.byteCount == a.count)
        #expect(Array(f.data(of: ta)) == a)
        let tb = try f.requireTensor("b")
        #expect(tb.offset % 64 == 0)
        #expect(Array(try f.data(named: "b")) == b)
        #expect(f.absoluteOffset(of: tb) == layout.tensorDataStarts[1])
        #expect(ta.rowLength == ne0 && ta.rowCount == 3 && ta.rowByteCount == type.bytesPerBlock * 2)
    }

    @Test func alignmentKeySetsWriterAlignment() throws {
        var w = try GGUFWriter()
        w.add("general.alignment", .uint32(128))
        try w.addTensor(name: "a", type: .f32, dims: [3], data: Array(repeating: 1, count: 12))
        try w.addTensor(name: "b", type: .f32, dims: [3], data: Array(repeating: 2, count: 12))
        let f = try GGUFFile(bytes: w.serialize())
        #expect(f.alignment == 128 && f.dataOffset % 128 == 0)
        #expect(try f.requireTensor("b").offset == 128)
    }

    @Test func mappedFileMatchesInMemoryParse() throws {
        let dir = try tempDirectory("mmap")
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SeededRNG(seed: 3)
        var w = try GGUFWriter()
        for (k, v) in everyTypeMetadata() { w.add(k, v) }
        let expert = randomBytes(34 * 2 * 4 * 8, &rng)
        try w.addTensor(name: "blk.0.ffn_gate_exps.weight", type: .q8_0, dims: [64, 4, 8], data: expert)
        try w.addTensor(name: "scalar", type: .f32, dims: [], data: [0, 0, 128, 63])
        let path = dir.appendingPathComponent("x.gguf").path
        try w.write(to: path)
        let mapped = try GGUFFile(path: path)
        let memory = try GGUFFile(bytes: w.serialize())
        #expect(mapped.metadata == memory.metadata)
        #expect(mapped.tensors == memory.tensors)
        #expect(mapped.fileSize == memory.fileSize)
        #expect(mapped.path == path)
        #expect(Array(try mapped.data(named: "blk.0.ffn_gate_exps.weight")) == expert)
        let s = try mapped.data(named: "scalar")
        #expect(s.loadUnaligned(as: Float.self) == 1.0)
        #expect(mapped.architecture == "llama")
        #expect(mapped.name == "round trip ✓ ünïcode")
        // No temporary file is left behind.
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(left == ["x.gguf"])
    }

    @Test func typedAccessors() throws {
        var w = try GGUFWriter()
        for (k, v) in everyTypeMetadata() { w.add(k, v) }
        let f = try GGUFFile(bytes: w.serialize())
        let m = f.metadata
        #expect(m["t.u8"]?.uint64 == 250)
        #expect(m["t.i8"]?.uint64 == nil)
        #expect(m["t.i8"]?.int64 == -120)
        #expect(m["t.u64"]?.int64 == nil)
        #expect(m["t.u32"]?.int == 4_000_000_000)
        #expect(m["t.f32"]?.double == 3.25)
        #expect(m["t.f32"]?.float == 3.25)
        #expect(m["t.bool.true"]?.bool == true)
        #expect(m["general.architecture"]?.string == "llama")
        #expect(m["t.arr.u32"]?.array?.count == 3)
        #expect(m["t.arr.empty"]?.typedArray?.elementType == .uint32)
        #expect(try f.requireInt("t.u16") == 65000)
        #expect(try f.requireInt("t.i32") == -2_000_000_000)
        #expect(try f.requireInt("t.u8") == 250)
        #expect(try f.requireFloat("t.f64") == -1.0e-300)
        #expect(try f.requireFloat("t.f32") == 3.25)
        #expect(try f.requireFloat("t.u16") == 65000)
        #expect(try f.requireString("general.architecture") == "llama")
        #expect(try m.requireBool("t.bool.false") == false)
        #expect(try m.requireArray("t.arr.str").count == 3)
        #expect(throws: GGUFError.missingKey(key: "nope")) { try f.requireInt("nope") }
        #expect(throws: GGUFError.wrongType(key: "general.name", expected: "an integer", found: "string")) {
            try f.requireInt("general.name")
        }
        #expect(throws: GGUFError.valueOutOfRange(
            key: "t.u64", expected: "an integer in Int range", found: "18000000000000000000")) {
            try f.requireInt("t.u64")
        }
        #expect(throws: GGUFError.wrongType(key: "t.u8", expected: "string", found: "uint8")) {
            try f.requireString("t.u8")
        }
        #expect(throws: GGUFError.wrongType(key: "t.arr.u8", expected: "a float", found: "array[uint8]")) {
            try f.requireFloat("t.arr.u8")
        }
        #expect(throws: GGUFError.missingTensor(name: "x")) { try f.requireTensor("x") }
        // Messages name the key.
        #expect(GGUFError.missingKey(key: "llama.block_count").description.contains("llama.block_count"))
    }

    @Test func ggmlTypeTable() {
        #expect(GGMLType.allCases.count == 34)
        #expect(GGMLType.q4_K.bytesPerBlock == 144 && GGMLType.q4_K.blockSize == 256)
        #expect(GGMLType.q6_K.bytesPerBlock == 210)
        #expect(GGMLType.q8_0.bytesPerBlock == 34 && GGMLType.q8_0.blockSize == 32)
        #expect(GGMLType(name: "iq2_xxs") == .iq2_XXS)
        #expect(GGMLType(rawValue: 4) == nil)
        #expect(GGMLType.q4_0.byteCount(elements: 64) == 36)
        #expect(GGMLType.q4_0.byteCount(elements: 63) == nil)
    }

    @Test func writerRejectsBadInput() throws {
        #expect(throws: GGUFError.self) { try GGUFWriter(alignment: 48) }
        #expect(throws: GGUFError.self) { try GGUFWriter(version: 1) }
        var w = try GGUFWriter()
        #expect(throws: GGUFError.self) { try w.addTensor(name: "a", type: .q8_0, dims: [16], data: []) }
        #expect(throws: GGUFError.self) { try w.addTensor(name: "a", type: .f32, dims: [2], data: [0]) }
        try w.addTensor(name: "a", type: .f32, dims: [1], data: [0, 0, 0, 0])
        #expect(throws: GGUFError.duplicateTensor(name: "a")) {
            try w.addTensor(name: "a", type: .f32, dims: [1], data: [0, 0, 0, 0])
        }
    }

    @Test func fnv1aKnownValues() {
        #expect([UInt8]().withUnsafeBytes { fnv1a64($0) } == 0xcbf2_9ce4_8422_2325)
        #expect(Array("a".utf8).withUnsafeBytes { fnv1a64($0) } == 0xaf63_dc4c_8601_ec8c)
        #expect(Array("foobar".utf8).withUnsafeBytes { fnv1a64($0) } == 0x85944171f73967e8)
    }
}
