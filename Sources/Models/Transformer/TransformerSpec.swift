/// How RoPE pairs the dims of a head (llama.cpp's `llama_model_rope_type`).
public enum RopeLayout: Sendable, Equatable {
    /// LLAMA_ROPE_TYPE_NORM: pairs (x[2i], x[2i+1]). llama.cpp's converter permutes the q
    /// and k rows of `llama` models so that this layout reproduces Hugging Face's
    /// rotate_half.
    case normal
    /// LLAMA_ROPE_TYPE_NEOX: pairs (x[i], x[i + n_rot/2]), Hugging Face's rotate_half on
    /// unpermuted weights (qwen2, qwen2moe, qwen3moe, olmoe).
    case neox

    var neoxFlag: Int32 {
        switch self {
        case .normal: 0
        case .neox: 1
        }
    }
}

/// Where an architecture normalizes queries and keys (RMSNorm) before RoPE.
enum QKNormKind: Sendable, Equatable {
    case none
    /// Per head, one weight of [head_dim] shared by every head (qwen3moe).
    case perHead
    /// Over the whole projection, weights [n_head * head_dim] and [n_head_kv * head_dim]
    /// (olmoe, as OLMo-2).
    case full
}

/// Whether a tensor is absent, may be present, or must be present.
enum Presence: Sendable, Equatable {
    case absent, optional, required
}

/// Whether the feed-forward blocks are mixtures of experts.
enum MoEUse: Sendable, Equatable {
    /// Dense FFN only.
    case never
    /// Experts when `{arch}.expert_count` > 0, else dense (llama: Mixtral vs Llama).
    case whenExpertCount
    /// Always experts; `{arch}.expert_count` must be > 0.
    case always
}

/// What distinguishes one transformer architecture from another: the rest (tensor names,
/// metadata keys, the block structure: pre-norm attention and FFN with residuals, RMSNorm,
/// SwiGLU) is common and lives in `TransformerNames` and `TransformerConfig`. One file per
/// architecture (Llama.swift, Qwen2.swift, ...) defines its spec and lists the tensors and
/// keys it uses.
struct TransformerSpec: Sendable {
    let architecture: Architecture
    let rope: RopeLayout
    /// `blk.N.attn_{q,k,v}.bias`.
    let qkvBias: Presence
    let qkNorm: QKNormKind
    let moe: MoEUse
    /// qwen2moe's shared expert (`ffn_{gate,up,down}_shexp` and its sigmoid gate
    /// `ffn_gate_inp_shexp`), added to every token's routed experts.
    let sharedExpert: Presence
    /// Routing: softmax over all experts, top-k, then the k weights renormalized to sum
    /// to 1 when true (`{arch}.expert_weights_norm` overrides when present).
    let normalizeTopK: Bool
    /// DeepSeek's multi-head latent attention (`MLAConfig`, `MLAWeights`), its leading
    /// dense blocks, ungated shared experts and group-limited routing.
    var mla: Bool = false

    static func of(_ arch: Architecture) -> TransformerSpec? {
        switch arch {
        case .rwkv5, .rwkv6, .rwkv7, .mamba: nil
        case .llama: .llama
        case .qwen2: .qwen2
        case .qwen2moe: .qwen2moe
        case .qwen3moe: .qwen3moe
        case .olmoe: .olmoe
        case .deepseek2: .deepseek2
        }
    }
}

/// Tensor names and metadata keys as llama.cpp's GGUF files spell them (llama-arch.cpp).
enum TransformerNames {
    // Whole-model tensors.
    static let tokenEmbedding = "token_embd.weight"   // (E, vocab)
    static let outputNorm = "output_norm.weight"      // (E)
    static let output = "output.weight"               // (E, vocab); absent when tied to token_embd
    static let ropeFreqs = "rope_freqs.weight"        // (n_rot / 2), optional frequency divisors

    // Per block N.
    static func attnNorm(_ i: Int) -> String { "blk.\(i).attn_norm.weight" }     // (E)
    static func attnQ(_ i: Int) -> String { "blk.\(i).attn_q.weight" }           // (E, H * D)
    static func attnK(_ i: Int) -> String { "blk.\(i).attn_k.weight" }           // (E, Hkv * D)
    static func attnV(_ i: Int) -> String { "blk.\(i).attn_v.weight" }           // (E, Hkv * D)
    static func attnOutput(_ i: Int) -> String { "blk.\(i).attn_output.weight" } // (H * D, E)
    static func attnQBias(_ i: Int) -> String { "blk.\(i).attn_q.bias" }         // (H * D)
    static func attnKBias(_ i: Int) -> String { "blk.\(i).attn_k.bias" }         // (Hkv * D)
    static func attnVBias(_ i: Int) -> String { "blk.\(i).attn_v.bias" }         // (Hkv * D)
    static func attnQNorm(_ i: Int) -> String { "blk.\(i).attn_q_norm.weight" }  // (D) or (H * D)
    static func attnKNorm(_ i: Int) -> String { "blk.\(i).attn_k_norm.weight" }  // (D) or (Hkv * D)
    static func ffnNorm(_ i: Int) -> String { "blk.\(i).ffn_norm.weight" }       // (E)
    static func ffnGate(_ i: Int) -> String { "blk.\(i).ffn_gate.weight" }       // (E, F)
    static func ffnUp(_ i: Int) -> String { "blk.\(i).ffn_up.weight" }           // (E, F)
    static func ffnDown(_ i: Int) -> String { "blk.\(i).ffn_down.weight" }       // (F, E)
    static func ffnRouter(_ i: Int) -> String { "blk.\(i).ffn_gate_inp.weight" } // (E, n_expert)
    static func ffnGateExps(_ i: Int) -> String { "blk.\(i).ffn_gate_exps.weight" } // (E, Fe, n_expert)
    static func ffnUpExps(_ i: Int) -> String { "blk.\(i).ffn_up_exps.weight" }     // (E, Fe, n_expert)
    static func ffnDownExps(_ i: Int) -> String { "blk.\(i).ffn_down_exps.weight" } // (Fe, E, n_expert)
    static func ffnSharedGateInp(_ i: Int) -> String { "blk.\(i).ffn_gate_inp_shexp.weight" } // (E)
    static func ffnGateShared(_ i: Int) -> String { "blk.\(i).ffn_gate_shexp.weight" } // (E, Fs)
    static func ffnUpShared(_ i: Int) -> String { "blk.\(i).ffn_up_shexp.weight" }     // (E, Fs)
    static func ffnDownShared(_ i: Int) -> String { "blk.\(i).ffn_down_shexp.weight" } // (Fs, E)

    // Metadata keys, `a` the architecture's name.
    static func contextLength(_ a: String) -> String { "\(a).context_length" }
    static func embeddingLength(_ a: String) -> String { "\(a).embedding_length" }
    static func blockCount(_ a: String) -> String { "\(a).block_count" }
    static func feedForwardLength(_ a: String) -> String { "\(a).feed_forward_length" }
    static func headCount(_ a: String) -> String { "\(a).attention.head_count" }
    static func headCountKV(_ a: String) -> String { "\(a).attention.head_count_kv" }
    static func keyLength(_ a: String) -> String { "\(a).attention.key_length" }
    static func valueLength(_ a: String) -> String { "\(a).attention.value_length" }
    static func rmsEpsilon(_ a: String) -> String { "\(a).attention.layer_norm_rms_epsilon" }
    static func vocabSize(_ a: String) -> String { "\(a).vocab_size" }
    static func ropeFreqBase(_ a: String) -> String { "\(a).rope.freq_base" }
    static func ropeDimensionCount(_ a: String) -> String { "\(a).rope.dimension_count" }
    static func ropeScalingType(_ a: String) -> String { "\(a).rope.scaling.type" }
    static func ropeScalingFactor(_ a: String) -> String { "\(a).rope.scaling.factor" }
    static func ropeScaleLinear(_ a: String) -> String { "\(a).rope.scale_linear" } // older files
    static func ropeScalingAttnFactor(_ a: String) -> String { "\(a).rope.scaling.attn_factor" }
    static func ropeScalingOriginalContext(_ a: String) -> String { "\(a).rope.scaling.original_context_length" }
    static func yarnExtFactor(_ a: String) -> String { "\(a).rope.scaling.yarn_ext_factor" }
    static func yarnAttnFactor(_ a: String) -> String { "\(a).rope.scaling.yarn_attn_factor" }
    static func yarnBetaFast(_ a: String) -> String { "\(a).rope.scaling.yarn_beta_fast" }
    static func yarnBetaSlow(_ a: String) -> String { "\(a).rope.scaling.yarn_beta_slow" }
    static func expertCount(_ a: String) -> String { "\(a).expert_count" }
    static func expertUsedCount(_ a: String) -> String { "\(a).expert_used_count" }
    static func expertFeedForwardLength(_ a: String) -> String { "\(a).expert_feed_forward_length" }
    static func expertSharedFeedForwardLength(_ a: String) -> String { "\(a).expert_shared_feed_forward_length" }
    static func expertWeightsNorm(_ a: String) -> String { "\(a).expert_weights_norm" }
}
