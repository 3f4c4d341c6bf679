#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An owned, zero-initialized, aligned byte buffer (weights made in memory, scratch).
///
/// `@unchecked Sendable`: the pointer and size never change after init; the bytes are
/// shared memory whose writers and readers the user orders (as with mmapped files).
public final class AlignedBuffer: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer
    public let byteCount: Int
    public let alignment: Int

    /// Allocates `byteCount` zeroed bytes aligned to `alignment` (a power of two, at least
    /// the pointer size). Returns nil when the allocation fails or the arguments are invalid.
    public init?(byteCount: Int, alignment: Int = 64) {
        guard byteCount >= 0, alignment >= MemoryLayout<UnsafeRawPointer>.size,
              alignment & (alignment - 1) == 0
        else { return nil }
        var p: UnsafeMutableRawPointer?
        guard posix_memalign(&p, alignment, max(byteCount, 1)) == 0, let p else { return nil }
        memset(p, 0, max(byteCount, 1))
        pointer = p
        self.byteCount = byteCount
        self.alignment = alignment
    }

    deinit { free(pointer) }

    /// The buffer's bytes as a raw buffer pointer.
    public var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: pointer, count: byteCount)
    }
}

/// A view of a weight matrix: `rows` rows of `cols` elements of `type`, row r at
/// `base + r * rowBytes`, rows packed. The bytes live in an mmapped file or an owned
/// buffer; bounds are checked once, at creation.
///
/// `@unchecked Sendable`: immutable; the bytes are read-only weights, and the optional
/// owner keeps them alive.
public struct WeightMatrix: @unchecked Sendable, CustomStringConvertible {
    public let type: QuantType
    public let rows: Int
    public let cols: Int
    /// Bytes of one row.
    public let rowBytes: Int
    /// The first byte of row 0.
    public let base: UnsafeRawPointer
    /// The tensor's name, for error messages ("" when none).
    public let name: String
    /// Keeps the memory alive (an `AlignedBuffer`, a mapped file object), or nil when
    /// the caller guarantees the lifetime.
    public let owner: AnyObject?

    /// A view of `rows x cols` elements of `type` at `offset` into a region of
    /// `available` bytes starting at `region`.
    /// Throws when the shape is invalid, `cols` is not a multiple of the block size, or
    /// the bytes do not fit inside the region.
    public init(type: QuantType, rows: Int, cols: Int, region: UnsafeRawPointer, available: Int,
                offset: Int = 0, name: String = "", owner: AnyObject? = nil) throws(TensorError) {
        guard rows >= 0, cols > 0 else { throw .invalidShape(name: name, rows: rows, cols: cols) }
        let rowBytes: Int
        do { rowBytes = try type.rowBytes(cols) } catch {
            throw .notBlockMultiple(type: type, elements: cols, blockSize: type.blockSize)
        }
        let (total, overflow) = rows.multipliedReportingOverflow(by: rowBytes)
        guard !overflow else { throw .sizeOverflow(what: "\(name.isEmpty ? "matrix" : name) \(rows) x \(cols) \(type.name)") }
        guard offset >= 0, available >= 0, offset <= available, total <= available - offset else {
            throw .outOfBounds(name: name, offset: offset, needed: total, available: available)
        }
        self.type = type
        self.rows = rows
        self.cols = cols
        self.rowBytes = rowBytes
        self.base = region + offset
        self.name = name
        self.owner = owner
    }

    /// A view into an owned buffer; the view keeps the buffer alive.
    public init(type: QuantType, rows: Int, cols: Int, buffer: AlignedBuffer, offset: Int = 0,
                name: String = "") throws(TensorError) {
        try self.init(type: type, rows: rows, cols: cols, region: UnsafeRawPointer(buffer.pointer),
                      available: buffer.byteCount, offset: offset, name: name, owner: buffer)
    }

    /// The same matrix read from a copy of its bytes at `base` (an expert's slot in a
    /// buffer pool): same type, shape and row alignment; `owner` (or the caller) keeps
    /// the copy alive.
    public func relocated(to base: UnsafeRawPointer, owner: AnyObject?) -> WeightMatrix {
        WeightMatrix(unchecked: type, rows: rows, cols: cols, rowBytes: rowBytes, base: base, name: name, owner: owner)
    }

    private init(unchecked type: QuantType, rows: Int, cols: Int, rowBytes: Int, base: UnsafeRawPointer,
                 name: String, owner: AnyObject?) {
        self.type = type
        self.rows = rows
        self.cols = cols
        self.rowBytes = rowBytes
        self.base = base
        self.name = name
        self.owner = owner
    }

    /// Bytes of the whole matrix.
    public var byteCount: Int { rows * rowBytes }

    /// The start of row `r` (0 <= r < rows; checked).
    public func row(_ r: Int) -> UnsafeRawPointer {
        precondition(r >= 0 && r < rows, "row \(r) outside 0..<\(rows)")
        return base + r * rowBytes
    }

    /// The rows `range` as a matrix of their own (an expert's slice, a head's rows).
    public func rows(_ range: Range<Int>) throws(TensorError) -> WeightMatrix {
        guard range.lowerBound >= 0, range.upperBound <= rows else {
            throw .rowRange(name: name, lower: range.lowerBound, upper: range.upperBound, rows: rows)
        }
        return WeightMatrix(unchecked: type, rows: range.count, cols: cols, rowBytes: rowBytes,
                            base: base + range.lowerBound * rowBytes, name: name, owner: owner)
    }

    public var description: String {
        "\(name.isEmpty ? "matrix" : name) [\(rows), \(cols)] \(type.name)"
    }
}
