import CKernels

/// A compiled set of kernels: portable C (`ref`) or one SIMD instruction set.
public enum KernelPath: Int32, CaseIterable, Sendable, CustomStringConvertible {
    case ref = 0
    case avx2 = 1
    case avx512 = 2
    case neon = 3

    /// Parses "ref", "avx2", "avx512", "neon" (case-insensitive).
    public init?(name: String) {
        switch name.lowercased() {
        case "ref": self = .ref
        case "avx2": self = .avx2
        case "avx512": self = .avx512
        case "neon": self = .neon
        default: return nil
        }
    }

    public var name: String {
        switch self {
        case .ref: "ref"
        case .avx2: "avx2"
        case .avx512: "avx512"
        case .neon: "neon"
        }
    }

    public var description: String { name }

    /// Compiled into this binary and supported by the running CPU.
    public var isAvailable: Bool { roost_path_available(rawValue) != 0 }

    /// The paths this binary can run on this CPU, slowest first.
    public static var available: [KernelPath] { allCases.filter(\.isAvailable) }

    /// The fastest available path.
    public static var best: KernelPath { KernelPath(rawValue: roost_path_best()) ?? .ref }
}

/// Why `Kernels.select(environment:)` refused a path.
public enum KernelSelectionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// ROOST_KERNELS names no known path.
    case unknownPath(value: String, available: [KernelPath])
    /// The path is known but this binary or this CPU cannot run it.
    case unavailable(path: KernelPath, available: [KernelPath])

    public var description: String {
        switch self {
        case let .unknownPath(value, available):
            "ROOST_KERNELS=\(value): expected one of ref, avx2, avx512, neon; available on this CPU: \(available.map(\.name).joined(separator: ", "))"
        case let .unavailable(path, available):
            "ROOST_KERNELS=\(path.name): this CPU or build cannot run the \(path.name) kernels; available: \(available.map(\.name).joined(separator: ", "))"
        }
    }
}

/// CPU features as the C library detected them at start-up (for reporting).
public struct CPUFeatures: Sendable, Equatable, CustomStringConvertible {
    public var avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, avx512bf16: Bool
    public var neon, dotprod, i8mm: Bool

    public static var current: CPUFeatures {
        let c = roost_cpu_features_get()
        return CPUFeatures(
            avx2: c.avx2 != 0, fma: c.fma != 0, f16c: c.f16c != 0, avx512f: c.avx512f != 0,
            avx512bw: c.avx512bw != 0, avx512vl: c.avx512vl != 0, avx512vnni: c.avx512vnni != 0,
            avx512bf16: c.avx512bf16 != 0, neon: c.neon != 0, dotprod: c.dotprod != 0, i8mm: c.i8mm != 0)
    }

    /// Names of the features present, in a fixed order ("avx2", "fma", ...).
    public var names: [String] {
        let all: [(String, Bool)] = [
            ("avx2", avx2), ("fma", fma), ("f16c", f16c), ("avx512f", avx512f), ("avx512bw", avx512bw),
            ("avx512vl", avx512vl), ("avx512vnni", avx512vnni), ("avx512bf16", avx512bf16),
            ("neon", neon), ("dotprod", dotprod), ("i8mm", i8mm),
        ]
        return all.filter(\.1).map(\.0)
    }

    public var description: String { names.isEmpty ? "(none)" : names.joined(separator: " ") }
}

/// One path's kernel table, copied out of the C table once.
///
/// `@unchecked Sendable`: the value is immutable after init; it holds pointers to C
/// functions with static storage that keep no mutable global state (the C contract:
/// kernels only read their inputs and write their outputs), so calling them from any
/// thread is safe.
public struct Kernels: @unchecked Sendable {
    public let path: KernelPath
    @usableFromInline let quantizers: [roost_quantize_fn?]
    @usableFromInline let dequantizers: [roost_dequantize_fn?]
    @usableFromInline let gemvs: [roost_gemv_fn?]
    @usableFromInline let gemms: [roost_gemm_fn?]
    private let refGemvs: [roost_gemv_fn?]
    /// The RWKV recurrences (RWKV-5/6 and RWKV-7); nil only in a broken build.
    public let wkv6: roost_wkv6_fn?
    public let wkv7: roost_wkv7_fn?

    /// The kernels of `path`. Throws when the path is not available here.
    public init(path: KernelPath) throws(KernelSelectionError) {
        guard let table = roost_kernels_for(path.rawValue),
              let ref = roost_kernels_for(KernelPath.ref.rawValue)
        else { throw .unavailable(path: path, available: KernelPath.available) }
        self.path = path
        quantizers = Kernels.entries(table.pointee.quantize, roost_quantize_fn?.self)
        dequantizers = Kernels.entries(table.pointee.dequantize, roost_dequantize_fn?.self)
        gemvs = Kernels.entries(table.pointee.gemv, roost_gemv_fn?.self)
        gemms = Kernels.entries(table.pointee.gemm, roost_gemm_fn?.self)
        refGemvs = Kernels.entries(ref.pointee.gemv, roost_gemv_fn?.self)
        wkv6 = table.pointee.wkv6
        wkv7 = table.pointee.wkv7
    }

    /// The path ROOST_KERNELS names (ref|avx2|avx512|neon), or the fastest one when the
    /// variable is unset or empty. Throws for an unknown name or an unavailable path; the
    /// message lists the available ones.
    public static func select(environment: [String: String]) throws(KernelSelectionError) -> Kernels {
        guard let value = environment["ROOST_KERNELS"], !value.isEmpty else {
            return try Kernels(path: KernelPath.best)
        }
        guard let path = KernelPath(name: value) else {
            throw .unknownPath(value: value, available: KernelPath.available)
        }
        guard path.isAvailable else { throw .unavailable(path: path, available: KernelPath.available) }
        return try Kernels(path: path)
    }

    /// The fastest path on this CPU (ref is always available, so this cannot fail in
    /// practice; a failure would mean a broken C library and falls back to an empty table).
    public static var best: Kernels {
        (try? Kernels(path: KernelPath.best)) ?? Kernels.empty
    }

    private init(emptyPath: KernelPath) {
        path = emptyPath
        let n = Int(ROOST_TYPE_COUNT.rawValue)
        quantizers = Array(repeating: nil, count: n)
        dequantizers = Array(repeating: nil, count: n)
        gemvs = Array(repeating: nil, count: n)
        gemms = Array(repeating: nil, count: n)
        refGemvs = Array(repeating: nil, count: n)
        wkv6 = nil
        wkv7 = nil
    }

    static let empty = Kernels(emptyPath: .ref)

    private static func entries<Tuple, F>(_ tuple: Tuple, _: F.Type) -> [F] {
        withUnsafeBytes(of: tuple) { raw in
            let n = raw.count / MemoryLayout<F>.stride
            return (0..<n).map { raw.load(fromByteOffset: $0 * MemoryLayout<F>.stride, as: F.self) }
        }
    }

    // MARK: lookups

    /// True when this path can multiply weights of `type` (a gemv and, for quantized
    /// types, the activation quantizer exist).
    public func supports(_ type: QuantType) -> Bool {
        guard gemv(type) != nil, gemm(type) != nil else { return false }
        return type.isFloat || quantize(type.activationFormat) != nil
    }

    /// True when this path has a gemv of its own for `type` (not the ref fallback).
    public func hasNativeGemv(_ type: QuantType) -> Bool {
        guard let g = gemv(type) else { return false }
        if path == .ref { return true }
        guard let r = refGemvs[Int(type.rawValue)] else { return true }
        return unsafeBitCast(g, to: UnsafeRawPointer.self) != unsafeBitCast(r, to: UnsafeRawPointer.self)
    }

    @inlinable public func gemv(_ type: QuantType) -> roost_gemv_fn? { gemvs[Int(type.rawValue)] }
    @inlinable public func gemm(_ type: QuantType) -> roost_gemm_fn? { gemms[Int(type.rawValue)] }
    @inlinable public func dequantize(_ type: QuantType) -> roost_dequantize_fn? { dequantizers[Int(type.rawValue)] }
    @inlinable public func dequantize(_ format: ActivationFormat) -> roost_dequantize_fn? { dequantizers[Int(format.rawValue)] }
    /// The quantizer of an activation format (nil for `.f32`, which needs none).
    @inlinable public func quantize(_ format: ActivationFormat) -> roost_quantize_fn? {
        format == .f32 ? nil : quantizers[Int(format.rawValue)]
    }
    /// The quantizer the table has for a weight type's own format, if any (activation
    /// formats only: in practice q8_0).
    @inlinable public func quantizer(forWeight type: QuantType) -> roost_quantize_fn? {
        quantizers[Int(type.rawValue)]
    }
}
