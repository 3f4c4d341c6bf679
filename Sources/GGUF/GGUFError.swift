/// Everything that can be wrong with a GGUF file. Each case names the field, key or
/// tensor concerned and says what was expected and what was found.
public enum GGUFError: Error, Equatable, Sendable, CustomStringConvertible {
    // Opening the file.
    case fileNotFound(path: String)
    case isDirectory(path: String)
    case notARegularFile(path: String)
    case unreadable(path: String, errno: Int32)
    case emptyFile(path: String)
    case mapFailed(path: String, errno: Int32)

    // Header.
    /// Fewer bytes remain than `field` needs.
    case truncated(field: String, offset: Int, needed: Int, available: Int)
    case badMagic(found: UInt32)
    /// The magic is right but the version field reads as a byte-swapped small number.
    case bigEndian(version: UInt32)
    case unsupportedVersion(found: UInt32)
    /// A count (tensors, key/value pairs) is larger than the rest of the file could hold.
    case countTooLarge(field: String, count: UInt64, maximum: UInt64)

    // Metadata.
    case stringTooLong(field: String, length: UInt64, remaining: Int)
    case arrayTooLong(key: String, length: UInt64, maximum: UInt64)
    case nestingTooDeep(key: String, depth: Int, maximum: Int)
    case unknownValueType(key: String, found: UInt32)
    case duplicateKey(key: String)
    case badAlignment(found: String)

    // Tensor table.
    case duplicateTensor(name: String)
    case tooManyDimensions(tensor: String, found: UInt32, maximum: Int)
    case badDimension(tensor: String, index: Int, found: UInt64)
    case elementCountOverflow(tensor: String)
    case unknownTensorType(tensor: String, found: UInt32)
    case rowNotWholeBlocks(tensor: String, type: String, ne0: Int, blockSize: Int)
    case misalignedTensor(tensor: String, offset: UInt64, alignment: Int)
    case tensorOutOfBounds(tensor: String, start: UInt64, end: UInt64, dataSize: Int)
    case overlappingTensors(first: String, second: String, firstEnd: UInt64, secondStart: UInt64)

    // Typed access.
    case missingKey(key: String)
    case wrongType(key: String, expected: String, found: String)
    case valueOutOfRange(key: String, expected: String, found: String)
    case missingTensor(name: String)

    // Writing.
    case invalidTensor(name: String, reason: String)
    case writeFailed(path: String, errno: Int32)

    public var description: String {
        switch self {
        case let .fileNotFound(path): "\(path): no such file"
        case let .isDirectory(path): "\(path): is a directory, expected a GGUF file"
        case let .notARegularFile(path): "\(path): not a regular file"
        case let .unreadable(path, e): "\(path): cannot open (errno \(e))"
        case let .emptyFile(path): "\(path): empty file, expected a GGUF header"
        case let .mapFailed(path, e): "\(path): mmap failed (errno \(e))"
        case let .truncated(field, offset, needed, available):
            "truncated file: \(field) at offset \(offset) needs \(needed) bytes, found \(available)"
        case let .badMagic(found):
            "bad magic: expected 0x46554747 (\"GGUF\"), found 0x\(String(found, radix: 16))"
        case let .bigEndian(version):
            "big-endian GGUF (version field reads 0x\(String(version, radix: 16))): only little-endian files are supported"
        case let .unsupportedVersion(found): "unsupported GGUF version: expected 2 or 3, found \(found)"
        case let .countTooLarge(field, count, maximum):
            "\(field) is \(count), but the rest of the file can hold at most \(maximum) (truncated or corrupt file?)"
        case let .stringTooLong(field, length, remaining):
            "\(field): string length \(length) exceeds the \(remaining) bytes remaining"
        case let .arrayTooLong(key, length, maximum):
            "metadata \(key): array length \(length) exceeds what the file can hold (at most \(maximum))"
        case let .nestingTooDeep(key, depth, maximum):
            "metadata \(key): arrays nested \(depth) deep, at most \(maximum) allowed"
        case let .unknownValueType(key, found): "metadata \(key): unknown value type \(found), expected 0...12"
        case let .duplicateKey(key): "metadata key \(key) appears more than once"
        case let .badAlignment(found):
            "general.alignment: expected a nonzero power of two (uint32), found \(found)"
        case let .duplicateTensor(name): "tensor \(name) appears more than once"
        case let .tooManyDimensions(tensor, found, maximum):
            "tensor \(tensor): \(found) dimensions, at most \(maximum)"
        case let .badDimension(tensor, index, found):
            "tensor \(tensor): dimension \(index) is \(found), expected 1...\(Int.max)"
        case let .elementCountOverflow(tensor): "tensor \(tensor): element count or byte size overflows 64 bits"
        case let .unknownTensorType(tensor, found): "tensor \(tensor): unknown ggml type id \(found)"
        case let .rowNotWholeBlocks(tensor, type, ne0, blockSize):
            "tensor \(tensor): row length \(ne0) is not a multiple of \(type)'s block size \(blockSize)"
        case let .misalignedTensor(tensor, offset, alignment):
            "tensor \(tensor): data offset \(offset) is not a multiple of the alignment \(alignment)"
        case let .tensorOutOfBounds(tensor, start, end, dataSize):
            "tensor \(tensor): data range \(start)..<\(end) lies outside the data section (\(dataSize) bytes)"
        case let .overlappingTensors(first, second, firstEnd, secondStart):
            "tensors \(first) and \(second) overlap: \(first) ends at \(firstEnd), \(second) starts at \(secondStart)"
        case let .missingKey(key): "metadata key \(key) is missing"
        case let .wrongType(key, expected, found): "metadata \(key): expected \(expected), found \(found)"
        case let .valueOutOfRange(key, expected, found): "metadata \(key): expected \(expected), found \(found)"
        case let .missingTensor(name): "tensor \(name) is missing"
        case let .invalidTensor(name, reason): "tensor \(name): \(reason)"
        case let .writeFailed(path, e): "\(path): write failed (errno \(e))"
        }
    }
}
