import Foundation
import GGUF
import Models
import Tensors
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A plain double-precision Mamba-1 written from the formulas, reading the F32 tensors of
/// a GGUF directly (nothing shared with MambaModel): the oracle of the random models.
struct NaiveMamba {
    let file: GGUFFile
    let c, di, k, n, r, layers, vocabulary: Int
    let eps: Double
    var conv: [[Double]]   // per layer [K-1][di]
    var ssm: [[Double]]    // per layer [di][N]

    init(file: GGUFFile) throws {
        self.file = file
        c = try file.requireInt("mamba.embedding_length")
        di = try file.requireInt("mamba.ssm.inner_size")
        k = try file.requireInt("mamba.ssm.conv_kernel")
        n = try file.requireInt("mamba.ssm.state_size")
        r = try file.requireInt("mamba.ssm.time_step_rank")
        layers = try file.requireInt("mamba.block_count")
        eps = try file.requireFloat("mamba.attention.layer_norm_rms_epsilon")
        vocabulary = try file.requireTensor("token_embd.weight").dims[1]
        conv = Array(repeating: Array(repeating: 0, count: (k - 1) * di), count: layers)
        ssm = Array(repeating: Array(repeating: 0, count: di * n), count: layers)
    }

    func t(_ name: String) throws -> [Double] {
        let info = try file.requireTensor(name)
        guard info.type == .f32 else { throw ModelError.unsupportedType(tensor: name, type: "\(info.type)") }
        let d = file.data(of: info)
        return (0..<info.elementCount).map { Double(d.load(fromByteOffset: $0 * 4, as: Float.self)) }
    }

    /// y[o] = sum_i W[o][i] x[i], W rows of x.count.
    func matvec(_ w: [Double], _ x: [Double]) -> [Double] {
        let cols = x.count
        return (0..<(w.count / cols)).map { o in (0..<cols).reduce(0.0) { $0 + w[o * cols + $1] * x[$1] } }
    }

    func rms(_ x: [Double], _ w: [Double]) -> [Double] {
        let ms = x.reduce(0.0) { $0 + $1 * $1 } / Double(x.count)
        let inv = 1 / (ms + eps).squareRoot()
        return (0..<x.count).map { x[$0] * inv * w[$0] }
    }

    static func silu(_ v: Double) -> Double { v / (1 + exp(-v)) }

    mutating func step(_ token: Int32) throws -> [Double] {
        let emb = try t("token_embd.weight")
        var h = Array(emb[(Int(token) * c)..<(Int(token) * c + c)])
        for l in 0..<layers {
            let p = "blk.\(l)"
            let xz = matvec(try t("\(p).ssm_in.weight"), rms(h, try t("\(p).attn_norm.weight")))
            let cw = try t("\(p).ssm_conv1d.weight"), cb = try t("\(p).ssm_conv1d.bias")
            var xc = [Double](repeating: 0, count: di)
            for ch in 0..<di {
                var acc = cb[ch]
                for tap in 0..<(k - 1) { acc += cw[ch * k + tap] * conv[l][tap * di + ch] }
                acc += cw[ch * k + k - 1] * xz[ch]
                for tap in 0..<max(0, k - 2) { conv[l][tap * di + ch] = conv[l][(tap + 1) * di + ch] }
                if k > 1 { conv[l][(k - 2) * di + ch] = xz[ch] }
                xc[ch] = NaiveMamba.silu(acc)
            }
            let xdbl = matvec(try t("\(p).ssm_x.weight"), xc)
            let dtRaw = matvec(try t("\(p).ssm_dt.weight"), Array(xdbl[0..<r]))
            let dtb = try t("\(p).ssm_dt.bias"), a = try t("\(p).ssm_a"), dd = try t("\(p).ssm_d")
            var y = [Double](repeating: 0, count: di)
            for ch in 0..<di {
                let v = dtRaw[ch] + dtb[ch]
                let dt = v > 20 ? v : log1p(exp(v))
                var acc = 0.0
                for i in 0..<n {
                    let s = ssm[l][ch * n + i] * exp(dt * a[ch * n + i]) + dt * xdbl[r + i] * xc[ch]
                    ssm[l][ch * n + i] = s
                    acc += s * xdbl[r + n + i]
                }
                y[ch] = (acc + dd[ch] * xc[ch]) * NaiveMamba.silu(xz[di + ch])
            }
            let out = matvec(try t("\(p).ssm_out.weight"), y)
            for j in 0..<c { h[j] += out[j] }
        }
        let headName = file.tensorInfo(named: "output.weight") == nil ? "token_embd.weight" : "output.weight"
        return matvec(try t(headName), rms(h, try t("output_norm.weight")))
    }
}

/// max |got - want| / max |want|
func relativeError(_ got: UnsafeBufferPointer<Float>, _ want: [Double]) -> Double {
    var e = 0.0, m = 0.0
    for (g, w) in zip(got, want) {
        e = max(e, abs(Double(g) - w))
        m = max(m, abs(w))
    }
    return e / max(m, 1e-30)
}

/// The message of the stateMismatch `body` throws (nil when it succeeds).
func mismatch(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch {
        if case let .stateMismatch(what)? = error as? ModelError { return what }
        return "\(error)"
    }
}

func bits(_ p: UnsafeBufferPointer<Float>) -> [UInt32] { p.map(\.bitPattern) }

@Suite struct MambaTests {
    static let paths = KernelPath.available

    /// F32 weights: every position's logits within 1e-4 of the double-precision oracle, on
    /// every kernel path, tied and untied heads, conv kernels 4 and 3, N = 16 and 6.
    @Test(arguments: paths)
    func matchesNaiveOracle(_ path: KernelPath) throws {
        let specs = [RandomMambaSpec(), RandomMambaSpec(convKernel: 3, stateSize: 6, tiedOutput: true, seed: 2)]
        for spec in specs {
            let bytes = try makeRandomMamba(spec)
            let file = try GGUFFile(bytes: bytes)
            let model = try MambaModel(file: file, kernels: try Kernels(path: path))
            var oracle = try NaiveMamba(file: try GGUFFile(bytes: bytes))
            let tokens = randomTokens(12, vocabulary: spec.vocabulary, seed: 3)
            let ws = try MambaWorkspace(model: model, maxTokens: 16, pool: WorkerPool(threads: 2), allLogits: true)
            let state = model.makeState()
            try model.forward(tokens, state: state, workspace: ws, logits: .all)
            var worst = 0.0
            for (t, tok) in tokens.enumerated() {
                worst = max(worst, relativeError(ws.logits(row: t), try oracle.step(tok)))
            }
            #expect(worst < 1e-4, "\(path) K=\(spec.convKernel) N=\(spec.stateSize): relative error \(worst)")
            #expect(state.tokenCount == tokens.count)
        }
    }

    /// Prefill in chunks of 1, 5, 16 and 64 tokens: the same bits as token-by-token decode
    /// (logits and state), for float and quantized weights and 1 or 3 threads.
    @Test(arguments: [QuantType.f32, .f16, .q8_0, .q4_0])
    func prefillEqualsDecode(_ type: QuantType) throws {
        let model = try loadRandomMamba(RandomMambaSpec(inner: 256, matrixType: type, seed: 4))
        let tokens = randomTokens(37, vocabulary: model.config.vocabulary, seed: 5)
        let stepWS = try MambaWorkspace(model: model, maxTokens: 1, pool: WorkerPool(threads: 1))
        let stepped = model.makeState()
        for tok in tokens { try model.forward([tok], state: stepped, workspace: stepWS, logits: .last) }
        let want = bits(stepWS.logits(row: 0))
        #expect(!stepWS.logits(row: 0).contains { !$0.isFinite })
        for (chunk, threads) in [(1, 3), (5, 1), (16, 3), (64, 2)] {
            let ws = try MambaWorkspace(model: model, maxTokens: chunk, pool: WorkerPool(threads: threads))
            let s = model.makeState()
            try model.forward(tokens, state: s, workspace: ws, logits: .last)
            #expect(bits(ws.logits(row: 0)) == want, "\(type.name) chunk \(chunk) threads \(threads): logits differ")
            #expect(s.floats.map(\.bitPattern) == stepped.floats.map(\.bitPattern), "\(type.name) chunk \(chunk): state differs")
        }
    }

    /// d_inner 200 (not a multiple of the vector widths or of the pool's 16-channel granule)
    /// and N 24: the channels in the kernels' scalar tails and the last, partial granule
    /// give the same bits on 1 and 3 threads, chunked or stepped, on every path, and match
    /// the double-precision oracle.
    @Test(arguments: paths)
    func oddChannelCountsSplitExactly(_ path: KernelPath) throws {
        let spec = RandomMambaSpec(embedding: 48, inner: 200, stateSize: 24, timeStepRank: 3, seed: 12)
        let bytes = try makeRandomMamba(spec)
        let model = try MambaModel(file: try GGUFFile(bytes: bytes), kernels: try Kernels(path: path))
        var oracle = try NaiveMamba(file: try GGUFFile(bytes: bytes))
        let tokens = randomTokens(10, vocabulary: spec.vocabulary, seed: 13)
        let one = try MambaWorkspace(model: model, maxTokens: 1, pool: WorkerPool(threads: 1))
        let s1 = model.makeState()
        var worst = 0.0
        for tok in tokens {
            try model.forward([tok], state: s1, workspace: one, logits: .last)
            worst = max(worst, relativeError(one.logits(row: 0), try oracle.step(tok)))
        }
        #expect(worst < 1e-4, "\(path): relative error \(worst)")
        let chunked = try MambaWorkspace(model: model, maxTokens: 7, pool: WorkerPool(threads: 3))
        let s3 = model.makeState()
        try model.forward(tokens, state: s3, workspace: chunked, logits: .last)
        #expect(bits(chunked.logits(row: 0)) == bits(one.logits(row: 0)), "\(path): logits differ")
        #expect(s3.floats.map(\.bitPattern) == s1.floats.map(\.bitPattern), "\(path): state differs")
    }

    /// `.all` rows equal the logits of stepping token by token.
    @Test func allLogitsMatchStepByStep() throws {
        let model = try loadRandomMamba(RandomMambaSpec(matrixType: .q8_0, seed: 6))
        let pool = WorkerPool(threads: 2)
        let tokens = randomTokens(9, vocabulary: model.config.vocabulary, seed: 7)
        let all = try MambaWorkspace(model: model, maxTokens: 9, pool: pool, allLogits: true)
        try model.forward(tokens, state: model.makeState(), workspace: all, logits: .all)
        let one = try MambaWorkspace(model: model, maxTokens: 1, pool: pool)
        let s = model.makeState()
        for (t, tok) in tokens.enumerated() {
            try model.forward([tok], state: s, workspace: one, logits: .last)
            #expect(bits(all.logits(row: t)) == bits(one.logits(row: 0)), "row \(t)")
        }
        #expect(throws: ModelError.tooManyTokens(count: 10, maximum: 9)) {
            try model.forward(tokens + [1], state: model.makeState(), workspace: all, logits: .all)
        }
    }

    /// Sequences joining and leaving a batch in changing orders: every logit and state
    /// float bitwise equal to single-sequence decode.
    @Test(arguments: [QuantType.f32, .q8_0, .q4_K])
    func batchEqualsSingle(_ type: QuantType) throws {
        let model = try loadRandomMamba(RandomMambaSpec(embedding: 256, inner: 512, matrixType: type, seed: 8))
        let pool = WorkerPool(threads: 3)
        let v = model.config.vocabulary
        let prompts = (0..<6).map { randomTokens($0 * 3, vocabulary: v, seed: 20 + UInt64($0)) }
        let single = try MambaWorkspace(model: model, maxTokens: 8, pool: pool)
        let batchWS = try MambaWorkspace(model: model, maxTokens: 6, pool: pool, allLogits: true)
        let reference = prompts.map { _ in model.makeState() }
        for (s, p) in zip(reference, prompts) where !p.isEmpty {
            try model.forward(p, state: s, workspace: single, logits: .none)
        }
        let batched = reference.map { $0.copy() }
        var next = prompts.map { $0.last ?? 1 }
        for (step, members) in batchSchedule.enumerated() {
            let tokens = members.map { next[$0] }
            try model.forwardBatch(tokens: tokens, states: members.map { batched[$0] }, workspace: batchWS)
            for (row, seq) in members.enumerated() {
                try model.forward([tokens[row]], state: reference[seq], workspace: single, logits: .last)
                #expect(bits(batchWS.logits(row: row)) == bits(single.logits(row: 0)),
                        "\(type.name) step \(step) sequence \(seq) row \(row): logits differ")
                #expect(batched[seq].floats.map(\.bitPattern) == reference[seq].floats.map(\.bitPattern),
                        "\(type.name) step \(step) sequence \(seq): state differs")
                #expect(batched[seq].tokenCount == reference[seq].tokenCount)
                next[seq] = Int32(Ops.argmax(single.logits, n: v))
            }
        }
        let s = batched[0]
        #expect(throws: ModelError.invalidBatch("sequences 0 and 1 share one state")) {
            try model.forwardBatch(tokens: [1, 2], states: [s, s], workspace: batchWS)
        }
    }

    /// Through the protocol: loadLanguageModel picks Mamba, the runner's forward and
    /// forwardBatch give the model's own results.
    @Test func runsThroughLanguageModel() throws {
        let bytes = try makeRandomMamba(RandomMambaSpec(matrixType: .q8_0, seed: 9))
        let lm = try loadLanguageModel(file: try GGUFFile(bytes: bytes), kernels: Kernels.best)
        #expect(lm.architecture == .mamba)
        #expect(lm.contextLength == nil)
        #expect(lm.vocabulary == 96)
        let state = lm.makeSequenceState()
        #expect(lm.stateBytes(tokens: 0) == state.byteCount && lm.stateBytes(tokens: 1000) == state.byteCount)
        #expect(state.byteCount == 2 * (3 * 128 + 128 * 16) * 4)
        let runner = try lm.makeRunner(maxTokens: 4, maxBatch: 3, pool: WorkerPool(threads: 2), allLogits: false)
        let tokens: [Int32] = [5, 9, 2, 77, 31, 8]
        try tokens.withUnsafeBufferPointer { try runner.forward($0, state: state, logits: .last) }
        let want = bits(runner.logits(row: 0))
        #expect(state.tokenCount == 6)
        // The same sequence through forwardBatch, one token per step beside two others.
        let a = lm.makeSequenceState(), b = lm.makeSequenceState(), c = lm.makeSequenceState()
        for tok in tokens {
            try [tok, 3, 4].withUnsafeBufferPointer { try runner.forwardBatch(tokens: $0, states: [b, a, c], computeLogits: true) }
        }
        #expect(bits(runner.batchLogits(0)) == want)
        #expect(b.tokenCount == 6 && a.tokenCount == 6)
        #expect(lm.weightBytesPerToken > 0 && lm.fileWeightBytes >= lm.weightBytesPerToken - 96 * 64 * 4)
    }

    /// serialized() / restore: a restored state continues exactly; a state of another model,
    /// architecture or format, and damaged bytes, are refused without changing anything.
    @Test func stateSerializationAndRecurrentRules() throws {
        let model = try loadRandomMamba(RandomMambaSpec(matrixType: .q8_0, seed: 10))
        let ws = try MambaWorkspace(model: model, maxTokens: 8, pool: WorkerPool(threads: 2))
        let s = model.makeState()
        try model.forward(randomTokens(11, vocabulary: 96, seed: 11), state: s, workspace: ws, logits: .none)
        let bytes = s.serialized()
        let restored = model.makeState()
        try restored.restore(from: bytes)
        #expect(restored.tokenCount == 11 && restored.floats.map(\.bitPattern) == s.floats.map(\.bitPattern))
        try model.forward([4], state: s, workspace: ws, logits: .last)
        let want = bits(ws.logits(row: 0))
        try model.forward([4], state: restored, workspace: ws, logits: .last)
        #expect(bits(ws.logits(row: 0)) == want)

        let untouched = model.makeState()
        var damaged = bytes
        damaged[100] ^= 1
        #expect(throws: ModelError.corruptState("checksum mismatch (truncated or damaged)")) {
            try untouched.restore(from: damaged)
        }
        #expect(throws: ModelError.self) { try untouched.restore(from: Array(bytes.prefix(60))) }
        #expect(throws: ModelError.corruptState("not a Mamba state (bad magic)")) { try untouched.restore(from: [1, 2, 3]) }
        #expect(untouched.tokenCount == 0 && !untouched.floats.contains { $0 != 0 })

        let other = try loadRandomMamba(RandomMambaSpec(matrixType: .q8_0, seed: 99))
        let otherModel = mismatch { try other.makeState().restore(from: bytes) }
        #expect(otherModel?.contains("another model file") == true, "\(otherModel ?? "restored")")
        let wider = try loadRandomMamba(RandomMambaSpec(stateSize: 8, seed: 10))
        let otherShape = mismatch { try wider.makeState().restore(from: bytes) }
        #expect(otherShape?.contains("d_state") == true, "\(otherShape ?? "restored")")
        // Format version: a newer one is refused (checksum recomputed so only the version differs).
        var newer = Array(bytes.dropLast(8))
        newer[8] = 2
        let sum = newer.withUnsafeBytes { fnv1a64($0) }
        for i in 0..<8 { newer.append(UInt8(truncatingIfNeeded: sum >> (8 * UInt64(i)))) }
        #expect(throws: ModelError.stateMismatch("format version 2; this build reads version 1")) {
            try model.makeState().restore(from: newer)
        }

        // Recurrent rules: truncate only to 0 or the current count; copy and assign.
        let copy = s.copyState()
        #expect(s.truncate(to: s.tokenCount))
        #expect(!s.truncate(to: 3))
        #expect(s.tokenCount == 12)
        #expect(s.truncate(to: 0) && s.tokenCount == 0 && !s.floats.contains { $0 != 0 })
        #expect(copy.tokenCount == 12)
        try s.assign(from: copy)
        #expect(s.tokenCount == 12)
        #expect(throws: ModelError.stateMismatch("the states belong to different models")) {
            try s.assign(from: other.makeState())
        }
        #expect(throws: ModelError.stateMismatch("the state was made for another model")) {
            try model.forward([1], state: other.makeState(), workspace: ws, logits: .none)
        }
    }

    struct Broken: CustomStringConvertible, Sendable {
        let name: String
        let spec: @Sendable () -> RandomMambaSpec
        let error: ModelError
        var description: String { name }
    }

    static let broken: [Broken] = [
        Broken(name: "missing ssm_a", spec: { RandomMambaSpec(omit: ["blk.1.ssm_a"]) },
               error: .missingTensor(name: "blk.1.ssm_a")),
        Broken(name: "missing conv bias", spec: { RandomMambaSpec(omit: ["blk.0.ssm_conv1d.bias"]) },
               error: .missingTensor(name: "blk.0.ssm_conv1d.bias")),
        Broken(name: "missing dt bias", spec: { RandomMambaSpec(omit: ["blk.0.ssm_dt.bias"]) },
               error: .missingTensor(name: "blk.0.ssm_dt.bias")),
        Broken(name: "missing ssm_out", spec: { RandomMambaSpec(omit: ["blk.1.ssm_out.weight"]) },
               error: .missingTensor(name: "blk.1.ssm_out.weight")),
        Broken(name: "inner_size inconsistent", spec: { RandomMambaSpec(metadata: ["mamba.ssm.inner_size": .uint32(96)]) },
               error: .wrongShape(tensor: "blk.0.ssm_conv1d.weight", expected: [4, 96], found: [4, 128])),
        Broken(name: "state_size inconsistent", spec: { RandomMambaSpec(metadata: ["mamba.ssm.state_size": .uint32(8)]) },
               error: .wrongShape(tensor: "blk.0.ssm_a", expected: [8, 128], found: [16, 128])),
        Broken(name: "x_proj without room for B and C", spec: { RandomMambaSpec(dims: ["blk.1.ssm_x.weight": [128, 20]]) },
               error: .wrongShape(tensor: "blk.1.ssm_x.weight", expected: [128, 36], found: [128, 20])),
        Broken(name: "in_proj not 2 d_inner", spec: { RandomMambaSpec(dims: ["blk.0.ssm_in.weight": [64, 128]]) },
               error: .wrongShape(tensor: "blk.0.ssm_in.weight", expected: [64, 256], found: [64, 128])),
        Broken(name: "conv_kernel inconsistent", spec: { RandomMambaSpec(metadata: ["mamba.ssm.conv_kernel": .uint32(3)]) },
               error: .wrongShape(tensor: "blk.0.ssm_conv1d.weight", expected: [3, 128], found: [4, 128])),
        Broken(name: "time_step_rank inconsistent", spec: { RandomMambaSpec(metadata: ["mamba.ssm.time_step_rank": .uint32(8)]) },
               error: .wrongShape(tensor: "blk.0.ssm_x.weight", expected: [128, 40], found: [128, 36])),
        Broken(name: "ssm_a transposed", spec: { RandomMambaSpec(dims: ["blk.0.ssm_a": [128, 16]]) },
               error: .wrongShape(tensor: "blk.0.ssm_a", expected: [16, 128], found: [128, 16])),
        Broken(name: "ssm_d wrong length", spec: { RandomMambaSpec(dims: ["blk.1.ssm_d": [64]]) },
               error: .wrongShape(tensor: "blk.1.ssm_d", expected: [128], found: [64])),
        Broken(name: "dt_proj wrong rank", spec: { RandomMambaSpec(dims: ["blk.0.ssm_dt.weight": [8, 128]]) },
               error: .wrongShape(tensor: "blk.0.ssm_dt.weight", expected: [4, 128], found: [8, 128])),
        Broken(name: "state_size missing", spec: { RandomMambaSpec(metadata: ["mamba.ssm.state_size": nil]) },
               error: .badMetadata(key: "mamba.ssm.state_size", expected: "an integer", found: "nothing")),
        Broken(name: "time_step_rank zero", spec: { RandomMambaSpec(metadata: ["mamba.ssm.time_step_rank": .uint32(0)]) },
               error: .badMetadata(key: "mamba.ssm.time_step_rank", expected: "a positive integer", found: "0")),
        Broken(name: "conv_kernel too wide", spec: { RandomMambaSpec(metadata: ["mamba.ssm.conv_kernel": .uint32(9)]) },
               error: .badMetadata(key: "mamba.ssm.conv_kernel", expected: "1...8", found: "9")),
        Broken(name: "rms epsilon missing", spec: { RandomMambaSpec(metadata: ["mamba.attention.layer_norm_rms_epsilon": nil]) },
               error: .badMetadata(key: "mamba.attention.layer_norm_rms_epsilon", expected: "a number", found: "nothing")),
        Broken(name: "FalconMamba norms", spec: { RandomMambaSpec(metadata: ["mamba.ssm.dt_b_c_rms": .bool(true)]) },
               error: .badMetadata(key: "mamba.ssm.dt_b_c_rms",
                                   expected: "false (the RMS norms of dt, B and C that FalconMamba uses are not supported)",
                                   found: "true")),
    ]

    /// Broken files: a typed error naming the tensor or key.
    @Test(arguments: broken)
    func brokenFilesAreRefused(_ b: Broken) throws {
        let bytes = try makeRandomMamba(b.spec())
        #expect(throws: b.error, "\(b.name)") {
            _ = try loadLanguageModel(file: try GGUFFile(bytes: bytes), kernels: Kernels.best)
        }
    }
}
