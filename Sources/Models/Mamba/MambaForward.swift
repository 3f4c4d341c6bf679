import CKernels
import Tensors

/// Preallocated working memory of `MambaModel.forward` for chunks of up to `maxTokens`
/// tokens (or batched steps of up to `maxTokens` sequences), with the worker pool it runs
/// on. One per thread of use (not Sendable). Shapes per token, row t of each buffer:
/// x, xn, out: [d_model]; xz: [2 d_inner] (x, then z); xc, dt, y: [d_inner];
/// xdbl: [R + 2N] (dt, B, C); logits: [vocabulary].
public final class MambaWorkspace {
    public let maxTokens: Int
    public let pool: WorkerPool
    public let allLogits: Bool
    /// The fingerprint of the model the workspace was sized for.
    public let modelFingerprint: UInt64
    let scratch: MatScratch
    let buffer: AlignedBuffer
    let vocabulary: Int
    let x, xn, xz, xc, xdbl, dt, y, out: FloatPtr
    /// Per column, the conv and SSM state of the layer being computed (filled per layer:
    /// one entry for a chunk, one per sequence for a batch).
    let convStates, ssmStates: UnsafeMutablePointer<FloatPtr>
    /// The logits of the last `forward` (see `LogitsMode`).
    public let logits: UnsafeMutablePointer<Float>

    public init(model: MambaModel, maxTokens: Int = 64, pool: WorkerPool, allLogits: Bool = false) throws(ModelError) {
        let cfg = model.config
        let t = max(1, maxTokens)
        self.maxTokens = t
        self.pool = pool
        self.allLogits = allLogits
        modelFingerprint = model.fingerprint
        vocabulary = cfg.vocabulary
        do {
            scratch = try MatScratch(maxCols: cfg.maxMatrixInputs, maxBatch: t, threads: pool.threads)
        } catch { throw .tensor(name: "workspace", error) }
        let c = cfg.embedding, di = cfg.inner
        let sizes = [t * c, t * c, t * 2 * di, t * di, t * cfg.xProjOutputs, t * di, t * di, t * c,
                     (allLogits ? t : 1) * cfg.vocabulary]
        let padded = sizes.map { ($0 + 15) / 16 * 16 }
        let total = padded.reduce(0, +)
        guard let buf = AlignedBuffer(byteCount: total * MemoryLayout<Float>.stride) else {
            throw .tensor(name: "workspace", .allocationFailed(what: "Mamba workspace", bytes: total * 4))
        }
        buffer = buf
        let base = buf.pointer.assumingMemoryBound(to: Float.self)
        base.initialize(repeating: 0, count: total)
        var ptrs: [FloatPtr] = []
        var offset = 0
        for n in padded {
            ptrs.append(base + offset)
            offset += n
        }
        (x, xn, xz, xc, xdbl, dt, y, out, logits) = (ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], ptrs[5], ptrs[6],
                                                     ptrs[7], ptrs[8])
        convStates = .allocate(capacity: t)
        convStates.initialize(repeating: base, count: t)
        ssmStates = .allocate(capacity: t)
        ssmStates.initialize(repeating: base, count: t)
    }

    deinit {
        convStates.deallocate()
        ssmStates.deallocate()
    }

    /// Logits row `row` of the last call (0 for `.last`).
    public func logits(row: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: logits + row * vocabulary, count: vocabulary)
    }
}

/// Whose state each column (row of the workspace) of a forward pass continues.
enum MambaColumns {
    /// Consecutive tokens of one sequence.
    case chunk(MambaState)
    /// One token for each sequence: column t continues states[t] (distinct states).
    case batch([MambaState])
}

extension MambaModel {
    /// Runs `tokens` through the model from `state`, in chunks of at most
    /// `workspace.maxTokens`, updating the state; computes the logits `mode` asks for.
    /// Checks everything before changing the state. Allocates nothing.
    public func forward(_ tokens: UnsafeBufferPointer<Int32>, state: MambaState, workspace ws: MambaWorkspace,
                        logits mode: LogitsMode) throws(ModelError) {
        guard state.fingerprint == fingerprint else { throw .stateMismatch("the state was made for another model") }
        guard ws.modelFingerprint == fingerprint else {
            throw .stateMismatch("the workspace was made for another model")
        }
        for t in tokens where t < 0 || Int(t) >= config.vocabulary {
            throw .tokenOutOfRange(token: t, vocabulary: config.vocabulary)
        }
        if case .all = mode {
            guard ws.allLogits else { throw .tooManyTokens(count: tokens.count, maximum: 0) }
            guard tokens.count <= ws.maxTokens else { throw .tooManyTokens(count: tokens.count, maximum: ws.maxTokens) }
        }
        var start = 0
        while start < tokens.count {
            let n = min(ws.maxTokens, tokens.count - start)
            let last = start + n == tokens.count
            forwardColumns(UnsafeBufferPointer(rebasing: tokens[start..<(start + n)]), .chunk(state), ws: ws,
                           logits: last ? mode : .none)
            start += n
        }
    }

    /// Convenience: `forward` on an array.
    public func forward(_ tokens: [Int32], state: MambaState, workspace: MambaWorkspace,
                        logits mode: LogitsMode) throws(ModelError) {
        try tokens.withUnsafeBufferPointer { (p) throws(ModelError) in
            try forward(p, state: state, workspace: workspace, logits: mode)
        }
    }

    /// One decode step for B = `tokens.count` sequences: `tokens[i]` continues `states[i]`
    /// (distinct states of this model); row i of `workspace.logits` gets sequence i's
    /// logits when `computeLogits`. The projections run as products over the B columns,
    /// the conv and the scan per sequence. Batch invariant: sequence i's logits and state
    /// are bitwise those of a single `forward` of its token. Checks everything before
    /// touching any state. Allocates nothing.
    public func forwardBatch(tokens: UnsafeBufferPointer<Int32>, states: [MambaState], workspace ws: MambaWorkspace,
                             computeLogits: Bool = true) throws(ModelError) {
        let b = tokens.count
        guard b >= 1, b <= ws.maxTokens else {
            throw .invalidBatch("\(b) sequences; the workspace holds 1...\(ws.maxTokens)")
        }
        guard states.count == b else { throw .invalidBatch("\(b) tokens but \(states.count) states") }
        guard ws.modelFingerprint == fingerprint else { throw .invalidBatch("the workspace was made for another model") }
        if computeLogits { guard ws.allLogits else { throw .invalidBatch("the workspace keeps no logits per row") } }
        for i in 0..<b {
            guard states[i].fingerprint == fingerprint else {
                throw .stateMismatch("the state of sequence \(i) was made for another model")
            }
            let t = tokens[i]
            guard t >= 0, Int(t) < config.vocabulary else { throw .tokenOutOfRange(token: t, vocabulary: config.vocabulary) }
            for j in 0..<i where states[j] === states[i] {
                throw .invalidBatch("sequences \(j) and \(i) share one state")
            }
        }
        forwardColumns(tokens, .batch(states), ws: ws, logits: computeLogits ? .all : .none)
    }

    /// Convenience: `forwardBatch` on an array of tokens.
    public func forwardBatch(tokens: [Int32], states: [MambaState], workspace: MambaWorkspace,
                             computeLogits: Bool = true) throws(ModelError) {
        try tokens.withUnsafeBufferPointer { (p) throws(ModelError) in
            try forwardBatch(tokens: p, states: states, workspace: workspace, computeLogits: computeLogits)
        }
    }

    // MARK: - one pass over T columns

    /// y[t] = W x[t] for t < T (the decode step's matvec for T == 1; the kernel gemm,
    /// bitwise the matvec per column, otherwise).
    @inline(__always)
    private func mm(_ w: WeightMatrix, _ x: UnsafePointer<Float>, xStride: Int, _ y: FloatPtr, _ T: Int,
                    _ ws: MambaWorkspace) {
        if T == 1 {
            matvec(w, x: x, y: y, scratch: ws.scratch, pool: ws.pool, kernels: kernels)
        } else {
            matmul(w, x: x, xStride: xStride, batch: T, y: y, yStride: w.rows, scratch: ws.scratch, pool: ws.pool,
                   kernels: kernels)
        }
    }

    /// y = x / sqrt(mean(x^2) + eps) * w over d_model floats (sum in index order).
    @inline(__always)
    private func rmsNorm(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: FloatPtr) {
        let n = config.embedding
        var ss: Float = 0
        for j in 0..<n { ss += x[j] * x[j] }
        let inv = 1 / (ss / Float(n) + config.normEps).squareRoot()
        for j in 0..<n { y[j] = x[j] * inv * w[j] }
    }

    /// Channels per unit of the pool's split (a channel's result does not depend on the
    /// split: the kernels' contract).
    static let channelGranule = 16
    /// Below this many state updates (tokens x d_inner x d_state) a call stays on the
    /// calling thread.
    static let parallelWork = 8192

    /// Runs the conv (`job.scan == false`) or the scan of one layer over all channels: on
    /// the pool in ranges of whole granules when the work is large enough, else on the
    /// calling thread. A C job on a context struct, no closure: nothing is allocated.
    @inline(__always)
    private func channels(_ job: inout ChannelJob, _ ws: MambaWorkspace) {
        let di = config.inner
        let single = ws.pool.threads <= 1 || job.columns * di * config.stateSize < MambaModel.parallelWork
        withUnsafeMutablePointer(to: &job) { p in
            let raw = UnsafeMutableRawPointer(p)
            if single {
                runChannelJob(raw, 0, di, 0)
            } else {
                ws.pool.run(count: di, granule: MambaModel.channelGranule, context: raw) { ctx, b, e, t in
                    runChannelJob(ctx, b, e, t)
                }
            }
        }
    }

    func forwardColumns(_ tokens: UnsafeBufferPointer<Int32>, _ cols: MambaColumns, ws: MambaWorkspace,
                        logits mode: LogitsMode) {
        let T = tokens.count
        let c = config.embedding, di = config.inner, xw = config.xProjOutputs
        guard let dq = kernels.dequantize(embedding.type) else { return } // checked at load
        for t in 0..<T { dq(embedding.base + Int(tokens[t]) * embedding.rowBytes, ws.x + t * c, Int64(c)) }
        for (i, layer) in layers.enumerated() {
            for t in 0..<T { rmsNorm(ws.x + t * c, layer.norm, ws.xn + t * c) }
            // xz: [T][2 d_inner] = in_proj xn
            mm(layer.inProj, ws.xn, xStride: c, ws.xz, T, ws)
            // xc: [T][d_inner] = silu(conv1d(x part of xz)) over the conv state
            fillStates(cols, layer: i, T: T, ws: ws)
            var job = ChannelJob(layer: layer, config: config, ws: ws, columns: T, batch: cols.isBatch,
                                 conv: conv, scan: scan, doScan: false)
            channels(&job, ws)
            // xdbl: [T][R + 2N] = x_proj xc; dt: [T][d_inner] = dt_proj xdbl[:, :R] (bias in the scan)
            mm(layer.xProj, ws.xc, xStride: di, ws.xdbl, T, ws)
            mm(layer.dtProj, ws.xdbl, xStride: xw, ws.dt, T, ws)
            // y: [T][d_inner] = scan(xc, dt, A, B, C, D) * silu(z)
            job.doScan = true
            channels(&job, ws)
            // out: [T][d_model] = out_proj y; residual
            mm(layer.outProj, ws.y, xStride: di, ws.out, T, ws)
            for j in 0..<(T * c) { ws.x[j] += ws.out[j] }
        }
        switch cols {
        case let .chunk(state): state.tokenCount += T
        case let .batch(states): for s in states { s.tokenCount += 1 }
        }
        switch mode {
        case .none:
            return
        case .last:
            rmsNorm(ws.x + (T - 1) * c, outputNorm, ws.xn)
            mm(head, ws.xn, xStride: c, ws.logits, 1, ws)
        case .all:
            for t in 0..<T { rmsNorm(ws.x + t * c, outputNorm, ws.xn + t * c) }
            mm(head, ws.xn, xStride: c, ws.logits, T, ws)
        }
    }
}

extension MambaColumns {
    var isBatch: Bool {
        switch self {
        case .chunk: false
        case .batch: true
        }
    }
}

extension MambaModel {
    /// ws.convStates / ws.ssmStates: layer i's states, one per column of a batch, one for a chunk.
    @inline(__always)
    fileprivate func fillStates(_ cols: MambaColumns, layer i: Int, T: Int, ws: MambaWorkspace) {
        switch cols {
        case let .chunk(state):
            ws.convStates[0] = state.conv(i)
            ws.ssmStates[0] = state.ssm(i)
        case let .batch(states):
            for t in 0..<T {
                ws.convStates[t] = states[t].conv(i)
                ws.ssmStates[t] = states[t].ssm(i)
            }
        }
    }
}

/// Everything the conv and scan of one layer read and write, without references (the
/// workers only dereference pointers). Shapes as in `MambaWorkspace`.
struct ChannelJob {
    let conv: roost_ssm_conv_fn
    let scan: roost_ssm_scan_fn
    var doScan: Bool
    /// Columns T; `batch`: column t is one token of its own state (convStates[t],
    /// ssmStates[t]), else T consecutive tokens of the state at index 0.
    let columns: Int
    let batch: Bool
    let k, di, n, r, xw: Int
    let xz, xc, xdbl, dt, y: FloatPtr
    let convWeight, convBias, dtBias, a, d: FloatPtr
    let convStates, ssmStates: UnsafeMutablePointer<FloatPtr>

    init(layer: MambaLayer, config: MambaConfig, ws: MambaWorkspace, columns: Int, batch: Bool,
         conv: roost_ssm_conv_fn, scan: roost_ssm_scan_fn, doScan: Bool) {
        self.conv = conv
        self.scan = scan
        self.doScan = doScan
        self.columns = columns
        self.batch = batch
        k = config.convKernel
        di = config.inner
        n = config.stateSize
        r = config.timeStepRank
        xw = config.xProjOutputs
        (xz, xc, xdbl, dt, y) = (ws.xz, ws.xc, ws.xdbl, ws.dt, ws.y)
        (convWeight, convBias, dtBias, a, d) = (layer.convWeight, layer.convBias, layer.dtBias, layer.a, layer.d)
        convStates = ws.convStates
        ssmStates = ws.ssmStates
    }
}

/// The conv or the scan of channels b..<e (a `WorkerPool` job; `ctx` points to a ChannelJob).
/// conv: xc[t] = silu(conv1d(x part of xz[t])) over the conv state;
/// scan: y[t] = scan(xc[t], dt[t], A, B, C, D) * silu(z[t]) over the SSM state.
private func runChannelJob(_ ctx: UnsafeMutableRawPointer?, _ b: Int, _ e: Int, _ thread: Int) {
    guard let j = ctx?.assumingMemoryBound(to: ChannelJob.self).pointee else { return }
    let m = Int64(e - b), di = j.di, n = j.n, r = j.r, xw = j.xw
    // A chunk is one call over its T tokens; a batch one single-token call per sequence.
    let calls = j.batch ? j.columns : 1
    let tokens = Int64(j.batch ? 1 : j.columns)
    for t in 0..<calls {
        if j.doScan {
            let row = j.xdbl + t * xw
            j.scan(tokens, m, Int64(n), j.xc + t * di + b, Int64(di), j.dt + t * di + b, Int64(di), j.dtBias + b,
                   j.a + b * n, row + r, row + r + n, Int64(xw), j.d + b, j.xz + t * 2 * di + di + b, Int64(2 * di),
                   j.ssmStates[t] + b * n, j.y + t * di + b, Int64(di))
        } else {
            j.conv(tokens, m, Int64(j.k), Int64(di), j.xz + t * 2 * di + b, Int64(2 * di), j.convWeight + b,
                   j.convBias + b, j.convStates[t] + b, j.xc + t * di + b, Int64(di))
        }
    }
}
