import GGUF
import Tensors

/// The state of one sequence: what a model remembers of the tokens it has consumed. For
/// RWKV the recurrent state (fixed size), for transformers the KV cache (grows with the
/// sequence up to the context length), for Mamba the conv and SSM states.
///
/// Not thread-safe: one sequence, one user at a time. `Sendable` so a session can move
/// between tasks; it is never used from two threads at once.
public protocol SequenceState: AnyObject, Sendable {
    /// The fingerprint of the model the state belongs to (`LanguageModel.fingerprint`).
    var fingerprint: UInt64 { get }
    /// Tokens consumed since the empty state.
    var tokenCount: Int { get }
    /// Bytes of memory the state holds now.
    var byteCount: Int { get }
    /// Back to the empty state (as after `makeState()`), keeping its memory.
    func reset()
    /// An independent copy.
    func copyState() -> any SequenceState
    /// Overwrites this state with `other`, a state of the same model.
    func assign(from other: any SequenceState) throws(ModelError)
    /// Drops everything after the first `tokens` tokens. Returns false, changing nothing,
    /// when the state cannot be cut back (recurrent states can only be reset).
    func truncate(to tokens: Int) -> Bool
    /// The state as bytes: a header naming the format version, architecture, shapes and
    /// model fingerprint, the contents, and a checksum.
    func serialized() -> [UInt8]
    /// Restores a state written by `serialized()`; refuses (changing nothing) another
    /// format version, architecture, shape or model, and corrupt bytes.
    func restore(from bytes: [UInt8]) throws(ModelError)
}

/// Preallocated working memory of a model on one thread of use, with the worker pool it
/// runs on: runs chunks of one sequence (`forward`) and one decode step of several
/// sequences at once (`forwardBatch`). Not Sendable; made by `LanguageModel.makeRunner`.
public protocol ModelRunner: AnyObject {
    /// The most tokens one internal chunk holds (`forward` takes any count and chunks it).
    var maxTokens: Int { get }
    /// The most sequences one `forwardBatch` takes.
    var maxBatch: Int { get }
    var pool: WorkerPool { get }
    /// Runs `tokens` through the model from `state`, updating it; computes the logits
    /// `mode` asks for (`.all` needs a runner made with `allLogits` and at most
    /// `maxTokens` tokens). Checks everything before changing the state.
    func forward(_ tokens: UnsafeBufferPointer<Int32>, state: any SequenceState,
                 logits mode: LogitsMode) throws(ModelError)
    /// Row `row` of the last `forward`'s logits: 0 for `.last`, token t for `.all`.
    func logits(row: Int) -> UnsafeBufferPointer<Float>
    /// One decode step: token i continues `states[i]` (distinct states of this model).
    /// Batch invariant: sequence i's logits and state are bitwise those of a single
    /// `forward` of that token on that state.
    func forwardBatch(tokens: UnsafeBufferPointer<Int32>, states: [any SequenceState],
                      computeLogits: Bool) throws(ModelError)
    /// Sequence i's logits after `forwardBatch`.
    func batchLogits(_ i: Int) -> UnsafeBufferPointer<Float>
}

/// A language model on a memory-mapped GGUF file.
public protocol LanguageModel: AnyObject, Sendable {
    var architecture: Architecture { get }
    var file: GGUFFile { get }
    /// Identifies the model's file (header, tensor table, size and samples of the weights);
    /// states and session files carry it.
    var fingerprint: UInt64 { get }
    var vocabulary: Int { get }
    /// The most tokens one sequence may hold (prompt and generated), or nil when the state
    /// does not grow (RWKV).
    var contextLength: Int? { get }
    /// Bytes of weights one decoded token reads (for MoE models: the dense part and the
    /// routed experts of one token).
    var weightBytesPerToken: Int { get }
    /// Bytes of all weights in the file.
    var fileWeightBytes: Int { get }
    /// Where an MoE model reads its routed experts (nil for other models; a default).
    var expertStore: ExpertStore? { get }
    /// Bytes of memory one state needs when it holds `tokens` tokens.
    func stateBytes(tokens: Int) -> Int
    /// An empty state.
    func makeSequenceState() -> any SequenceState
    /// Bytes of working memory (activations, logits, matrix scratch) a runner made with
    /// these arguments allocates, for memory planning before it is made. A default covers
    /// models that do not say: 64 MiB.
    func workingBytes(maxTokens: Int, maxBatch: Int, threads: Int) -> Int
    /// A runner for chunks of up to `maxTokens` tokens and batches of up to `maxBatch`
    /// sequences; with `allLogits`, `forward` can return every position's logits.
    func makeRunner(maxTokens: Int, maxBatch: Int, pool: WorkerPool,
                    allLogits: Bool) throws(ModelError) -> any ModelRunner
}

extension LanguageModel {
    /// Where an MoE model reads its routed experts (nil for other models).
    public var expertStore: ExpertStore? { nil }

    public func workingBytes(maxTokens: Int, maxBatch: Int, threads: Int) -> Int { 64 << 20 }
}

/// Loads the model a GGUF file holds, by its `general.architecture`. With
/// `expertBudgetBytes`, an MoE model keeps its routed experts in an `ExpertStore` of that
/// many bytes, run by `expertOptions`; other models ignore both. Attention models keep
/// keys and values as `kvCache`; recurrent models (RWKV, Mamba) ignore it.
public func loadLanguageModel(path: String, kernels: Kernels, expertBudgetBytes: Int? = nil,
                              expertOptions: ExpertStoreOptions = ExpertStoreOptions(),
                              kvCache: KVCacheType = .f16) throws(ModelError) -> any LanguageModel {
    let file: GGUFFile
    do { file = try GGUFFile(path: path) } catch { throw .file(error) }
    return try loadLanguageModel(file: file, kernels: kernels, expertBudgetBytes: expertBudgetBytes,
                                 expertOptions: expertOptions, kvCache: kvCache)
}

/// Loads the model `file` holds, by its `general.architecture`.
public func loadLanguageModel(file: GGUFFile, kernels: Kernels, expertBudgetBytes: Int? = nil,
                              expertOptions: ExpertStoreOptions = ExpertStoreOptions(),
                              kvCache: KVCacheType = .f16) throws(ModelError) -> any LanguageModel {
    let name = file.metadata["general.architecture"]?.string
    guard let name, let arch = Architecture(rawValue: name) else {
        throw .unsupportedArchitecture(found: name)
    }
    switch arch {
    case .rwkv5, .rwkv6, .rwkv7:
        return try RWKVModel(file: file, kernels: kernels)
    case .mamba:
        return try MambaModel(file: file, kernels: kernels)
    case .llama, .qwen2, .qwen2moe, .qwen3moe, .olmoe, .deepseek2:
        return try TransformerModel(file: file, kernels: kernels, kvCache: kvCache, expertBudgetBytes: expertBudgetBytes,
                                    expertOptions: expertOptions)
    }
}
