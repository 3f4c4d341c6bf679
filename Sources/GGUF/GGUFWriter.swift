#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds GGUF files (v3 by default, v2 on request) for tests and tools. Metadata is
/// written in insertion order, tensors in insertion order, each aligned to `alignment`.
public struct GGUFWriter: Sendable {
    public struct Tensor: Sendable {
        public var name: String
        public var type: GGMLType
        /// ggml order, ne0 first.
        public var dims: [Int]
        public var data: [UInt8]
    }

    /// Where the pieces of a serialized file start; used by tests that break files.
    public struct Layout: Sendable {
        public struct TensorFields: Sendable {
            public var infoStart: Int
            public var nDimsField: Int
            public var dimFields: [Int]
            public var typeField: Int
            public var offsetField: Int
        }
        public var versionField = 4
        public var tensorCountField = 8
        public var kvCountField = 16
        /// Start of each key/value pair, and of each value (after key and type).
        public var kvStarts: [Int] = []
        public var valueStarts: [Int] = []
        public var tensorInfos: [TensorFields] = []
        /// End of the tensor table, where padding begins.
        public var paddingStart = 0
        public var dataOffset = 0
        public var tensorDataStarts: [Int] = []
        public var fileSize = 0
    }

    public var version: UInt32
    public private(set) var alignment: Int
    public private(set) var metadata: [(key: String, value: GGUFValue)] = []
    public private(set) var tensors: [Tensor] = []

    /// `alignment` must be a nonzero power of two; when it is not 32 it is also written as
    /// general.alignment (uint32).
    public init(version: UInt32 = 3, alignment: Int = 32) throws(GGUFError) {
        guard alignment > 0, alignment & (alignment - 1) == 0, alignment <= 1 << 30 else {
            throw .badAlignment(found: "\(alignment)")
        }
        guard version == 2 || version == 3 else { throw .unsupportedVersion(found: version) }
        self.version = version
        self.alignment = alignment
        if alignment != 32 { metadata.append(("general.alignment", .uint32(UInt32(alignment)))) }
    }

    /// Adds a key (a later value for the same key replaces the earlier one in place).
    /// A valid general.alignment (uint32, nonzero power of two) also sets `alignment`;
    /// an invalid one is written as given, which tests use to make broken files.
    public mutating func add(_ key: String, _ value: GGUFValue) {
        if key == "general.alignment", case let .uint32(a) = value, a != 0, a & (a - 1) == 0, a <= 1 << 30 {
            alignment = Int(a)
        }
        if let i = metadata.firstIndex(where: { $0.key == key }) {
            metadata[i].value = value
        } else {
            metadata.append((key, value))
        }
    }

    /// Adds a tensor of raw bytes; `data.count` must match the type and dims.
    public mutating func addTensor(name: String, type: GGMLType, dims: [Int], data: [UInt8]) throws(GGUFError) {
        guard !tensors.contains(where: { $0.name == name }) else { throw .duplicateTensor(name: name) }
        guard dims.count <= ggufMaxDims, dims.allSatisfy({ $0 > 0 }) else {
            throw .invalidTensor(name: name, reason: "dims \(dims): expected 0...4 dimensions, each > 0")
        }
        var elements = 1
        for d in dims {
            let (p, o) = elements.multipliedReportingOverflow(by: d)
            guard !o else { throw .elementCountOverflow(tensor: name) }
            elements = p
        }
        guard (dims.first ?? 1) % type.blockSize == 0, let bytes = type.byteCount(elements: elements) else {
            throw .rowNotWholeBlocks(tensor: name, type: type.name, ne0: dims.first ?? 1, blockSize: type.blockSize)
        }
        guard bytes == data.count else {
            throw .invalidTensor(name: name, reason: "expected \(bytes) bytes of \(type.name) data, got \(data.count)")
        }
        tensors.append(Tensor(name: name, type: type, dims: dims, data: data))
    }

    /// The file's bytes.
    public func serialize() -> [UInt8] { serializeWithLayout().bytes }

    public func serializeWithLayout() -> (bytes: [UInt8], layout: Layout) {
        var out: [UInt8] = []
        var layout = Layout()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func str(_ s: String) {
            let utf8 = Array(s.utf8)
            u64(UInt64(utf8.count))
            out.append(contentsOf: utf8)
        }
        func value(_ v: GGUFValue) {
            switch v {
            case let .uint8(x): out.append(x)
            case let .int8(x): out.append(UInt8(bitPattern: x))
            case let .uint16(x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case let .int16(x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case let .uint32(x): u32(x)
            case let .int32(x): u32(UInt32(bitPattern: x))
            case let .uint64(x): u64(x)
            case let .int64(x): u64(UInt64(bitPattern: x))
            case let .float32(x): u32(x.bitPattern)
            case let .float64(x): u64(x.bitPattern)
            case let .bool(x): out.append(x ? 1 : 0)
            case let .string(s): str(s)
            case let .array(a):
                u32(a.elementType.rawValue)
                u64(UInt64(a.values.count))
                for e in a.values { value(e) }
            }
        }
        u32(ggufMagic)
        u32(version)
        u64(UInt64(tensors.count))
        u64(UInt64(metadata.count))
        for (k, v) in metadata {
            layout.kvStarts.append(out.count)
            str(k)
            u32(v.type.rawValue)
            layout.valueStarts.append(out.count)
            value(v)
        }
        var offsets: [Int] = []
        var next = 0
        for t in tensors {
            offsets.append(next)
            next += t.data.count
            next += (alignment - next % alignment) % alignment
        }
        for (i, t) in tensors.enumerated() {
            var f = Layout.TensorFields(infoStart: out.count, nDimsField: 0, dimFields: [], typeField: 0, offsetField: 0)
            str(t.name)
            f.nDimsField = out.count
            u32(UInt32(t.dims.count))
            for d in t.dims {
                f.dimFields.append(out.count)
                u64(UInt64(d))
            }
            f.typeField = out.count
            u32(t.type.rawValue)
            f.offsetField = out.count
            u64(UInt64(offsets[i]))
            layout.tensorInfos.append(f)
        }
        layout.paddingStart = out.count
        out.append(contentsOf: repeatElement(0, count: (alignment - out.count % alignment) % alignment))
        layout.dataOffset = out.count
        for (i, t) in tensors.enumerated() {
            layout.tensorDataStarts.append(out.count)
            out.append(contentsOf: t.data)
            if i + 1 < tensors.count {
                out.append(contentsOf: repeatElement(0, count: (alignment - out.count % alignment) % alignment))
            }
        }
        layout.fileSize = out.count
        return (out, layout)
    }

    /// Writes the file atomically: a temporary file in the same directory, fsync, rename.
    public func write(to path: String) throws(GGUFError) {
        try Self.writeAtomically(serialize(), to: path)
    }

    /// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync of the directory).
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws(GGUFError) {
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .writeFailed(path: tmp, errno: errno) }
        var failure: Int32 = 0
        bytes.withUnsafeBytes { buf in
            var done = 0
            while done < buf.count, let p = buf.baseAddress {
                let n = Glibc.write(fd, p + done, buf.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                done += n
            }
        }
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        close(fd)
        if failure == 0 && rename(tmp, path) != 0 { failure = errno }
        guard failure == 0 else {
            unlink(tmp)
            throw .writeFailed(path: path, errno: failure)
        }
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let dfd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }
}
