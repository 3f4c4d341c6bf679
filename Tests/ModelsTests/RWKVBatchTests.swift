import Foundation
import Models
import Tensors
import Testing

struct BatchCase: CustomStringConvertible, Sendable {
    let arch: Architecture
    let type: QuantType
    var description: String { "\(arch.rawValue) \(type.name)" }

    static let all: [BatchCase] = Architecture.allCases.filter(\.isRWKV).flatMap { a in
        [QuantType.f32, .f16, .q8_0, .q4_0, .q4_K, .q6_K].map { BatchCase(arch: a, type: $0) }
    }
}

/// Steps a changing set of sequences with `forwardBatch` and, beside it, copies of the
/// same states with single-sequence decode; every logit and state float must match
/// bitwise. `schedule[s]` lists the sequences of step s in their batch order.
func checkBatchAgainstDecode(model: RWKVModel, kernels: KernelPath, prompts: [[Int32]], schedule: [[Int]],
                             maxBatch: Int, pool: WorkerPool, label: String) throws {
    let v = model.config.vocabulary
    let single = try RWKVWorkspace(model: model, maxTokens: 8, pool: pool)
    let batchWS = try RWKVBatchWorkspace(model: model, maxBatch: maxBatch, pool: pool)
    // Histories of different lengths: prefill in chunks (bitwise decode, see RWKVStateTests).
    let reference = prompts.map { _ in model.makeState() }
    for (s, p) in zip(reference, prompts) where !p.isEmpty {
        try model.forward(p, state: s, workspace: single, logits: .none)
    }
    let batched = reference.map { $0.copy() }
    var next = prompts.map { $0.last ?? 1 }
    var steps = 0
    for (stepIndex, members) in schedule.enumerated() {
        let tokens = members.map { next[$0] }
        try model.forwardBatch(tokens: tokens, states: members.map { batched[$0] }, workspace: batchWS)
        for (row, seq) in members.enumerated() {
            try model.forward(token: tokens[row], state: reference[seq], workspace: single, logits: .last)
            let want = Array(UnsafeBufferPointer(start: single.logits, count: v))
            let got = Array(batchWS.logits(row))
            let sameLogits = got.map(\.bitPattern) == want.map(\.bitPattern)
            #expect(sameLogits, "\(label) \(kernels): step \(stepIndex), sequence \(seq) at row \(row) of \(members.count): logits differ")
            let sameState = batched[seq].floats.map(\.bitPattern) == reference[seq].floats.map(\.bitPattern)
            #expect(sameState, "\(label) \(kernels): step \(stepIndex), sequence \(seq): state differs")
            #expect(batched[seq].tokenCount == reference[seq].tokenCount)
            #expect(!want.contains { !$0.isFinite }, "\(label): non-finite logits")
            // Greedy continuation, so the sequences diverge.
            next[seq] = Int32(Ops.argmax(single.logits, n: v))
        }
        steps += 1
    }
    #expect(steps == schedule.count)
}

/// Sequences 0...5 joining and leaving, in changing orders and batch sizes 1...6.
let batchSchedule: [[Int]] = [
    [0], [0, 1], [1, 0, 2], [2, 3, 0, 1], [3, 1], [4, 2, 3, 0, 1], [5, 4, 3, 2, 1, 0],
    [2], [1, 5, 4], [0, 3, 5, 2], [4, 0],
]

@Suite struct RWKVBatchTests {
    @Test(arguments: BatchCase.all)
    func batchEqualsDecode(_ bc: BatchCase) throws {
        let model0 = try loadRandom(RandomRWKVSpec(arch: bc.arch, matrixType: bc.type, seed: 21))
        let v = model0.config.vocabulary
        let prompts = [0, 1, 5, 12, 3, 9].enumerated().map { i, n in randomTokens(n, vocabulary: v, seed: UInt64(100 + i)) }
        let pool = WorkerPool(threads: 2)
        for path in KernelPath.available {
            let model = try loadRandom(RandomRWKVSpec(arch: bc.arch, matrixType: bc.type, seed: 21),
                                       kernels: try Kernels(path: path))
            try checkBatchAgainstDecode(model: model, kernels: path, prompts: prompts, schedule: batchSchedule,
                                        maxBatch: 6, pool: pool, label: "\(bc)")
        }
    }

    /// Batch size 1 is the decode step, and a workspace larger than the batch changes nothing.
    @Test(arguments: Architecture.allCases.filter(\.isRWKV))
    func singleSequenceBatchEqualsDecode(_ arch: Architecture) throws {
        let model = try loadRandom(RandomRWKVSpec(arch: arch, matrixType: .q8_0, seed: 5))
        let prompts = [randomTokens(7, vocabulary: model.config.vocabulary, seed: 8)]
        for threads in [1, 2, 3] {
            try checkBatchAgainstDecode(model: model, kernels: model.kernels.path, prompts: prompts,
                                        schedule: Array(repeating: [0], count: 6), maxBatch: 4,
                                        pool: WorkerPool(threads: threads), label: "\(arch) B=1 threads \(threads)")
        }
    }

    /// Without logits the states still advance exactly as decode's.
    @Test func statesAdvanceWithoutLogits() throws {
        let model = try loadRandom(RandomRWKVSpec(arch: .rwkv7, matrixType: .q4_K, seed: 3))
        let pool = WorkerPool(threads: 2)
        let ws = try RWKVBatchWorkspace(model: model, maxBatch: 3, pool: pool)
        let single = try RWKVWorkspace(model: model, maxTokens: 1, pool: pool)
        let a = model.makeState(), b = model.makeState(), ra = model.makeState(), rb = model.makeState()
        for (x, y) in [(Int32(3), Int32(4)), (7, 9), (11, 2)] {
            try model.forwardBatch(tokens: [x, y], states: [a, b], workspace: ws, computeLogits: false)
            try model.forward(token: x, state: ra, workspace: single, logits: .none)
            try model.forward(token: y, state: rb, workspace: single, logits: .none)
        }
        #expect(a.floats == ra.floats && b.floats == rb.floats)
        #expect(a.tokenCount == 3 && b.tokenCount == 3)
    }

    @Test func badBatchesAreRefusedWithoutChangingStates() throws {
        let model = try loadRandom(RandomRWKVSpec(arch: .rwkv7, matrixType: .q8_0, seed: 1))
        let other = try loadRandom(RandomRWKVSpec(arch: .rwkv7, matrixType: .q8_0, seed: 2))
        let pool = WorkerPool(threads: 1)
        let ws = try RWKVBatchWorkspace(model: model, maxBatch: 2, pool: pool)
        let s0 = model.makeState(), s1 = model.makeState(), s2 = model.makeState()
        try model.forwardBatch(tokens: [1, 2], states: [s0, s1], workspace: ws)
        let before = [s0.floats, s1.floats]

        func refused(_ what: String, _ body: () throws(ModelError) -> Void, _ check: (ModelError) -> Bool) {
            do {
                try body()
                Issue.record("\(what): accepted")
            } catch {
                #expect(check(error), "\(what): unexpected error \(error)")
            }
            #expect(s0.floats == before[0] && s1.floats == before[1], "\(what): a refused call changed a state")
            #expect(s0.tokenCount == 1 && s1.tokenCount == 1)
        }
        func isInvalidBatch(_ e: ModelError) -> Bool { if case .invalidBatch = e { true } else { false } }
        refused("empty batch", { () throws(ModelError) in
            try model.forwardBatch(tokens: [], states: [], workspace: ws)
        }, isInvalidBatch)
        refused("batch larger than the workspace", { () throws(ModelError) in
            try model.forwardBatch(tokens: [1, 2, 3], states: [s0, s1, s2], workspace: ws)
        }, isInvalidBatch)
        refused("token and state counts differ", { () throws(ModelError) in
            try model.forwardBatch(tokens: [1, 2], states: [s0], workspace: ws)
        }, isInvalidBatch)
        refused("one state twice", { () throws(ModelError) in
            try model.forwardBatch(tokens: [1, 2], states: [s0, s0], workspace: ws)
        }, isInvalidBatch)
        refused("state of another model", { () throws(ModelError) in
            try model.forwardBatch(tokens: [1, 2], states: [s0, other.makeState()], workspace: ws)
        }) { if case let .stateMismatch(m) = $0 { m.contains("sequence 1") } else { false } }
        refused("workspace of another model", { () throws(ModelError) in
            try other.forwardBatch(tokens: [1], states: [other.makeState()], workspace: ws)
        }, isInvalidBatch)
        refused("token outside the vocabulary", { () throws(ModelError) in
            try model.forwardBatch(tokens: [1, 512], states: [s0, s1], workspace: ws)
        }) { $0 == .tokenOutOfRange(token: 512, vocabulary: 512) }
        #expect(throws: ModelError.self) { _ = try RWKVBatchWorkspace(model: model, maxBatch: 0, pool: pool) }
    }

    /// The tiny trained models: three sequences with different prompts stepped together
    /// give decode's bits on every kernel path.
    @Test(arguments: RWKVFixture.all)
    func trainedModelsBatchEqualsDecode(_ fx: RWKVFixture) throws {
        let path = rwkvFixtureDir.appendingPathComponent(fx.file)
        guard sharedFixturePresent(path) else { return }
        let pool = WorkerPool(threads: 2)
        for kp in KernelPath.available {
            let model = try RWKVModel(path: path.path, kernels: try Kernels(path: kp))
            let prompts: [[Int32]] = [[34, 105, 110], [34], [72, 101, 108, 108, 111, 44, 32]]
            try checkBatchAgainstDecode(model: model, kernels: kp, prompts: prompts,
                                        schedule: [[0, 1, 2], [2, 0], [1, 2, 0], [1], [0, 1, 2]],
                                        maxBatch: 3, pool: pool, label: fx.file)
        }
    }
}
