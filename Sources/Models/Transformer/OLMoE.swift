/// `olmoe`: OLMoE (AllenAI).
///
/// Tensors: token_embd, output_norm, output; per block attn_norm, attn_q, attn_k, attn_v,
/// attn_output (no biases), attn_q_norm ((H * D)) and attn_k_norm ((Hkv * D)): RMSNorm
/// over the whole q and k projections before they are split into heads and rotated,
/// ffn_norm, ffn_gate_inp, ffn_gate_exps, ffn_up_exps, ffn_down_exps.
/// Keys: olmoe.* as llama; the expert width is .feed_forward_length (or
/// .expert_feed_forward_length when present), .expert_count, .expert_used_count.
///
/// Routing: softmax over all experts, top-k, weights not renormalized (norm_topk_prob
/// false in OLMoE's config). RoPE: NeoX.
extension TransformerSpec {
    static let olmoe = TransformerSpec(architecture: .olmoe, rope: .neox, qkvBias: .absent, qkNorm: .full,
                                       moe: .always, sharedExpert: .absent, normalizeTopK: false)
}
