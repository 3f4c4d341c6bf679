import Foundation
import Testing
import GGUF

/// One way to break a valid file, and the error case it must produce.
struct Breakage: CustomStringConvertible, Sendable {
    let description: String
    let expected: String
    let make: @Sendable () throws -> [UInt8]
}

private func patched(_ edit: @escaping @Sendable (inout [UInt8], GGUFWriter.Layout) -> Void) -> @Sendable () throws -> [UInt8] {
    {
        var (bytes, layout) = try smallFile()
        edit(&bytes, layout)
        return bytes
    }
}

private func truncatedAt(_ cut: @escaping @Sendable (GGUFWriter.Layout) -> Int) -> @Sendable () throws -> [UInt8] {
    {
        let (bytes, layout) = try smallFile()
        return Array(bytes.prefix(cut(layout)))
    }
}

private func written(_ build: @escaping @Sendable (inout GGUFWriter) throws -> Void) -> @Sendable () throws -> [UInt8] {
    {
        var w = try GGUFWriter()
        try build(&w)
        return w.serialize()
    }
}

private func nested(_ depth: Int) -> GGUFValue {
    var v = GGUFValue.uint8(1)
    for _ in 0..<depth { v = .array(GGUFArray(elementType: v.type, values: [v])) }
    return v
}

// smallFile(): keys general.architecture, a.x (uint32), a.y (string), a.z (array of uint32);
// tensors t.one (F32 [8, 2]) and t.two (Q8_0 [32, 2]).
let breakages: [Breakage] = [
    // Truncation at and inside every section.
    Breakage(description: "empty", expected: "truncated", make: { [] }),
    Breakage(description: "cut in magic", expected: "truncated", make: truncatedAt { _ in 2 }),
    Breakage(description: "cut after magic", expected: "truncated", make: truncatedAt { _ in 4 }),
    Breakage(description: "cut in version", expected: "truncated", make: truncatedAt { _ in 6 }),
    Breakage(description: "cut in tensor count", expected: "truncated", make: truncatedAt { _ in 12 }),
    Breakage(description: "cut in kv count", expected: "truncated", make: truncatedAt { _ in 20 }),
    Breakage(description: "cut after counts", expected: "countTooLarge", make: truncatedAt { _ in 24 }),
    Breakage(description: "cut in a key", expected: "stringTooLong", make: truncatedAt { $0.kvStarts[1] + 10 }),
    Breakage(description: "cut in a key length", expected: "truncated", make: truncatedAt { $0.kvStarts[3] + 3 }),
    Breakage(description: "cut in a value type", expected: "truncated", make: truncatedAt { $0.valueStarts[1] - 2 }),
    Breakage(description: "cut in a uint32 value", expected: "truncated", make: truncatedAt { $0.valueStarts[1] + 2 }),
    Breakage(description: "cut in a string value", expected: "stringTooLong", make: truncatedAt { $0.valueStarts[2] + 9 }),
    Breakage(description: "cut in an array", expected: "arrayTooLong", make: truncatedAt { $0.valueStarts[3] + 14 }),
    Breakage(description: "cut in an array header", expected: "truncated", make: truncatedAt { $0.valueStarts[3] + 6 }),
    Breakage(description: "cut at tensor info", expected: "truncated", make: truncatedAt { $0.tensorInfos[1].infoStart }),
    Breakage(description: "cut in tensor dims", expected: "truncated", make: truncatedAt { $0.tensorInfos[1].dimFields[1] + 1 }),
    Breakage(description: "cut in tensor offset", expected: "truncated", make: truncatedAt { $0.tensorInfos[1].offsetField + 4 }),
    Breakage(description: "cut in padding", expected: "truncated", make: truncatedAt { $0.paddingStart + 1 }),
    Breakage(description: "cut at data", expected: "tensorOutOfBounds", make: truncatedAt { $0.dataOffset }),
    Breakage(description: "cut in last tensor", expected: "tensorOutOfBounds", make: truncatedAt { $0.fileSize - 1 }),

    // Header fields.
    Breakage(description: "wrong magic", expected: "badMagic", make: patched { b, _ in b[0] = UInt8(ascii: "X") }),
    Breakage(description: "version 1", expected: "unsupportedVersion", make: patched { b, l in putLE(UInt32(1), at: l.versionField, in: &b) }),
    Breakage(description: "version 4", expected: "unsupportedVersion", make: patched { b, l in putLE(UInt32(4), at: l.versionField, in: &b) }),
    Breakage(description: "big-endian version", expected: "bigEndian", make: patched { b, l in putLE(UInt32(3).byteSwapped, at: l.versionField, in: &b) }),
    Breakage(description: "huge tensor count", expected: "countTooLarge", make: patched { b, l in putLE(UInt64.max, at: l.tensorCountField, in: &b) }),
    Breakage(description: "huge kv count", expected: "countTooLarge", make: patched { b, l in putLE(UInt64(1) << 40, at: l.kvCountField, in: &b) }),

    // Metadata.
    Breakage(description: "huge key length", expected: "stringTooLong", make: patched { b, l in putLE(UInt64.max, at: l.kvStarts[1], in: &b) }),
    Breakage(description: "huge string length", expected: "stringTooLong", make: patched { b, l in putLE(UInt64(1) << 62, at: l.valueStarts[2], in: &b) }),
    Breakage(description: "huge array length", expected: "arrayTooLong", make: patched { b, l in putLE(UInt64.max, at: l.valueStarts[3] + 4, in: &b) }),
    Breakage(description: "unknown value type", expected: "unknownValueType", make: patched { b, l in putLE(UInt32(13), at: l.valueStarts[1] - 4, in: &b) }),
    Breakage(description: "unknown array element type", expected: "unknownValueType", make: patched { b, l in putLE(UInt32(99), at: l.valueStarts[3], in: &b) }),
    Breakage(description: "duplicate key", expected: "duplicateKey", make: patched { b, l in b[l.valueStarts[2] - 5] = UInt8(ascii: "x") }),
    Breakage(description: "nesting too deep", expected: "nestingTooDeep", make: written { $0.add("deep", nested(9)) }),
    Breakage(description: "alignment 0", expected: "badAlignment", make: written { $0.add("general.alignment", .uint32(0)) }),
    Breakage(description: "alignment 48", expected: "badAlignment", make: written { $0.add("general.alignment", .uint32(48)) }),
    Breakage(description: "alignment as uint64", expected: "badAlignment", make: written { $0.add("general.alignment", .uint64(32)) }),

    // Tensor table.
    Breakage(description: "duplicate tensor", expected: "duplicateTensor", make: patched { b, l in
        b[l.tensorInfos[1].nDimsField - 3] = UInt8(ascii: "o"); b[l.tensorInfos[1].nDimsField - 2] = UInt8(ascii: "n")
        b[l.tensorInfos[1].nDimsField - 1] = UInt8(ascii: "e") }),
    Breakage(description: "5 dims", expected: "tooManyDimensions", make: patched { b, l in putLE(UInt32(5), at: l.tensorInfos[0].nDimsField, in: &b) }),
    Breakage(description: "zero dim", expected: "badDimension", make: patched { b, l in putLE(UInt64(0), at: l.tensorInfos[0].dimFields[1], in: &b) }),
    Breakage(description: "dim above Int.max", expected: "badDimension", make: patched { b, l in putLE(UInt64.max, at: l.tensorInfos[0].dimFields[1], in: &b) }),
    Breakage(description: "overflowing dims", expected: "elementCountOverflow", make: patched { b, l in
        putLE(UInt64(1) << 40, at: l.tensorInfos[0].dimFields[0], in: &b)
        putLE(UInt64(1) << 40, at: l.tensorInfos[0].dimFields[1], in: &b) }),
    Breakage(description: "overflowing byte size", expected: "elementCountOverflow", make: patched { b, l in
        putLE(UInt64(1) << 32, at: l.tensorInfos[0].dimFields[0], in: &b)
        putLE(UInt64(1) << 30, at: l.tensorInfos[0].dimFields[1], in: &b) }),
    Breakage(description: "row not whole blocks", expected: "rowNotWholeBlocks", make: patched { b, l in putLE(UInt64(16), at: l.tensorInfos[1].dimFields[0], in: &b) }),
    Breakage(description: "unknown type 4", expected: "unknownTensorType", make: patched { b, l in putLE(UInt32(4), at: l.tensorInfos[0].typeField, in: &b) }),
    Breakage(description: "unknown type 1000", expected: "unknownTensorType", make: patched { b, l in putLE(UInt32(1000), at: l.tensorInfos[0].typeField, in: &b) }),
    Breakage(description: "misaligned offset", expected: "misalignedTensor", make: patched { b, l in putLE(UInt64(68), at: l.tensorInfos[1].offsetField, in: &b) }),
    Breakage(description: "tensor out of bounds", expected: "tensorOutOfBounds", make: patched { b, l in putLE(UInt64(4096), at: l.tensorInfos[1].offsetField, in: &b) }),
    Breakage(description: "tensor end overflows", expected: "tensorOutOfBounds", make: patched { b, l in putLE(UInt64.max - 31, at: l.tensorInfos[1].offsetField, in: &b) }),
    Breakage(description: "overlapping tensors", expected: "overlappingTensors", make: patched { b, l in putLE(UInt64(32), at: l.tensorInfos[1].offsetField, in: &b) }),
    Breakage(description: "same offset", expected: "overlappingTensors", make: patched { b, l in putLE(UInt64(0), at: l.tensorInfos[1].offsetField, in: &b) }),
]

@Suite struct BrokenFileTests {
    @Test func baseFileIsValid() throws {
        let (bytes, layout) = try smallFile()
        let f = try GGUFFile(bytes: bytes)
        #expect(f.tensors.map(\.name) == ["t.one", "t.two"])
        #expect(f.dataOffset == layout.dataOffset)
        #expect(layout.tensorInfos[1].offsetField > 0)
    }

    @Test(arguments: breakages)
    func brokenFileGivesItsError(_ b: Breakage) throws {
        let bytes = try b.make()
        #expect(parseOutcome(bytes) == b.expected, "\(b.description)")
    }

    @Test func everyPrefixIsRejected() throws {
        let (bytes, _) = try smallFile()
        for n in 0..<bytes.count {
            #expect(parseOutcome(Array(bytes.prefix(n))) != "ok", "prefix \(n)")
        }
    }

    @Test func errorsNameTheirField() throws {
        let (bytes, layout) = try smallFile()
        var b = bytes
        putLE(UInt32(1000), at: layout.tensorInfos[1].typeField, in: &b)
        #expect(throws: GGUFError.unknownTensorType(tensor: "t.two", found: 1000)) { try GGUFFile(bytes: b) }
        b = bytes
        putLE(UInt64(1) << 62, at: layout.valueStarts[2], in: &b)
        do {
            _ = try GGUFFile(bytes: b)
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("a.y"))
        }
        #expect(throws: GGUFError.truncated(field: "version", offset: 4, needed: 4, available: 2)) {
            try GGUFFile(bytes: Array(bytes.prefix(6)))
        }
    }

    @Test func fileSystemErrors() throws {
        let dir = try tempDirectory("fs")
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("missing.gguf").path
        #expect(throws: GGUFError.fileNotFound(path: missing)) { try GGUFFile(path: missing) }
        #expect(throws: GGUFError.isDirectory(path: dir.path)) { try GGUFFile(path: dir.path) }
        let empty = dir.appendingPathComponent("empty.gguf").path
        #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
        #expect(throws: GGUFError.emptyFile(path: empty)) { try GGUFFile(path: empty) }
        #expect(throws: GGUFError.notARegularFile(path: "/dev/null")) { try GGUFFile(path: "/dev/null") }
        let locked = dir.appendingPathComponent("locked.gguf").path
        try GGUFWriter.writeAtomically(try smallFile().bytes, to: locked)
        chmod(locked, 0)
        if getuid() != 0 {
            #expect(throws: GGUFError.unreadable(path: locked, errno: EACCES)) { try GGUFFile(path: locked) }
        }
        let truncated = dir.appendingPathComponent("truncated.gguf").path
        try GGUFWriter.writeAtomically(Array(try smallFile().bytes.dropLast(5)), to: truncated)
        #expect(throws: GGUFError.self) { try GGUFFile(path: truncated) }
    }
}
