import CKernels
import Tensors

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `deepseek2`: DeepSeek-V2 and V2-Lite (multi-head latent attention, shared experts,
/// leading dense blocks, group-limited routing, YaRN), in llama.cpp's layout.
///
/// Tensors per block N (ggml shapes, inputs first; H heads, C = embedding, nope/rope/v
/// the head parts, kvl = kv_lora_rank, ql = q_lora_rank):
/// attn_norm (C); either attn_q (C, H·(nope+rope)) (no q LoRA, V2-Lite) or attn_q_a (C, ql),
/// attn_q_a_norm (ql), attn_q_b (ql, H·(nope+rope)); attn_kv_a_mqa (C, kvl+rope) (the
/// compressed kv and the rope key shared by every head), attn_kv_a_norm (kvl);
/// attn_k_b (nope, kvl, H) (per head: q_nope -> latent query), attn_v_b (kvl, v, H) (per
/// head: latent -> value); attn_output (H·v, C); ffn_norm (C). Blocks below
/// leading_dense_block_count: ffn_gate, ffn_up (C, F), ffn_down (F, C). The others:
/// ffn_gate_inp (C, n_expert), ffn_{gate,up}_exps (C, Fe, n_expert), ffn_down_exps
/// (Fe, C, n_expert), ffn_{gate,up}_shexp (C, Fe·n_shared), ffn_down_shexp (Fe·n_shared, C)
/// (no shared-expert gate). No attn_kv_b: this converter writes only the split halves.
///
/// Keys (deepseek2.*): the common ones, plus attention.kv_lora_rank,
/// attention.q_lora_rank (only with q LoRA), attention.key_length (= kvl + rope),
/// attention.value_length (= kvl), attention.key_length_mla (= nope + rope),
/// attention.value_length_mla (= v), attention.head_count_kv (= 1), rope.dimension_count
/// (= rope), leading_dense_block_count, expert_shared_count, expert_weights_scale,
/// expert_weights_norm (optional), expert_gating_func (1 = softmax; sigmoid (2) is V3's and
/// is refused), expert_group_count, expert_group_used_count, and YaRN's
/// rope.scaling.yarn_log_multiplier (= 0.1 · mscale_all_dim).
///
/// RoPE: normal (adjacent pairs), on the rope part of q and on the shared rope key only;
/// with YaRN the cos/sin magnitude is 1 (llama.cpp passes attn_factor
/// 1 / (1 + 0.1 ln factor), cancelling ggml's factor) and the softmax scale is
/// mscale² / sqrt(nope + rope), mscale = 1 + yarn_log_multiplier · ln(factor).
///
/// Routing: softmax over the experts; with n_group > 1 the groups are ranked by their
/// best expert's probability (DeepSeek-V2's rule; llama.cpp ranks by the sum of the two
/// best, V3's rule) and only the topk_group best groups compete; top-k; weights
/// renormalized only with expert_weights_norm, then times expert_weights_scale; the
/// shared experts' output is added unscaled.
extension TransformerSpec {
    static let deepseek2 = TransformerSpec(architecture: .deepseek2, rope: .normal, qkvBias: .absent, qkNorm: .none,
                                           moe: .always, sharedExpert: .absent, normalizeTopK: false, mla: true)
}

extension TransformerNames {
    static func attnQA(_ i: Int) -> String { "blk.\(i).attn_q_a.weight" }            // (E, ql)
    static func attnQANorm(_ i: Int) -> String { "blk.\(i).attn_q_a_norm.weight" }   // (ql)
    static func attnQB(_ i: Int) -> String { "blk.\(i).attn_q_b.weight" }            // (ql, H * (nope + rope))
    static func attnKVAMQA(_ i: Int) -> String { "blk.\(i).attn_kv_a_mqa.weight" }   // (E, kvl + rope)
    static func attnKVANorm(_ i: Int) -> String { "blk.\(i).attn_kv_a_norm.weight" } // (kvl)
    static func attnKB(_ i: Int) -> String { "blk.\(i).attn_k_b.weight" }            // (nope, kvl, H)
    static func attnVB(_ i: Int) -> String { "blk.\(i).attn_v_b.weight" }            // (kvl, v, H)

    static func kvLoraRank(_ a: String) -> String { "\(a).attention.kv_lora_rank" }
    static func qLoraRank(_ a: String) -> String { "\(a).attention.q_lora_rank" }
    static func keyLengthMLA(_ a: String) -> String { "\(a).attention.key_length_mla" }
    static func valueLengthMLA(_ a: String) -> String { "\(a).attention.value_length_mla" }
    static func leadingDenseBlockCount(_ a: String) -> String { "\(a).leading_dense_block_count" }
    static func expertSharedCount(_ a: String) -> String { "\(a).expert_shared_count" }
    static func expertWeightsScale(_ a: String) -> String { "\(a).expert_weights_scale" }
    static func expertGatingFunc(_ a: String) -> String { "\(a).expert_gating_func" }
    static func expertGroupCount(_ a: String) -> String { "\(a).expert_group_count" }
    static func expertGroupUsedCount(_ a: String) -> String { "\(a).expert_group_used_count" }
    static func yarnLogMultiplier(_ a: String) -> String { "\(a).rope.scaling.yarn_log_multiplier" }
}

/// The multi-head latent attention and DeepSeek MoE hyperparameters of a `deepseek2` file.
public struct MLAConfig: Sendable {
    /// kvl: width of the compressed kv (the latent every head attends over).
    public let kvLoraRank: Int
    /// ql: width of the compressed query, 0 without q LoRA (`attn_q`).
    public let qLoraRank: Int
    /// Per head: the non-rotated and rotated parts of q and k, and the value width.
    public let nope: Int
    public let ropeDims: Int
    public let valueDim: Int
    /// Blocks 0..<leadingDense have a dense FFN.
    public let leadingDense: Int
    public let sharedExperts: Int
    public let weightsScale: Float
    /// n_group, topk_group (1, 1 without group-limited routing).
    public let groups: Int
    public let groupsUsed: Int
    /// The attention softmax scale, mscale² / sqrt(nope + rope).
    public let scale: Float

    /// Floats of one position's cache row (and of one head's latent query): kvl + rope.
    public var latentWidth: Int { kvLoraRank + ropeDims }
    /// Floats of one token's query projection: H · (nope + rope).
    func qWidth(heads: Int) -> Int { heads * (nope + ropeDims) }

    /// Reads and checks the keys (and the block-0 q tensors, which decide q LoRA).
    static func read(_ l: WeightLoader, arch a: String, heads h: Int, kvHeads: Int, keyLength: Int, valueLength: Int,
                     ropeDims: Int, layers: Int, experts: Int, freqScale: Float, ropeScaled: Bool) throws(ModelError) -> MLAConfig {
        let N = TransformerNames.self
        let kvl = try l.positiveInt(N.kvLoraRank(a))
        guard kvHeads == 1 else {
            throw .badMetadata(key: N.headCountKV(a), expected: "1 (one latent kv shared by every head)", found: "\(kvHeads)")
        }
        guard keyLength == kvl + ropeDims else {
            throw .badMetadata(key: N.keyLength(a), expected: "\(N.kvLoraRank(a)) + \(N.ropeDimensionCount(a)) = \(kvl + ropeDims)",
                               found: "\(keyLength)")
        }
        guard valueLength == kvl else {
            throw .badMetadata(key: N.valueLength(a), expected: "\(N.kvLoraRank(a)) = \(kvl)", found: "\(valueLength)")
        }
        let kMLA = try l.positiveInt(N.keyLengthMLA(a))
        guard kMLA > ropeDims else {
            throw .badMetadata(key: N.keyLengthMLA(a), expected: "more than \(N.ropeDimensionCount(a)) = \(ropeDims)",
                               found: "\(kMLA)")
        }
        let vMLA = try l.positiveInt(N.valueLengthMLA(a))
        // q LoRA by the tensors (and the key when present), not by the layer count.
        var ql = 0
        if l.has(N.attnQA(0)) || l.has(N.attnQB(0)) {
            ql = try l.positiveInt(N.qLoraRank(a))
        } else if let v = try l.optionalInt(N.qLoraRank(a)), v > 0 {
            throw .missingTensor(name: N.attnQA(0))
        }
        let dense = try l.optionalInt(N.leadingDenseBlockCount(a)) ?? 0
        guard dense >= 0, dense <= layers else {
            throw .badMetadata(key: N.leadingDenseBlockCount(a), expected: "0...\(layers)", found: "\(dense)")
        }
        let shared = try l.optionalInt(N.expertSharedCount(a)) ?? 0
        guard shared >= 0 else {
            throw .badMetadata(key: N.expertSharedCount(a), expected: "a non-negative integer", found: "\(shared)")
        }
        let ws = try l.optionalFloat(N.expertWeightsScale(a)) ?? 1
        let gating = try l.optionalInt(N.expertGatingFunc(a)) ?? 1
        guard gating == 1 else {
            throw .badMetadata(key: N.expertGatingFunc(a), expected: "1 (softmax, DeepSeek-V2)", found: "\(gating)")
        }
        let groups = max(1, try l.optionalInt(N.expertGroupCount(a)) ?? 1)
        guard experts % groups == 0, groups <= 64 else {
            throw .badMetadata(key: N.expertGroupCount(a), expected: "a divisor of the expert count \(experts), at most 64",
                               found: "\(groups)")
        }
        let used = try l.optionalInt(N.expertGroupUsedCount(a)) ?? groups
        guard used >= 1, used <= groups else {
            throw .badMetadata(key: N.expertGroupUsedCount(a), expected: "1...\(groups)", found: "\(used)")
        }
        var mscale: Float = 1
        if ropeScaled, let lm = try l.optionalFloat(N.yarnLogMultiplier(a)) {
            mscale = 1 + lm * logf(1 / freqScale)
        }
        return MLAConfig(kvLoraRank: kvl, qLoraRank: ql, nope: kMLA - ropeDims, ropeDims: ropeDims, valueDim: vMLA,
                         leadingDense: dense, sharedExperts: shared, weightsScale: ws, groups: groups, groupsUsed: used,
                         scale: mscale * mscale / Float(kMLA).squareRoot())
    }
}

/// Attention weights of one `deepseek2` block (multi-head latent attention).
struct MLAWeights {
    let norm: FloatPtr              // attn_norm [E]
    let q: WeightMatrix?            // attn_q: [E] -> [H * (nope + rope)] (no q LoRA)
    let qA: WeightMatrix?           // attn_q_a: [E] -> [ql]
    let qANorm: FloatPtr?           // attn_q_a_norm [ql]
    let qB: WeightMatrix?           // attn_q_b: [ql] -> [H * (nope + rope)]
    let kvA: WeightMatrix           // attn_kv_a_mqa: [E] -> [kvl + rope]
    let kvANorm: FloatPtr           // attn_kv_a_norm [kvl]
    let kB: [WeightMatrix]          // per head, attn_k_b: [nope] -> [kvl]
    let vB: [WeightMatrix]          // per head, attn_v_b: [kvl] -> [v]
    let o: WeightMatrix             // attn_output: [H * v] -> [E]

    var byteCount: Int {
        (q?.byteCount ?? 0) + (qA?.byteCount ?? 0) + (qB?.byteCount ?? 0) + kvA.byteCount
            + kB.reduce(0) { $0 + $1.byteCount } + vB.reduce(0) { $0 + $1.byteCount } + o.byteCount
    }

    static func load(_ l: WeightLoader, _ cfg: TransformerConfig, _ m: MLAConfig, layer i: Int) throws(ModelError) -> MLAWeights {
        let N = TransformerNames.self
        let e = cfg.embedding, h = cfg.heads, qw = m.qWidth(heads: h)
        var q: WeightMatrix?, qA: WeightMatrix?, qB: WeightMatrix?, qANorm: FloatPtr?
        if m.qLoraRank > 0 {
            qA = try l.matrix(N.attnQA(i), inputs: e, outputs: m.qLoraRank)
            qANorm = try l.vector(N.attnQANorm(i), count: m.qLoraRank)
            qB = try l.matrix(N.attnQB(i), inputs: m.qLoraRank, outputs: qw)
        } else {
            q = try l.matrix(N.attnQ(i), inputs: e, outputs: qw)
        }
        return MLAWeights(norm: try l.vector(N.attnNorm(i), count: e), q: q, qA: qA, qANorm: qANorm, qB: qB,
                          kvA: try l.matrix(N.attnKVAMQA(i), inputs: e, outputs: m.latentWidth),
                          kvANorm: try l.vector(N.attnKVANorm(i), count: m.kvLoraRank),
                          kB: try l.matrices(N.attnKB(i), inputs: m.nope, outputs: m.kvLoraRank, count: h),
                          vB: try l.matrices(N.attnVB(i), inputs: m.kvLoraRank, outputs: m.valueDim, count: h),
                          o: try l.matrix(N.attnOutput(i), inputs: h * m.valueDim, outputs: e))
    }
}

/// DeepSeek-V2 routing of one token: softmax over the n experts; with `groups` > 1 the
/// experts (in `groups` consecutive groups) of all but the `groupsUsed` groups with the
/// highest best-expert probability are excluded (ties: the lower group); the k most
/// probable remaining experts (ties: the lower index), their probabilities as weights,
/// renormalized when `normalize`, times `scale`.
///
/// logits: [n] (overwritten with the probabilities) -> experts: [k], weights: [k] (by rank).
@inline(__always)
func routeGroupLimited(_ logits: UnsafeMutablePointer<Float>, n: Int, k: Int, groups: Int, groupsUsed: Int,
                       normalize: Bool, scale: Float, experts: UnsafeMutablePointer<Int32>,
                       weights: UnsafeMutablePointer<Float>) {
    var m = -Float.infinity
    for i in 0..<n where logits[i] > m { m = logits[i] }
    var sum: Float = 0
    for i in 0..<n {
        logits[i] = expf(logits[i] - m)
        sum += logits[i]
    }
    let inv = 1 / sum
    for i in 0..<n { logits[i] *= inv }
    // Allowed groups (at most 64, checked at load) as a bit mask: group g is allowed when
    // fewer than groupsUsed groups beat it (by best probability, then lower index).
    let per = n / max(1, groups)
    var mask = UInt64.max
    if groups > 1 && groupsUsed < groups {
        @inline(__always) func groupMax(_ g: Int) -> Float {
            var b = -Float.infinity
            for i in (g * per)..<((g + 1) * per) where logits[i] > b { b = logits[i] }
            return b
        }
        mask = 0
        for g in 0..<groups {
            let mg = groupMax(g)
            var better = 0
            for o in 0..<groups where o != g {
                let mo = groupMax(o)
                if mo > mg || (mo == mg && o < g) { better += 1 }
            }
            if better < groupsUsed { mask |= 1 << UInt64(g) }
        }
    }
    for r in 0..<k {
        var best = -1
        var bestP = -Float.infinity
        for i in 0..<n where logits[i] > bestP && mask & (1 << UInt64(i / per)) != 0 {
            var taken = false
            for q in 0..<r where experts[q] == Int32(i) {
                taken = true
                break
            }
            if !taken {
                best = i
                bestP = logits[i]
            }
        }
        experts[r] = Int32(max(best, 0))
        weights[r] = max(bestP, 0)
    }
    if normalize {
        var s: Float = 0
        for r in 0..<k { s += weights[r] }
        if s > 0 {
            for r in 0..<k { weights[r] /= s }
        }
    }
    for r in 0..<k { weights[r] *= scale }
}

extension TransformerModel {
    /// Queues y_h[t] = ms[h] x_h[t] for every head h (x_h[t] at x + h * xHead + t * xStride,
    /// y_h[t] at y + h * yHead + t * yStride), running the group whenever it or its
    /// activation scratch is full, and at the end.
    private func perHead(_ ms: [WeightMatrix], x: UnsafePointer<Float>, xHead: Int, xStride: Int, y: FloatPtr,
                         yHead: Int, yStride: Int, T: Int, ws: TransformerWorkspace) {
        var queued = 0, rows = 0
        for (h, w) in ms.enumerated() {
            if queued == ws.group.capacity || rows + T > ws.scratch.maxBatch {
                ws.group.run(pool: ws.pool)
                queued = 0
                rows = 0
            }
            mmAdd(w, x + h * xHead, xStride: xStride, y + h * yHead, yStride: yStride, T, ws)
            queued += 1
            rows += T
        }
        ws.group.run(pool: ws.pool)
    }

    /// x += o(MLA(rmsnorm(x))) for every column, the latent ("absorbed") form llama.cpp
    /// uses: kv = kv_a_mqa · xn -> [c: kvl | k_pe: rope], c RMS-normed, k_pe rotated, and the
    /// row [c | k_pe] cached once per position for all heads; per head the query
    /// [k_b_h · q_nope_h | rope(q_pe_h)] ([kvl + rope]) attends over the rows (scale
    /// mscale² / sqrt(nope + rope)), the first kvl floats of the weighted sum of rows are
    /// the head's latent output, v_b_h turns it into the head's value [v], and attn_output
    /// maps [H * v] -> [E].
    func latentAttentionBlock(_ a: MLAWeights, layer i: Int, _ cols: KVColumns, T: Int, ws: TransformerWorkspace) {
        let cfg = config
        guard let m = cfg.mla else { return }
        let e = cfg.embedding, h = cfg.heads, eps = cfg.normEps
        let qd = m.nope + m.ropeDims, qw = h * qd, kvl = m.kvLoraRank, lw = m.latentWidth, ql = m.qLoraRank
        let vd = m.valueDim, nope = m.nope, nRot = cfg.rope.dims, neox = cfg.rope.layout.neoxFlag
        eachColumn(T, ws) { range in
            for t in range { rmsNorm(ws.x + t * e, a.norm, eps: eps, n: e, into: ws.xn + t * e) }
        }
        // xn: [T][E] -> q: [T][H * (nope + rope)] (or q_a: [T][ql]), kv: [T][kvl + rope]
        if let q = a.q {
            mmAdd(q, ws.xn, xStride: e, ws.mlaQ, yStride: qw, T, ws)
        } else if let qA = a.qA {
            mmAdd(qA, ws.xn, xStride: e, ws.mlaQA, yStride: ql, T, ws)
        }
        mmAdd(a.kvA, ws.xn, xStride: e, ws.k, yStride: lw, T, ws)
        ws.group.run(pool: ws.pool)
        if let qB = a.qB, let qn = a.qANorm {
            eachColumn(T, ws) { range in
                for t in range { rmsNorm(ws.mlaQA + t * ql, qn, eps: eps, n: ql, into: ws.mlaQA + t * ql) }
            }
            // q_a: [T][ql] -> q: [T][H * (nope + rope)]
            mm(qB, ws.mlaQA, xStride: ql, ws.mlaQ, T, ws)
        }
        let rope = self.rope
        let kvType = kvCache
        let quantizeQ8 = self.quantizeQ8
        eachColumn(T, ws) { range in
            for t in range {
                let kv = ws.k + t * lw, qr = ws.mlaQ + t * qw, lq = ws.mlaQLatent + t * h * lw
                rmsNorm(kv, a.kvANorm, eps: eps, n: kvl, into: kv)
                let cs = UnsafePointer(ws.cs + t * nRot)
                rope(1, Int64(lw), Int64(nRot), neox, cs, kv + kvl)
                rope(Int64(h), Int64(qd), Int64(nRot), neox, cs, qr + nope)
                for hh in 0..<h { (lq + hh * lw + kvl).update(from: qr + hh * qd + nope, count: m.ropeDims) }
                let s = cols.state(t)
                let kc = s.keys(i) + ws.positions[t] * s.shape.rowBytes
                switch kvType {
                case .f16:
                    let k16 = kc.assumingMemoryBound(to: UInt16.self)
                    for j in 0..<lw { k16[j] = roost_fp32_to_fp16(kv[j]) }
                case .f32:
                    kc.assumingMemoryBound(to: Float.self).update(from: kv, count: lw)
                case .q8_0:
                    quantizeQ8(kv, kc, Int64(lw))
                }
            }
        }
        // Latent queries: q_nope_h [nope] -> k_b_h -> [kvl], per head.
        perHead(a.kB, x: ws.mlaQ, xHead: qd, xStride: qw, y: ws.mlaQLatent, yHead: lw, yStride: h * lw, T: T, ws: ws)
        let units = T * h
        let work = units * lw * (ws.positions[T - 1] + 1)
        if units > 1 && ws.pool.threads > 1 && work >= 16_384 {
            // Through `run` and a context, not `parallelFor`: the decode step allocates nothing.
            var job = AttendLatentJob(model: self, layer: i, cols: cols, ws: ws)
            withUnsafeMutablePointer(to: &job) { p in
                ws.pool.run(count: units, granule: 1, context: UnsafeMutableRawPointer(p)) { raw, b, e, thread in
                    guard let j = raw?.assumingMemoryBound(to: AttendLatentJob.self).pointee else { return }
                    j.model.attendLatent(b..<e, thread: thread, layer: j.layer, j.cols, ws: j.ws)
                }
            }
        } else {
            attendLatent(0..<units, thread: 0, layer: i, cols, ws: ws)
        }
        // Latent outputs [kvl] -> v_b_h -> [v], per head, then [H * v] -> [E].
        perHead(a.vB, x: ws.mlaOutLatent, xHead: lw, xStride: h * lw, y: ws.mlaV, yHead: vd, yStride: h * vd, T: T, ws: ws)
        mm(a.o, ws.mlaV, xStride: h * vd, ws.proj, T, ws)
        for j in 0..<(T * e) { ws.x[j] += ws.proj[j] }
    }

    /// Latent attention units `range` (unit u: column u / H, head u % H): the head's
    /// latent query against the column's cached rows 0...its position, into mlaOutLatent.
    fileprivate func attendLatent(_ range: Range<Int>, thread: Int, layer i: Int, _ cols: KVColumns,
                              ws: TransformerWorkspace) {
        let cfg = config
        guard let m = cfg.mla else { return }
        let h = cfg.heads, lw = m.latentWidth, scale = m.scale
        let sc = ws.scores + thread * ws.scoresPerThread
        for u in range {
            let t = u / h, hh = u % h
            let s = cols.state(t)
            let o = (t * h + hh) * lw
            let n = Int64(ws.positions[t] + 1)
            let rows = s.keys(i)
            switch kvCache {
            case .f16:
                let k16 = rows.assumingMemoryBound(to: UInt16.self)
                attentionF16(1, Int64(lw), n, ws.mlaQLatent + o, Int64(lw), k16, k16, Int64(lw), scale, sc,
                             ws.mlaOutLatent + o, Int64(lw))
            case .f32:
                let k32 = rows.assumingMemoryBound(to: Float.self)
                attentionF32(1, Int64(lw), n, ws.mlaQLatent + o, Int64(lw), k32, k32, Int64(lw), scale, sc,
                             ws.mlaOutLatent + o, Int64(lw))
            case .q8_0:
                attentionQ8(1, Int64(lw), n, ws.mlaQLatent + o, Int64(lw), rows, rows, Int64(s.shape.rowBytes), scale,
                            sc, ws.mlaOutLatent + o, Int64(lw))
            }
        }
    }
}

/// What `attendLatent` needs, passed to the pool by address.
private struct AttendLatentJob {
    let model: TransformerModel
    let layer: Int
    let cols: KVColumns
    let ws: TransformerWorkspace
}
