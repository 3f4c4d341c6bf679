import Tensors

extension MambaModel: LanguageModel {
    public var architecture: Architecture { .mamba }
    public var vocabulary: Int { config.vocabulary }
    /// Mamba's state does not grow: no limit on the sequence length.
    public var contextLength: Int? { nil }

    public func stateBytes(tokens: Int) -> Int {
        config.layers * config.stateFloatsPerLayer * MemoryLayout<Float>.stride
    }

    public func makeSequenceState() -> any SequenceState { makeState() }

    public func makeRunner(maxTokens: Int, maxBatch: Int, pool: WorkerPool,
                           allLogits: Bool) throws(ModelError) -> any ModelRunner {
        try MambaRunner(model: self, maxTokens: maxTokens, maxBatch: maxBatch, pool: pool, allLogits: allLogits)
    }
}

/// `ModelRunner` of a Mamba model: a chunk workspace and a batch workspace.
public final class MambaRunner: ModelRunner {
    public let model: MambaModel
    public let workspace: MambaWorkspace
    public let batchWorkspace: MambaWorkspace
    private var batchStates: [MambaState] = []

    public init(model: MambaModel, maxTokens: Int, maxBatch: Int, pool: WorkerPool, allLogits: Bool) throws(ModelError) {
        guard maxBatch >= 1, maxBatch <= 4096 else { throw .invalidBatch("maxBatch \(maxBatch); expected 1...4096") }
        self.model = model
        workspace = try MambaWorkspace(model: model, maxTokens: max(1, maxTokens), pool: pool, allLogits: allLogits)
        batchWorkspace = try MambaWorkspace(model: model, maxTokens: maxBatch, pool: pool, allLogits: true)
        batchStates.reserveCapacity(maxBatch)
    }

    public var maxTokens: Int { workspace.maxTokens }
    public var maxBatch: Int { batchWorkspace.maxTokens }
    public var pool: WorkerPool { workspace.pool }

    private static func mamba(_ s: any SequenceState) throws(ModelError) -> MambaState {
        guard let m = s as? MambaState else { throw .stateMismatch("a \(type(of: s)) is not a Mamba state") }
        return m
    }

    public func forward(_ tokens: UnsafeBufferPointer<Int32>, state: any SequenceState,
                        logits mode: LogitsMode) throws(ModelError) {
        try model.forward(tokens, state: try Self.mamba(state), workspace: workspace, logits: mode)
    }

    public func logits(row: Int) -> UnsafeBufferPointer<Float> { workspace.logits(row: row) }

    public func forwardBatch(tokens: UnsafeBufferPointer<Int32>, states: [any SequenceState],
                             computeLogits: Bool) throws(ModelError) {
        batchStates.removeAll(keepingCapacity: true)
        defer { batchStates.removeAll(keepingCapacity: true) }
        for s in states { batchStates.append(try Self.mamba(s)) }
        try model.forwardBatch(tokens: tokens, states: batchStates, workspace: batchWorkspace,
                               computeLogits: computeLogits)
    }

    public func batchLogits(_ i: Int) -> UnsafeBufferPointer<Float> {
        precondition(i >= 0 && i < maxBatch, "logits row \(i) outside 0..<\(maxBatch)")
        return batchWorkspace.logits(row: i)
    }
}
