/// `qwen3moe`: Qwen3-MoE (Qwen3-30B-A3B and the like).
///
/// Tensors: token_embd, output_norm, output (optional: tied); per block attn_norm,
/// attn_q ((E, H * D)), attn_k, attn_v ((E, Hkv * D)), attn_output ((H * D, E)), no
/// biases, attn_q_norm and attn_k_norm ((D), RMSNorm of each head before RoPE),
/// ffn_norm, ffn_gate_inp, ffn_gate_exps, ffn_up_exps, ffn_down_exps.
/// Keys: qwen3moe.* as qwen2, .attention.key_length (D; H * D need not equal E),
/// .attention.value_length, .expert_count, .expert_used_count, .expert_feed_forward_length.
///
/// Routing: softmax over all experts, top-k, weights renormalized (norm_topk_prob).
/// RoPE: NeoX.
extension TransformerSpec {
    static let qwen3moe = TransformerSpec(architecture: .qwen3moe, rope: .neox, qkvBias: .absent, qkNorm: .perHead,
                                          moe: .always, sharedExpert: .absent, normalizeTopK: true)
}
