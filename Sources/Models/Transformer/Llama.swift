/// `llama`: Llama 1/2/3 and Mistral (dense), Mixtral (`llama.expert_count` > 0).
///
/// Tensors: token_embd, output_norm, output (optional: tied), rope_freqs (optional, Llama 3
/// rope scaling); per block attn_norm, attn_q, attn_k, attn_v, attn_output, attn_{q,k,v}.bias
/// (optional), ffn_norm, then dense ffn_gate, ffn_up, ffn_down, or (Mixtral) ffn_gate_inp,
/// ffn_gate_exps, ffn_up_exps, ffn_down_exps.
/// Keys: llama.context_length, .embedding_length, .block_count, .feed_forward_length (the
/// expert width for Mixtral), .attention.head_count, .attention.head_count_kv,
/// .attention.key_length (optional), .attention.layer_norm_rms_epsilon, .rope.freq_base,
/// .rope.dimension_count, .rope.scaling.*, .expert_count, .expert_used_count.
///
/// RoPE: normal (LLAMA_ROPE_TYPE_NORM): llama.cpp's converter permutes the rows of attn_q
/// and attn_k so that rotating adjacent pairs equals Hugging Face's rotate_half.
/// Mixtral routing: softmax over all experts, top-k, weights renormalized.
extension TransformerSpec {
    static let llama = TransformerSpec(architecture: .llama, rope: .normal, qkvBias: .optional, qkNorm: .none,
                                       moe: .whenExpertCount, sharedExpert: .absent, normalizeTopK: true)
}
