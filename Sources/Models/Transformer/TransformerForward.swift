import CKernels
import Tensors

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// y = x / sqrt(mean(x^2) + eps) * w over n floats (y may be x). The sum of squares runs
/// in index order in one float accumulator.
@inline(__always)
func rmsNorm(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, eps: Float, n: Int, into y: FloatPtr) {
    var sq: Float = 0
    for i in 0..<n { sq += x[i] * x[i] }
    let inv = 1 / (sq / Float(n) + eps).squareRoot()
    for i in 0..<n { y[i] = x[i] * inv * w[i] }
}

/// Preallocated working memory of a `TransformerModel` forward pass over up to `columns`
/// tokens at once (a chunk of one sequence, or one token of each sequence of a batch),
/// with the worker pool it runs on. One per thread of use (not Sendable).
public final class TransformerWorkspace {
    public let maxTokens: Int
    public let maxBatch: Int
    public let pool: WorkerPool
    public let allLogits: Bool
    let columns: Int
    let vocabulary: Int
    let scratch: MatScratch
    let group: MatvecGroup
    let buffer: AlignedBuffer

    // Rows of one column each, `columns` rows.
    let x, xn: FloatPtr             // [C][E]
    let q, att: FloatPtr            // [C][H * D]
    let k, v: FloatPtr              // [C][Hkv * D]
    let proj, shared: FloatPtr      // [C][E]
    let gate, up: FloatPtr          // [C][max(F, Fs)]
    let cs: FloatPtr                // [C][n_rot]: RoPE cos, sin of each column's position
    // Mixture of experts.
    let router: FloatPtr            // [C][n_expert]
    let topWeights: FloatPtr        // [C][k]
    let gathered, expertOut: FloatPtr // [C * k][E], rows grouped by expert
    let expertGate, expertUp: FloatPtr // [C * k][Fe]
    let topExperts: UnsafeMutablePointer<Int32> // [C][k]
    let slots: UnsafeMutablePointer<Int32>      // [C][k]: row of (token, rank) in the expert rows
    let counts: UnsafeMutablePointer<Int>       // [n_expert]
    let starts: UnsafeMutablePointer<Int>       // [n_expert]
    let fill: UnsafeMutablePointer<Int>         // [n_expert]
    let positions: UnsafeMutablePointer<Int>    // [C]
    /// Expert store use: the experts a call routes to, their slices' addresses (3 per
    /// expert), and the next MoE layer's predicted experts ([C][k]).
    let expertList: UnsafeMutablePointer<Int32>           // [n_expert]
    let expertSlices: UnsafeMutablePointer<UnsafeRawPointer> // [n_expert][3]
    let nextExperts: UnsafeMutablePointer<Int32>          // [C][k]
    let nextWeights: FloatPtr                             // [C][k]
    // Multi-head latent attention (deepseek2; one padded row otherwise).
    let mlaQ: FloatPtr              // [C][H * (nope + rope)]
    let mlaQA: FloatPtr             // [C][q_lora]
    let mlaQLatent, mlaOutLatent: FloatPtr // [C][H][kv_lora + rope]
    let mlaV: FloatPtr              // [C][H * v]
    /// Attention scores, `scoresPerThread` floats per pool thread.
    let scores: FloatPtr
    let scoresPerThread: Int
    /// The logits of the last call: row t at `logits + t * vocabulary`.
    public let logits: UnsafeMutablePointer<Float>

    /// Floats of each buffer of a workspace of `columns` columns (in the order `init` hands them out).
    static func floatCounts(_ cfg: TransformerConfig, columns c: Int, logitRows: Int, threads: Int) -> [Int] {
        let e = cfg.embedding, qw = cfg.qWidth, kvw = cfg.kvWidth, fd = cfg.maxDenseHidden
        let kk = max(1, cfg.expertsUsed)
        let ne = max(1, cfg.experts), fe = max(1, cfg.expertFeedForward)
        let scoresPerThread = (cfg.mla == nil ? cfg.groupSize : 1) * cfg.contextLength
        return [c * e, c * e, c * qw, c * qw, c * kvw, c * kvw, c * e, c * e, c * fd, c * fd, c * cfg.rope.dims,
                c * ne, c * kk, c * kk * e, c * kk * e, c * kk * fe, c * kk * fe,
                threads * scoresPerThread, logitRows * cfg.vocabulary]
            + (cfg.mla.map { m in [c * m.qWidth(heads: cfg.heads), c * m.qLoraRank, c * cfg.heads * m.latentWidth,
                                   c * cfg.heads * m.latentWidth, c * cfg.heads * m.valueDim] } ?? [1, 1, 1, 1, 1])
    }

    /// Bytes a workspace of this shape allocates: its float buffers and its matrix scratch
    /// (quantized activation rows and per-thread float tiles, as `MatScratch` sizes them).
    static func byteCount(_ cfg: TransformerConfig, maxTokens: Int, maxBatch: Int, threads: Int) -> Int {
        let c = max(1, maxTokens, maxBatch)
        let rows = max(3 * c, 2 * c * max(1, cfg.expertsUsed))
        let floats = floatCounts(cfg, columns: c, logitRows: max(1, maxBatch), threads: threads)
            .reduce(0) { $0 + (max($1, 1) + 15) / 16 * 16 }
        let scratch = rows * ActivationFormat.maxRowBytes(cfg.maxMatrixInputs)
            + threads * MatScratch.tileRows * cfg.maxMatrixInputs * MemoryLayout<Float>.stride
        return floats * MemoryLayout<Float>.stride + scratch
    }

    init(model: TransformerModel, maxTokens: Int, maxBatch: Int, pool: WorkerPool, allLogits: Bool) throws(ModelError) {
        let cfg = model.config
        self.maxTokens = max(1, maxTokens)
        self.maxBatch = max(1, maxBatch)
        guard self.maxBatch <= 4096 else { throw .invalidBatch("maxBatch \(maxBatch); expected 1...4096") }
        self.pool = pool
        self.allLogits = allLogits
        let c = max(self.maxTokens, self.maxBatch)
        columns = c
        vocabulary = cfg.vocabulary
        let kk = max(1, cfg.expertsUsed)
        let rows = max(3 * c, 2 * c * kk)
        do {
            scratch = try MatScratch(maxCols: cfg.maxMatrixInputs, maxBatch: rows, threads: pool.threads)
        } catch { throw .tensor(name: "workspace", error) }
        group = MatvecGroup(capacity: max(8, 2 * cfg.experts + 2, cfg.mla == nil ? 0 : cfg.heads))
        let ne = max(1, cfg.experts)
        scoresPerThread = (cfg.mla == nil ? cfg.groupSize : 1) * cfg.contextLength
        let sizes = TransformerWorkspace.floatCounts(cfg, columns: c, logitRows: max(allLogits ? self.maxTokens : 1, self.maxBatch),
                                                     threads: pool.threads)
        let padded = sizes.map { (max($0, 1) + 15) / 16 * 16 }
        let total = padded.reduce(0, +)
        guard let buf = AlignedBuffer(byteCount: total * MemoryLayout<Float>.stride) else {
            throw .tensor(name: "workspace", .allocationFailed(what: "transformer workspace", bytes: total * 4))
        }
        buffer = buf
        var p: [FloatPtr] = []
        var offset = 0
        let base = buf.pointer.assumingMemoryBound(to: Float.self)
        for n in padded {
            p.append(base + offset)
            offset += n
        }
        (x, xn, q, att, k, v, proj, shared, gate, up, cs) = (p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10])
        (router, topWeights, gathered, expertOut, expertGate, expertUp) = (p[11], p[12], p[13], p[14], p[15], p[16])
        scores = p[17]
        logits = p[18]
        (mlaQ, mlaQA, mlaQLatent, mlaOutLatent, mlaV) = (p[19], p[20], p[21], p[22], p[23])
        topExperts = .allocate(capacity: c * kk)
        topExperts.initialize(repeating: 0, count: c * kk)
        slots = .allocate(capacity: c * kk)
        slots.initialize(repeating: 0, count: c * kk)
        counts = .allocate(capacity: ne)
        counts.initialize(repeating: 0, count: ne)
        starts = .allocate(capacity: ne)
        starts.initialize(repeating: 0, count: ne)
        fill = .allocate(capacity: ne)
        fill.initialize(repeating: 0, count: ne)
        positions = .allocate(capacity: c)
        positions.initialize(repeating: 0, count: c)
        expertList = .allocate(capacity: ne)
        expertList.initialize(repeating: 0, count: ne)
        expertSlices = .allocate(capacity: 3 * ne)
        expertSlices.initialize(repeating: UnsafeRawPointer(buf.pointer), count: 3 * ne)
        nextExperts = .allocate(capacity: c * kk)
        nextExperts.initialize(repeating: 0, count: c * kk)
        nextWeights = .allocate(capacity: c * kk)
        nextWeights.initialize(repeating: 0, count: c * kk)
    }

    deinit {
        topExperts.deallocate()
        slots.deallocate()
        counts.deallocate()
        starts.deallocate()
        fill.deallocate()
        positions.deallocate()
        expertList.deallocate()
        expertSlices.deallocate()
        nextExperts.deallocate()
        nextWeights.deallocate()
    }
}

/// Whose KV cache each column of a forward pass extends.
enum KVColumns {
    /// Consecutive tokens of one sequence (column t at position tokenCount + t).
    case chunk(TransformerState)
    /// One token of each sequence: column t extends states[t] (distinct states).
    case batch([TransformerState])

    @inline(__always) func state(_ t: Int) -> TransformerState {
        switch self {
        case let .chunk(s): s
        case let .batch(ss): ss[t]
        }
    }
}

extension TransformerModel {
    /// Chunks of at least this many columns run their element-wise work on the pool.
    static let parallelColumns = 4

    @inline(__always)
    func eachColumn(_ T: Int, _ ws: TransformerWorkspace, _ body: (Range<Int>) -> Void) {
        if T < TransformerModel.parallelColumns || ws.pool.threads <= 1 {
            body(0..<T)
        } else {
            ws.pool.parallelFor(count: T) { range, _ in body(range) }
        }
    }

    /// y[t] = W x[t] for t < T (y rows `w.rows` apart): the gemv for one column, the
    /// kernel gemm (bitwise the gemv per column) for more.
    @inline(__always)
    func mm(_ w: WeightMatrix, _ x: UnsafePointer<Float>, xStride: Int, _ y: FloatPtr, _ T: Int, _ ws: TransformerWorkspace) {
        if T == 1 {
            matvec(w, x: x, y: y, scratch: ws.scratch, pool: ws.pool, kernels: kernels)
        } else {
            matmul(w, x: x, xStride: xStride, batch: T, y: y, yStride: w.rows, scratch: ws.scratch, pool: ws.pool,
                   kernels: kernels)
        }
    }

    /// Queues y[t] = W x[t] for t < T in the workspace's group (run by `ws.group.run`).
    @inline(__always)
    func mmAdd(_ w: WeightMatrix, _ x: UnsafePointer<Float>, xStride: Int, _ y: FloatPtr, yStride: Int, _ T: Int,
               _ ws: TransformerWorkspace) {
        ws.group.add(w, x: x, xStride: xStride, batch: T, y: y, yStride: yStride, scratch: ws.scratch, kernels: kernels)
    }

    /// Runs one column per token (see `KVColumns`); every state has room for its new
    /// positions (checked and reserved by the caller). Allocates nothing. Throws only when
    /// the expert store cannot read an expert; the states' token counts are then unchanged.
    func forwardColumns(_ tokens: UnsafeBufferPointer<Int32>, _ cols: KVColumns, ws: TransformerWorkspace,
                        logits mode: LogitsMode) throws(ModelError) {
        let T = tokens.count
        guard T > 0 else { return }
        let cfg = config
        let e = cfg.embedding
        switch cols {
        case let .chunk(s): for t in 0..<T { ws.positions[t] = s.tokenCount + t }
        case let .batch(ss): for t in 0..<T { ws.positions[t] = ss[t].tokenCount }
        }
        guard let dq = kernels.dequantize(embedding.type) else { return } // checked at load
        for t in 0..<T {
            dq(embedding.base + Int(tokens[t]) * embedding.rowBytes, ws.x + t * e, Int64(e))
            cfg.rope.table(position: ws.positions[t], into: ws.cs + t * cfg.rope.dims)
        }
        for (i, layer) in layers.enumerated() {
            switch layer.attention {
            case let .standard(a): attentionBlock(a, layer: i, cols, T: T, ws: ws)
            case let .mla(a): latentAttentionBlock(a, layer: i, cols, T: T, ws: ws)
            }
            eachColumn(T, ws) { range in
                for t in range { rmsNorm(ws.x + t * e, layer.ffnNorm, eps: cfg.normEps, n: e, into: ws.xn + t * e) }
            }
            switch layer.ffn {
            case let .dense(f): denseFFN(f, T: T, ws: ws, into: ws.proj)
            case let .moe(m):
                try moeFFN(m, layer: i, T: T, ws: ws)
                if m.sharedGate == nil, let sh = m.shared { addSharedExperts(sh, T: T, ws: ws) }
            }
            for j in 0..<(T * e) { ws.x[j] += ws.proj[j] }
        }
        switch cols {
        case let .chunk(s): s.tokenCount += T
        case let .batch(ss): for s in ss { s.tokenCount += 1 }
        }
        expertStore?.endToken(count: T)
        switch mode {
        case .none:
            return
        case .last:
            rmsNorm(ws.x + (T - 1) * e, outputNorm, eps: cfg.normEps, n: e, into: ws.xn)
            mm(head, ws.xn, xStride: e, ws.logits, 1, ws)
        case .all:
            for t in 0..<T { rmsNorm(ws.x + t * e, outputNorm, eps: cfg.normEps, n: e, into: ws.xn + t * e) }
            mm(head, ws.xn, xStride: e, ws.logits, T, ws)
        }
    }

    /// x += o(attention(q, k, v)) for every column: RMSNorm, the q/k/v projections as one
    /// group, biases, q/k norms, RoPE, the new keys and values into each column's cache,
    /// then attention of each (column, KV head) over its sequence's cache up to and
    /// including its own position (causal), and the output projection.
    private func attentionBlock(_ a: AttentionWeights, layer i: Int, _ cols: KVColumns, T: Int,
                                ws: TransformerWorkspace) {
        let cfg = config
        let e = cfg.embedding, qw = cfg.qWidth, kvw = cfg.kvWidth, d = cfg.headDim
        let eps = cfg.normEps, nRot = cfg.rope.dims, neox = cfg.rope.layout.neoxFlag
        let qkNorm = cfg.spec.qkNorm
        eachColumn(T, ws) { range in
            for t in range { rmsNorm(ws.x + t * e, a.norm, eps: eps, n: e, into: ws.xn + t * e) }
        }
        mmAdd(a.q, ws.xn, xStride: e, ws.q, yStride: qw, T, ws)
        mmAdd(a.k, ws.xn, xStride: e, ws.k, yStride: kvw, T, ws)
        mmAdd(a.v, ws.xn, xStride: e, ws.v, yStride: kvw, T, ws)
        ws.group.run(pool: ws.pool)
        let rope = self.rope
        let kvType = kvCache
        eachColumn(T, ws) { range in
            for t in range {
                let qr = ws.q + t * qw, kr = ws.k + t * kvw, vr = ws.v + t * kvw
                if let b = a.qBias { for j in 0..<qw { qr[j] += b[j] } }
                if let b = a.kBias { for j in 0..<kvw { kr[j] += b[j] } }
                if let b = a.vBias { for j in 0..<kvw { vr[j] += b[j] } }
                switch qkNorm {
                case .none: break
                case .perHead:
                    if let qn = a.qNorm, let kn = a.kNorm {
                        for h in 0..<cfg.heads { rmsNorm(qr + h * d, qn, eps: eps, n: d, into: qr + h * d) }
                        for h in 0..<cfg.kvHeads { rmsNorm(kr + h * d, kn, eps: eps, n: d, into: kr + h * d) }
                    }
                case .full:
                    if let qn = a.qNorm, let kn = a.kNorm {
                        rmsNorm(qr, qn, eps: eps, n: qw, into: qr)
                        rmsNorm(kr, kn, eps: eps, n: kvw, into: kr)
                    }
                }
                let cs = UnsafePointer(ws.cs + t * nRot)
                rope(Int64(cfg.heads), Int64(d), Int64(nRot), neox, cs, qr)
                rope(Int64(cfg.kvHeads), Int64(d), Int64(nRot), neox, cs, kr)
                let s = cols.state(t)
                let row = ws.positions[t] * s.shape.rowBytes
                let kc = s.keys(i) + row, vc = s.values(i) + row
                switch kvType {
                case .f16:
                    let k16 = kc.assumingMemoryBound(to: UInt16.self), v16 = vc.assumingMemoryBound(to: UInt16.self)
                    for j in 0..<kvw {
                        k16[j] = roost_fp32_to_fp16(kr[j])
                        v16[j] = roost_fp32_to_fp16(vr[j])
                    }
                case .f32:
                    kc.assumingMemoryBound(to: Float.self).update(from: kr, count: kvw)
                    vc.assumingMemoryBound(to: Float.self).update(from: vr, count: kvw)
                case .q8_0:
                    quantizeQ8(kr, kc, Int64(kvw))
                    quantizeQ8(vr, vc, Int64(kvw))
                }
            }
        }
        let hkv = cfg.kvHeads, g = cfg.groupSize
        let scale = 1 / Float(d).squareRoot()
        let units = T * hkv
        // Work ~ positions x query dims; small steps stay on the calling thread.
        let work = units * g * d * (ws.positions[T - 1] + 1)
        if units > 1 && ws.pool.threads > 1 && work >= 16_384 {
            // Through `run` and a context, not `parallelFor`: the decode step allocates nothing.
            var job = AttendJob(model: self, layer: i, cols: cols, scale: scale, ws: ws)
            withUnsafeMutablePointer(to: &job) { p in
                ws.pool.run(count: units, granule: 1, context: UnsafeMutableRawPointer(p)) { raw, b, e, thread in
                    guard let j = raw?.assumingMemoryBound(to: AttendJob.self).pointee else { return }
                    j.model.attend(b..<e, thread: thread, layer: j.layer, j.cols, scale: j.scale, ws: j.ws)
                }
            }
        } else {
            attend(0..<units, thread: 0, layer: i, cols, scale: scale, ws: ws)
        }
        mm(a.o, ws.att, xStride: qw, ws.proj, T, ws)
        for j in 0..<(T * e) { ws.x[j] += ws.proj[j] }
    }

    /// Attention units `range` (unit u: column u / Hkv, KV head u % Hkv): the KV head's
    /// query group against the column's cache, positions 0...its own, into ws.att.
    @inline(__always)
    fileprivate func attend(_ range: Range<Int>, thread: Int, layer i: Int, _ cols: KVColumns, scale: Float,
                        ws: TransformerWorkspace) {
        let cfg = config
        let qw = cfg.qWidth, kvw = cfg.kvWidth, d = cfg.headDim, hkv = cfg.kvHeads, g = cfg.groupSize
        let sc = ws.scores + thread * ws.scoresPerThread
        for u in range {
            let t = u / hkv, h = u % hkv
            let s = cols.state(t)
            let o = t * qw + h * g * d
            let n = Int64(ws.positions[t] + 1)
            let hb = h * s.shape.headBytes
            switch kvCache {
            case .f16:
                attentionF16(Int64(g), Int64(d), n, ws.q + o, Int64(d),
                             (s.keys(i) + hb).assumingMemoryBound(to: UInt16.self),
                             (s.values(i) + hb).assumingMemoryBound(to: UInt16.self), Int64(kvw), scale, sc,
                             ws.att + o, Int64(d))
            case .f32:
                attentionF32(Int64(g), Int64(d), n, ws.q + o, Int64(d),
                             (s.keys(i) + hb).assumingMemoryBound(to: Float.self),
                             (s.values(i) + hb).assumingMemoryBound(to: Float.self), Int64(kvw), scale, sc,
                             ws.att + o, Int64(d))
            case .q8_0:
                attentionQ8(Int64(g), Int64(d), n, ws.q + o, Int64(d), s.keys(i) + hb, s.values(i) + hb,
                            Int64(s.shape.rowBytes), scale, sc, ws.att + o, Int64(d))
            }
        }
    }

    /// deepseek2's shared experts, ungated: proj[t] += shared(xn[t]).
    private func addSharedExperts(_ sh: FFNWeights, T: Int, ws: TransformerWorkspace) {
        let e = config.embedding
        denseFFN(sh, T: T, ws: ws, into: ws.shared)
        for j in 0..<(T * e) { ws.proj[j] += ws.shared[j] }
    }

    /// out[t] = down(silu(gate xn[t]) * up xn[t]) (out rows E apart).
    private func denseFFN(_ f: FFNWeights, T: Int, ws: TransformerWorkspace, into out: FloatPtr) {
        let e = config.embedding, fw = f.gate.rows
        mmAdd(f.gate, ws.xn, xStride: e, ws.gate, yStride: fw, T, ws)
        mmAdd(f.up, ws.xn, xStride: e, ws.up, yStride: fw, T, ws)
        ws.group.run(pool: ws.pool)
        eachColumn(T, ws) { range in
            for j in (range.lowerBound * fw)..<(range.upperBound * fw) { ws.gate[j] = Ops.silu(ws.gate[j]) * ws.up[j] }
        }
        mm(f.down, ws.gate, xStride: fw, out, T, ws)
    }

    /// Predicts the experts of the next MoE layer by applying its router to this layer's
    /// FFN input, and asks the store to read those not resident into slots of unpinned
    /// experts. Uses `ws.router`, whose routing is already done.
    private func prefetchNext(after layer: Int, T: Int, ws: TransformerWorkspace, store: ExpertStore) {
        var next = layer + 1
        while next < layers.count {
            if case .moe = layers[next].ffn { break }
            next += 1
        }
        guard next < layers.count, case let .moe(n) = layers[next].ffn else { return }
        let cfg = config
        let e = cfg.embedding, ne = cfg.experts, kk = cfg.expertsUsed
        mm(n.router, ws.xn, xStride: e, ws.router, T, ws)
        for t in 0..<T {
            routeTopK(ws.router + t * ne, n: ne, k: kk, normalize: false, experts: ws.nextExperts + t * kk,
                      weights: ws.nextWeights + t * kk)
        }
        store.prefetch(layer: next, experts: UnsafeBufferPointer(start: ws.nextExperts, count: T * kk))
    }

    /// proj[t] = sum over t's k routed experts (by rank) of weight * expert(xn[t]), plus the
    /// gated shared expert. The tokens routed to an expert are gathered and multiplied
    /// together (its weights read once per call); each row's result is the gemv's bits,
    /// so a token's output does not depend on which tokens share its experts.
    private func moeFFN(_ m: MoEWeights, layer: Int, T: Int, ws: TransformerWorkspace) throws(ModelError) {
        let cfg = config
        let e = cfg.embedding, ne = cfg.experts, kk = cfg.expertsUsed, fe = cfg.expertFeedForward
        mm(m.router, ws.xn, xStride: e, ws.router, T, ws)
        for t in 0..<T {
            if let g = cfg.mla {
                routeGroupLimited(ws.router + t * ne, n: ne, k: kk, groups: g.groups, groupsUsed: g.groupsUsed,
                                  normalize: cfg.normalizeTopK, scale: g.weightsScale, experts: ws.topExperts + t * kk,
                                  weights: ws.topWeights + t * kk)
                continue
            }
            routeTopK(ws.router + t * ne, n: ne, k: kk, normalize: cfg.normalizeTopK, experts: ws.topExperts + t * kk,
                      weights: ws.topWeights + t * kk)
        }
        // Rows grouped by expert, tokens in order within an expert.
        for x in 0..<ne { ws.counts[x] = 0 }
        for j in 0..<(T * kk) { ws.counts[Int(ws.topExperts[j])] += 1 }
        var start = 0
        for x in 0..<ne {
            ws.starts[x] = start
            ws.fill[x] = start
            start += ws.counts[x]
        }
        for j in 0..<(T * kk) {
            let x = Int(ws.topExperts[j])
            let slot = ws.fill[x]
            ws.fill[x] += 1
            ws.slots[j] = Int32(slot)
            (ws.gathered + slot * e).update(from: ws.xn + (j / kk) * e, count: e)
        }
        // The routed experts' weights: from the mapping, or resident in the expert store
        // (read now if missing; the next layer's predicted experts are read meanwhile).
        var used = 0
        for x in 0..<ne where ws.counts[x] > 0 {
            ws.expertList[used] = Int32(x)
            used += 1
        }
        let store = expertStore.flatMap { $0.isBudgeted ? $0 : nil }
        if let store {
            try store.acquire(layer: layer, experts: UnsafeBufferPointer(start: ws.expertList, count: used),
                              into: ws.expertSlices)
            // Read the next layer's likely experts while this layer's compute.
            prefetchNext(after: layer, T: T, ws: ws, store: store)
        }
        defer { store?.release(layer: layer) }
        @inline(__always) func expert(_ i: Int) -> FFNWeights {
            let x = Int(ws.expertList[i])
            guard store != nil else { return m.experts[x] }
            let w = m.experts[x]
            return FFNWeights(gate: w.gate.relocated(to: ws.expertSlices[3 * i], owner: nil),
                              up: w.up.relocated(to: ws.expertSlices[3 * i + 1], owner: nil),
                              down: w.down.relocated(to: ws.expertSlices[3 * i + 2], owner: nil))
        }
        for i in 0..<used {
            let x = Int(ws.expertList[i]), s = ws.starts[x], w = expert(i)
            mmAdd(w.gate, ws.gathered + s * e, xStride: e, ws.expertGate + s * fe, yStride: fe, ws.counts[x], ws)
            mmAdd(w.up, ws.gathered + s * e, xStride: e, ws.expertUp + s * fe, yStride: fe, ws.counts[x], ws)
        }
        ws.group.run(pool: ws.pool)
        let n = T * kk
        eachColumn(n, ws) { range in
            for j in (range.lowerBound * fe)..<(range.upperBound * fe) {
                ws.expertGate[j] = Ops.silu(ws.expertGate[j]) * ws.expertUp[j]
            }
        }
        for i in 0..<used {
            let x = Int(ws.expertList[i]), s = ws.starts[x]
            mmAdd(expert(i).down, ws.expertGate + s * fe, xStride: fe, ws.expertOut + s * e, yStride: e, ws.counts[x], ws)
        }
        ws.group.run(pool: ws.pool)
        eachColumn(T, ws) { range in
            for t in range {
                let y = ws.proj + t * e
                y.update(repeating: 0, count: e)
                for r in 0..<kk {
                    let w = ws.topWeights[t * kk + r]
                    let row = ws.expertOut + Int(ws.slots[t * kk + r]) * e
                    for j in 0..<e { y[j] += w * row[j] }
                }
            }
        }
        if let sh = m.shared, let sg = m.sharedGate {
            denseFFN(sh, T: T, ws: ws, into: ws.shared)
            eachColumn(T, ws) { range in
                for t in range {
                    let xr = ws.xn + t * e
                    var dot: Float = 0
                    for j in 0..<e { dot += sg[j] * xr[j] }
                    let gate = Ops.sigmoid(dot)
                    let y = ws.proj + t * e, s = ws.shared + t * e
                    for j in 0..<e { y[j] += gate * s[j] }
                }
            }
        }
    }
}

/// What `attend` needs, passed to the pool by address.
private struct AttendJob {
    let model: TransformerModel
    let layer: Int
    let cols: KVColumns
    let scale: Float
    let ws: TransformerWorkspace
}
