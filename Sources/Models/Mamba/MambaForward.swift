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

    /// Runs `body` over the channel ranges of d_inner, on the pool when the work is large
    /// enough.
    @inline(__always)
    private func eachChannelRange(_ T: Int, _ ws: MambaWorkspace, _ body: (Range<Int>) -> Void) {
        let di = config.inner
        if ws.pool.threads <= 1 || T * di * config.stateSize < MambaModel.parallelWork || di <= MambaModel.channelGranule {
            body(0..<di)
        } else {
            ws.pool.parallelFor(count: di, granule: MambaModel.channelGranule) { range, _ in body(range) }
        }
    }

    func forwardColumns(_ tokens: UnsafeBufferPointer<Int32>, _ cols: MambaColumns, ws: MambaWorkspace,
                        logits mode: LogitsMode) {
        let T = tokens.count
        let c = config.embedding, di = config.inner, n = config.stateSize, r = config.timeStepRank
        let k = config.convKernel, xw = config.xProjOutputs
        guard let dq = kernels.dequantize(embedding.type) else { return } // checked at load
        for t in 0..<T { dq(embedding.base + Int(tokens[t]) * embedding.rowBytes, ws.x + t * c, Int64(c)) }
        let convFn = conv, scanFn = scan
        for (i, layer) in layers.enumerated() {
            for t in 0..<T { rmsNorm(ws.x + t * c, layer.norm, ws.xn + t * c) }
            // xz: [T][2 d_inner] = in_proj xn
            mm(layer.inProj, ws.xn, xStride: c, ws.xz, T, ws)
            // xc: [T][d_inner] = silu(conv1d(x part of xz)) over the conv state
            eachChannelRange(T, ws) { range in
                let c0 = range.lowerBound, m = Int64(range.count)
                switch cols {
                case let .chunk(state):
                    convFn(Int64(T), m, Int64(k), Int64(di), ws.xz + c0, Int64(2 * di), layer.convWeight + c0,
                           layer.convBias + c0, state.conv(i) + c0, ws.xc + c0, Int64(di))
                case let .batch(states):
                    for t in 0..<T {
                        convFn(1, m, Int64(k), Int64(di), ws.xz + t * 2 * di + c0, Int64(2 * di), layer.convWeight + c0,
                               layer.convBias + c0, states[t].conv(i) + c0, ws.xc + t * di + c0, Int64(di))
                    }
                }
            }
            // xdbl: [T][R + 2N] = x_proj xc; dt: [T][d_inner] = dt_proj xdbl[:, :R] (bias in the scan)
            mm(layer.xProj, ws.xc, xStride: di, ws.xdbl, T, ws)
            mm(layer.dtProj, ws.xdbl, xStride: xw, ws.dt, T, ws)
            // y: [T][d_inner] = scan(xc, dt, A, B, C, D) * silu(z)
            eachChannelRange(T, ws) { range in
                let c0 = range.lowerBound, m = Int64(range.count)
                switch cols {
                case let .chunk(state):
                    scanFn(Int64(T), m, Int64(n), ws.xc + c0, Int64(di), ws.dt + c0, Int64(di), layer.dtBias + c0,
                           layer.a + c0 * n, ws.xdbl + r, ws.xdbl + r + n, Int64(xw), layer.d + c0,
                           ws.xz + di + c0, Int64(2 * di), state.ssm(i) + c0 * n, ws.y + c0, Int64(di))
                case let .batch(states):
                    for t in 0..<T {
                        let row = ws.xdbl + t * xw
                        scanFn(1, m, Int64(n), ws.xc + t * di + c0, Int64(di), ws.dt + t * di + c0, Int64(di),
                               layer.dtBias + c0, layer.a + c0 * n, row + r, row + r + n, Int64(xw), layer.d + c0,
                               ws.xz + t * 2 * di + di + c0, Int64(2 * di), states[t].ssm(i) + c0 * n,
                               ws.y + t * di + c0, Int64(di))
                    }
                }
            }
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
