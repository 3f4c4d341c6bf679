#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A parsed GGUF file. Opened from a path, it memory-maps the file read-only and owns
/// the mapping until it is deinitialized; tensor data is handed out as views into the
/// mapping, valid as long as this object lives. Everything in the header has been
/// validated against the file's size before `init` returns.
public final class GGUFFile: @unchecked Sendable {
    // The mapping is immutable after init; the class is Sendable because nothing mutates.
    private let base: UnsafeRawPointer?
    private let mappedLength: Int
    private let ownsMapping: Bool

    /// The path given to `init(path:)`, or "<memory>".
    public let path: String
    /// 2 or 3.
    public let version: UInt32
    public let metadata: GGUFMetadata
    /// Tensors in file order.
    public let tensors: [GGUFTensorInfo]
    /// general.alignment, or 32 when absent.
    public let alignment: Int
    /// Absolute offset of the data section.
    public let dataOffset: Int
    public let fileSize: Int
    private let tensorIndex: [String: Int]

    /// Maps and parses the file at `path`.
    public init(path: String) throws(GGUFError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            if e == ENOENT || e == ENOTDIR { throw .fileNotFound(path: path) }
            throw .unreadable(path: path, errno: e)
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadable(path: path, errno: errno) }
        let fileType = st.st_mode & S_IFMT
        if fileType == S_IFDIR { throw .isDirectory(path: path) }
        guard fileType == S_IFREG else { throw .notARegularFile(path: path) }
        let size = Int(st.st_size)
        guard size > 0 else { throw .emptyFile(path: path) }
        guard let m = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
            throw .mapFailed(path: path, errno: errno)
        }
        let layout: GGUFLayout
        do {
            layout = try GGUFParser.parse(UnsafeRawBufferPointer(start: m, count: size))
        } catch {
            munmap(m, size)
            throw error
        }
        base = UnsafeRawPointer(m)
        mappedLength = size
        ownsMapping = true
        version = layout.version
        metadata = layout.metadata
        tensors = layout.tensors
        alignment = layout.alignment
        dataOffset = layout.dataOffset
        fileSize = layout.fileSize
        tensorIndex = Self.index(layout.tensors)
    }

    /// Parses GGUF bytes held in memory (copied), through the same parser as a mapped file.
    public init(bytes: [UInt8]) throws(GGUFError) {
        path = "<memory>"
        let copy: UnsafeMutableRawPointer? = bytes.isEmpty
            ? nil : UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 64)
        if let copy { bytes.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(copy), byteCount: $0.count) } }
        let layout: GGUFLayout
        do {
            layout = try GGUFParser.parse(UnsafeRawBufferPointer(start: copy, count: bytes.count))
        } catch {
            copy?.deallocate()
            throw error
        }
        base = copy.map { UnsafeRawPointer($0) }
        mappedLength = bytes.count
        ownsMapping = false
        version = layout.version
        metadata = layout.metadata
        tensors = layout.tensors
        alignment = layout.alignment
        dataOffset = layout.dataOffset
        fileSize = layout.fileSize
        tensorIndex = Self.index(layout.tensors)
    }

    /// Validates GGUF bytes without keeping them: returns normally or throws a GGUFError.
    public static func validate(_ bytes: UnsafeRawBufferPointer) throws(GGUFError) {
        _ = try GGUFParser.parse(bytes)
    }

    deinit {
        if let base {
            if ownsMapping {
                munmap(UnsafeMutableRawPointer(mutating: base), mappedLength)
            } else {
                UnsafeMutableRawPointer(mutating: base).deallocate()
            }
        }
    }

    private static func index(_ tensors: [GGUFTensorInfo]) -> [String: Int] {
        var d: [String: Int] = [:]
        for (i, t) in tensors.enumerated() { d[t.name] = i }
        return d
    }

    // MARK: Metadata shortcuts

    public var architecture: String? { metadata["general.architecture"]?.string }
    public var name: String? { metadata["general.name"]?.string }

    public func requireInt(_ key: String) throws(GGUFError) -> Int { try metadata.requireInt(key) }
    public func requireFloat(_ key: String) throws(GGUFError) -> Double { try metadata.requireFloat(key) }
    public func requireString(_ key: String) throws(GGUFError) -> String { try metadata.requireString(key) }

    // MARK: Tensors

    public func tensorInfo(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    public func requireTensor(_ name: String) throws(GGUFError) -> GGUFTensorInfo {
        guard let t = tensorInfo(named: name) else { throw .missingTensor(name: name) }
        return t
    }

    /// Absolute file offset of a tensor's first byte.
    public func absoluteOffset(of tensor: GGUFTensorInfo) -> Int { dataOffset + tensor.offset }

    /// The tensor's raw bytes inside the mapping (no copy). Valid while `self` lives.
    public func data(of tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + dataOffset + tensor.offset, count: tensor.byteCount)
    }

    /// Raw bytes of the tensor called `name`.
    public func data(named name: String) throws(GGUFError) -> UnsafeRawBufferPointer {
        data(of: try requireTensor(name))
    }

    /// The whole file (or buffer), e.g. for checksums of ranges.
    public var rawBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base, count: base == nil ? 0 : mappedLength)
    }
}

/// 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3) over `bytes`.
public func fnv1a64(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes {
        h ^= UInt64(b)
        h = h &* 0x0000_0100_0000_01b3
    }
    return h
}
