/// Errors of shapes, sizes and bounds of weight data. Each says what was expected and
/// what was found, and names the tensor when one was given.
public enum TensorError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A row length that is not a whole number of blocks.
    case notBlockMultiple(type: QuantType, elements: Int, blockSize: Int)
    /// Rows or columns negative (or zero columns).
    case invalidShape(name: String, rows: Int, cols: Int)
    /// The tensor's bytes do not fit in the bytes that back it.
    case outOfBounds(name: String, offset: Int, needed: Int, available: Int)
    /// A size computation overflowed.
    case sizeOverflow(what: String)
    /// A row range outside the matrix.
    case rowRange(name: String, lower: Int, upper: Int, rows: Int)
    /// Memory for a buffer could not be allocated.
    case allocationFailed(what: String, bytes: Int)

    public var description: String {
        switch self {
        case let .notBlockMultiple(type, elements, blockSize):
            "\(type.name): a row of \(elements) elements is not a multiple of the block size \(blockSize)"
        case let .invalidShape(name, rows, cols):
            "\(label(name))expected rows >= 0 and cols > 0, found \(rows) x \(cols)"
        case let .outOfBounds(name, offset, needed, available):
            "\(label(name))needs \(needed) bytes at offset \(offset), but only \(available) bytes are there"
        case let .sizeOverflow(what):
            "size of \(what) overflows"
        case let .rowRange(name, lower, upper, rows):
            "\(label(name))row range \(lower)..<\(upper) is outside 0..<\(rows)"
        case let .allocationFailed(what, bytes):
            "cannot allocate \(bytes) bytes for \(what)"
        }
    }

    private func label(_ name: String) -> String { name.isEmpty ? "" : "\(name): " }
}
