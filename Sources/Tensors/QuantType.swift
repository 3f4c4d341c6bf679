import CKernels

/// A weight element type Roost computes with, keyed by its ggml type id (as GGUF files
/// store it). Block layouts are ggml's (see Sources/CKernels/internal.h).
///
/// Rule: no `default:` in a switch over `QuantType`, so adding a case makes the compiler
/// list every place that must learn it.
public enum QuantType: UInt32, CaseIterable, Sendable, CustomStringConvertible {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q5_0 = 6
    case q5_1 = 7
    case q8_0 = 8
    case q2_K = 10
    case q3_K = 11
    case q4_K = 12
    case q5_K = 13
    case q6_K = 14
    case bf16 = 30

    /// The type for a ggml type id, or nil when Roost does not compute with it.
    public init?(ggmlType id: UInt32) {
        self.init(rawValue: id)
    }

    /// Parses ggml's name ("q4_K", "Q4_K", "bf16"), case-insensitively.
    public init?(name: String) {
        let lower = name.lowercased()
        guard let t = QuantType.allCases.first(where: { $0.name.lowercased() == lower }) else { return nil }
        self = t
    }

    /// The ggml type id.
    public var ggmlType: UInt32 { rawValue }

    /// ggml's name: "f32", "q4_0", "q4_K", ...
    public var name: String {
        switch self {
        case .f32: "f32"
        case .f16: "f16"
        case .bf16: "bf16"
        case .q4_0: "q4_0"
        case .q4_1: "q4_1"
        case .q5_0: "q5_0"
        case .q5_1: "q5_1"
        case .q8_0: "q8_0"
        case .q2_K: "q2_K"
        case .q3_K: "q3_K"
        case .q4_K: "q4_K"
        case .q5_K: "q5_K"
        case .q6_K: "q6_K"
        }
    }

    public var description: String { name }

    /// Elements per block (1 for the float types). Equal to the C traits' `block_size`
    /// (checked by a test).
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0: 32
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K: 256
        }
    }

    /// Bytes per block. Equal to the C traits' `type_size` (checked by a test).
    public var bytesPerBlock: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        case .q4_0: 18
        case .q4_1: 20
        case .q5_0: 22
        case .q5_1: 24
        case .q8_0: 34
        case .q2_K: 84
        case .q3_K: 110
        case .q4_K: 144
        case .q5_K: 176
        case .q6_K: 210
        }
    }

    /// The format the activation vector is converted to before it is multiplied with a
    /// row of this type (the C traits' `vec_dot_type`, checked by a test).
    public var activationFormat: ActivationFormat {
        switch self {
        case .f32, .f16, .bf16: .f32
        case .q4_0, .q5_0, .q8_0: .q8_0
        case .q4_1, .q5_1: .q8_1
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K: .q8_K
        }
    }

    /// True for f32, f16 and bf16 (activations stay floats).
    public var isFloat: Bool { activationFormat == .f32 }

    /// The C library's traits of this type, or nil if the C side does not know it
    /// (never for a type listed here; a test checks).
    public var traits: roost_type_traits? {
        roost_type_traits_get(Int32(rawValue))?.pointee
    }

    /// Bytes of one row of `n` elements.
    /// Throws when `n` is negative or not a multiple of the block size.
    public func rowBytes(_ n: Int) throws(TensorError) -> Int {
        guard n >= 0, n % blockSize == 0 else {
            throw .notBlockMultiple(type: self, elements: n, blockSize: blockSize)
        }
        let (bytes, overflow) = (n / blockSize).multipliedReportingOverflow(by: bytesPerBlock)
        guard !overflow else { throw .sizeOverflow(what: "\(n) elements of \(name)") }
        return bytes
    }
}

/// The activation formats the kernels multiply weight rows with.
public enum ActivationFormat: Int32, CaseIterable, Sendable, CustomStringConvertible {
    /// Plain floats (for float weights).
    case f32 = 0
    /// Blocks of 32: fp16 scale + 32 int8 (for q4_0, q5_0, q8_0).
    case q8_0 = 8
    /// Blocks of 32: fp16 scale, fp16 scaled sum + 32 int8 (for q4_1, q5_1).
    case q8_1 = 9
    /// Blocks of 256: float scale, 256 int8, 16 int16 partial sums (for the K-quants).
    case q8_K = 15

    public var name: String {
        switch self {
        case .f32: "f32"
        case .q8_0: "q8_0"
        case .q8_1: "q8_1"
        case .q8_K: "q8_K"
        }
    }

    public var description: String { name }

    /// The ggml type id of the format (the index into the kernel tables' `quantize`).
    public var ggmlType: Int32 { rawValue }

    public var blockSize: Int {
        switch self {
        case .f32: 1
        case .q8_0, .q8_1: 32
        case .q8_K: 256
        }
    }

    public var bytesPerBlock: Int {
        switch self {
        case .f32: 4
        case .q8_0: 34
        case .q8_1: 36
        case .q8_K: 292
        }
    }

    /// Bytes of one activation row of `n` elements (n a multiple of the block size).
    public func rowBytes(_ n: Int) -> Int { n / blockSize * bytesPerBlock }

    /// Upper bound of `rowBytes(n)` over every format, rounded up to 64 bytes, for
    /// sizing scratch: n rounded up to 256 elements.
    public static func maxRowBytes(_ n: Int) -> Int {
        let padded = (n + 255) / 256 * 256
        let most = allCases.map { $0.rowBytes(padded) }.max() ?? padded * 4
        return (most + 63) / 64 * 64
    }
}
