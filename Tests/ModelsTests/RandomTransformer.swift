import CKernels
import Foundation
import GGUF
import Models
import Tensors

/// The transformer variants the tests build: an architecture, dense or MoE.
enum TransformerVariant: String, CaseIterable, Sendable, CustomStringConvertible {
    case llama, mixtral, qwen2, qwen2moe, qwen3moe, olmoe

    var arch: Architecture {
        switch self {
        case .llama, .mixtral: .llama
        case .qwen2: .qwen2
        case .qwen2moe: .qwen2moe
        case .qwen3moe: .qwen3moe
        case .olmoe: .olmoe
        }
    }

    var isMoE: Bool { self != .llama && self != .qwen2 }
    var hasBias: Bool { self == .qwen2 || self == .qwen2moe }
    var hasShared: Bool { self == .qwen2moe }
    var neox: Bool { self != .llama && self != .mixtral }
    var normalizeTopK: Bool { self == .mixtral || self == .qwen3moe }
    var description: String { rawValue }
}

/// Shape of a random transformer written for tests, in llama.cpp's layout.
struct RandomTransformerSpec: Sendable {
    var variant: TransformerVariant
    var layers = 2
    var embedding = 64
    var heads = 4
    var kvHeads = 2
    var headDim = 16
    var feedForward = 96
    var experts = 4
    var expertsUsed = 2
    var expertFeedForward = 64
    var sharedFeedForward = 96
    var vocabulary = 128
    var contextLength = 64
    var ropeDims: Int?
    var freqBase: Float = 10000
    /// Type of the big matrices; norms, biases and the router stay F32.
    var matrixType: QuantType = .f32
    var seed: UInt64 = 1
    /// Metadata that lies (for the broken-file tests).
    var declaredKVHeads: Int?
    var declaredExperts: Int?
    var declaredExpertsUsed: Int?
    var omitKeyLength = false
    var skipTensor: String?
    /// More metadata (rope scaling keys, ...).
    var extraMetadata: [String: GGUFValue] = [:]
    /// More F32 tensors (rope_freqs.weight, ...).
    var extraTensors: [String: [Float]] = [:]
}

/// A random model's file and its F32 tensors (pre-quantization values, ggml order:
/// a matrix (inputs, outputs) is [outputs][inputs] row-major), for the reference forward.
struct RandomTransformer {
    let bytes: [UInt8]
    let tensors: [String: [Float]]
    let spec: RandomTransformerSpec
}

func makeRandomTransformer(_ s: RandomTransformerSpec) throws -> RandomTransformer {
    var w = try GGUFWriter()
    let v = s.variant, a = v.arch.rawValue
    let e = s.embedding, d = s.headDim, qw = s.heads * d, kvw = s.kvHeads * d
    w.add("general.architecture", .string(a))
    w.add("general.name", .string("random \(v)"))
    w.add("\(a).context_length", .uint32(UInt32(s.contextLength)))
    w.add("\(a).embedding_length", .uint32(UInt32(e)))
    w.add("\(a).block_count", .uint32(UInt32(s.layers)))
    w.add("\(a).feed_forward_length", .uint32(UInt32(v.isMoE && v != .qwen2moe && v != .qwen3moe ? s.expertFeedForward : s.feedForward)))
    w.add("\(a).attention.head_count", .uint32(UInt32(s.heads)))
    w.add("\(a).attention.head_count_kv", .uint32(UInt32(s.declaredKVHeads ?? s.kvHeads)))
    if !s.omitKeyLength && (v == .qwen3moe || qw != e) {
        w.add("\(a).attention.key_length", .uint32(UInt32(d)))
        w.add("\(a).attention.value_length", .uint32(UInt32(d)))
    }
    w.add("\(a).attention.layer_norm_rms_epsilon", .float32(1e-6))
    w.add("\(a).rope.freq_base", .float32(s.freqBase))
    w.add("\(a).rope.dimension_count", .uint32(UInt32(s.ropeDims ?? d)))
    if v.isMoE {
        w.add("\(a).expert_count", .uint32(UInt32(s.declaredExperts ?? s.experts)))
        w.add("\(a).expert_used_count", .uint32(UInt32(s.declaredExpertsUsed ?? s.expertsUsed)))
        if v == .qwen2moe || v == .qwen3moe {
            w.add("\(a).expert_feed_forward_length", .uint32(UInt32(s.expertFeedForward)))
        }
        if v == .qwen2moe {
            w.add("\(a).expert_shared_feed_forward_length", .uint32(UInt32(s.sharedFeedForward)))
        }
    }
    for key in s.extraMetadata.keys.sorted() {
        if let value = s.extraMetadata[key] { w.add(key, value) }
    }
    var rng = SplitMix64(seed: s.seed)
    let kernels = try Kernels(path: .ref)
    var tensors: [String: [Float]] = [:]

    func floats(_ n: Int, center: Float = 0, spread: Float) -> [Float] {
        (0..<n).map { _ in center + spread * rng.nextSignedUnit() }
    }
    func vector(_ name: String, _ values: [Float]) throws {
        if name == s.skipTensor { return }
        tensors[name] = values
        try w.addTensor(name: name, type: .f32, dims: [values.count], data: values.withUnsafeBytes { Array($0) })
    }
    /// A matrix (inputs, outputs[, count]) in `type`; the stored values are the ones the
    /// file holds after dequantization (so the reference sees the model's own weights).
    func matrix(_ name: String, inputs: Int, outputs: Int, count: Int = 1, type: QuantType, gain: Float = 1.7) throws {
        if name == s.skipTensor { return }
        let n = inputs * outputs * count
        let scale = gain / Float(inputs).squareRoot()
        let values = floats(n, spread: scale)
        let t: QuantType = inputs % type.blockSize == 0 ? type : .f32
        let dims = count == 1 ? [inputs, outputs] : [inputs, outputs, count]
        var data: [UInt8]
        switch t {
        case .f32:
            data = values.withUnsafeBytes { Array($0) }
        case .f16:
            data = values.map { roost_fp32_to_fp16($0) }.withUnsafeBytes { Array($0) }
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .bf16, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K:
            if t == .q8_0, let q = kernels.quantizer(forWeight: .q8_0) {
                data = [UInt8](repeating: 0, count: try t.rowBytes(inputs) * outputs * count)
                values.withUnsafeBufferPointer { src in
                    data.withUnsafeMutableBytes { dst in
                        if let sp = src.baseAddress, let dp = dst.baseAddress { q(sp, dp, Int64(n)) }
                    }
                }
            } else {
                data = [UInt8](repeating: 0, count: try t.rowBytes(inputs) * outputs * count)
                let seed = rng.next()
                try data.withUnsafeMutableBytes { dst in
                    if let dp = dst.baseAddress {
                        try RandomWeights.fill(t, rows: outputs * count, cols: inputs, into: dp, seed: seed, kernels: kernels)
                    }
                }
            }
        }
        // What the file holds, as floats.
        var back = [Float](repeating: 0, count: n)
        if let dq = kernels.dequantize(t) {
            data.withUnsafeBytes { src in
                back.withUnsafeMutableBufferPointer { dst in
                    if let sp = src.baseAddress, let dp = dst.baseAddress { dq(sp, dp, Int64(n)) }
                }
            }
        }
        tensors[name] = back
        try w.addTensor(name: name, type: GGMLType(rawValue: t.rawValue) ?? .f32, dims: dims, data: data)
    }

    for name in s.extraTensors.keys.sorted() {
        if let values = s.extraTensors[name] { try vector(name, values) }
    }
    try matrix("token_embd.weight", inputs: e, outputs: s.vocabulary, type: s.matrixType, gain: 8)
    try vector("output_norm.weight", floats(e, center: 1, spread: 0.2))
    if v != .qwen2 { // qwen2 here ties the head to the embedding
        try matrix("output.weight", inputs: e, outputs: s.vocabulary, type: s.matrixType)
    }
    for i in 0..<s.layers {
        let p = "blk.\(i)"
        try vector("\(p).attn_norm.weight", floats(e, center: 1, spread: 0.2))
        try matrix("\(p).attn_q.weight", inputs: e, outputs: qw, type: s.matrixType)
        try matrix("\(p).attn_k.weight", inputs: e, outputs: kvw, type: s.matrixType)
        try matrix("\(p).attn_v.weight", inputs: e, outputs: kvw, type: s.matrixType)
        try matrix("\(p).attn_output.weight", inputs: qw, outputs: e, type: s.matrixType)
        if v.hasBias {
            try vector("\(p).attn_q.bias", floats(qw, spread: 0.5))
            try vector("\(p).attn_k.bias", floats(kvw, spread: 0.5))
            try vector("\(p).attn_v.bias", floats(kvw, spread: 0.5))
        }
        if v == .qwen3moe {
            try vector("\(p).attn_q_norm.weight", floats(d, center: 1, spread: 0.2))
            try vector("\(p).attn_k_norm.weight", floats(d, center: 1, spread: 0.2))
        }
        if v == .olmoe {
            try vector("\(p).attn_q_norm.weight", floats(qw, center: 1, spread: 0.2))
            try vector("\(p).attn_k_norm.weight", floats(kvw, center: 1, spread: 0.2))
        }
        try vector("\(p).ffn_norm.weight", floats(e, center: 1, spread: 0.2))
        if v.isMoE {
            let fe = s.expertFeedForward
            try matrix("\(p).ffn_gate_inp.weight", inputs: e, outputs: s.experts, type: .f32, gain: 3)
            try matrix("\(p).ffn_gate_exps.weight", inputs: e, outputs: fe, count: s.experts, type: s.matrixType)
            try matrix("\(p).ffn_up_exps.weight", inputs: e, outputs: fe, count: s.experts, type: s.matrixType)
            try matrix("\(p).ffn_down_exps.weight", inputs: fe, outputs: e, count: s.experts, type: s.matrixType)
            if v.hasShared {
                let fs = s.sharedFeedForward
                try vector("\(p).ffn_gate_inp_shexp.weight", floats(e, spread: 0.3))
                try matrix("\(p).ffn_gate_shexp.weight", inputs: e, outputs: fs, type: s.matrixType)
                try matrix("\(p).ffn_up_shexp.weight", inputs: e, outputs: fs, type: s.matrixType)
                try matrix("\(p).ffn_down_shexp.weight", inputs: fs, outputs: e, type: s.matrixType)
            }
        } else {
            try matrix("\(p).ffn_gate.weight", inputs: e, outputs: s.feedForward, type: s.matrixType)
            try matrix("\(p).ffn_up.weight", inputs: e, outputs: s.feedForward, type: s.matrixType)
            try matrix("\(p).ffn_down.weight", inputs: s.feedForward, outputs: e, type: s.matrixType)
        }
    }
    return RandomTransformer(bytes: w.serialize(), tensors: tensors, spec: s)
}

func loadRandomTransformer(_ s: RandomTransformerSpec, kernels: Kernels? = nil) throws -> (TransformerModel, RandomTransformer) {
    let r = try makeRandomTransformer(s)
    let file = try GGUFFile(bytes: r.bytes)
    return (try TransformerModel(file: file, kernels: kernels ?? Kernels.best), r)
}

/// A plain double-precision forward pass of the same model, written from the
/// architectures' definitions (Hugging Face modeling code), one token at a time: the
/// logits of every position of `tokens`.
func referenceLogits(_ r: RandomTransformer, tokens: [Int32]) -> [[Double]] {
    let s = r.spec, v = s.variant
    let e = s.embedding, d = s.headDim, h = s.heads, hkv = s.kvHeads, qw = h * d, kvw = hkv * d
    let nRot = s.ropeDims ?? d
    let eps = 1e-6
    let t = r.tensors
    func vec(_ n: String) -> [Double] { (t[n] ?? []).map(Double.init) }
    func mat(_ n: String, _ x: [Double], inputs: Int, outputs: Int, offset: Int = 0) -> [Double] {
        let w = t[n] ?? []
        return (0..<outputs).map { o in
            var acc = 0.0
            let base = offset + o * inputs
            for i in 0..<inputs { acc += Double(w[base + i]) * x[i] }
            return acc
        }
    }
    func rms(_ x: [Double], _ w: [Double]) -> [Double] {
        let ms = x.reduce(0) { $0 + $1 * $1 } / Double(x.count)
        let inv = 1 / (ms + eps).squareRoot()
        return zip(x, w).map { $0 * inv * $1 }
    }
    func silu(_ x: Double) -> Double { x / (1 + exp(-x)) }
    func rope(_ x: inout [Double], heads: Int, pos: Int) {
        for hh in 0..<heads {
            for i in 0..<(nRot / 2) {
                let theta = Double(pos) * pow(Double(s.freqBase), -2 * Double(i) / Double(nRot))
                let (i0, i1) = v.neox ? (hh * d + i, hh * d + i + nRot / 2) : (hh * d + 2 * i, hh * d + 2 * i + 1)
                let x0 = x[i0], x1 = x[i1]
                x[i0] = x0 * cos(theta) - x1 * sin(theta)
                x[i1] = x0 * sin(theta) + x1 * cos(theta)
            }
        }
    }
    func ffn(_ x: [Double], gate: String, up: String, down: String, f: Int, expert: Int = 0) -> [Double] {
        let g = mat(gate, x, inputs: e, outputs: f, offset: expert * f * e)
        let u = mat(up, x, inputs: e, outputs: f, offset: expert * f * e)
        let hdn = zip(g, u).map { silu($0) * $1 }
        return mat(down, hdn, inputs: f, outputs: e, offset: expert * e * f)
    }
    var kCache = [[[Double]]](repeating: [], count: s.layers)
    var vCache = [[[Double]]](repeating: [], count: s.layers)
    var out: [[Double]] = []
    let embW = t["token_embd.weight"] ?? []
    for (pos, tok) in tokens.enumerated() {
        var x = (0..<e).map { Double(embW[Int(tok) * e + $0]) }
        for l in 0..<s.layers {
            let p = "blk.\(l)"
            let xn = rms(x, vec("\(p).attn_norm.weight"))
            var q = mat("\(p).attn_q.weight", xn, inputs: e, outputs: qw)
            var k = mat("\(p).attn_k.weight", xn, inputs: e, outputs: kvw)
            var vv = mat("\(p).attn_v.weight", xn, inputs: e, outputs: kvw)
            if v.hasBias {
                q = zip(q, vec("\(p).attn_q.bias")).map(+)
                k = zip(k, vec("\(p).attn_k.bias")).map(+)
                vv = zip(vv, vec("\(p).attn_v.bias")).map(+)
            }
            if v == .qwen3moe {
                let qn = vec("\(p).attn_q_norm.weight"), kn = vec("\(p).attn_k_norm.weight")
                q = (0..<h).flatMap { rms(Array(q[($0 * d)..<(($0 + 1) * d)]), qn) }
                k = (0..<hkv).flatMap { rms(Array(k[($0 * d)..<(($0 + 1) * d)]), kn) }
            }
            if v == .olmoe {
                q = rms(q, vec("\(p).attn_q_norm.weight"))
                k = rms(k, vec("\(p).attn_k_norm.weight"))
            }
            rope(&q, heads: h, pos: pos)
            rope(&k, heads: hkv, pos: pos)
            kCache[l].append(k)
            vCache[l].append(vv)
            var att = [Double](repeating: 0, count: qw)
            for hh in 0..<h {
                let g = hh / (h / hkv)
                var sc = (0...pos).map { j in
                    (0..<d).reduce(0.0) { $0 + q[hh * d + $1] * kCache[l][j][g * d + $1] } / Double(d).squareRoot()
                }
                let m = sc.max() ?? 0
                sc = sc.map { exp($0 - m) }
                let sum = sc.reduce(0, +)
                for j in 0...pos {
                    for i in 0..<d { att[hh * d + i] += sc[j] / sum * vCache[l][j][g * d + i] }
                }
            }
            let o = mat("\(p).attn_output.weight", att, inputs: qw, outputs: e)
            x = zip(x, o).map(+)
            let xf = rms(x, vec("\(p).ffn_norm.weight"))
            var y = [Double](repeating: 0, count: e)
            if v.isMoE {
                let logits = mat("\(p).ffn_gate_inp.weight", xf, inputs: e, outputs: s.experts)
                let m = logits.max() ?? 0
                let ex = logits.map { exp($0 - m) }
                let z = ex.reduce(0, +)
                let probs = ex.map { $0 / z }
                let order = probs.indices.sorted { (a: Int, b: Int) -> Bool in
                    if probs[a] != probs[b] { return probs[a] > probs[b] }
                    return a < b
                }
                let chosen = Array(order.prefix(s.expertsUsed))
                var weights = chosen.map { probs[$0] }
                if v.normalizeTopK {
                    let ws = weights.reduce(0, +)
                    weights = weights.map { $0 / ws }
                }
                for (c, wgt) in zip(chosen, weights) {
                    let o = ffn(xf, gate: "\(p).ffn_gate_exps.weight", up: "\(p).ffn_up_exps.weight",
                                down: "\(p).ffn_down_exps.weight", f: s.expertFeedForward, expert: c)
                    for i in 0..<e { y[i] += wgt * o[i] }
                }
                if v.hasShared {
                    let sh = ffn(xf, gate: "\(p).ffn_gate_shexp.weight", up: "\(p).ffn_up_shexp.weight",
                                 down: "\(p).ffn_down_shexp.weight", f: s.sharedFeedForward)
                    let gw = vec("\(p).ffn_gate_inp_shexp.weight")
                    var dot = 0.0
                    for i in 0..<e { dot += gw[i] * xf[i] }
                    let gate = 1 / (1 + exp(-dot))
                    for i in 0..<e { y[i] += gate * sh[i] }
                }
            } else {
                y = ffn(xf, gate: "\(p).ffn_gate.weight", up: "\(p).ffn_up.weight", down: "\(p).ffn_down.weight",
                        f: s.feedForward)
            }
            x = zip(x, y).map(+)
        }
        let xo = rms(x, vec("output_norm.weight"))
        let headName = t["output.weight"] != nil ? "output.weight" : "token_embd.weight"
        out.append(mat(headName, xo, inputs: e, outputs: s.vocabulary))
    }
    return out
}
