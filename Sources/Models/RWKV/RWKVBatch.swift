import Tensors

/// Preallocated working memory of `RWKVModel.forwardBatch` for up to `maxBatch`
/// sequences stepped together, with the worker pool it runs on. One per thread of use
/// (not Sendable); made for one model.
public final class RWKVBatchWorkspace {
    public let maxBatch: Int
    public let vocabulary: Int
    /// The fingerprint of the model the workspace was sized for.
    public let modelFingerprint: UInt64
    let inner: RWKVWorkspace

    /// Workspace for batches of 1...`maxBatch` sequences of `model`.
    public init(model: RWKVModel, maxBatch: Int, pool: WorkerPool) throws(ModelError) {
        guard maxBatch >= 1, maxBatch <= 4096 else {
            throw .invalidBatch("maxBatch \(maxBatch); expected 1...4096")
        }
        self.maxBatch = maxBatch
        vocabulary = model.config.vocabulary
        modelFingerprint = model.fingerprint
        inner = try RWKVWorkspace(model: model, maxTokens: maxBatch, pool: pool, allLogits: true,
                                  groupColumns: maxBatch)
    }

    public var pool: WorkerPool { inner.pool }

    /// The logits of the last `forwardBatch` with logits: [maxBatch][vocabulary], row i
    /// (at `logits + i * vocabulary`) for the call's sequence i.
    public var logits: UnsafeMutablePointer<Float> { inner.logits }

    /// Row i of `logits` (i < the last call's batch size; checked against `maxBatch`).
    public func logits(_ i: Int) -> UnsafeBufferPointer<Float> {
        precondition(i >= 0 && i < maxBatch, "logits row \(i) outside 0..<\(maxBatch)")
        return UnsafeBufferPointer(start: inner.logits + i * vocabulary, count: vocabulary)
    }
}

extension RWKVModel {
    /// One decode step for B = `tokens.count` sequences at once: `tokens[i]` is fed to
    /// `states[i]` (distinct states of this model), each state is updated in place (and
    /// its `tokenCount`), and with `computeLogits` row i of `workspace.logits` gets
    /// sequence i's logits. 1 <= B <= `workspace.maxBatch`; B may differ between calls.
    ///
    /// Every big projection and the head run as one matrix product over the B columns
    /// (weights read once per step); token shift, norms and the WKV recurrence run per
    /// sequence. Batch invariant: sequence i's logits and state are bitwise those of
    /// `forward(token:state:workspace:logits: .last)` on that state alone, whatever else
    /// is in the batch and at which position (the products use the kernel gemm, whose
    /// outputs are the gemv's bits; never BLAS).
    ///
    /// Checks everything before touching any state: a refused call changes nothing.
    /// Allocates nothing.
    public func forwardBatch(tokens: UnsafeBufferPointer<Int32>, states: [RWKVState],
                             workspace ws: RWKVBatchWorkspace, computeLogits: Bool = true) throws(ModelError) {
        let b = tokens.count
        guard b >= 1, b <= ws.maxBatch else {
            throw .invalidBatch("\(b) sequences; the workspace holds 1...\(ws.maxBatch)")
        }
        guard states.count == b else {
            throw .invalidBatch("\(b) tokens but \(states.count) states")
        }
        guard ws.modelFingerprint == fingerprint else {
            throw .invalidBatch("the workspace was made for another model")
        }
        for i in 0..<b {
            guard states[i].fingerprint == fingerprint else {
                throw .stateMismatch("the state of sequence \(i) was made for another model")
            }
            let t = tokens[i]
            guard t >= 0, Int(t) < config.vocabulary else {
                throw .tokenOutOfRange(token: t, vocabulary: config.vocabulary)
            }
            for j in 0..<i where states[j] === states[i] {
                throw .invalidBatch("sequences \(j) and \(i) share one state")
            }
        }
        forwardColumns(tokens, .batch(states), ws: ws.inner, logits: computeLogits ? .all : .none)
    }

    /// Convenience: `forwardBatch` on an array of tokens.
    public func forwardBatch(tokens: [Int32], states: [RWKVState], workspace: RWKVBatchWorkspace,
                             computeLogits: Bool = true) throws(ModelError) {
        try tokens.withUnsafeBufferPointer { (p) throws(ModelError) in
            try forwardBatch(tokens: p, states: states, workspace: workspace, computeLogits: computeLogits)
        }
    }
}
