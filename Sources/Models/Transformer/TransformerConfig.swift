import GGUF
import Tensors

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// RoPE of a model: which dims rotate, how pairs are laid out, and each pair's angle per
/// position (frequency scaling, YaRN and `rope_freqs` folded in).
public struct RopeConfig: Sendable {
    public let layout: RopeLayout
    /// Rotated dims per head (`{arch}.rope.dimension_count`, default head_dim); even.
    public let dims: Int
    public let freqBase: Float
    /// 1 / `{arch}.rope.scaling.factor` for linear and YaRN scaling, else 1.
    public let freqScale: Float
    /// YaRN's extrapolation mix (1 for YaRN, 0 otherwise, unless the file says).
    public let extFactor: Float
    public let attnFactor: Float
    public let betaFast: Float
    public let betaSlow: Float
    public let originalContext: Int
    /// Angle per position of pair i < dims / 2 (radians per token).
    public let frequencies: [Double]
    /// Factor on cos and sin (YaRN's magnitude scaling; 1 without YaRN).
    public let magnitude: Float

    /// The frequencies as llama.cpp's ggml_rope_yarn computes them: pair i (dims 2i, 2i+1)
    /// has theta_extrap = base^(-2i / dims) / freqFactor[i], theta_interp = freqScale *
    /// theta_extrap, and theta = theta_interp * (1 - ramp_i) + theta_extrap * ramp_i with
    /// ramp_i = extFactor * (1 - clamp((i - low) / max(0.001, high - low), 0, 1)) between
    /// YaRN's correction dims low and high; magnitude = attnFactor * (1 + 0.1 ln(1 / freqScale))
    /// when extFactor != 0.
    static func make(layout: RopeLayout, dims: Int, freqBase: Float, freqScale: Float, extFactor: Float,
                     attnFactor: Float, betaFast: Float, betaSlow: Float, originalContext: Int,
                     freqFactors: [Float]?) -> RopeConfig {
        let half = dims / 2
        let base = Double(freqBase)
        // ggml_rope_yarn_corr_dims
        func corrDim(_ rotations: Double) -> Double {
            Double(dims) * log(Double(originalContext) / (rotations * 2 * Double.pi)) / (2 * log(base))
        }
        let low = max(0, floor(corrDim(Double(betaFast))))
        let high = min(Double(dims - 1), ceil(corrDim(Double(betaSlow))))
        var freqs: [Double] = []
        freqs.reserveCapacity(half)
        for i in 0..<half {
            let ff = freqFactors.map { Double($0[i]) } ?? 1
            let extrap = pow(base, -2 * Double(i) / Double(dims)) / ff
            let interp = Double(freqScale) * extrap
            var theta = interp
            if extFactor != 0 {
                let y = (Double(i) - low) / max(0.001, high - low)
                let ramp = (1 - min(1, max(0, y))) * Double(extFactor)
                theta = interp * (1 - ramp) + extrap * ramp
            }
            freqs.append(theta)
        }
        var mag = attnFactor
        if extFactor != 0 { mag *= 1 + 0.1 * logf(1 / freqScale) }
        return RopeConfig(layout: layout, dims: dims, freqBase: freqBase, freqScale: freqScale, extFactor: extFactor,
                          attnFactor: attnFactor, betaFast: betaFast, betaSlow: betaSlow,
                          originalContext: originalContext, frequencies: freqs, magnitude: mag)
    }

    /// cos and sin of position `pos` for every pair: cs[i] = cos, cs[dims / 2 + i] = sin
    /// (both times `magnitude`), the layout the rope kernel takes. cs: [dims].
    func table(position pos: Int, into cs: UnsafeMutablePointer<Float>) {
        let half = dims / 2
        let p = Double(pos)
        for i in 0..<half {
            let a = p * frequencies[i]
            cs[i] = Float(cos(a)) * magnitude
            cs[half + i] = Float(sin(a)) * magnitude
        }
    }
}

/// Hyperparameters of a transformer model, from its GGUF metadata (keys as llama.cpp
/// spells them, see `TransformerNames`) and checked against each other.
public struct TransformerConfig: Sendable {
    public let architecture: Architecture
    let spec: TransformerSpec
    public let layers: Int
    /// E
    public let embedding: Int
    /// H: query heads.
    public let heads: Int
    /// Hkv: key/value heads (H is a multiple; H / Hkv query heads share one KV head).
    public let kvHeads: Int
    /// D: dims per head (key and value).
    public let headDim: Int
    /// F: the dense FFN's width (0 when every block is MoE).
    public let feedForward: Int
    public let vocabulary: Int
    public let contextLength: Int
    public let normEps: Float
    public let rope: RopeConfig
    /// 0 for dense models.
    public let experts: Int
    public let expertsUsed: Int
    /// Fe: width of one expert's FFN.
    public let expertFeedForward: Int
    /// Fs: width of the shared expert (qwen2moe), else 0.
    public let sharedFeedForward: Int
    public let normalizeTopK: Bool
    /// deepseek2's multi-head latent attention and MoE parameters, else nil. With MLA the
    /// KV cache holds one latent row per position: Hkv = 1, D = kv_lora_rank + rope.
    public let mla: MLAConfig?

    public var isMoE: Bool { experts > 0 }
    /// Query heads per KV head.
    public var groupSize: Int { heads / kvHeads }
    /// Floats of one token's queries (H * D) and keys or values (Hkv * D).
    public var qWidth: Int { heads * headDim }
    public var kvWidth: Int { kvHeads * headDim }

    static func read(_ l: WeightLoader, spec: TransformerSpec) throws(ModelError) -> TransformerConfig {
        let N = TransformerNames.self
        let a = spec.architecture.rawValue
        let layers = try l.positiveInt(N.blockCount(a))
        let e = try l.positiveInt(N.embeddingLength(a))
        let h = try l.positiveInt(N.headCount(a))
        let hkv = try l.optionalInt(N.headCountKV(a)) ?? h
        guard hkv > 0, h % hkv == 0 else {
            throw .badMetadata(key: N.headCountKV(a), expected: "a positive divisor of \(N.headCount(a)) = \(h)",
                               found: "\(hkv)")
        }
        let d: Int
        if let k = try l.optionalInt(N.keyLength(a)) {
            guard k > 0 else { throw .badMetadata(key: N.keyLength(a), expected: "a positive integer", found: "\(k)") }
            d = k
        } else {
            guard e % h == 0 else {
                throw .badMetadata(key: N.keyLength(a),
                                   expected: "present when \(N.embeddingLength(a)) = \(e) is not a multiple of \(N.headCount(a)) = \(h)",
                                   found: "nothing")
            }
            d = e / h
        }
        let dv = try l.optionalInt(N.valueLength(a)) ?? d
        guard dv == d || spec.mla else {
            throw .badMetadata(key: N.valueLength(a), expected: "equal to the key length \(d)", found: "\(dv)")
        }
        let ctx = try l.positiveInt(N.contextLength(a))
        let eps = try l.float(N.rmsEpsilon(a))
        guard eps > 0 else { throw .badMetadata(key: N.rmsEpsilon(a), expected: "a positive number", found: "\(eps)") }

        // Vocabulary from the embedding's shape (E, vocab).
        let emb = try l.info(N.tokenEmbedding)
        guard emb.dims.count == 2, emb.dims[0] == e, emb.dims[1] > 0 else {
            throw .wrongShape(tensor: N.tokenEmbedding, expected: [e, -1], found: emb.dims)
        }
        let vocab = emb.dims[1]
        if let v = try l.optionalInt(N.vocabSize(a)), v != vocab {
            throw .badMetadata(key: N.vocabSize(a), expected: "\(vocab) (rows of \(N.tokenEmbedding))", found: "\(v)")
        }

        // Experts.
        let declaredExperts = try l.optionalInt(N.expertCount(a)) ?? 0
        let experts: Int
        switch spec.moe {
        case .never: experts = 0
        case .whenExpertCount: experts = max(0, declaredExperts)
        case .always:
            guard declaredExperts > 0 else {
                throw .badMetadata(key: N.expertCount(a), expected: "a positive integer", found: "\(declaredExperts)")
            }
            experts = declaredExperts
        }
        var used = 0, fe = 0, fs = 0, ff = 0
        var normTopK = spec.normalizeTopK
        if experts > 0 {
            used = try l.int(N.expertUsedCount(a))
            guard used >= 1, used <= experts else {
                throw .badMetadata(key: N.expertUsedCount(a), expected: "1...\(N.expertCount(a)) = \(experts)",
                                   found: "\(used)")
            }
            if let v = try l.optionalInt(N.expertFeedForwardLength(a)) {
                fe = v
            } else {
                fe = try l.positiveInt(N.feedForwardLength(a))
            }
            guard fe > 0 else {
                throw .badMetadata(key: N.expertFeedForwardLength(a), expected: "a positive integer", found: "\(fe)")
            }
            if spec.sharedExpert != .absent {
                if let v = try l.optionalInt(N.expertSharedFeedForwardLength(a)) {
                    fs = v
                } else if let t = l.file.tensorInfo(named: N.ffnUpShared(0)), t.dims.count == 2 {
                    fs = t.dims[1]
                } else if spec.sharedExpert == .required {
                    throw .missingTensor(name: N.ffnUpShared(0))
                }
            }
            if let v = l.file.metadata[N.expertWeightsNorm(a)] {
                guard let b = v.bool else {
                    throw .badMetadata(key: N.expertWeightsNorm(a), expected: "a bool", found: v.typeName)
                }
                normTopK = b
            }
        } else {
            ff = try l.positiveInt(N.feedForwardLength(a))
        }
        if spec.mla {
            // Leading dense blocks (F) and ungated shared experts of n_shared · Fe.
            ff = try l.optionalInt(N.feedForwardLength(a)) ?? 0
            fs = fe * max(0, try l.optionalInt(TransformerNames.expertSharedCount(a)) ?? 0)
        }

        // RoPE.
        let nRot = try l.optionalInt(N.ropeDimensionCount(a)) ?? d
        guard nRot > 0, nRot <= d, nRot % 2 == 0 else {
            throw .badMetadata(key: N.ropeDimensionCount(a), expected: "an even number in 2...\(d) (the head size)",
                               found: "\(nRot)")
        }
        let base = try l.optionalFloat(N.ropeFreqBase(a)) ?? 10000
        guard base > 1 else { throw .badMetadata(key: N.ropeFreqBase(a), expected: "a number > 1", found: "\(base)") }
        var scalingType = "none"
        if let v = l.file.metadata[N.ropeScalingType(a)] {
            guard let s = v.string else {
                throw .badMetadata(key: N.ropeScalingType(a), expected: "a string", found: v.typeName)
            }
            scalingType = s
        }
        let scaleLinear = try l.optionalFloat(N.ropeScaleLinear(a))
        let factor = try l.optionalFloat(N.ropeScalingFactor(a)) ?? scaleLinear ?? 1
        var freqScale: Float = 1
        var ext: Float = 0
        switch scalingType {
        case "none", "":
            break
        case "linear":
            guard factor > 0 else { throw .badMetadata(key: N.ropeScalingFactor(a), expected: "a positive number", found: "\(factor)") }
            freqScale = 1 / factor
        case "yarn":
            guard factor > 0 else { throw .badMetadata(key: N.ropeScalingFactor(a), expected: "a positive number", found: "\(factor)") }
            freqScale = 1 / factor
            ext = 1
        default:
            throw .badMetadata(key: N.ropeScalingType(a), expected: "none, linear or yarn", found: scalingType)
        }
        if let v = try l.optionalFloat(N.yarnExtFactor(a)), v >= 0 { ext = v }
        let scalingAttnFactor = try l.optionalFloat(N.ropeScalingAttnFactor(a))
        var attnFactor = try l.optionalFloat(N.yarnAttnFactor(a)) ?? scalingAttnFactor ?? 1
        // deepseek2 (llama.cpp): YaRN's magnitude goes into the softmax scale instead, so
        // the rope's cos/sin factor is cancelled to 1.
        if spec.mla && ext != 0 { attnFactor = 1 / (1 + 0.1 * logf(1 / freqScale)) }
        let betaFast = try l.optionalFloat(N.yarnBetaFast(a)) ?? 32
        let betaSlow = try l.optionalFloat(N.yarnBetaSlow(a)) ?? 1
        let origCtx = try l.optionalInt(N.ropeScalingOriginalContext(a)) ?? ctx
        var freqFactors: [Float]?
        if l.has(N.ropeFreqs) {
            let p = try l.vector(N.ropeFreqs, count: nRot / 2)
            freqFactors = Array(UnsafeBufferPointer(start: p, count: nRot / 2))
        }
        let rope = RopeConfig.make(layout: spec.rope, dims: nRot, freqBase: base, freqScale: freqScale, extFactor: ext,
                                   attnFactor: attnFactor, betaFast: betaFast, betaSlow: betaSlow,
                                   originalContext: max(1, origCtx), freqFactors: freqFactors)
        var mla: MLAConfig?
        if spec.mla {
            mla = try MLAConfig.read(l, arch: a, heads: h, kvHeads: hkv, keyLength: d, valueLength: dv, ropeDims: nRot,
                                     layers: layers, experts: experts, freqScale: freqScale, ropeScaled: scalingType == "yarn")
            if let m = mla, m.leadingDense > 0, ff <= 0 {
                throw .badMetadata(key: N.feedForwardLength(a), expected: "a positive integer (leading dense blocks)",
                                   found: "\(ff)")
            }
        }

        return TransformerConfig(architecture: spec.architecture, spec: spec, layers: layers, embedding: e, heads: h,
                                 kvHeads: hkv, headDim: d, feedForward: ff, vocabulary: vocab, contextLength: ctx,
                                 normEps: eps, rope: rope, experts: experts, expertsUsed: used,
                                 expertFeedForward: fe, sharedFeedForward: fs, normalizeTopK: normTopK, mla: mla)
    }

    /// Widest matrix input (columns) the model multiplies: sizes the activation scratch.
    var maxMatrixInputs: Int {
        let m = mla.map { max($0.qLoraRank, $0.kvLoraRank, $0.nope, heads * $0.valueDim) } ?? 0
        return max(embedding, qWidth, feedForward, expertFeedForward, sharedFeedForward, m)
    }

    /// Widest FFN intermediate a dense or shared-expert FFN needs per token.
    var maxDenseHidden: Int { max(feedForward, sharedFeedForward, 1) }
}
