/// Magic "GGUF" read as a little-endian u32.
let ggufMagic: UInt32 = 0x4655_4747
let ggufMaxDims = 4
let ggufMaxArrayNesting = 8
let ggufDefaultAlignment = 32

/// Description of one tensor in the tensor table.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// Dimensions in ggml order: ne0 (the contiguous row length) first.
    public let dims: [Int]
    public let type: GGMLType
    /// Offset of the data from the start of the data section.
    public let offset: Int
    public let byteCount: Int
    public let elementCount: Int

    public init(name: String, dims: [Int], type: GGMLType, offset: Int, byteCount: Int, elementCount: Int) {
        self.name = name
        self.dims = dims
        self.type = type
        self.offset = offset
        self.byteCount = byteCount
        self.elementCount = elementCount
    }

    /// Elements in one row (ne0; 1 for a scalar).
    public var rowLength: Int { dims.first ?? 1 }
    /// Number of rows (the product of ne1, ne2, ne3).
    public var rowCount: Int { elementCount / rowLength }
    /// Bytes of one row: ne0 / blockSize blocks.
    public var rowByteCount: Int { rowLength / type.blockSize * type.bytesPerBlock }
}

/// What the parser found in a header, with every range checked against `fileSize`.
struct GGUFLayout: Sendable {
    var version: UInt32
    var metadata: GGUFMetadata
    var tensors: [GGUFTensorInfo]
    var alignment: Int
    var dataOffset: Int
    var fileSize: Int
}

/// A bounds-checked little-endian reader. Every read checks the remaining length first.
struct ByteCursor {
    let base: UnsafeRawBufferPointer
    var position: Int = 0

    var remaining: Int { base.count - position }

    mutating func require(_ n: Int, _ field: @autoclosure () -> String) throws(GGUFError) {
        guard n >= 0, n <= remaining else {
            throw .truncated(field: field(), offset: position, needed: n, available: max(0, remaining))
        }
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ field: @autoclosure () -> String) throws(GGUFError) -> T {
        let size = MemoryLayout<T>.size
        try require(size, field())
        let v = base.loadUnaligned(fromByteOffset: position, as: T.self)
        position += size
        return T(littleEndian: v)
    }

    mutating func readString(_ field: @autoclosure () -> String) throws(GGUFError) -> String {
        let length = try read(UInt64.self, field() + " (string length)")
        guard length <= UInt64(remaining) else {
            throw .stringTooLong(field: field(), length: length, remaining: remaining)
        }
        let n = Int(length)
        let start = position
        position += n
        guard n > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(rebasing: base[start..<(start + n)]), as: UTF8.self)
    }
}

enum GGUFParser {
    /// Parses and validates the header, metadata and tensor table of the GGUF bytes in
    /// `bytes`. Reads only inside `bytes`; the tensor data is checked, never read.
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(GGUFError) -> GGUFLayout {
        var c = ByteCursor(base: bytes)
        let magic = try c.read(UInt32.self, "magic")
        guard magic == ggufMagic else { throw .badMagic(found: magic) }
        let version = try c.read(UInt32.self, "version")
        if version != 2 && version != 3 {
            if version & 0xFFFF == 0 && version.byteSwapped >= 1 && version.byteSwapped <= 3 {
                throw .bigEndian(version: version)
            }
            throw .unsupportedVersion(found: version)
        }
        let tensorCount = try c.read(UInt64.self, "tensor_count")
        let kvCount = try c.read(UInt64.self, "metadata_kv_count")

        // Smallest encodings: a key/value pair is 8 (key length) + 4 (type) + 1 byte;
        // a tensor info is 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset).
        let rest = UInt64(c.remaining)
        let maxKV = rest / 13
        guard kvCount <= maxKV else {
            throw .countTooLarge(field: "metadata_kv_count", count: kvCount, maximum: maxKV)
        }
        let maxTensors = rest / 24
        guard tensorCount <= maxTensors else {
            throw .countTooLarge(field: "tensor_count", count: tensorCount, maximum: maxTensors)
        }

        var metadata = GGUFMetadata()
        for i in 0..<Int(kvCount) {
            let key = try c.readString("metadata key #\(i)")
            let rawType = try c.read(UInt32.self, "type of metadata \(key)")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw .unknownValueType(key: key, found: rawType)
            }
            let value = try readValue(&c, type: type, key: key, depth: 0)
            guard metadata.insert(key, value) else { throw .duplicateKey(key: key) }
        }

        var alignment = ggufDefaultAlignment
        if let a = metadata["general.alignment"] {
            guard case let .uint32(v) = a, v != 0, v & (v - 1) == 0, v <= 1 << 30 else {
                throw .badAlignment(found: "\(a.typeName) \(a.description)")
            }
            alignment = Int(v)
        }

        var infos: [GGUFTensorInfo] = []
        infos.reserveCapacity(Int(tensorCount))
        var names = Set<String>()
        var rawOffsets: [UInt64] = []
        for i in 0..<Int(tensorCount) {
            let name = try c.readString("tensor #\(i) name")
            guard names.insert(name).inserted else { throw .duplicateTensor(name: name) }
            let nDims = try c.read(UInt32.self, "tensor \(name) n_dims")
            guard nDims <= UInt32(ggufMaxDims) else {
                throw .tooManyDimensions(tensor: name, found: nDims, maximum: ggufMaxDims)
            }
            var dims: [Int] = []
            var elements = 1
            for d in 0..<Int(nDims) {
                let ne = try c.read(UInt64.self, "tensor \(name) dimension \(d)")
                guard ne > 0, let n = Int(exactly: ne) else {
                    throw .badDimension(tensor: name, index: d, found: ne)
                }
                let (p, overflow) = elements.multipliedReportingOverflow(by: n)
                guard !overflow else { throw .elementCountOverflow(tensor: name) }
                elements = p
                dims.append(n)
            }
            let rawType = try c.read(UInt32.self, "tensor \(name) type")
            guard let type = GGMLType(rawValue: rawType) else {
                throw .unknownTensorType(tensor: name, found: rawType)
            }
            let offset = try c.read(UInt64.self, "tensor \(name) offset")
            let ne0 = dims.first ?? 1
            guard ne0 % type.blockSize == 0 else {
                throw .rowNotWholeBlocks(tensor: name, type: type.name, ne0: ne0, blockSize: type.blockSize)
            }
            guard let bytes = type.byteCount(elements: elements) else {
                throw .elementCountOverflow(tensor: name)
            }
            guard offset % UInt64(alignment) == 0 else {
                throw .misalignedTensor(tensor: name, offset: offset, alignment: alignment)
            }
            rawOffsets.append(offset)
            infos.append(GGUFTensorInfo(
                name: name, dims: dims, type: type,
                offset: Int(clamping: offset), byteCount: bytes, elementCount: elements))
        }

        // The data section starts at the next multiple of the alignment.
        let headerEnd = c.position
        let padding = (alignment - headerEnd % alignment) % alignment
        let dataOffset = headerEnd + padding
        if !infos.isEmpty {
            try c.require(padding, "padding before the data section")
        }
        let dataSize = max(0, bytes.count - dataOffset)

        for (i, info) in infos.enumerated() {
            let start = rawOffsets[i]
            let (end, overflow) = start.addingReportingOverflow(UInt64(info.byteCount))
            guard !overflow, end <= UInt64(dataSize) else {
                throw .tensorOutOfBounds(
                    tensor: info.name, start: start, end: overflow ? UInt64.max : end, dataSize: dataSize)
            }
        }
        let order = infos.indices.sorted { rawOffsets[$0] < rawOffsets[$1] }
        for (a, b) in zip(order, order.dropFirst()) {
            let endA = rawOffsets[a] + UInt64(infos[a].byteCount)
            // Zero-size tensors cannot exist (every dim is > 0), so equal starts overlap.
            if endA > rawOffsets[b] {
                throw .overlappingTensors(
                    first: infos[a].name, second: infos[b].name, firstEnd: endA, secondStart: rawOffsets[b])
            }
        }

        return GGUFLayout(
            version: version, metadata: metadata, tensors: infos,
            alignment: alignment, dataOffset: dataOffset, fileSize: bytes.count)
    }

    private static func readValue(
        _ c: inout ByteCursor, type: GGUFValueType, key: String, depth: Int
    ) throws(GGUFError) -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try c.read(UInt8.self, "value of \(key)"))
        case .int8: return .int8(try c.read(Int8.self, "value of \(key)"))
        case .uint16: return .uint16(try c.read(UInt16.self, "value of \(key)"))
        case .int16: return .int16(try c.read(Int16.self, "value of \(key)"))
        case .uint32: return .uint32(try c.read(UInt32.self, "value of \(key)"))
        case .int32: return .int32(try c.read(Int32.self, "value of \(key)"))
        case .uint64: return .uint64(try c.read(UInt64.self, "value of \(key)"))
        case .int64: return .int64(try c.read(Int64.self, "value of \(key)"))
        case .float32: return .float32(Float(bitPattern: try c.read(UInt32.self, "value of \(key)")))
        case .float64: return .float64(Double(bitPattern: try c.read(UInt64.self, "value of \(key)")))
        case .bool: return .bool(try c.read(UInt8.self, "value of \(key)") != 0)
        case .string: return .string(try c.readString("value of \(key)"))
        case .array:
            guard depth < ggufMaxArrayNesting else {
                throw .nestingTooDeep(key: key, depth: depth + 1, maximum: ggufMaxArrayNesting)
            }
            let rawType = try c.read(UInt32.self, "array element type of \(key)")
            guard let elementType = GGUFValueType(rawValue: rawType) else {
                throw .unknownValueType(key: key, found: rawType)
            }
            let length = try c.read(UInt64.self, "array length of \(key)")
            let maximum = UInt64(c.remaining / elementType.minimumEncodedSize)
            guard length <= maximum else { throw .arrayTooLong(key: key, length: length, maximum: maximum) }
            var values: [GGUFValue] = []
            values.reserveCapacity(Int(length))
            for _ in 0..<Int(length) {
                values.append(try readValue(&c, type: elementType, key: key, depth: depth + 1))
            }
            return .array(GGUFArray(elementType: elementType, values: values))
        }
    }
}
