import CKernels

/// A small, fast, seeded generator (SplitMix64) for test and benchmark data.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    @inline(__always)
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    @inline(__always)
    public mutating func nextSignedUnit() -> Float {
        Float(Int32(truncatingIfNeeded: next() >> 32)) * (1.0 / 2_147_483_648.0)
    }
}

/// Valid random weight blocks, for tests and `bench-kernels`.
///
/// Float types get uniform values in [-1, 1). Quantized types get random bytes with
/// every fp16 scale field (d, and dmin / m where the layout has one) replaced by a small
/// finite value, so every block dequantizes to finite numbers; q8_0 is made with the
/// kernel table's quantizer when it has one (the Q8_0 activation format is the same
/// layout).
public enum RandomWeights {
    /// Byte offsets, inside one block, of the fp16 scale fields: (offset, isMin).
    /// From ggml's block layouts (Sources/CKernels/internal.h).
    public static func scaleFields(_ type: QuantType) -> [(offset: Int, isMin: Bool)] {
        switch type {
        case .f32, .f16, .bf16: []
        case .q4_0, .q5_0, .q8_0: [(0, false)]
        case .q4_1, .q5_1: [(0, false), (2, true)]
        case .q2_K: [(80, false), (82, true)] // scales[16], qs[64], d, dmin
        case .q3_K: [(108, false)] // hmask[32], qs[64], scales[12], d
        case .q4_K, .q5_K: [(0, false), (2, true)] // d, dmin, ...
        case .q6_K: [(208, false)] // ql[128], qh[64], scales[16], d
        }
    }

    /// Fills `rows` rows of `cols` elements of `type` at `out` (which must hold
    /// `rows * type.rowBytes(cols)` bytes). `cols` must be a multiple of the block size.
    public static func fill(_ type: QuantType, rows: Int, cols: Int, into out: UnsafeMutableRawPointer,
                            seed: UInt64, kernels: Kernels? = nil) throws(TensorError) {
        let rowBytes = try type.rowBytes(cols)
        var rng = SplitMix64(seed: seed)
        let count = rows * cols
        switch type {
        case .f32:
            for i in 0..<count { out.storeBytes(of: rng.nextSignedUnit(), toByteOffset: i * 4, as: Float.self) }
        case .f16:
            for i in 0..<count {
                out.storeBytes(of: roost_fp32_to_fp16(rng.nextSignedUnit()), toByteOffset: i * 2, as: UInt16.self)
            }
        case .bf16:
            for i in 0..<count {
                out.storeBytes(of: roost_fp32_to_bf16(rng.nextSignedUnit()), toByteOffset: i * 2, as: UInt16.self)
            }
        case .q8_0:
            if let q = kernels?.quantizer(forWeight: .q8_0) {
                let row = UnsafeMutablePointer<Float>.allocate(capacity: cols)
                defer { row.deallocate() }
                for r in 0..<rows {
                    for i in 0..<cols { row[i] = rng.nextSignedUnit() }
                    q(row, out + r * rowBytes, Int64(cols))
                }
            } else {
                randomBlocks(type, bytes: rows * rowBytes, out: out, rng: &rng)
            }
        case .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K:
            randomBlocks(type, bytes: rows * rowBytes, out: out, rng: &rng)
        }
    }

    private static func randomBlocks(_ type: QuantType, bytes: Int, out: UnsafeMutableRawPointer,
                                     rng: inout SplitMix64) {
        let words = bytes / 8
        for i in 0..<words { out.storeBytes(of: rng.next(), toByteOffset: i * 8, as: UInt64.self) }
        for i in (words * 8)..<bytes {
            out.storeBytes(of: UInt8(truncatingIfNeeded: rng.next()), toByteOffset: i, as: UInt8.self)
        }
        let fields = scaleFields(type)
        let blocks = bytes / type.bytesPerBlock
        for blk in 0..<blocks {
            let base = out + blk * type.bytesPerBlock
            for f in fields {
                let u = Float(rng.next() >> 40) * (1.0 / 16_777_216.0) // [0, 1)
                // d in ±[0.001, 0.011); mins positive, like ggml's quantizers make them.
                let magnitude: Float = 0.001 + 0.01 * u
                let value = f.isMin || rng.next() & 1 == 0 ? magnitude : -magnitude
                base.storeBytes(of: roost_fp32_to_fp16(value), toByteOffset: f.offset, as: UInt16.self)
            }
        }
    }
}
