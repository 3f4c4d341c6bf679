/// The model architectures Roost runs, keyed by GGUF's `general.architecture`.
///
/// Rule: no `default:` in a switch over `Architecture`, so adding a case makes the
/// compiler list every place that must learn it.
public enum Architecture: String, CaseIterable, Sendable {
    case rwkv5
    case rwkv6
    case rwkv7
    /// Llama (dense), and Mixtral when `llama.expert_count` > 0.
    case llama
    case qwen2
    case qwen2moe
    case qwen3moe
    case olmoe
    /// DeepSeek-V2 / V2-Lite: multi-head latent attention, shared experts, YaRN.
    case deepseek2
    /// Mamba-1 (selective state space model, llama.cpp's `mamba`).
    case mamba

    /// True for the RWKV family (constant-size recurrent state).
    public var isRWKV: Bool {
        switch self {
        case .rwkv5, .rwkv6, .rwkv7: true
        case .mamba: false
        case .llama, .qwen2, .qwen2moe, .qwen3moe, .olmoe, .deepseek2: false
        }
    }

    /// True for the attention-based families (a KV cache that grows with the sequence).
    public var isTransformer: Bool {
        switch self {
        case .rwkv5, .rwkv6, .rwkv7, .mamba: false
        case .llama, .qwen2, .qwen2moe, .qwen3moe, .olmoe, .deepseek2: true
        }
    }
}
