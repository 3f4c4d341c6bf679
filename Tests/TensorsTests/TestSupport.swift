import CKernels
@testable import Tensors

let refKernels: Kernels = (try? Kernels(path: .ref)) ?? Kernels.best

/// Every available path (ref first).
let availablePaths: [Kernels] = KernelPath.available.compactMap { try? Kernels(path: $0) }

/// Random valid weights of `type`, owned by the returned matrix.
func makeMatrix(_ type: QuantType, rows: Int, cols: Int, seed: UInt64) throws -> WeightMatrix {
    let bytes = try type.rowBytes(cols) * rows
    guard let buffer = AlignedBuffer(byteCount: bytes) else {
        throw TensorError.allocationFailed(what: "test matrix", bytes: bytes)
    }
    try RandomWeights.fill(type, rows: rows, cols: cols, into: buffer.pointer, seed: seed, kernels: refKernels)
    return try WeightMatrix(type: type, rows: rows, cols: cols, buffer: buffer, name: "test.\(type.name)")
}

func randomVector(_ n: Int, seed: UInt64) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<n).map { _ in rng.nextSignedUnit() }
}

/// Row r of w as floats, with the ref path's dequantizer.
func dequantizedRow(_ w: WeightMatrix, _ r: Int) -> [Float]? {
    guard let dq = refKernels.dequantize(w.type) else { return nil }
    var out = [Float](repeating: 0, count: w.cols)
    out.withUnsafeMutableBufferPointer { dq(w.row(r), $0.baseAddress, Int64(w.cols)) }
    return out
}

/// Runs matvec and returns y.
func runMatvec(_ w: WeightMatrix, _ x: [Float], pool: WorkerPool, kernels: Kernels) throws -> [Float] {
    let scratch = try MatScratch(maxCols: w.cols, threads: pool.threads)
    var y = [Float](repeating: .nan, count: w.rows)
    x.withUnsafeBufferPointer { xp in
        y.withUnsafeMutableBufferPointer { yp in
            guard let xb = xp.baseAddress, let yb = yp.baseAddress else { return }
            matvec(w, x: xb, y: yb, scratch: scratch, pool: pool, kernels: kernels)
        }
    }
    return y
}

/// Runs matmul over `batch` rows of x ([batch, cols]) and returns y ([batch, rows]).
func runMatmul(_ w: WeightMatrix, _ x: [Float], batch: Int, pool: WorkerPool, kernels: Kernels,
               mode: FloatMatmulMode = .kernel) throws -> [Float] {
    let scratch = try MatScratch(maxCols: w.cols, maxBatch: batch, threads: pool.threads)
    var y = [Float](repeating: .nan, count: w.rows * batch)
    x.withUnsafeBufferPointer { xp in
        y.withUnsafeMutableBufferPointer { yp in
            guard let xb = xp.baseAddress, let yb = yp.baseAddress else { return }
            matmul(w, x: xb, xStride: w.cols, batch: batch, y: yb, yStride: w.rows,
                   scratch: scratch, pool: pool, kernels: kernels, floatMode: mode)
        }
    }
    return y
}

func bitsEqual(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
}
