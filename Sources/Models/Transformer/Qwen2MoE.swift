/// `qwen2moe`: Qwen1.5-MoE / Qwen2-MoE.
///
/// Tensors: as qwen2 (q/k/v biases required), and per block instead of the dense FFN:
/// ffn_gate_inp (router, (E, n_expert)), ffn_gate_exps, ffn_up_exps ((E, Fe, n_expert)),
/// ffn_down_exps ((Fe, E, n_expert)), the shared expert ffn_gate_shexp, ffn_up_shexp
/// ((E, Fs)), ffn_down_shexp ((Fs, E)) and its gate ffn_gate_inp_shexp ((E)).
/// Keys: qwen2moe.* as qwen2, plus .expert_count, .expert_used_count,
/// .expert_feed_forward_length (Fe), .expert_shared_feed_forward_length (Fs).
///
/// Routing: softmax over all experts, top-k, weights NOT renormalized (norm_topk_prob
/// false); shared expert output scaled by sigmoid(ffn_gate_inp_shexp · x) and added.
/// RoPE: NeoX.
extension TransformerSpec {
    static let qwen2moe = TransformerSpec(architecture: .qwen2moe, rope: .neox, qkvBias: .required, qkNorm: .none,
                                          moe: .always, sharedExpert: .required, normalizeTopK: false)
}
