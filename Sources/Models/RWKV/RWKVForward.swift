import CKernels
import Tensors

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Which logits `forward` computes.
public enum LogitsMode: Sendable {
    /// None (prefill of a prompt whose logits are not needed).
    case none
    /// The last token's, into `workspace.logits`.
    case last
    /// Every token's, row t at `workspace.logits + t * vocabulary` (the chunk must fit the
    /// workspace; `RWKVWorkspace(allLogits: true)`).
    case all
}

/// Preallocated working memory of `RWKVModel.forward` for chunks of up to `maxTokens`
/// tokens, with the worker pool it runs on. One per thread of use (not Sendable).
public final class RWKVWorkspace {
    public let maxTokens: Int
    public let pool: WorkerPool
    public let allLogits: Bool
    let scratch: MatScratch
    let buffer: AlignedBuffer
    let vocabulary: Int

    // [T][C] rows
    let x, xn, sx, r, k, v, w, a, b, g, vFirst, out, att, tmp: FloatPtr
    let mix: [FloatPtr] // 6 x [T][C]
    let lora: FloatPtr  // [T][maxLoRAWidth]
    let loraA, loraG, loraV: FloatPtr // [T][maxLoRAWidth] each (RWKV-7's LoRAs side by side)
    /// Independent products of a step, run as one parallel call: decode steps, and
    /// batched steps of up to `groupColumns` columns.
    let group = MatvecGroup(capacity: 8)
    let groupColumns: Int
    let hidden: FloatPtr // [T][F]
    /// The logits of the last `forward` (see `LogitsMode`).
    public let logits: UnsafeMutablePointer<Float>

    public convenience init(model: RWKVModel, maxTokens: Int = 64, pool: WorkerPool,
                            allLogits: Bool = false) throws(ModelError) {
        try self.init(model: model, maxTokens: maxTokens, pool: pool, allLogits: allLogits, groupColumns: 1)
    }

    /// `groupColumns`: chunks of up to that many columns queue their independent
    /// products in `group` (the scratch then holds 8 activation rows per column).
    init(model: RWKVModel, maxTokens: Int, pool: WorkerPool, allLogits: Bool, groupColumns: Int) throws(ModelError) {
        let cfg = model.config
        let t = max(1, maxTokens)
        self.maxTokens = t
        self.pool = pool
        self.allLogits = allLogits
        self.vocabulary = cfg.vocabulary
        self.groupColumns = max(1, min(groupColumns, t))
        do {
            scratch = try MatScratch(maxCols: cfg.maxMatrixInputs, maxBatch: max(t, 8 * self.groupColumns),
                                     threads: pool.threads)
        } catch { throw .tensor(name: "workspace", error) }
        let c = cfg.embedding
        let rows = t * c
        var sizes: [Int] = Array(repeating: rows, count: 20)
        sizes.append(t * cfg.maxLoRAWidth)
        sizes.append(t * cfg.feedForward)
        sizes.append(t * cfg.maxLoRAWidth)
        sizes.append(t * cfg.maxLoRAWidth)
        sizes.append(t * cfg.maxLoRAWidth)
        sizes.append((allLogits ? t : 1) * cfg.vocabulary)
        let padded = sizes.map { ($0 + 15) / 16 * 16 }
        let total = padded.reduce(0, +)
        guard let buf = AlignedBuffer(byteCount: total * MemoryLayout<Float>.stride) else {
            throw .tensor(name: "workspace", .allocationFailed(what: "RWKV workspace", bytes: total * 4))
        }
        buffer = buf
        var ptrs: [FloatPtr] = []
        var offset = 0
        let base = buf.pointer.assumingMemoryBound(to: Float.self)
        for n in padded {
            ptrs.append(base + offset)
            offset += n
        }
        (x, xn, sx, r, k, v, w, a, b, g) = (ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], ptrs[5], ptrs[6], ptrs[7], ptrs[8], ptrs[9])
        (vFirst, out, att, tmp) = (ptrs[10], ptrs[11], ptrs[12], ptrs[13])
        mix = Array(ptrs[14..<20])
        lora = ptrs[20]
        hidden = ptrs[21]
        loraA = ptrs[22]
        loraG = ptrs[23]
        loraV = ptrs[24]
        logits = ptrs[25]
    }
}

/// Whose recurrent state each column (row of the workspace) of a forward pass continues.
enum Columns {
    /// Consecutive tokens of one sequence.
    case chunk(RWKVState)
    /// One token for each sequence: column t continues states[t] (distinct states).
    case batch([RWKVState])
}

extension RWKVModel {
    /// Runs `tokens` through the model from `state`, in chunks of at most
    /// `workspace.maxTokens`, updating the state; computes the logits `mode` asks for.
    /// Allocates nothing.
    public func forward(_ tokens: UnsafeBufferPointer<Int32>, state: RWKVState, workspace ws: RWKVWorkspace,
                        logits mode: LogitsMode) throws(ModelError) {
        guard state.fingerprint == fingerprint else { throw .stateMismatch("the state was made for another model") }
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
            let chunk = UnsafeBufferPointer(rebasing: tokens[start..<(start + n)])
            forwardColumns(chunk, .chunk(state), ws: ws, logits: last ? mode : .none)
            start += n
        }
    }

    /// Convenience: `forward` on an array.
    public func forward(_ tokens: [Int32], state: RWKVState, workspace: RWKVWorkspace,
                        logits mode: LogitsMode) throws(ModelError) {
        try tokens.withUnsafeBufferPointer { (p) throws(ModelError) in
            try forward(p, state: state, workspace: workspace, logits: mode)
        }
    }

    /// One decode step: `forward` on a single token, without building an array.
    public func forward(token: Int32, state: RWKVState, workspace: RWKVWorkspace,
                        logits mode: LogitsMode) throws(ModelError) {
        var t = token
        try withUnsafePointer(to: &t) { (p) throws(ModelError) in
            try forward(UnsafeBufferPointer(start: p, count: 1), state: state, workspace: workspace, logits: mode)
        }
    }

    // MARK: - one chunk

    /// y[t] = W x[t] for t < T (x rows `xStride` apart, y rows `w.rows` apart).
    @inline(__always)
    func mm(_ w: WeightMatrix, _ x: UnsafePointer<Float>, xStride: Int, _ y: FloatPtr, _ T: Int, _ ws: RWKVWorkspace) {
        if T == 1 {
            matvec(w, x: x, y: y, scratch: ws.scratch, pool: ws.pool, kernels: kernels)
        } else {
            matmul(w, x: x, xStride: xStride, batch: T, y: y, yStride: w.rows, scratch: ws.scratch, pool: ws.pool,
                   kernels: kernels)
        }
    }

    /// Queues y[t] = W x[t] in the group when T is at most `ws.groupColumns` (run by
    /// `flush`; T == 1 is the decode step's matvec), else runs the batched product now.
    @inline(__always)
    func mmAdd(_ w: WeightMatrix, _ x: UnsafePointer<Float>, xStride: Int, _ y: FloatPtr, _ T: Int, _ ws: RWKVWorkspace) {
        if T == 1 {
            ws.group.add(w, x: x, y: y, scratch: ws.scratch, kernels: kernels)
        } else if T <= ws.groupColumns {
            ws.group.add(w, x: x, xStride: xStride, batch: T, y: y, yStride: w.rows, scratch: ws.scratch,
                         kernels: kernels)
        } else {
            mm(w, x, xStride: xStride, y, T, ws)
        }
    }

    /// Runs the queued decode products.
    @inline(__always)
    func flush(_ ws: RWKVWorkspace) { ws.group.run(pool: ws.pool) }

    /// Runs `body` over the columns `0..<T`: on the pool for chunks of at least
    /// `parallelColumns` columns, else on the calling thread (a decode step would pay
    /// more for the synchronization than it saves). `body` must compute each column from
    /// that column's inputs only, so a column's bits do not depend on the split.
    @inline(__always)
    func eachColumn(_ T: Int, _ ws: RWKVWorkspace, _ body: (Range<Int>) -> Void) {
        if T < RWKVModel.parallelColumns || ws.pool.threads <= 1 {
            body(0..<T)
        } else {
            ws.pool.parallelFor(count: T) { range, _ in body(range) }
        }
    }

    /// Chunks of at least this many columns run their element-wise work and the WKV
    /// recurrence on the pool.
    static let parallelColumns = 4

    /// Runs one column per token: `.chunk` consecutive tokens of one sequence, or `.batch`
    /// one token for each of several sequences. Row t of the workspace is column t.
    func forwardColumns(_ tokens: UnsafeBufferPointer<Int32>, _ cols: Columns, ws: RWKVWorkspace,
                        logits mode: LogitsMode) {
        let T = tokens.count
        let c = config.embedding
        let n = T * c
        guard let dq = kernels.dequantize(embedding.type) else { return } // checked at load
        for t in 0..<T {
            let row = ws.x + t * c
            dq(embedding.base + Int(tokens[t]) * embedding.rowBytes, row, Int64(c))
            Ops.layerNorm(row, weight: embedNorm.weight, bias: embedNorm.bias, eps: config.normEps, n: c, into: row)
        }
        for (i, layer) in layers.enumerated() {
            // Time mix.
            normAndShift(layer.attnNorm, cols, layer: i, channelMix: false, T: T, ws: ws)
            switch layer.mix {
            case let .v5(m): timeMix5(layer, m, cols, layerIndex: i, T: T, ws: ws)
            case let .v6(m): timeMix6(layer, m, cols, layerIndex: i, T: T, ws: ws)
            case let .v7(m): timeMix7(layer, m, cols, layerIndex: i, T: T, ws: ws)
            }
            for j in 0..<n { ws.x[j] += ws.att[j] }
            // Channel mix.
            normAndShift(layer.ffnNorm, cols, layer: i, channelMix: true, T: T, ws: ws)
            channelMix(layer, T: T, ws: ws)
            for j in 0..<n { ws.x[j] += ws.att[j] }
        }
        switch cols {
        case let .chunk(state): state.tokenCount += T
        case let .batch(states): for s in states { s.tokenCount += 1 }
        }
        switch mode {
        case .none:
            return
        case .last:
            let row = ws.x + (T - 1) * c
            Ops.layerNorm(row, weight: outputNorm.weight, bias: outputNorm.bias, eps: config.normEps, n: c, into: ws.xn)
            mm(head, ws.xn, xStride: c, ws.logits, 1, ws)
        case .all:
            for t in 0..<T {
                Ops.layerNorm(ws.x + t * c, weight: outputNorm.weight, bias: outputNorm.bias, eps: config.normEps,
                              n: c, into: ws.xn + t * c)
            }
            mm(head, ws.xn, xStride: c, ws.logits, T, ws)
        }
    }

    /// xn[t] = LayerNorm(x[t]); sx[t] = prev[t] - xn[t]; then the shift state takes the
    /// last xn of its sequence. `.chunk`: prev[t] = xn[t-1], prev[0] = the state's shift.
    /// `.batch`: prev[t] = the shift of column t's own state.
    private func normAndShift(_ norm: NormWeights, _ cols: Columns, layer i: Int, channelMix: Bool, T: Int,
                              ws: RWKVWorkspace) {
        let c = config.embedding
        let eps = config.normEps
        switch cols {
        case let .chunk(state):
            eachColumn(T, ws) { range in
                for t in range {
                    Ops.layerNorm(ws.x + t * c, weight: norm.weight, bias: norm.bias, eps: eps, n: c,
                                  into: ws.xn + t * c)
                }
            }
            let shift = channelMix ? state.ffnShift(i) : state.attShift(i)
            eachColumn(T, ws) { range in
                for t in range {
                    let prev = t == 0 ? UnsafePointer(shift) : UnsafePointer(ws.xn + (t - 1) * c)
                    tokenShift(prev, ws.xn + t * c, ws.sx + t * c)
                }
            }
            shift.update(from: ws.xn + (T - 1) * c, count: c)
        case let .batch(states):
            eachColumn(T, ws) { range in
                for t in range {
                    Ops.layerNorm(ws.x + t * c, weight: norm.weight, bias: norm.bias, eps: eps, n: c,
                                  into: ws.xn + t * c)
                    let shift = channelMix ? states[t].ffnShift(i) : states[t].attShift(i)
                    tokenShift(shift, ws.xn + t * c, ws.sx + t * c)
                    shift.update(from: ws.xn + t * c, count: c)
                }
            }
        }
    }

    /// d = prev - cur over C floats.
    @inline(__always)
    private func tokenShift(_ prev: UnsafePointer<Float>, _ cur: UnsafePointer<Float>, _ d: FloatPtr) {
        for j in 0..<config.embedding { d[j] = prev[j] - cur[j] }
    }

    /// The RWKV-5/6 recurrence of layer i over the T columns (rows C floats apart, w rows
    /// `wStride` apart): one call over the chunk, or one step per sequence of a batch.
    private func recurrence6(_ cols: Columns, layer i: Int, T: Int, r: FloatPtr, k: FloatPtr, v: FloatPtr,
                             w: FloatPtr, wStride: Int, u: FloatPtr, out: FloatPtr) {
        let c = config.embedding, h = Int64(config.heads), hs = Int64(config.headSize)
        switch cols {
        case let .chunk(state):
            wkv6(Int64(T), h, hs, r, k, v, w, Int64(wStride), u, state.wkv(i), out)
        case let .batch(states):
            for t in 0..<T {
                let o = t * c
                wkv6(1, h, hs, r + o, k + o, v + o, w + t * wStride, Int64(wStride), u, states[t].wkv(i), out + o)
            }
        }
    }

    /// The RWKV-7 recurrence of layer i over the T columns, as `recurrence6`. Chunks of
    /// `parallelColumns` or more tokens split the heads over the pool (each head's state
    /// and outputs are its own; a head is computed token by token as in one call, so the
    /// bits do not depend on the split).
    private func recurrence7(_ cols: Columns, layer i: Int, T: Int, r: FloatPtr, w: FloatPtr, k: FloatPtr,
                             v: FloatPtr, a: FloatPtr, b: FloatPtr, out: FloatPtr, ws: RWKVWorkspace) {
        let c = config.embedding, h = Int64(config.heads), hs = Int64(config.headSize)
        switch cols {
        case let .chunk(state):
            let s = state.wkv(i)
            if T < RWKVModel.parallelColumns || ws.pool.threads <= 1 {
                wkv7(Int64(T), h, hs, r, w, k, v, a, b, s, out)
                return
            }
            let n = config.headSize
            let kernel = wkv7
            ws.pool.parallelFor(count: config.heads) { heads, _ in
                let o = heads.lowerBound * n
                let sh = s + heads.lowerBound * n * n
                for t in 0..<T {
                    let p = t * c + o
                    kernel(1, Int64(heads.count), hs, r + p, w + p, k + p, v + p, a + p, b + p, sh, out + p)
                }
            }
        case let .batch(states):
            eachColumn(T, ws) { range in
                for t in range {
                    let o = t * c
                    wkv7(1, h, hs, r + o, w + o, k + o, v + o, a + o, b + o, states[t].wkv(i), out + o)
                }
            }
        }
    }

    /// dst[t] = xn[t] + sx[t] * lerp (lerp: [C], the same for every token).
    @inline(__always)
    private func lerp(_ dst: FloatPtr, _ lerp: UnsafePointer<Float>, T: Int, ws: RWKVWorkspace) {
        let c = config.embedding
        for t in 0..<T {
            let o = t * c
            for j in 0..<c { dst[o + j] = ws.xn[o + j] + ws.sx[o + j] * lerp[j] }
        }
    }

    /// dst[t] = xn[t] + sx[t] * lerp for the one column t.
    @inline(__always)
    private func lerpColumn(_ dst: FloatPtr, _ lerp: UnsafePointer<Float>, t: Int, ws: RWKVWorkspace) {
        let c = config.embedding, o = t * c
        for j in 0..<c { dst[o + j] = ws.xn[o + j] + ws.sx[o + j] * lerp[j] }
    }

    /// Per token: GroupNorm over heads with ln_x, then the caller's finishing step.
    @inline(__always)
    private func groupNorm(_ layer: RWKVLayer, T: Int, ws: RWKVWorkspace) {
        let c = config.embedding
        for t in 0..<T {
            Ops.groupNorm(ws.out + t * c, groups: config.heads, weight: layer.lnX.weight, bias: layer.lnX.bias,
                          eps: config.groupNormEps, n: c, into: ws.out + t * c)
        }
    }

    private func timeMix5(_ layer: RWKVLayer, _ m: RWKV5Mix, _ cols: Columns, layerIndex i: Int, T: Int,
                          ws: RWKVWorkspace) {
        let c = config.embedding, n = T * c
        lerp(ws.mix[0], m.lerpK, T: T, ws: ws)
        lerp(ws.mix[1], m.lerpV, T: T, ws: ws)
        lerp(ws.mix[2], m.lerpR, T: T, ws: ws)
        lerp(ws.mix[3], m.lerpG, T: T, ws: ws)
        mmAdd(layer.key, ws.mix[0], xStride: c, ws.k, T, ws)
        mmAdd(layer.value, ws.mix[1], xStride: c, ws.v, T, ws)
        mmAdd(layer.receptance, ws.mix[2], xStride: c, ws.r, T, ws)
        mmAdd(m.gate, ws.mix[3], xStride: c, ws.g, T, ws)
        flush(ws)
        for j in 0..<n { ws.g[j] = Ops.silu(ws.g[j]) }
        recurrence6(cols, layer: i, T: T, r: ws.r, k: ws.k, v: ws.v, w: m.decay, wStride: 0, u: m.first, out: ws.out)
        groupNorm(layer, T: T, ws: ws)
        for j in 0..<n { ws.out[j] *= ws.g[j] }
        mm(layer.output, ws.out, xStride: c, ws.att, T, ws)
    }

    private func timeMix6(_ layer: RWKVLayer, _ m: RWKV6Mix, _ cols: Columns, layerIndex i: Int, T: Int,
                          ws: RWKVWorkspace) {
        let c = config.embedding, n = T * c
        let d = config.mixRank, d5 = 5 * d
        // xxx = xn + sx * lerp_x; lora = tanh(W1 xxx): [T][5 D]
        lerp(ws.tmp, m.lerpX, T: T, ws: ws)
        mm(m.w1, ws.tmp, xStride: c, ws.lora, T, ws)
        for j in 0..<(T * d5) { ws.lora[j] = tanhf(ws.lora[j]) }
        // x_j = xn + sx * (lerp_fused[j] + W2[j] lora[j]) for j = w, k, v, r, g
        for j in 0..<5 { mmAdd(m.w2[j], ws.lora + j * d, xStride: d5, ws.mix[j], T, ws) } // m_j into mix[j]
        flush(ws)
        for j in 0..<5 {
            let lf = m.lerpFused + j * c
            let dst = ws.mix[j]
            for t in 0..<T {
                let o = t * c
                for q in 0..<c { dst[o + q] = ws.xn[o + q] + ws.sx[o + q] * (lf[q] + dst[o + q]) }
            }
        }
        // w = exp(-exp(decay + Wd2 tanh(Wd1 x_w))); r, k, v, gate alongside
        mmAdd(m.decayW1, ws.mix[0], xStride: c, ws.lora, T, ws)
        mmAdd(layer.key, ws.mix[1], xStride: c, ws.k, T, ws)
        mmAdd(layer.value, ws.mix[2], xStride: c, ws.v, T, ws)
        mmAdd(layer.receptance, ws.mix[3], xStride: c, ws.r, T, ws)
        mmAdd(m.gate, ws.mix[4], xStride: c, ws.g, T, ws)
        flush(ws)
        for j in 0..<(T * config.decayRank) { ws.lora[j] = tanhf(ws.lora[j]) }
        mm(m.decayW2, ws.lora, xStride: config.decayRank, ws.w, T, ws)
        for t in 0..<T {
            let o = t * c
            for q in 0..<c { ws.w[o + q] = expf(-expf(m.decay[q] + ws.w[o + q])) }
        }
        for j in 0..<n { ws.g[j] = Ops.silu(ws.g[j]) }
        recurrence6(cols, layer: i, T: T, r: ws.r, k: ws.k, v: ws.v, w: ws.w, wStride: c, u: m.first, out: ws.out)
        groupNorm(layer, T: T, ws: ws)
        for j in 0..<n { ws.out[j] *= ws.g[j] }
        mm(layer.output, ws.out, xStride: c, ws.att, T, ws)
    }

    private func timeMix7(_ layer: RWKVLayer, _ m: RWKV7Mix, _ cols: Columns, layerIndex i: Int, T: Int,
                          ws: RWKVWorkspace) {
        let c = config.embedding
        let heads = config.heads, hs = config.headSize
        let decayRank = config.decayRank, gateRank = config.gateRank
        // x_j = xn + sx * lerp[j] for j = r, w, k, v, a, g
        eachColumn(T, ws) { range in
            for t in range {
                for j in 0..<6 { lerpColumn(ws.mix[j], m.lerpFused + j * c, t: t, ws: ws) }
            }
        }
        // Every product whose input is ready: r, k, v and the first stage of each LoRA.
        mmAdd(layer.receptance, ws.mix[0], xStride: c, ws.r, T, ws)
        mmAdd(layer.key, ws.mix[2], xStride: c, ws.k, T, ws)
        mmAdd(layer.value, ws.mix[3], xStride: c, ws.v, T, ws)
        mmAdd(m.w1, ws.mix[1], xStride: c, ws.lora, T, ws)
        mmAdd(m.a1, ws.mix[4], xStride: c, ws.loraA, T, ws)
        mmAdd(m.g1, ws.mix[5], xStride: c, ws.loraG, T, ws)
        if let v1 = m.v1 { mmAdd(v1, ws.mix[3], xStride: c, ws.loraV, T, ws) }
        flush(ws)
        eachColumn(T, ws) { range in
            for j in (range.lowerBound * decayRank)..<(range.upperBound * decayRank) { ws.lora[j] = tanhf(ws.lora[j]) }
            for j in (range.lowerBound * gateRank)..<(range.upperBound * gateRank) {
                ws.loraG[j] = Ops.sigmoid(ws.loraG[j])
            }
        }
        // Second LoRA stages: w = W2 tanh(W1 x_w), a = A2 A1 x_a, g = G2 sigmoid(G1 x_g),
        // value mix V2 V1 x_v.
        mmAdd(m.w2, ws.lora, xStride: decayRank, ws.w, T, ws)
        mmAdd(m.a2, ws.loraA, xStride: config.iclrRank, ws.a, T, ws)
        mmAdd(m.g2, ws.loraG, xStride: gateRank, ws.g, T, ws)
        if let v2 = m.v2 { mmAdd(v2, ws.loraV, xStride: config.valueRank, ws.tmp, T, ws) }
        flush(ws)
        let valueMix = m.v0 != nil && m.v2 != nil
        if T < RWKVModel.parallelColumns && ws.pool.threads > 1 {
            // Decode steps: everything between the LoRA products and the output projection
            // is per channel or per head, so one pool call takes it over head ranges (the
            // column loop stays inside: a sequence's tokens go through WKV in order).
            // Through `run` and a context, not `parallelFor`: the decode step allocates nothing.
            var job = TimeMix7Heads(model: self, layer: layer, mix: m, cols: cols, layerIndex: i, T: T,
                                    valueMix: valueMix, ws: ws)
            withUnsafeMutablePointer(to: &job) { p in
                ws.pool.run(count: heads, granule: 1, context: UnsafeMutableRawPointer(p)) { raw, b, e, _ in
                    guard let j = raw?.assumingMemoryBound(to: TimeMix7Heads.self).pointee else { return }
                    j.model.timeMix7Heads(j, heads: b..<e)
                }
            }
        } else {
            eachColumn(T, ws) { range in
                for t in range { mix7Prepare(m, o: t * c, channels: 0..<c, valueMix: valueMix, ws: ws) }
            }
            recurrence7(cols, layer: i, T: T, r: ws.r, w: ws.w, k: ws.k, v: ws.v, a: ws.tmp, b: ws.b, out: ws.out,
                        ws: ws)
            eachColumn(T, ws) { range in
                for t in range { mix7Finish(layer, m, o: t * c, channels: 0..<c, ws: ws) }
            }
        }
        mm(layer.output, ws.out, xStride: c, ws.att, T, ws)
    }

    /// A decode step's time mix after the LoRA products for heads `hr`, every column in order.
    fileprivate func timeMix7Heads(_ j: TimeMix7Heads, heads hr: Range<Int>) {
        let c = config.embedding, hs = config.headSize
        let ws = j.ws
        let q0 = hr.lowerBound * hs, q1 = hr.upperBound * hs
        for t in 0..<j.T {
            let o = t * c
            mix7Prepare(j.mix, o: o, channels: q0..<q1, valueMix: j.valueMix, ws: ws)
            let p = o + q0
            wkv7(1, Int64(hr.count), Int64(hs), ws.r + p, ws.w + p, ws.k + p, ws.v + p, ws.tmp + p, ws.b + p,
                 wkvState(j.cols, layer: j.layerIndex, column: t) + q0 * hs, ws.out + p)
            mix7Finish(j.layer, j.mix, o: o, channels: q0..<q1, ws: ws)
        }
    }

    /// RWKV-7 time mix, column at offset o, channels `ch` (whole heads): decay w, in-context
    /// rate a, the value residual, kk = normalize_per_head(k * k_k), k *= 1 + (a - 1) * k_a,
    /// then WKV's a = -kk (in ws.tmp) and b = kk * a. Every channel and head is computed from
    /// its own inputs, so any split into head ranges gives the same bits.
    @inline(__always)
    private func mix7Prepare(_ m: RWKV7Mix, o: Int, channels ch: Range<Int>, valueMix: Bool, ws: RWKVWorkspace) {
        let hs = config.headSize
        // w = exp(-0.606531 * sigmoid(w0 + w)); a = sigmoid(a0 + a)
        for q in ch {
            ws.w[o + q] = expf(-0.606531 * Ops.sigmoid(m.w0[q] + ws.w[o + q]))
            ws.a[o + q] = Ops.sigmoid(m.a0[q] + ws.a[o + q])
        }
        // Value residual: layer 0 keeps its v; later layers mix towards it.
        if valueMix, let v0 = m.v0 {
            for q in ch {
                let mixv = Ops.sigmoid(v0[q] + ws.tmp[o + q])
                ws.v[o + q] += (ws.vFirst[o + q] - ws.v[o + q]) * mixv
            }
        } else {
            (ws.vFirst + o + ch.lowerBound).update(from: ws.v + o + ch.lowerBound, count: ch.count)
        }
        for q in ch { ws.tmp[o + q] = ws.k[o + q] * m.kK[q] }
        Ops.l2NormalizeGroups(ws.tmp + o + ch.lowerBound, groups: ch.count / hs, n: ch.count)
        for q in ch { ws.k[o + q] *= 1 + (ws.a[o + q] - 1) * m.kA[q] }
        // WKV with a = -kk, b = kk * a (b into ws.b, then kk negated in place).
        for q in ch {
            ws.b[o + q] = ws.tmp[o + q] * ws.a[o + q]
            ws.tmp[o + q] = -ws.tmp[o + q]
        }
    }

    /// RWKV-7 time mix after WKV, column at offset o, channels `ch` (whole heads):
    /// GroupNorm per head, out += v * sum_head(r * k * r_k), out *= g.
    @inline(__always)
    private func mix7Finish(_ layer: RWKVLayer, _ m: RWKV7Mix, o: Int, channels ch: Range<Int>, ws: RWKVWorkspace) {
        let hs = config.headSize
        let q0 = ch.lowerBound
        Ops.groupNorm(ws.out + o + q0, groups: ch.count / hs, weight: layer.lnX.weight + q0,
                      bias: layer.lnX.bias + q0, eps: config.groupNormEps, n: ch.count, into: ws.out + o + q0)
        for h in (q0 / hs)..<(ch.upperBound / hs) {
            let ho = o + h * hs
            var s: Float = 0
            for q in 0..<hs { s += ws.r[ho + q] * ws.k[ho + q] * m.rK[h * hs + q] }
            for q in 0..<hs { ws.out[ho + q] += s * ws.v[ho + q] }
        }
        for q in ch { ws.out[o + q] *= ws.g[o + q] }
    }

    /// The WKV state of layer i that column t continues.
    @inline(__always)
    private func wkvState(_ cols: Columns, layer i: Int, column t: Int) -> FloatPtr {
        switch cols {
        case let .chunk(state): return state.wkv(i)
        case let .batch(states): return states[t].wkv(i)
        }
    }

    /// Channel mix into ws.att: RWKV-7 Wv relu(Wk x_k)^2; RWKV-5/6 also gated by
    /// sigmoid(Wr x_r).
    private func channelMix(_ layer: RWKVLayer, T: Int, ws: RWKVWorkspace) {
        let c = config.embedding, f = config.feedForward
        eachColumn(T, ws) { range in
            for t in range { lerpColumn(ws.mix[0], layer.ffnLerpK, t: t, ws: ws) }
        }
        mmAdd(layer.ffnKey, ws.mix[0], xStride: c, ws.hidden, T, ws)
        if let lerpR = layer.ffnLerpR, let wr = layer.ffnReceptance {
            lerp(ws.mix[1], lerpR, T: T, ws: ws)
            mmAdd(wr, ws.mix[1], xStride: c, ws.r, T, ws)
        }
        flush(ws)
        eachColumn(T, ws) { range in
            for j in (range.lowerBound * f)..<(range.upperBound * f) {
                let h = max(ws.hidden[j], 0)
                ws.hidden[j] = h * h
            }
        }
        mm(layer.ffnValue, ws.hidden, xStride: f, ws.att, T, ws)
        if layer.ffnReceptance != nil {
            for j in 0..<(T * c) { ws.att[j] *= Ops.sigmoid(ws.r[j]) }
        }
    }
}

/// What `timeMix7Heads` needs, passed to the pool by address.
private struct TimeMix7Heads {
    let model: RWKVModel
    let layer: RWKVLayer
    let mix: RWKV7Mix
    let cols: Columns
    let layerIndex: Int
    let T: Int
    let valueMix: Bool
    let ws: RWKVWorkspace
}
