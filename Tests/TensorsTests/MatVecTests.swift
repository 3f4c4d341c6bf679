import CKernels
import Testing
@testable import Tensors

/// Error bound of one output of matvec against the exact product of the dequantized
/// weights with the unquantized activations.
///
/// Activation rounding: each activation element is stored as q * d with q = round(x / d)
/// (clamped to [-127, 127], or -128 for Q8_K), d derived from the block's largest |x|
/// (amax / 127 for Q8_0/Q8_1, stored as fp16; amax / 128 for Q8_K); so
/// |x - x̂| <= d/2 + 127 |d - fp16(d)| < amax / 127 for every format. The product's error
/// from it is at most Σ_i |w_i| · amax(block of i) / 127.
/// Q8_1's block sum s (multiplied with the weight block's min m in q4_1 / q5_1) is stored
/// as fp16: at most |m| · |Σ x̂| · 2^-11 more per block (we allow 2^-9).
/// Float rounding of the kernel's accumulation: cols · 2^-22 · Σ |w_i| |x_i|.
func errorBound(_ w: WeightMatrix, row r: Int, wf: [Float], x: [Float]) -> Double {
    let n = w.cols
    var sumAbs = 0.0
    for i in 0..<n { sumAbs += abs(Double(wf[i]) * Double(x[i])) }
    var bound = Double(n) * 0x1p-22 * sumAbs
    let format = w.type.activationFormat
    guard format != .f32 else { return bound + 1e-30 }
    let ab = format.blockSize
    for start in stride(from: 0, to: n, by: ab) {
        let amax = x[start..<start + ab].map { abs(Double($0)) }.max() ?? 0
        var wAbs = 0.0
        for i in start..<start + ab { wAbs += abs(Double(wf[i])) }
        bound += wAbs * amax / 127 * (1 + 0x1p-10)
    }
    if format == .q8_1, let minField = RandomWeights.scaleFields(w.type).first(where: \.isMin) {
        for blk in 0..<(n / w.type.blockSize) {
            let m = roost_fp16_to_fp32(w.row(r).load(fromByteOffset: blk * w.type.bytesPerBlock + minField.offset,
                                                     as: UInt16.self))
            let s = x[blk * 32..<(blk + 1) * 32].reduce(0.0) { $0 + Double($1) }
            bound += abs(Double(m)) * (abs(s) + 1) * 0x1p-9
        }
    }
    return bound
}

@Suite struct MatVecTests {
    /// Weight types the ref path can multiply (and dequantize, for the oracle).
    static var refTypes: [QuantType] {
        QuantType.allCases.filter { refKernels.supports($0) && refKernels.dequantize($0) != nil }
    }

    @Test(arguments: QuantType.allCases)
    func matvecMatchesFloat64Reference(_ type: QuantType) throws {
        try #require(MatVecTests.refTypes.contains(type), "the ref path cannot multiply or dequantize \(type)")
        let pool = WorkerPool(threads: 2)
        let cols = 512, rows = 37
        let w = try makeMatrix(type, rows: rows, cols: cols, seed: 11 + UInt64(type.rawValue))
        let x = randomVector(cols, seed: 99)
        for kernels in availablePaths where kernels.supports(type) {
            let y = try runMatvec(w, x, pool: pool, kernels: kernels)
            for r in 0..<rows {
                let wf = try #require(dequantizedRow(w, r))
                var exact = 0.0
                for i in 0..<cols { exact += Double(wf[i]) * Double(x[i]) }
                let bound = errorBound(w, row: r, wf: wf, x: x)
                #expect(abs(Double(y[r]) - exact) <= bound,
                        "\(kernels.path) \(type) row \(r): \(y[r]) vs \(exact), bound \(bound)")
            }
        }
    }

    @Test(arguments: QuantType.allCases)
    func everyPathAgreesWithRef(_ type: QuantType) throws {
        try #require(refKernels.supports(type), "the ref path cannot multiply \(type)")
        let pool = WorkerPool(threads: 1)
        let cols = 768, rows = 19
        let w = try makeMatrix(type, rows: rows, cols: cols, seed: 5)
        let x = randomVector(cols, seed: 6)
        let reference = try runMatvec(w, x, pool: pool, kernels: refKernels)
        for kernels in availablePaths where kernels.path != .ref && kernels.supports(type) {
            let y = try runMatvec(w, x, pool: pool, kernels: kernels)
            for r in 0..<rows {
                guard let wf = dequantizedRow(w, r) else { continue }
                var sumAbs = 0.0
                for i in 0..<cols { sumAbs += abs(Double(wf[i]) * Double(x[i])) }
                // Same quantized activations; only the order of float sums may differ.
                let bound = Double(cols) * 0x1p-21 * sumAbs + 1e-30
                #expect(abs(Double(y[r]) - Double(reference[r])) <= bound,
                        "\(kernels.path) \(type) row \(r): \(y[r]) vs ref \(reference[r])")
            }
        }
    }

    @Test(arguments: QuantType.allCases)
    func resultsIndependentOfThreadCount(_ type: QuantType) throws {
        let cols = 256
        let rowBytes = try type.rowBytes(cols)
        let rows = rowGranule(rowBytes) * 3 + 7 // every thread of 3 gets rows
        let w = try makeMatrix(type, rows: rows, cols: cols, seed: 21)
        let x = randomVector(cols, seed: 22)
        let pools = [1, 2, 3].map { WorkerPool(threads: $0) }
        for kernels in availablePaths where kernels.supports(type) {
            let ys = try pools.map { try runMatvec(w, x, pool: $0, kernels: kernels) }
            #expect(bitsEqual(ys[0], ys[1]), "\(kernels.path) \(type): 1 vs 2 threads")
            #expect(bitsEqual(ys[0], ys[2]), "\(kernels.path) \(type): 1 vs 3 threads")
            #expect(!ys[0].contains { $0.isNaN })
            let batched = try pools.map { try runMatmul(w, x + x, batch: 2, pool: $0, kernels: kernels) }
            #expect(bitsEqual(batched[0], batched[2]), "\(kernels.path) \(type) matmul: 1 vs 3 threads")
        }
    }

    @Test(arguments: QuantType.allCases)
    func matmulColumnsEqualMatvec(_ type: QuantType) throws {
        // 5 columns: activations quantized on the calling thread; 12: on the pool.
        for batch in [5, 12] { try matmulColumnsEqualMatvec(type, batch: batch) }
    }

    private func matmulColumnsEqualMatvec(_ type: QuantType, batch: Int) throws {
        let cols = 256, rows = 45
        let w = try makeMatrix(type, rows: rows, cols: cols, seed: 31)
        let x = randomVector(cols * batch, seed: 32)
        let pool = WorkerPool(threads: 2)
        for kernels in availablePaths where kernels.supports(type) {
            let y = try runMatmul(w, x, batch: batch, pool: pool, kernels: kernels)
            for c in 0..<batch {
                let single = try runMatvec(w, Array(x[c * cols..<(c + 1) * cols]), pool: pool, kernels: kernels)
                #expect(bitsEqual(Array(y[c * rows..<(c + 1) * rows]), single),
                        "\(kernels.path) \(type): batch column \(c) differs from matvec")
            }
        }
    }

    /// The OpenBLAS path for float weights: close to matvec, but not promised bitwise
    /// (docs/PERFORMANCE.md records what was measured).
    @Test(arguments: [QuantType.f32, .f16, .bf16])
    func blasMatmulCloseToMatvec(_ type: QuantType) throws {
        let cols = 320, rows = 50, batch = 7
        let w = try makeMatrix(type, rows: rows, cols: cols, seed: 41)
        let x = randomVector(cols * batch, seed: 42)
        let pool = WorkerPool(threads: 2)
        let kernels = Kernels.best
        guard kernels.supports(type) else { return }
        let y = try runMatmul(w, x, batch: batch, pool: pool, kernels: kernels, mode: .blas)
        for c in 0..<batch {
            let xc = Array(x[c * cols..<(c + 1) * cols])
            let single = try runMatvec(w, xc, pool: pool, kernels: kernels)
            for r in 0..<rows {
                let wf = try #require(dequantizedRow(w, r))
                var sumAbs = 0.0
                for i in 0..<cols { sumAbs += abs(Double(wf[i]) * Double(xc[i])) }
                #expect(abs(Double(y[c * rows + r]) - Double(single[r])) <= Double(cols) * 0x1p-21 * sumAbs)
            }
        }
    }

    @Test func scratchRejectsBadSizes() {
        #expect(throws: TensorError.invalidShape(name: "scratch", rows: 1, cols: 0)) {
            try MatScratch(maxCols: 0, threads: 1)
        }
    }
}
