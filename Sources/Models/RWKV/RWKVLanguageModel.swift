import Tensors

extension RWKVState: SequenceState {
    public func copyState() -> any SequenceState { copy() }

    public func assign(from other: any SequenceState) throws(ModelError) {
        guard let o = other as? RWKVState else {
            throw .stateMismatch("a \(type(of: other)) cannot be assigned to an RWKV state")
        }
        try assign(from: o)
    }

    /// Only back to the empty state: a recurrent state cannot forget its last tokens.
    public func truncate(to tokens: Int) -> Bool {
        if tokens == tokenCount { return true }
        guard tokens == 0 else { return false }
        reset()
        return true
    }
}

extension RWKVModel: LanguageModel {
    public var architecture: Architecture { config.architecture }
    public var vocabulary: Int { config.vocabulary }
    /// RWKV's state does not grow: no limit on the sequence length.
    public var contextLength: Int? { nil }

    public func stateBytes(tokens: Int) -> Int {
        config.layers * config.stateFloatsPerLayer * MemoryLayout<Float>.stride
    }

    public func makeSequenceState() -> any SequenceState { makeState() }

    public func makeRunner(maxTokens: Int, maxBatch: Int, pool: WorkerPool,
                           allLogits: Bool) throws(ModelError) -> any ModelRunner {
        try RWKVRunner(model: self, maxTokens: maxTokens, maxBatch: maxBatch, pool: pool, allLogits: allLogits)
    }
}

/// `ModelRunner` of an RWKV model: a chunk workspace and a batch workspace.
public final class RWKVRunner: ModelRunner {
    public let model: RWKVModel
    public let workspace: RWKVWorkspace
    public let batchWorkspace: RWKVBatchWorkspace
    private var batchStates: [RWKVState] = []

    public init(model: RWKVModel, maxTokens: Int, maxBatch: Int, pool: WorkerPool, allLogits: Bool) throws(ModelError) {
        self.model = model
        workspace = try RWKVWorkspace(model: model, maxTokens: max(1, maxTokens), pool: pool, allLogits: allLogits)
        batchWorkspace = try RWKVBatchWorkspace(model: model, maxBatch: max(1, maxBatch), pool: pool)
        batchStates.reserveCapacity(batchWorkspace.maxBatch)
    }

    public var maxTokens: Int { workspace.maxTokens }
    public var maxBatch: Int { batchWorkspace.maxBatch }
    public var pool: WorkerPool { workspace.pool }

    private static func rwkv(_ s: any SequenceState) throws(ModelError) -> RWKVState {
        guard let r = s as? RWKVState else { throw .stateMismatch("a \(type(of: s)) is not an RWKV state") }
        return r
    }

    public func forward(_ tokens: UnsafeBufferPointer<Int32>, state: any SequenceState,
                        logits mode: LogitsMode) throws(ModelError) {
        try model.forward(tokens, state: try Self.rwkv(state), workspace: workspace, logits: mode)
    }

    public func logits(row: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: workspace.logits + row * model.config.vocabulary, count: model.config.vocabulary)
    }

    public func forwardBatch(tokens: UnsafeBufferPointer<Int32>, states: [any SequenceState],
                             computeLogits: Bool) throws(ModelError) {
        batchStates.removeAll(keepingCapacity: true)
        for s in states { batchStates.append(try Self.rwkv(s)) }
        defer { batchStates.removeAll(keepingCapacity: true) }
        try model.forwardBatch(tokens: tokens, states: batchStates, workspace: batchWorkspace,
                               computeLogits: computeLogits)
    }

    public func batchLogits(_ i: Int) -> UnsafeBufferPointer<Float> { batchWorkspace.logits(i) }
}
