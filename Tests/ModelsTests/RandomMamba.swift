import CKernels
import GGUF
import Models
import Tensors

#if canImport(Glibc)
import Glibc
#endif

/// Shape of a random Mamba-1 model written for tests, in llama.cpp's layout (the names,
/// shapes and metadata its converter writes for a MambaForCausalLM).
struct RandomMambaSpec {
    var layers = 2
    var embedding = 64
    var inner = 128
    var convKernel = 4
    var stateSize = 16
    var timeStepRank = 4
    var vocabulary = 96
    /// Type of the big matrices (in_proj, x_proj, out_proj, embedding, output).
    var matrixType: QuantType = .f32
    /// No output.weight: the head is token_embd (tied embeddings).
    var tiedOutput = false
    var seed: UInt64 = 1
    /// Tensors left out (for the broken-file tests).
    var omit: Set<String> = []
    /// Tensors written with other dims (ggml order) than the spec's.
    var dims: [String: [Int]] = [:]
    /// Metadata written instead of (or, for nil, without) the spec's.
    var metadata: [String: GGUFValue?] = [:]
}

/// Writes a random-weight Mamba GGUF. Values follow Mamba's initialization so activations
/// stay in range: A = -(1...N) per channel (scaled), dt bias the inverse softplus of a
/// time step in [0.001, 0.1], D near 1, matrices ~ 1/sqrt(inputs).
func makeRandomMamba(_ s: RandomMambaSpec) throws -> [UInt8] {
    var w = try GGUFWriter()
    let c = s.embedding, di = s.inner, k = s.convKernel, n = s.stateSize, r = s.timeStepRank
    var meta: [(String, GGUFValue)] = [
        ("general.architecture", .string("mamba")),
        ("general.name", .string("random mamba")),
        ("mamba.context_length", .uint32(1 << 20)),
        ("mamba.embedding_length", .uint32(UInt32(c))),
        ("mamba.feed_forward_length", .uint32(0)),
        ("mamba.attention.head_count", .uint32(0)),
        ("mamba.block_count", .uint32(UInt32(s.layers))),
        ("mamba.ssm.conv_kernel", .uint32(UInt32(k))),
        ("mamba.ssm.inner_size", .uint32(UInt32(di))),
        ("mamba.ssm.state_size", .uint32(UInt32(n))),
        ("mamba.ssm.time_step_rank", .uint32(UInt32(r))),
        ("mamba.attention.layer_norm_rms_epsilon", .float32(1e-5)),
        ("mamba.ssm.dt_b_c_rms", .bool(false)),
    ]
    for (key, value) in s.metadata {
        meta.removeAll { $0.0 == key }
        if let value { meta.append((key, value)) }
    }
    for (key, value) in meta { w.add(key, value) }

    var rng = SplitMix64(seed: s.seed)
    let kernels = try Kernels(path: .ref)
    func floats(_ n: Int, center: Float = 0, spread: Float) -> [Float] {
        (0..<n).map { _ in center + spread * rng.nextSignedUnit() }
    }
    func tensor(_ name: String, _ dims: [Int], _ make: (Int) -> [Float]) throws {
        guard !s.omit.contains(name) else { return }
        let d = s.dims[name] ?? dims
        let v = make(d.reduce(1, *))
        try w.addTensor(name: name, type: .f32, dims: d, data: v.withUnsafeBytes { Array($0) })
    }
    func matrix(_ name: String, inputs: Int, outputs: Int) throws {
        guard !s.omit.contains(name) else { return }
        let d = s.dims[name] ?? [inputs, outputs]
        let count = d.reduce(1, *)
        let v = floats(count, spread: 1.7 / Float(d[0]).squareRoot())
        let t: QuantType = d[0] % s.matrixType.blockSize == 0 ? s.matrixType : .f32
        switch t {
        case .f32:
            try w.addTensor(name: name, type: .f32, dims: d, data: v.withUnsafeBytes { Array($0) })
        case .f16:
            let h = v.map { roost_fp32_to_fp16($0) }
            try w.addTensor(name: name, type: .f16, dims: d, data: h.withUnsafeBytes { Array($0) })
        case .q8_0:
            guard let q = kernels.quantizer(forWeight: .q8_0) else { throw ModelError.missingTensor(name: "q8_0 quantizer") }
            var out = [UInt8](repeating: 0, count: (try t.rowBytes(d[0])) * (count / d[0]))
            v.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBytes { dst in
                    if let p = src.baseAddress, let o = dst.baseAddress { q(p, o, Int64(count)) }
                }
            }
            try w.addTensor(name: name, type: .q8_0, dims: d, data: out)
        case .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K:
            let rows = count / d[0]
            var out = [UInt8](repeating: 0, count: (try t.rowBytes(d[0])) * rows)
            let seed = rng.next()
            try out.withUnsafeMutableBytes { dst in
                if let p = dst.baseAddress {
                    try RandomWeights.fill(t, rows: rows, cols: d[0], into: p, seed: seed, kernels: kernels)
                }
            }
            try w.addTensor(name: name, type: GGMLType(rawValue: t.rawValue) ?? .f32, dims: d, data: out)
        }
    }

    try matrix("token_embd.weight", inputs: c, outputs: s.vocabulary)
    for i in 0..<s.layers {
        let p = "blk.\(i)"
        try tensor("\(p).attn_norm.weight", [c]) { floats($0, center: 1, spread: 0.1) }
        try matrix("\(p).ssm_in.weight", inputs: c, outputs: 2 * di)
        try tensor("\(p).ssm_conv1d.weight", [k, di]) { floats($0, spread: 0.5) }
        try tensor("\(p).ssm_conv1d.bias", [di]) { floats($0, spread: 0.1) }
        try matrix("\(p).ssm_x.weight", inputs: di, outputs: r + 2 * n)
        try matrix("\(p).ssm_dt.weight", inputs: r, outputs: di)
        try tensor("\(p).ssm_dt.bias", [di]) { count in
            (0..<count).map { _ in
                let dt = expf(logf(0.001) + (logf(0.1) - logf(0.001)) * (rng.nextSignedUnit() * 0.5 + 0.5))
                return dt + logf(-expm1f(-dt)) // inverse softplus
            }
        }
        try tensor("\(p).ssm_a", [n, di]) { count in
            (0..<count).map { j in -Float(j % n + 1) * (1 + 0.2 * rng.nextSignedUnit()) }
        }
        try tensor("\(p).ssm_d", [di]) { floats($0, center: 1, spread: 0.2) }
        try matrix("\(p).ssm_out.weight", inputs: di, outputs: c)
    }
    try tensor("output_norm.weight", [c]) { floats($0, center: 1, spread: 0.1) }
    if !s.tiedOutput { try matrix("output.weight", inputs: c, outputs: s.vocabulary) }
    return w.serialize()
}

func loadRandomMamba(_ spec: RandomMambaSpec, kernels: Kernels? = nil) throws -> MambaModel {
    let file = try GGUFFile(bytes: try makeRandomMamba(spec))
    return try MambaModel(file: file, kernels: kernels ?? Kernels.best)
}
