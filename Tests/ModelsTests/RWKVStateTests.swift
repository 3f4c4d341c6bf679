import Foundation
import GGUF
import Models
import Tensors
import Testing

func loadRandom(_ spec: RandomRWKVSpec, kernels: Kernels? = nil) throws -> RWKVModel {
    let file = try GGUFFile(bytes: try makeRandomRWKV(spec))
    return try RWKVModel(file: file, kernels: kernels ?? Kernels.best)
}

func randomTokens(_ n: Int, vocabulary: Int, seed: UInt64) -> [Int32] {
    var rng = SplitMix64(seed: seed)
    return (0..<n).map { _ in Int32(rng.next() % UInt64(vocabulary)) }
}

struct ForwardCase: CustomStringConvertible, Sendable {
    let arch: Architecture
    let type: QuantType
    var description: String { "\(arch.rawValue) \(type.name)" }

    static let all: [ForwardCase] = Architecture.allCases.filter(\.isRWKV).flatMap { a in
        [QuantType.f32, .f16, .q8_0, .q4_K, .q5_1].map { ForwardCase(arch: a, type: $0) }
    }
}

@Suite struct RWKVStateTests {
    /// Decode token by token, chunked prefill and one long chunk reach the same state and
    /// logits (bitwise: the kernels are batch invariant and the WKV runs the same steps).
    @Test(arguments: ForwardCase.all)
    func decodeEqualsChunkedPrefill(_ fc: ForwardCase) throws {
        let model = try loadRandom(RandomRWKVSpec(arch: fc.arch, matrixType: fc.type, seed: 7))
        let pool = WorkerPool(threads: 2)
        let tokens = randomTokens(40, vocabulary: model.config.vocabulary, seed: 3)
        let v = model.config.vocabulary

        let wsOne = try RWKVWorkspace(model: model, maxTokens: 1, pool: pool)
        let one = model.makeState()
        for t in tokens { try model.forward(token: t, state: one, workspace: wsOne, logits: .last) }
        let logitsOne = Array(UnsafeBufferPointer(start: wsOne.logits, count: v))

        let ws7 = try RWKVWorkspace(model: model, maxTokens: 7, pool: pool)
        let chunked = model.makeState()
        try model.forward(tokens, state: chunked, workspace: ws7, logits: .last)
        let logitsChunked = Array(UnsafeBufferPointer(start: ws7.logits, count: v))

        let ws64 = try RWKVWorkspace(model: model, maxTokens: 64, pool: WorkerPool(threads: 1))
        let whole = model.makeState()
        try model.forward(tokens, state: whole, workspace: ws64, logits: .last)
        let logitsWhole = Array(UnsafeBufferPointer(start: ws64.logits, count: v))

        #expect(!logitsOne.contains { !$0.isFinite }, "non-finite logits")
        #expect(!one.floats.contains { !$0.isFinite }, "non-finite state")
        var maxRel: Float = 0
        let scale = one.floats.reduce(0) { max($0, abs($1)) }
        for (x, y) in zip(one.floats, chunked.floats) { maxRel = max(maxRel, abs(x - y) / max(scale, 1e-30)) }
        #expect(maxRel <= 1e-4, "state after decode vs chunked prefill: relative difference \(maxRel)")
        let sameChunked = one.floats == chunked.floats
        #expect(sameChunked, "\(fc): chunked prefill state differs (max rel \(maxRel))")
        let sameWhole = one.floats == whole.floats
        #expect(sameWhole, "\(fc): one-chunk prefill state differs")
        let sameLogits = logitsOne == logitsChunked && logitsOne == logitsWhole
        #expect(sameLogits, "\(fc): logits differ between decode and prefill")
        #expect(one.tokenCount == 40 && chunked.tokenCount == 40)
    }

    @Test(arguments: Architecture.allCases.filter(\.isRWKV))
    func allLogitsMatchStepByStep(_ arch: Architecture) throws {
        let model = try loadRandom(RandomRWKVSpec(arch: arch, matrixType: .q8_0, seed: 9))
        let pool = WorkerPool(threads: 2)
        let v = model.config.vocabulary
        let tokens = randomTokens(9, vocabulary: v, seed: 4)
        let ws = try RWKVWorkspace(model: model, maxTokens: 16, pool: pool, allLogits: true)
        let s = model.makeState()
        try model.forward(tokens, state: s, workspace: ws, logits: .all)
        let all = Array(UnsafeBufferPointer(start: ws.logits, count: v * tokens.count))
        let step = try RWKVWorkspace(model: model, maxTokens: 1, pool: pool)
        let s2 = model.makeState()
        for (i, t) in tokens.enumerated() {
            try model.forward([t], state: s2, workspace: step, logits: .last)
            let same = Array(UnsafeBufferPointer(start: step.logits, count: v)) == Array(all[(i * v)..<((i + 1) * v)])
            #expect(same, "\(arch) position \(i)")
        }
    }

    @Test(arguments: Architecture.allCases.filter(\.isRWKV))
    func serializedStateResumesExactly(_ arch: Architecture) throws {
        let model = try loadRandom(RandomRWKVSpec(arch: arch, matrixType: .q8_0, seed: 11))
        let pool = WorkerPool(threads: 2)
        let v = model.config.vocabulary
        let tokens = randomTokens(12, vocabulary: v, seed: 5)
        let ws = try RWKVWorkspace(model: model, maxTokens: 8, pool: pool)

        let straight = model.makeState()
        try model.forward(tokens, state: straight, workspace: ws, logits: .last)
        let expected = Array(UnsafeBufferPointer(start: ws.logits, count: v))

        let first = model.makeState()
        try model.forward(Array(tokens[0..<5]), state: first, workspace: ws, logits: .none)
        let blob = first.serialized()
        let copy = first.copy()
        let restored = model.makeState()
        try restored.restore(from: blob)
        #expect(restored.tokenCount == 5)
        for s in [restored, copy] {
            try model.forward(Array(tokens[5...]), state: s, workspace: ws, logits: .last)
            let sameLogits = Array(UnsafeBufferPointer(start: ws.logits, count: v)) == expected
            #expect(sameLogits, "\(arch): resumed logits differ")
            let sameState = s.floats == straight.floats
            #expect(sameState)
        }
        // The copy was independent of the original.
        #expect(first.tokenCount == 5)
    }

    @Test func foreignOrBrokenStatesAreRefused() throws {
        let m7 = try loadRandom(RandomRWKVSpec(arch: .rwkv7, matrixType: .f32, seed: 1))
        let m7b = try loadRandom(RandomRWKVSpec(arch: .rwkv7, matrixType: .f32, seed: 2))
        let m6 = try loadRandom(RandomRWKVSpec(arch: .rwkv6, matrixType: .f32, seed: 1))
        let ws = try RWKVWorkspace(model: m7, maxTokens: 4, pool: WorkerPool(threads: 1))
        let s = m7.makeState()
        try m7.forward([1, 2, 3], state: s, workspace: ws, logits: .none)
        let blob = s.serialized()
        let before = m7b.makeState().floats

        func refused(_ target: RWKVState, _ bytes: [UInt8], _ check: (ModelError) -> Bool) {
            do {
                try target.restore(from: bytes)
                Issue.record("restore accepted a state it should refuse")
            } catch {
                #expect(check(error), "unexpected error: \(error)")
            }
        }
        let other = m7b.makeState()
        refused(other, blob) { if case let .stateMismatch(m) = $0 { return m.contains("another model file") } else { return false } }
        let unchanged = other.floats == before
        #expect(unchanged, "a refused restore changed the state")
        refused(m6.makeState(), blob) { if case let .stateMismatch(m) = $0 { return m.contains("architecture") } else { return false } }
        refused(m7.makeState(), Array(blob.dropLast(9))) { if case .corruptState = $0 { return true } else { return false } }
        var flipped = blob
        flipped[blob.count / 2] ^= 0x40
        refused(m7.makeState(), flipped) { if case .corruptState = $0 { return true } else { return false } }
        refused(m7.makeState(), [UInt8]("not a state at all".utf8)) { if case .corruptState = $0 { return true } else { return false } }
        refused(m7.makeState(), []) { if case .corruptState = $0 { return true } else { return false } }
        // A newer format version (checksum made consistent) is refused by version.
        var newer = Array(blob.dropLast(8))
        newer[8] = 2
        let sum = newer.withUnsafeBytes { fnv1a64($0) }
        for i in 0..<8 { newer.append(UInt8(truncatingIfNeeded: sum >> (8 * UInt64(i)))) }
        refused(m7.makeState(), newer) { if case let .stateMismatch(m) = $0 { return m.contains("format version 2") } else { return false } }
        // forward refuses a state of another model.
        #expect(throws: ModelError.self) { try m7.forward([1], state: m7b.makeState(), workspace: ws, logits: .last) }
    }

    @Test func badInputIsRefusedClearly() throws {
        let model = try loadRandom(RandomRWKVSpec(arch: .rwkv7, matrixType: .f32, seed: 1))
        let ws = try RWKVWorkspace(model: model, maxTokens: 4, pool: WorkerPool(threads: 1))
        #expect(throws: ModelError.tokenOutOfRange(token: 512, vocabulary: 512)) {
            try model.forward([1, 512], state: model.makeState(), workspace: ws, logits: .last)
        }
        #expect(throws: ModelError.tokenOutOfRange(token: -1, vocabulary: 512)) {
            try model.forward([-1], state: model.makeState(), workspace: ws, logits: .last)
        }
        #expect(throws: ModelError.tooManyTokens(count: 5, maximum: 0)) {
            try model.forward([1, 2, 3, 4, 5], state: model.makeState(), workspace: ws, logits: .all)
        }
        #expect(throws: ModelError.missingTensor(name: "blk.2.time_mix_lerp_fused.weight")) {
            _ = try loadRandom(RandomRWKVSpec(arch: .rwkv7, declaredLayers: 3))
        }
        #expect(throws: ModelError.wrongShape(tensor: "blk.0.channel_mix_key.weight", expected: [256, 512],
                                               found: [256, 1024])) {
            _ = try loadRandom(RandomRWKVSpec(arch: .rwkv6, declaredFeedForward: 512))
        }
        var w = try GGUFWriter()
        w.add("general.architecture", .string("gpt-17"))
        #expect(throws: ModelError.unsupportedArchitecture(found: "gpt-17")) {
            _ = try RWKVModel(file: try GGUFFile(bytes: w.serialize()), kernels: Kernels.best)
        }
        #expect(throws: ModelError.self) { _ = try RWKVModel(path: "/nonexistent/model.gguf", kernels: Kernels.best) }
    }
}
