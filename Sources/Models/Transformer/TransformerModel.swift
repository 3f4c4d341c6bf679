import CKernels
import GGUF
import Tensors

/// Attention weights of one block.
struct AttentionWeights {
    let norm: FloatPtr           // attn_norm [E]
    let q: WeightMatrix          // [E] -> [H * D]
    let k: WeightMatrix          // [E] -> [Hkv * D]
    let v: WeightMatrix          // [E] -> [Hkv * D]
    let o: WeightMatrix          // [H * D] -> [E]
    let qBias, kBias, vBias: FloatPtr? // [H * D], [Hkv * D], [Hkv * D]
    let qNorm, kNorm: FloatPtr?  // [D] (per head) or [H * D], [Hkv * D] (whole projection)

    var byteCount: Int { q.byteCount + k.byteCount + v.byteCount + o.byteCount }
}

/// A block's attention: grouped-query attention over per-head keys and values, or
/// DeepSeek's multi-head latent attention.
enum AttentionBlock {
    case standard(AttentionWeights)
    case mla(MLAWeights)

    var byteCount: Int {
        switch self {
        case let .standard(a): a.byteCount
        case let .mla(m): m.byteCount
        }
    }
}

enum FFNBlock {
    case dense(FFNWeights)
    case moe(MoEWeights)
}

struct TransformerLayer {
    let attention: AttentionBlock
    let ffnNorm: FloatPtr        // ffn_norm [E]
    let ffn: FFNBlock
}

/// A decoder-only transformer (llama, Mixtral, qwen2, qwen2moe, qwen3moe, olmoe) on a
/// memory-mapped GGUF file in llama.cpp's layout: pre-norm blocks (RMSNorm), grouped-query
/// attention with RoPE over a per-sequence F16 KV cache (`TransformerState`), and a SwiGLU
/// FFN, dense or a mixture of experts.
///
/// `@unchecked Sendable`: immutable after loading (mapped weights, arena vectors).
public final class TransformerModel: @unchecked Sendable {
    public let config: TransformerConfig
    public let file: GGUFFile
    public let kernels: Kernels
    /// See `RWKVModel.fingerprint(of:)`: states carry it.
    public let fingerprint: UInt64
    let arena: FloatArena
    let embedding: WeightMatrix  // rows: tokens, cols: E
    let outputNorm: FloatPtr     // [E]
    let head: WeightMatrix       // [E] -> [vocab] (output, or token_embd when tied)
    let layers: [TransformerLayer]
    let rope: roost_rope_fn
    let attentionF16: roost_attn_f16_fn
    let attentionF32: roost_attn_f32_fn
    let attentionQ8: roost_attn_q8_0_fn
    let quantizeQ8: roost_quantize_fn
    /// Element type of the KV caches this model's states hold.
    public let kvCache: KVCacheType
    /// Where the routed experts are read from (MoE models): the mapping, or with a budget
    /// a buffer pool of resident experts. nil for dense models.
    public let expertStore: ExpertStore?

    public convenience init(path: String, kernels: Kernels, kvCache: KVCacheType = .f16,
                            expertBudgetBytes: Int? = nil, expertOptions: ExpertStoreOptions = ExpertStoreOptions()) throws(ModelError) {
        let f: GGUFFile
        do { f = try GGUFFile(path: path) } catch { throw .file(error) }
        try self.init(file: f, kernels: kernels, kvCache: kvCache, expertBudgetBytes: expertBudgetBytes,
                      expertOptions: expertOptions)
    }

    /// Loads the model `file` holds; its states keep keys and values as `kvCache`.
    /// With `expertBudgetBytes`, the routed experts of an MoE model live in an
    /// `ExpertStore` of that many bytes (at least one layer's experts) instead of being
    /// read from the mapping, run by `expertOptions`.
    public init(file: GGUFFile, kernels: Kernels, kvCache: KVCacheType = .f16,
                expertBudgetBytes: Int? = nil, expertOptions: ExpertStoreOptions = ExpertStoreOptions()) throws(ModelError) {
        guard let name = file.architecture, let arch = Architecture(rawValue: name),
              let spec = TransformerSpec.of(arch)
        else { throw .unsupportedArchitecture(found: file.architecture) }
        guard let table = roost_kernels_for(kernels.path.rawValue), let rope = table.pointee.rope,
              let attentionF16 = table.pointee.attn_f16, let attentionF32 = table.pointee.attn_f32,
              let attentionQ8 = table.pointee.attn_q8_0, let quantizeQ8 = kernels.quantizer(forWeight: .q8_0)
        else { throw .noKernel(tensor: "(RoPE and attention)", type: "f32", path: kernels.path.name) }
        self.rope = rope
        self.attentionF16 = attentionF16
        self.attentionF32 = attentionF32
        self.attentionQ8 = attentionQ8
        self.quantizeQ8 = quantizeQ8
        self.kvCache = kvCache
        let arena = FloatArena()
        let l = WeightLoader(file: file, kernels: kernels, arena: arena)
        let cfg = try TransformerConfig.read(l, spec: spec)
        if kvCache == .q8_0 && cfg.headDim % 32 != 0 {
            throw .kvCacheUnsupported(type: kvCache.description, headSize: cfg.headDim)
        }
        self.config = cfg
        self.file = file
        self.kernels = kernels
        self.arena = arena
        fingerprint = RWKVModel.fingerprint(of: file)
        let N = TransformerNames.self
        let e = cfg.embedding

        let emb = try l.info(N.tokenEmbedding)
        let embType = try l.quantType(emb)
        guard kernels.dequantize(embType) != nil else { throw .unsupportedType(tensor: emb.name, type: embType.name) }
        guard let embBase = file.data(of: emb).baseAddress else { throw .missingTensor(name: emb.name) }
        do {
            embedding = try WeightMatrix(type: embType, rows: cfg.vocabulary, cols: e, region: embBase,
                                         available: emb.byteCount, name: emb.name, owner: file)
        } catch { throw .tensor(name: emb.name, error) }
        outputNorm = try l.vector(N.outputNorm, count: e)
        head = l.has(N.output)
            ? try l.matrix(N.output, inputs: e, outputs: cfg.vocabulary)
            : try l.matrix(N.tokenEmbedding, inputs: e, outputs: cfg.vocabulary)

        var layers: [TransformerLayer] = []
        for i in 0..<cfg.layers { layers.append(try TransformerModel.loadLayer(l, cfg, i)) }
        self.layers = layers
        let slices: [[ExpertSlices]] = layers.map { layer in
            switch layer.ffn {
            case .dense: []
            case let .moe(m): m.ranges.map { ExpertSlices(ranges: [$0.gate, $0.up, $0.down]) }
            }
        }
        if cfg.isMoE {
            expertStore = try ExpertStore(path: file.path, mapped: file.rawBytes, layers: slices,
                                          budgetBytes: expertBudgetBytes, minimumSlots: cfg.experts, policy: expertOptions.policy,
                                          prefetchThreshold: expertOptions.prefetchThreshold)
        } else {
            expertStore = nil
        }
    }

    private static func loadLayer(_ l: WeightLoader, _ cfg: TransformerConfig, _ i: Int) throws(ModelError) -> TransformerLayer {
        let N = TransformerNames.self
        let spec = cfg.spec
        let e = cfg.embedding, qw = cfg.qWidth, kvw = cfg.kvWidth
        if let m = cfg.mla { return try loadMLALayer(l, cfg, m, i) }
        func bias(_ name: String, _ count: Int) throws(ModelError) -> FloatPtr? {
            switch spec.qkvBias {
            case .absent: return nil
            case .optional: return try l.optionalVector(name, count: count)
            case .required: return try l.vector(name, count: count)
            }
        }
        var qNorm: FloatPtr?, kNorm: FloatPtr?
        switch spec.qkNorm {
        case .none: break
        case .perHead:
            qNorm = try l.vector(N.attnQNorm(i), count: cfg.headDim)
            kNorm = try l.vector(N.attnKNorm(i), count: cfg.headDim)
        case .full:
            qNorm = try l.vector(N.attnQNorm(i), count: qw)
            kNorm = try l.vector(N.attnKNorm(i), count: kvw)
        }
        let attention = AttentionWeights(
            norm: try l.vector(N.attnNorm(i), count: e),
            q: try l.matrix(N.attnQ(i), inputs: e, outputs: qw),
            k: try l.matrix(N.attnK(i), inputs: e, outputs: kvw),
            v: try l.matrix(N.attnV(i), inputs: e, outputs: kvw),
            o: try l.matrix(N.attnOutput(i), inputs: qw, outputs: e),
            qBias: try bias(N.attnQBias(i), qw), kBias: try bias(N.attnKBias(i), kvw),
            vBias: try bias(N.attnVBias(i), kvw), qNorm: qNorm, kNorm: kNorm)
        let ffn: FFNBlock
        if cfg.isMoE {
            ffn = .moe(try MoEWeights.load(l, layer: i, embedding: e, experts: cfg.experts, ff: cfg.expertFeedForward,
                                           sharedFF: cfg.sharedFeedForward, shared: spec.sharedExpert))
        } else {
            ffn = .dense(FFNWeights(gate: try l.matrix(N.ffnGate(i), inputs: e, outputs: cfg.feedForward),
                                    up: try l.matrix(N.ffnUp(i), inputs: e, outputs: cfg.feedForward),
                                    down: try l.matrix(N.ffnDown(i), inputs: cfg.feedForward, outputs: e)))
        }
        return TransformerLayer(attention: .standard(attention), ffnNorm: try l.vector(N.ffnNorm(i), count: e), ffn: ffn)
    }

    /// A deepseek2 block: latent attention, a dense FFN below `leadingDense`, else routed
    /// experts (no shared-expert gate) and `sharedExperts` experts' worth of shared FFN.
    private static func loadMLALayer(_ l: WeightLoader, _ cfg: TransformerConfig, _ m: MLAConfig,
                                     _ i: Int) throws(ModelError) -> TransformerLayer {
        let N = TransformerNames.self
        let e = cfg.embedding
        let attention = try MLAWeights.load(l, cfg, m, layer: i)
        let ffn: FFNBlock
        if i < m.leadingDense {
            ffn = .dense(FFNWeights(gate: try l.matrix(N.ffnGate(i), inputs: e, outputs: cfg.feedForward),
                                    up: try l.matrix(N.ffnUp(i), inputs: e, outputs: cfg.feedForward),
                                    down: try l.matrix(N.ffnDown(i), inputs: cfg.feedForward, outputs: e)))
        } else {
            let routed = try MoEWeights.load(l, layer: i, embedding: e, experts: cfg.experts, ff: cfg.expertFeedForward,
                                             sharedFF: 0, shared: .absent)
            var shared: FFNWeights?
            let fs = cfg.sharedFeedForward
            if fs > 0 {
                shared = FFNWeights(gate: try l.matrix(N.ffnGateShared(i), inputs: e, outputs: fs),
                                    up: try l.matrix(N.ffnUpShared(i), inputs: e, outputs: fs),
                                    down: try l.matrix(N.ffnDownShared(i), inputs: fs, outputs: e))
            }
            ffn = .moe(MoEWeights(router: routed.router, experts: routed.experts, shared: shared, sharedGate: nil,
                                  ranges: routed.ranges))
        }
        return TransformerLayer(attention: .mla(attention), ffnNorm: try l.vector(N.ffnNorm(i), count: e), ffn: ffn)
    }

    /// The byte ranges of every routed expert, [layer][expert] (empty for dense models).
    public var expertRanges: [[ExpertByteRange]] {
        layers.map { layer in
            switch layer.ffn {
            case .dense: []
            case let .moe(m): m.ranges
            }
        }
    }

    /// Bytes of weights one decoded token reads: attention, norms' matrices, dense FFNs or
    /// (MoE) the router, the shared expert and top-k experts of average size, the head and
    /// one embedding row.
    public var weightBytesPerToken: Int {
        var total = head.byteCount + embedding.rowBytes
        for layer in layers {
            total += layer.attention.byteCount
            switch layer.ffn {
            case let .dense(f): total += f.byteCount
            case let .moe(m):
                total += m.router.byteCount + (m.shared?.byteCount ?? 0)
                let all = m.experts.reduce(0) { $0 + $1.byteCount }
                total += all / max(1, m.experts.count) * config.expertsUsed
            }
        }
        return total
    }

    public var fileWeightBytes: Int { file.tensors.reduce(0) { $0 + $1.byteCount } }

    /// Bytes of KV cache per token: K and V of every layer.
    public var kvBytesPerToken: Int { config.layers * (config.mla == nil ? 2 : 1) * kvCache.bytes(config.kvWidth) }

    public func makeState() -> TransformerState {
        TransformerState(shape: KVShape(config, element: kvCache), fingerprint: fingerprint)
    }
}
