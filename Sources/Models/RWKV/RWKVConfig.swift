/// Hyperparameters of an RWKV model, from its GGUF metadata (keys as llama.cpp writes them:
/// `{arch}.embedding_length`, `{arch}.block_count`, `{arch}.wkv.head_size`, ...).
public struct RWKVConfig: Sendable, Equatable {
    public let architecture: Architecture
    public let layers: Int
    /// C: channels of the residual stream.
    public let embedding: Int
    /// N: channels per head (the WKV state of a head is N x N).
    public let headSize: Int
    /// H = C / N.
    public let heads: Int
    /// F: hidden channels of the channel mix.
    public let feedForward: Int
    public let vocabulary: Int
    /// LayerNorm epsilon of every LayerNorm.
    public let normEps: Float
    /// GroupNorm epsilon after the WKV (64e-5 for RWKV-6/7, the file's value for RWKV-5).
    public let groupNormEps: Float
    public let contextLength: Int?
    /// RWKV-6: rank of the data-dependent token shift (D) and of the decay LoRA (D2).
    public let mixRank: Int
    public let decayRank: Int
    /// RWKV-7: LoRA ranks of the decay, in-context learning rate, value residual and gate.
    public let iclrRank: Int
    public let valueRank: Int
    public let gateRank: Int

    /// Floats of one layer's state: token shift of the time mix (C), of the channel mix
    /// (C), and the WKV state (H x N x N).
    public var stateFloatsPerLayer: Int { 2 * embedding + heads * headSize * headSize }

    /// Reads and checks the hyperparameters.
    static func read(_ l: WeightLoader, architecture: Architecture) throws(ModelError) -> RWKVConfig {
        let a = architecture.rawValue
        let c = try l.positiveInt("\(a).embedding_length")
        let layers = try l.positiveInt("\(a).block_count")
        let n = try l.positiveInt("\(a).wkv.head_size")
        guard c % n == 0 else {
            throw .badMetadata(key: "\(a).wkv.head_size", expected: "a divisor of embedding_length \(c)", found: "\(n)")
        }
        let f = try l.positiveInt("\(a).feed_forward_length")
        let eps = try l.float("\(a).attention.layer_norm_epsilon")
        guard eps > 0 else {
            throw .badMetadata(key: "\(a).attention.layer_norm_epsilon", expected: "a positive number", found: "\(eps)")
        }
        let ctx = try l.optionalInt("\(a).context_length")
        let out = try l.info("output.weight")
        guard out.dims.count == 2, out.dims[0] == c, out.dims[1] > 0 else {
            throw .wrongShape(tensor: "output.weight", expected: [c, -1], found: out.dims)
        }
        var gnEps: Float = 64e-5
        var mixRank = 0, decayRank = 0, iclrRank = 0, valueRank = 0, gateRank = 0
        switch architecture {
        case .rwkv5:
            gnEps = try l.optionalFloat("rwkv5.attention.group_norm_epsilon") ?? 1e-5
            let minor = try l.optionalInt("rwkv5.version_minor") ?? 2
            guard minor == 2 else {
                throw .badMetadata(key: "rwkv5.version_minor", expected: "2 (RWKV v5.2)", found: "\(minor)")
            }
            let rescale = try l.optionalInt("rwkv5.rescale_every_n_layers") ?? 0
            guard rescale == 0 else {
                throw .badMetadata(key: "rwkv5.rescale_every_n_layers", expected: "0", found: "\(rescale)")
            }
        case .rwkv6:
            mixRank = try l.positiveInt("rwkv6.time_mix_extra_dim")
            decayRank = try l.positiveInt("rwkv6.time_decay_extra_dim")
        case .rwkv7:
            decayRank = try l.positiveInt("rwkv7.attention.decay_lora_rank")
            iclrRank = try l.positiveInt("rwkv7.attention.iclr_lora_rank")
            valueRank = try l.positiveInt("rwkv7.attention.value_residual_mix_lora_rank")
            gateRank = try l.positiveInt("rwkv7.attention.gate_lora_rank")
        case .mamba, .llama, .qwen2, .qwen2moe, .qwen3moe, .olmoe, .deepseek2:
            throw .unsupportedArchitecture(found: architecture.rawValue)
        }
        return RWKVConfig(architecture: architecture, layers: layers, embedding: c, headSize: n, heads: c / n,
                          feedForward: f, vocabulary: out.dims[1], normEps: eps, groupNormEps: gnEps,
                          contextLength: ctx, mixRank: mixRank, decayRank: decayRank, iclrRank: iclrRank,
                          valueRank: valueRank, gateRank: gateRank)
    }

    /// Widest matrix input (columns) the model multiplies: sizes the activation scratch.
    var maxMatrixInputs: Int {
        max(embedding, feedForward, mixRank, decayRank, iclrRank, valueRank, gateRank)
    }

    /// Widest LoRA intermediate per token.
    var maxLoRAWidth: Int {
        max(5 * mixRank, decayRank, iclrRank, valueRank, gateRank, 1)
    }
}
