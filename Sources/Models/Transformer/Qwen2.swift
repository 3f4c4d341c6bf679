/// `qwen2`: Qwen1.5 / Qwen2 / Qwen2.5 dense models.
///
/// Tensors: token_embd, output_norm, output (optional: tied); per block attn_norm,
/// attn_q, attn_k, attn_v (with required .bias each), attn_output (no bias), ffn_norm,
/// ffn_gate, ffn_up, ffn_down.
/// Keys: qwen2.context_length, .embedding_length, .block_count, .feed_forward_length,
/// .attention.head_count, .attention.head_count_kv, .attention.layer_norm_rms_epsilon,
/// .rope.freq_base, .rope.dimension_count (optional), .rope.scaling.* (YaRN).
///
/// RoPE: NeoX (the converter does not permute q/k).
extension TransformerSpec {
    static let qwen2 = TransformerSpec(architecture: .qwen2, rope: .neox, qkvBias: .required, qkNorm: .none,
                                       moe: .never, sharedExpert: .absent, normalizeTopK: false)
}
