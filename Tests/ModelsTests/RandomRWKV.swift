import CKernels
import GGUF
import Models
import Tensors

/// Shape of a random RWKV model written for tests, in llama.cpp's layout.
struct RandomRWKVSpec {
    var arch: Architecture
    var layers = 2
    var embedding = 256
    var headSize = 64
    var feedForward = 1024
    var vocabulary = 512
    var rank = 32
    /// Type of the big matrices (time/channel mix, output, embedding); LoRAs and vectors
    /// stay F32 (as llama.cpp's quantizers keep them when rows are short).
    var matrixType: QuantType = .f32
    var seed: UInt64 = 1
    /// Metadata that lies about the tensors (for the broken-file tests).
    var declaredLayers: Int?
    var declaredFeedForward: Int?
}

/// Writes a random-weight RWKV GGUF: values scaled like a trained model's so activations
/// stay finite (norm weights near 1, matrices ~ 1/sqrt(inputs), decays in range).
func makeRandomRWKV(_ s: RandomRWKVSpec) throws -> [UInt8] {
    var w = try GGUFWriter()
    let a = s.arch.rawValue
    let c = s.embedding, f = s.feedForward, r = s.rank
    w.add("general.architecture", .string(a))
    w.add("general.name", .string("random \(a)"))
    w.add("\(a).context_length", .uint32(4096))
    w.add("\(a).embedding_length", .uint32(UInt32(c)))
    w.add("\(a).block_count", .uint32(UInt32(s.declaredLayers ?? s.layers)))
    w.add("\(a).attention.layer_norm_epsilon", .float32(1e-5))
    w.add("\(a).wkv.head_size", .uint32(UInt32(s.headSize)))
    w.add("\(a).feed_forward_length", .uint32(UInt32(s.declaredFeedForward ?? f)))
    w.add("\(a).attention.head_count", .uint32(0))
    switch s.arch {
    case .rwkv5:
        w.add("rwkv5.attention.group_norm_epsilon", .float32(1e-5))
        w.add("rwkv5.version_minor", .uint32(2))
        w.add("rwkv5.rescale_every_n_layers", .uint32(0))
    case .rwkv6:
        w.add("rwkv6.time_mix_extra_dim", .uint32(UInt32(r)))
        w.add("rwkv6.time_decay_extra_dim", .uint32(UInt32(2 * r)))
    case .rwkv7:
        for k in ["decay", "iclr", "value_residual_mix", "gate"] {
            w.add("rwkv7.attention.\(k)_lora_rank", .uint32(UInt32(r)))
        }
    case .mamba, .llama, .qwen2, .qwen2moe, .qwen3moe, .olmoe, .deepseek2:
        throw ModelError.unsupportedArchitecture(found: a)
    }
    var rng = SplitMix64(seed: s.seed)
    let kernels = try Kernels(path: .ref)

    func floats(_ n: Int, center: Float = 0, spread: Float) -> [Float] {
        (0..<n).map { _ in center + spread * rng.nextSignedUnit() }
    }
    func bytes(_ v: [Float]) -> [UInt8] {
        v.withUnsafeBytes { Array($0) }
    }
    func vector(_ name: String, _ v: [Float], dims: [Int]? = nil) throws {
        try w.addTensor(name: name, type: .f32, dims: dims ?? [v.count], data: bytes(v))
    }
    /// A matrix (inputs, outputs) in `type` (F32 when the rows do not fit its blocks).
    func matrix(_ name: String, inputs: Int, outputs: Int, type: QuantType, extraDims: [Int] = []) throws {
        let count = extraDims.reduce(1, *)
        let scale = 1 / Float(inputs).squareRoot()
        let v = floats(inputs * outputs * count, spread: scale * 1.7)
        let t: QuantType = inputs % type.blockSize == 0 ? type : .f32
        let dims = [inputs, outputs] + extraDims
        switch t {
        case .f32:
            try w.addTensor(name: name, type: .f32, dims: dims, data: bytes(v))
        case .f16:
            let h = v.map { roost_fp32_to_fp16($0) }
            try w.addTensor(name: name, type: .f16, dims: dims, data: h.withUnsafeBytes { Array($0) })
        case .q8_0:
            guard let q = kernels.quantizer(forWeight: .q8_0) else { throw ModelError.missingTensor(name: "q8_0 quantizer") }
            var out = [UInt8](repeating: 0, count: (try t.rowBytes(inputs)) * outputs * count)
            v.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBytes { dst in
                    if let s = src.baseAddress, let d = dst.baseAddress { q(s, d, Int64(v.count)) }
                }
            }
            try w.addTensor(name: name, type: .q8_0, dims: dims, data: out)
        case .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K:
            let rowBytes = try t.rowBytes(inputs)
            var out = [UInt8](repeating: 0, count: rowBytes * outputs * count)
            let seed = rng.next()
            try out.withUnsafeMutableBytes { dst in
                if let d = dst.baseAddress {
                    try RandomWeights.fill(t, rows: outputs * count, cols: inputs, into: d, seed: seed, kernels: kernels)
                }
            }
            try w.addTensor(name: name, type: GGMLType(rawValue: t.rawValue) ?? .f32, dims: dims, data: out)
        }
    }

    try matrix("token_embd.weight", inputs: c, outputs: s.vocabulary, type: s.matrixType)
    try vector("token_embd_norm.weight", floats(c, center: 1, spread: 0.1))
    try vector("token_embd_norm.bias", floats(c, spread: 0.1))
    try vector("output_norm.weight", floats(c, center: 1, spread: 0.1))
    try vector("output_norm.bias", floats(c, spread: 0.1))
    try matrix("output.weight", inputs: c, outputs: s.vocabulary, type: s.matrixType)
    for i in 0..<s.layers {
        let p = "blk.\(i)"
        for n in ["attn_norm", "attn_norm_2", "time_mix_ln"] {
            try vector("\(p).\(n).weight", floats(c, center: 1, spread: 0.1))
            try vector("\(p).\(n).bias", floats(c, spread: 0.1))
        }
        for n in ["key", "value", "receptance", "output"] {
            try matrix("\(p).time_mix_\(n).weight", inputs: c, outputs: c, type: s.matrixType)
        }
        try matrix("\(p).channel_mix_key.weight", inputs: c, outputs: f, type: s.matrixType)
        try matrix("\(p).channel_mix_value.weight", inputs: f, outputs: c, type: s.matrixType)
        try vector("\(p).channel_mix_lerp_k.weight", floats(c, center: 0.5, spread: 0.4), dims: [c, 1, 1])
        switch s.arch {
        case .rwkv5:
            for n in ["k", "v", "r", "g"] {
                try vector("\(p).time_mix_lerp_\(n).weight", floats(c, center: 0.5, spread: 0.4), dims: [c, 1, 1])
            }
            try vector("\(p).time_mix_decay.weight", floats(c, center: -1, spread: 2), dims: [s.headSize, c / s.headSize])
            try vector("\(p).time_mix_first.weight", floats(c, spread: 1), dims: [s.headSize, c / s.headSize])
            try matrix("\(p).time_mix_gate.weight", inputs: c, outputs: c, type: s.matrixType)
        case .rwkv6:
            try vector("\(p).time_mix_lerp_x.weight", floats(c, center: 0.5, spread: 0.4), dims: [c, 1, 1])
            try vector("\(p).time_mix_lerp_fused.weight", floats(5 * c, center: 0.5, spread: 0.4), dims: [c, 1, 1, 5])
            try matrix("\(p).time_mix_w1.weight", inputs: c, outputs: 5 * r, type: .f32)
            try matrix("\(p).time_mix_w2.weight", inputs: r, outputs: c, type: .f32, extraDims: [5])
            try vector("\(p).time_mix_decay.weight", floats(c, center: -1, spread: 2), dims: [c, 1, 1])
            try matrix("\(p).time_mix_decay_w1.weight", inputs: c, outputs: 2 * r, type: .f32)
            try matrix("\(p).time_mix_decay_w2.weight", inputs: 2 * r, outputs: c, type: .f32)
            try vector("\(p).time_mix_first.weight", floats(c, spread: 1), dims: [s.headSize, c / s.headSize])
            try matrix("\(p).time_mix_gate.weight", inputs: c, outputs: c, type: s.matrixType)
        case .rwkv7:
            try vector("\(p).time_mix_lerp_fused.weight", floats(6 * c, center: 0.5, spread: 0.4), dims: [c, 1, 1, 6])
            for n in ["w", "a", "v"] { try vector("\(p).time_mix_\(n)0.weight", floats(c, spread: 1), dims: [c, 1, 1]) }
            for n in ["w", "a", "v", "g"] {
                try matrix("\(p).time_mix_\(n)1.weight", inputs: c, outputs: r, type: .f32)
                try matrix("\(p).time_mix_\(n)2.weight", inputs: r, outputs: c, type: .f32)
            }
            try vector("\(p).time_mix_k_k.weight", floats(c, center: 0.8, spread: 0.2), dims: [c, 1, 1])
            try vector("\(p).time_mix_k_a.weight", floats(c, center: 0.8, spread: 0.2), dims: [c, 1, 1])
            try vector("\(p).time_mix_r_k.weight", floats(c, spread: 0.5), dims: [s.headSize, c / s.headSize])
        case .mamba, .llama, .qwen2, .qwen2moe, .qwen3moe, .olmoe, .deepseek2:
            throw ModelError.unsupportedArchitecture(found: a)
        }
        if s.arch != .rwkv7 {
            try vector("\(p).channel_mix_lerp_r.weight", floats(c, center: 0.5, spread: 0.4), dims: [c, 1, 1])
            try matrix("\(p).channel_mix_receptance.weight", inputs: c, outputs: c, type: s.matrixType)
        }
    }
    return w.serialize()
}
