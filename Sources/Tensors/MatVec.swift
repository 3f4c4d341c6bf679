import CKernels
import COpenBLAS

/// Preallocated working memory of `matvec` / `matmul`: the quantized activations of up
/// to `maxBatch` rows of up to `maxCols` elements, and per-thread float tiles for the
/// f16/bf16 BLAS path. Sized when a model loads; the calls allocate nothing.
///
/// Not Sendable: one scratch per calling thread (the pool's workers only read the
/// activations the caller wrote before the parallel call, and each writes its own tile).
public final class MatScratch {
    public let maxCols: Int
    public let maxBatch: Int
    /// Threads whose float tiles exist (the pool used with it must not have more).
    public let threads: Int
    /// Bytes between two quantized activation rows.
    let activationStride: Int
    let activations: AlignedBuffer
    /// Rows of one thread's float tile (f16/bf16 weights converted for sgemm).
    public static let tileRows = 16
    let tiles: AlignedBuffer

    /// Scratch for rows of at most `maxCols` elements, batches of at most `maxBatch`
    /// rows, and pools of at most `threads` threads.
    public init(maxCols: Int, maxBatch: Int = 1, threads: Int) throws(TensorError) {
        guard maxCols > 0, maxBatch > 0, threads > 0 else {
            throw .invalidShape(name: "scratch", rows: maxBatch, cols: maxCols)
        }
        self.maxCols = maxCols
        self.maxBatch = maxBatch
        self.threads = threads
        activationStride = ActivationFormat.maxRowBytes(maxCols)
        let actBytes = activationStride * maxBatch
        guard let a = AlignedBuffer(byteCount: actBytes) else {
            throw .allocationFailed(what: "activation scratch", bytes: actBytes)
        }
        activations = a
        let tileBytes = threads * MatScratch.tileRows * maxCols * MemoryLayout<Float>.stride
        guard let t = AlignedBuffer(byteCount: tileBytes) else {
            throw .allocationFailed(what: "float tile scratch", bytes: tileBytes)
        }
        tiles = t
    }

    /// The quantized activation row `c` (valid after a call, for tests and tools).
    public func activationRow(_ c: Int) -> UnsafeRawPointer {
        UnsafeRawPointer(activations.pointer + c * activationStride)
    }
}

/// How `matmul` multiplies float (f32/f16/bf16) weights.
public enum FloatMatmulMode: Sendable {
    /// The kernel path's gemm: every output is bitwise what `matvec` gives for that
    /// column (batch invariant).
    case kernel
    /// OpenBLAS sgemm on row ranges split across the pool (OpenBLAS itself runs one
    /// thread). Faster for large batches; results may differ from `matvec` in the last
    /// bits (see docs/PERFORMANCE.md).
    case blas
}

/// Rows per granule of the split: whole cache lines of y, and at least ~16 KiB of
/// weights per granule so tiny matrices do not wake threads for nothing.
@inline(__always)
func rowGranule(_ rowBytes: Int) -> Int {
    let rows = max(16, (16_384 + rowBytes - 1) / max(rowBytes, 1))
    return (rows + 15) / 16 * 16
}

private struct GemvContext {
    var gemv: roost_gemv_fn
    var n: Int64
    var w: UnsafeRawPointer
    var rowBytes: Int
    var a: UnsafeRawPointer
    var y: UnsafeMutablePointer<Float>
}

private struct GemmContext {
    var gemm: roost_gemm_fn
    var n: Int64
    var w: UnsafeRawPointer
    var rowBytes: Int
    var ncols: Int64
    var a: UnsafeRawPointer
    var aStride: Int
    var y: UnsafeMutablePointer<Float>
    var yStride: Int64
}

private struct BlasContext {
    var type: QuantType
    var dequantize: roost_dequantize_fn?
    var cols: Int
    var w: UnsafeRawPointer
    var rowBytes: Int
    var batch: Int
    var x: UnsafePointer<Float>
    var xStride: Int
    var y: UnsafeMutablePointer<Float>
    var yStride: Int
    var tiles: UnsafeMutablePointer<Float>
    var tileElements: Int
}

/// OpenBLAS runs single-threaded inside our pool's threads (two thread pools would
/// oversubscribe the CPUs, and OpenBLAS's own threads spin while waiting).
private let openBLASConfigured: Bool = {
    openblas_set_num_threads(1)
    return true
}()

/// Batches of at least this many activation rows are quantized on the pool.
let parallelQuantizeRows = 8

/// Quantizes `x` (`n` floats) to `format` into `out` with the path's quantizer.
@inline(__always)
private func quantizeActivation(_ x: UnsafePointer<Float>, n: Int, format: ActivationFormat,
                                into out: UnsafeMutableRawPointer, kernels: Kernels) {
    guard let q = kernels.quantize(format) else {
        preconditionFailure("the \(kernels.path.name) kernels have no \(format.name) quantizer")
    }
    q(x, out, Int64(n))
}

/// y = W x on the pool.
///
/// w: [rows, cols], x: [cols] -> y: [rows]
///
/// The activation is quantized once to the weight type's activation format (into
/// `scratch`), then the rows are split across the pool's threads and each range goes to
/// the path's gemv. Every y[r] is bitwise independent of the thread count (the gemv
/// contract). Allocates nothing.
///
/// Preconditions (programming errors, not input errors; a model checks shapes and
/// `kernels.supports(type)` when it loads): cols <= scratch.maxCols, the path has a
/// gemv for the type.
public func matvec(_ w: WeightMatrix, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                   scratch: MatScratch, pool: WorkerPool, kernels: Kernels) {
    precondition(w.cols <= scratch.maxCols, "matvec: \(w) has more columns than the scratch's \(scratch.maxCols)")
    guard let gemv = kernels.gemv(w.type) else {
        preconditionFailure("matvec: the \(kernels.path.name) kernels have no gemv for \(w.type.name)")
    }
    guard w.rows > 0 else { return }
    let format = w.type.activationFormat
    let a: UnsafeRawPointer
    if format == .f32 {
        a = UnsafeRawPointer(x)
    } else {
        quantizeActivation(x, n: w.cols, format: format, into: scratch.activations.pointer, kernels: kernels)
        a = UnsafeRawPointer(scratch.activations.pointer)
    }
    var ctx = GemvContext(gemv: gemv, n: Int64(w.cols), w: w.base, rowBytes: w.rowBytes, a: a, y: y)
    withUnsafeMutablePointer(to: &ctx) { p in
        pool.run(count: w.rows, granule: rowGranule(w.rowBytes), context: UnsafeMutableRawPointer(p)) { raw, b, e, _ in
            guard let c = raw?.assumingMemoryBound(to: GemvContext.self).pointee else { return }
            c.gemv(c.n, Int64(e - b), c.w + b * c.rowBytes, c.rowBytes, c.a, c.y + b)
        }
    }
}

/// Y = X Wᵀ for a batch of activation rows on the pool.
///
/// w: [rows, cols], x: [batch, cols] (row c at x + c * xStride) ->
/// y: [batch, rows] (row c at y + c * yStride)
///
/// Quantized weights: each activation row is quantized once, the weight rows are split
/// across the threads, and each range goes to the path's gemm (int8 tiles); y[c][r] is
/// bitwise equal to what `matvec` gives for x row c (the gemm contract).
/// Float weights: `floatMode` chooses the kernel gemm (batch invariant) or OpenBLAS.
/// Allocates nothing.
///
/// Preconditions: cols <= scratch.maxCols, batch <= scratch.maxBatch,
/// pool.threads <= scratch.threads, xStride >= cols, yStride >= rows.
public func matmul(_ w: WeightMatrix, x: UnsafePointer<Float>, xStride: Int, batch: Int,
                   y: UnsafeMutablePointer<Float>, yStride: Int,
                   scratch: MatScratch, pool: WorkerPool, kernels: Kernels,
                   floatMode: FloatMatmulMode = .kernel) {
    precondition(w.cols <= scratch.maxCols, "matmul: \(w) has more columns than the scratch's \(scratch.maxCols)")
    precondition(batch <= scratch.maxBatch, "matmul: batch \(batch) exceeds the scratch's \(scratch.maxBatch)")
    precondition(xStride >= w.cols && yStride >= w.rows, "matmul: strides smaller than the rows")
    guard w.rows > 0, batch > 0 else { return }
    let format = w.type.activationFormat
    if format == .f32 && floatMode == .blas {
        precondition(pool.threads <= scratch.threads, "matmul: pool has more threads than the scratch's tiles")
        blasMatmul(w, x: x, xStride: xStride, batch: batch, y: y, yStride: yStride, scratch: scratch,
                   pool: pool, kernels: kernels)
        return
    }
    guard let gemm = kernels.gemm(w.type) else {
        preconditionFailure("matmul: the \(kernels.path.name) kernels have no gemm for \(w.type.name)")
    }
    let a: UnsafeRawPointer
    let aStride: Int
    if format == .f32 {
        a = UnsafeRawPointer(x)
        aStride = xStride * MemoryLayout<Float>.stride
    } else {
        aStride = scratch.activationStride
        let out = scratch.activations.pointer
        guard let quantize = kernels.quantize(format) else {
            preconditionFailure("the \(kernels.path.name) kernels have no \(format.name) quantizer")
        }
        var q = QuantizeTask(quantize: quantize, x: x, xStride: xStride, n: Int64(w.cols), rows: batch,
                             format: format, out: out, outStride: aStride, firstRow: 0)
        quantizeRows(&q, count: 1, pool: pool)
        a = UnsafeRawPointer(out)
    }
    var ctx = GemmContext(gemm: gemm, n: Int64(w.cols), w: w.base, rowBytes: w.rowBytes, ncols: Int64(batch),
                          a: a, aStride: aStride, y: y, yStride: Int64(yStride))
    withUnsafeMutablePointer(to: &ctx) { p in
        pool.run(count: w.rows, granule: rowGranule(w.rowBytes), context: UnsafeMutableRawPointer(p)) { raw, b, e, _ in
            guard let c = raw?.assumingMemoryBound(to: GemmContext.self).pointee else { return }
            c.gemm(c.n, Int64(e - b), c.w + b * c.rowBytes, c.rowBytes, c.ncols, c.a, c.aStride, c.y + b, c.yStride)
        }
    }
}

private func blasMatmul(_ w: WeightMatrix, x: UnsafePointer<Float>, xStride: Int, batch: Int,
                        y: UnsafeMutablePointer<Float>, yStride: Int,
                        scratch: MatScratch, pool: WorkerPool, kernels: Kernels) {
    _ = openBLASConfigured
    let tileElements = MatScratch.tileRows * scratch.maxCols
    var ctx = BlasContext(
        type: w.type, dequantize: kernels.dequantize(w.type), cols: w.cols, w: w.base, rowBytes: w.rowBytes,
        batch: batch, x: x, xStride: xStride, y: y, yStride: yStride,
        tiles: scratch.tiles.pointer.assumingMemoryBound(to: Float.self), tileElements: tileElements)
    withUnsafeMutablePointer(to: &ctx) { p in
        pool.run(count: w.rows, granule: MatScratch.tileRows, context: UnsafeMutableRawPointer(p)) { raw, b, e, t in
            guard let c = raw?.assumingMemoryBound(to: BlasContext.self).pointee else { return }
            blasRange(c, begin: b, end: e, thread: t)
        }
    }
}

/// Y[:, begin..<end] = X · W[begin..<end]ᵀ with sgemm, one thread.
private func blasRange(_ c: BlasContext, begin: Int, end: Int, thread: Int) {
    switch c.type {
    case .f32:
        let wf = (c.w + begin * c.rowBytes).assumingMemoryBound(to: Float.self)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(c.batch), Int32(end - begin), Int32(c.cols),
                    1, c.x, Int32(c.xStride), wf, Int32(c.cols), 0, c.y + begin, Int32(c.yStride))
    case .f16, .bf16:
        guard let dq = c.dequantize else {
            preconditionFailure("matmul: no dequantizer for \(c.type.name)")
        }
        let tile = c.tiles + thread * c.tileElements
        var r = begin
        while r < end {
            let n = min(MatScratch.tileRows, end - r)
            dq(c.w + r * c.rowBytes, tile, Int64(n * c.cols))
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(c.batch), Int32(n), Int32(c.cols),
                        1, c.x, Int32(c.xStride), tile, Int32(c.cols), 0, c.y + r, Int32(c.yStride))
            r += n
        }
    case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K:
        preconditionFailure("matmul: \(c.type.name) weights do not take the BLAS path")
    }
}

// MARK: - several independent products in one parallel call

/// A product of a `MatvecGroup`, free of references (no retain/release in the workers).
/// `ncols == 1`: y = W a by the gemv; otherwise Y = A Wᵀ over `ncols` activation rows by
/// the gemm (`aStride` bytes between activation rows, `yStride` floats between outputs).
struct GemvTask {
    var gemv: roost_gemv_fn
    var gemm: roost_gemm_fn?
    var n: Int64
    var w: UnsafeRawPointer
    var rowBytes: Int
    var firstRow: Int // in the group's concatenated row space
    var rows: Int
    var ncols: Int64
    var a: UnsafeRawPointer
    var aStride: Int
    var y: UnsafeMutablePointer<Float>
    var yStride: Int64
}

private struct GroupContext {
    var tasks: UnsafePointer<GemvTask>
    var count: Int
}

/// An activation quantization of a `MatvecGroup`: `rows` rows of `n` floats (row c at
/// x + c * xStride) into scratch rows `out + c * outStride`; `firstRow` in the
/// concatenated row space of the group's quantizations.
struct QuantizeTask {
    var quantize: roost_quantize_fn
    var x: UnsafePointer<Float>
    var xStride: Int
    var n: Int64
    var rows: Int
    var format: ActivationFormat
    var out: UnsafeMutableRawPointer
    var outStride: Int
    var firstRow: Int
}

private struct QuantizeContext {
    var tasks: UnsafePointer<QuantizeTask>
    var count: Int
}

/// Runs `count` activation quantizations (their rows numbered one after the other by
/// `firstRow`): on the pool when there are `parallelQuantizeRows` rows or more, else on
/// the calling thread. Rows are quantized independently, so the split does not change
/// their bits. Allocates nothing.
func quantizeRows(_ tasks: UnsafePointer<QuantizeTask>, count: Int, pool: WorkerPool) {
    let last = tasks[count - 1]
    let rows = last.firstRow + last.rows
    var ctx = QuantizeContext(tasks: tasks, count: count)
    let job: ParallelJob = { raw, b, e, _ in
        guard let c = raw?.assumingMemoryBound(to: QuantizeContext.self).pointee else { return }
        for i in 0..<c.count {
            let q = c.tasks[i]
            let lo = max(b, q.firstRow), hi = min(e, q.firstRow + q.rows)
            if lo >= hi { continue }
            for r in (lo - q.firstRow)..<(hi - q.firstRow) {
                q.quantize(q.x + r * q.xStride, q.out + r * q.outStride, q.n)
            }
        }
    }
    withUnsafeMutablePointer(to: &ctx) { p in
        if rows >= parallelQuantizeRows && pool.threads > 1 {
            pool.run(count: rows, granule: 1, context: UnsafeMutableRawPointer(p), job: job)
        } else {
            job(UnsafeMutableRawPointer(p), 0, rows, 0)
        }
    }
}

/// Up to `capacity` independent products run as one parallel call. A decode step has
/// several products whose inputs are all ready (for RWKV-7: r, k, v and the first LoRA
/// stages); one pool synchronization instead of one per product saves most of the
/// synchronization cost. `add` queues a product, `run` quantizes the activation rows of
/// every queued product into rows of the scratch of their own (so `scratch.maxBatch` must
/// cover the activation rows of all products of a group), computes them all and empties
/// the group. Products that share their input (same rows, strides, width and activation
/// format: q, k and v of one normed input; an expert's gate and up) share one quantized
/// copy. The inputs are read by `run`, not by `add`: they must stay unchanged until then.
/// With 8 or more activation rows to quantize the quantization runs on the pool too (rows
/// are quantized independently, so the split does not change their bits). Each output is
/// bitwise what `matvec` gives for its activation row (single products run the gemv,
/// batched ones the gemm, whose contract is the gemv's bits). Allocates nothing per call.
/// Not Sendable: one per calling thread.
public final class MatvecGroup {
    public let capacity: Int
    private let tasks: UnsafeMutablePointer<GemvTask>
    private let quantizations: UnsafeMutablePointer<QuantizeTask>
    private var count = 0
    private var quantizeCount = 0
    private var totalRows = 0
    private var scratchRows = 0

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
        tasks = .allocate(capacity: self.capacity)
        quantizations = .allocate(capacity: self.capacity)
    }

    deinit {
        tasks.deallocate()
        quantizations.deallocate()
    }

    /// Adds y = W x (x: [w.cols], y: [w.rows]). Preconditions as `matvec`'s, plus room
    /// in the group and in the scratch.
    public func add(_ w: WeightMatrix, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                    scratch: MatScratch, kernels: Kernels) {
        add(w, x: x, xStride: w.cols, batch: 1, y: y, yStride: w.rows, scratch: scratch, kernels: kernels)
    }

    /// Adds Y = X Wᵀ for `batch` activation rows (x: [batch, cols], row c at
    /// x + c * xStride -> y: [batch, rows], row c at y + c * yStride), as `matmul` with
    /// the kernel gemm (never BLAS): every output is bitwise what `matvec` gives for its
    /// row. `batch == 1` is the plain matvec. x is read by `run`. Preconditions as
    /// `matmul`'s, plus room in the group and `batch` free activation rows in the scratch
    /// (unless an earlier product of the group has the same input).
    public func add(_ w: WeightMatrix, x: UnsafePointer<Float>, xStride: Int, batch: Int,
                    y: UnsafeMutablePointer<Float>, yStride: Int, scratch: MatScratch, kernels: Kernels) {
        precondition(batch >= 1 && xStride >= w.cols && yStride >= w.rows, "MatvecGroup: bad batch or strides")
        precondition(count < capacity, "MatvecGroup: full (capacity \(capacity))")
        precondition(w.cols <= scratch.maxCols, "MatvecGroup: \(w) has more columns than the scratch's \(scratch.maxCols)")
        guard let gemv = kernels.gemv(w.type) else {
            preconditionFailure("MatvecGroup: the \(kernels.path.name) kernels have no gemv for \(w.type.name)")
        }
        let gemm = kernels.gemm(w.type)
        guard batch == 1 || gemm != nil else {
            preconditionFailure("MatvecGroup: the \(kernels.path.name) kernels have no gemm for \(w.type.name)")
        }
        let format = w.type.activationFormat
        let a: UnsafeRawPointer
        let aStride: Int
        if format == .f32 {
            a = UnsafeRawPointer(x)
            aStride = xStride * MemoryLayout<Float>.stride
        } else {
            aStride = scratch.activationStride
            var shared: UnsafeRawPointer?
            for i in 0..<quantizeCount {
                let q = quantizations[i]
                if q.x == x && q.xStride == xStride && q.rows == batch && q.n == Int64(w.cols) && q.format == format {
                    shared = UnsafeRawPointer(q.out)
                    break
                }
            }
            if let shared {
                a = shared
            } else {
                precondition(scratchRows + batch <= scratch.maxBatch,
                             "MatvecGroup: scratch full (\(scratch.maxBatch) activation rows)")
                guard let quantize = kernels.quantize(format) else {
                    preconditionFailure("the \(kernels.path.name) kernels have no \(format.name) quantizer")
                }
                let first = scratch.activations.pointer + scratchRows * aStride
                let firstRow = quantizeCount == 0 ? 0
                    : quantizations[quantizeCount - 1].firstRow + quantizations[quantizeCount - 1].rows
                quantizations[quantizeCount] = QuantizeTask(quantize: quantize, x: x, xStride: xStride,
                                                            n: Int64(w.cols), rows: batch, format: format, out: first,
                                                            outStride: aStride, firstRow: firstRow)
                quantizeCount += 1
                a = UnsafeRawPointer(first)
                scratchRows += batch
            }
        }
        tasks[count] = GemvTask(gemv: gemv, gemm: gemm, n: Int64(w.cols), w: w.base, rowBytes: w.rowBytes,
                                firstRow: totalRows, rows: w.rows, ncols: Int64(batch), a: a, aStride: aStride,
                                y: y, yStride: Int64(yStride))
        count += 1
        totalRows += w.rows
    }

    /// Quantizes the queued activation rows: on the pool when there are enough of them.
    private func quantizeAll(pool: WorkerPool) {
        guard quantizeCount > 0 else { return }
        quantizeRows(quantizations, count: quantizeCount, pool: pool)
    }

    /// Quantizes the activations, computes every added product on the pool and empties
    /// the group.
    public func run(pool: WorkerPool) {
        defer {
            count = 0
            quantizeCount = 0
            totalRows = 0
            scratchRows = 0
        }
        guard totalRows > 0 else { return }
        quantizeAll(pool: pool)
        var ctx = GroupContext(tasks: UnsafePointer(tasks), count: count)
        withUnsafeMutablePointer(to: &ctx) { p in
            pool.run(count: totalRows, granule: 16, context: UnsafeMutableRawPointer(p)) { raw, b, e, _ in
                guard let c = raw?.assumingMemoryBound(to: GroupContext.self).pointee else { return }
                for i in 0..<c.count {
                    let t = c.tasks[i]
                    let lo = max(b, t.firstRow), hi = min(e, t.firstRow + t.rows)
                    if lo >= hi { continue }
                    let r = lo - t.firstRow
                    if t.ncols > 1, let gemm = t.gemm {
                        gemm(t.n, Int64(hi - lo), t.w + r * t.rowBytes, t.rowBytes, t.ncols, t.a, t.aStride,
                             t.y + r, t.yStride)
                    } else {
                        t.gemv(t.n, Int64(hi - lo), t.w + r * t.rowBytes, t.rowBytes, t.a, t.y + r)
                    }
                }
            }
        }
    }
}
