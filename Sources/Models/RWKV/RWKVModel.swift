import CKernels
import GGUF
import Tensors

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

typealias FloatPtr = UnsafeMutablePointer<Float>

/// LayerNorm / GroupNorm weights.
struct NormWeights {
    let weight: FloatPtr
    let bias: FloatPtr

    init(_ l: WeightLoader, _ prefix: String, count: Int) throws(ModelError) {
        weight = try l.vector("\(prefix).weight", count: count)
        bias = try l.vector("\(prefix).bias", count: count)
    }
}

/// RWKV-5.2 time mix: static token shift, constant decay.
struct RWKV5Mix {
    let lerpK, lerpV, lerpR, lerpG: FloatPtr // [C], hold 1 - mu
    let decay: FloatPtr                       // [C], exp(-exp(d)), precomputed
    let first: FloatPtr                       // [C], the bonus u
    let gate: WeightMatrix                    // [C] -> [C]
}

/// RWKV-6 time mix: data-dependent token shift and decay (LoRAs).
struct RWKV6Mix {
    let lerpX: FloatPtr                 // [C]
    let lerpFused: FloatPtr             // [5][C]: w, k, v, r, g
    let w1: WeightMatrix                // [C] -> [5 D]
    let w2: [WeightMatrix]              // 5 x ([D] -> [C])
    let decay: FloatPtr                 // [C], log-space
    let decayW1: WeightMatrix           // [C] -> [D2]
    let decayW2: WeightMatrix           // [D2] -> [C]
    let first: FloatPtr                 // [C], u
    let gate: WeightMatrix              // [C] -> [C]
}

/// RWKV-7 time mix.
struct RWKV7Mix {
    let lerpFused: FloatPtr             // [6][C]: r, w, k, v, a, g
    let w0: FloatPtr, w1: WeightMatrix, w2: WeightMatrix
    let a0: FloatPtr, a1: WeightMatrix, a2: WeightMatrix
    let v0: FloatPtr?, v1: WeightMatrix?, v2: WeightMatrix? // not used by layer 0
    let g1: WeightMatrix, g2: WeightMatrix
    let kK: FloatPtr, kA: FloatPtr, rK: FloatPtr          // [C]
}

enum TimeMix {
    case v5(RWKV5Mix)
    case v6(RWKV6Mix)
    case v7(RWKV7Mix)
}

struct RWKVLayer {
    let attnNorm: NormWeights
    let ffnNorm: NormWeights
    let lnX: NormWeights
    let key, value, receptance, output: WeightMatrix // [C] -> [C]
    let mix: TimeMix
    let ffnLerpK: FloatPtr                             // [C]
    let ffnLerpR: FloatPtr?                            // [C] (v5, v6)
    let ffnKey: WeightMatrix                           // [C] -> [F]
    let ffnValue: WeightMatrix                         // [F] -> [C]
    let ffnReceptance: WeightMatrix?                   // [C] -> [C] (v5, v6)
}

/// An RWKV-5.2, RWKV-6 or RWKV-7 language model on a memory-mapped GGUF file, in
/// llama.cpp's tensor layout (RWKV-5: the layout of ../shared/fixtures/rwkv-tiny).
///
/// `forward` runs a chunk of tokens: every projection of the chunk as one batched matrix
/// product, only the recurrence sequential. A token's result does not depend on how the
/// tokens are chunked (the kernels are batch invariant).
///
/// `@unchecked Sendable`: immutable after loading (mapped weights, arena vectors).
public final class RWKVModel: @unchecked Sendable {
    public let config: RWKVConfig
    public let file: GGUFFile
    public let kernels: Kernels
    /// FNV-1a 64 of the file's header, metadata and tensor table: states and sessions
    /// carry it so they are only restored into the model that made them.
    public let fingerprint: UInt64
    let arena: FloatArena
    let embedding: WeightMatrix // rows: tokens, cols: C
    let embedNorm: NormWeights
    let outputNorm: NormWeights
    let head: WeightMatrix      // [C] -> [vocabulary]
    let layers: [RWKVLayer]
    let wkv6: roost_wkv6_fn
    let wkv7: roost_wkv7_fn

    /// Loads the model in `path` for the kernel path `kernels`.
    public convenience init(path: String, kernels: Kernels) throws(ModelError) {
        let f: GGUFFile
        do { f = try GGUFFile(path: path) } catch { throw .file(error) }
        try self.init(file: f, kernels: kernels)
    }

    public init(file: GGUFFile, kernels: Kernels) throws(ModelError) {
        guard let archName = file.architecture, let arch = Architecture(rawValue: archName), arch.isRWKV else {
            throw .unsupportedArchitecture(found: file.architecture)
        }
        guard let wkv6 = kernels.wkv6, let wkv7 = kernels.wkv7 else {
            throw .noKernel(tensor: "(WKV state update)", type: "f32", path: kernels.path.name)
        }
        self.wkv6 = wkv6
        self.wkv7 = wkv7
        let arena = FloatArena()
        let l = WeightLoader(file: file, kernels: kernels, arena: arena)
        let cfg = try RWKVConfig.read(l, architecture: arch)
        let c = cfg.embedding
        self.config = cfg
        self.file = file
        self.kernels = kernels
        self.arena = arena
        fingerprint = RWKVModel.fingerprint(of: file)

        // token_embd.weight: (C, vocabulary) -- one row of C per token.
        let emb = try l.info("token_embd.weight")
        guard emb.dims == [c, cfg.vocabulary] else {
            throw .wrongShape(tensor: "token_embd.weight", expected: [c, cfg.vocabulary], found: emb.dims)
        }
        let embType = try l.quantType(emb)
        guard kernels.dequantize(embType) != nil else { throw .unsupportedType(tensor: emb.name, type: embType.name) }
        guard let embBase = file.data(of: emb).baseAddress else { throw .missingTensor(name: emb.name) }
        do {
            embedding = try WeightMatrix(type: embType, rows: cfg.vocabulary, cols: c, region: embBase,
                                         available: emb.byteCount, name: emb.name, owner: file)
        } catch { throw .tensor(name: emb.name, error) }
        embedNorm = try NormWeights(l, "token_embd_norm", count: c)
        outputNorm = try NormWeights(l, "output_norm", count: c)
        head = try l.matrix("output.weight", inputs: c, outputs: cfg.vocabulary)

        var layers: [RWKVLayer] = []
        for i in 0..<cfg.layers {
            layers.append(try RWKVModel.loadLayer(l, cfg, i))
        }
        self.layers = layers
    }

    private static func loadLayer(_ l: WeightLoader, _ cfg: RWKVConfig, _ i: Int) throws(ModelError) -> RWKVLayer {
        let c = cfg.embedding, f = cfg.feedForward
        let p = "blk.\(i)"
        let mix: TimeMix
        switch cfg.architecture {
        case .rwkv5:
            let decay = try l.vector("\(p).time_mix_decay.weight", count: c)
            for j in 0..<c { decay[j] = expf(-expf(decay[j])) }
            mix = .v5(RWKV5Mix(
                lerpK: try l.vector("\(p).time_mix_lerp_k.weight", count: c),
                lerpV: try l.vector("\(p).time_mix_lerp_v.weight", count: c),
                lerpR: try l.vector("\(p).time_mix_lerp_r.weight", count: c),
                lerpG: try l.vector("\(p).time_mix_lerp_g.weight", count: c),
                decay: decay,
                first: try l.vector("\(p).time_mix_first.weight", count: c),
                gate: try l.matrix("\(p).time_mix_gate.weight", inputs: c, outputs: c)))
        case .rwkv6:
            let d = cfg.mixRank, d2 = cfg.decayRank
            mix = .v6(RWKV6Mix(
                lerpX: try l.vector("\(p).time_mix_lerp_x.weight", count: c),
                lerpFused: try l.vector("\(p).time_mix_lerp_fused.weight", count: 5 * c),
                w1: try l.matrix("\(p).time_mix_w1.weight", inputs: c, outputs: 5 * d),
                w2: try l.matrices("\(p).time_mix_w2.weight", inputs: d, outputs: c, count: 5),
                decay: try l.vector("\(p).time_mix_decay.weight", count: c),
                decayW1: try l.matrix("\(p).time_mix_decay_w1.weight", inputs: c, outputs: d2),
                decayW2: try l.matrix("\(p).time_mix_decay_w2.weight", inputs: d2, outputs: c),
                first: try l.vector("\(p).time_mix_first.weight", count: c),
                gate: try l.matrix("\(p).time_mix_gate.weight", inputs: c, outputs: c)))
        case .rwkv7:
            let hasV = i > 0
            mix = .v7(RWKV7Mix(
                lerpFused: try l.vector("\(p).time_mix_lerp_fused.weight", count: 6 * c),
                w0: try l.vector("\(p).time_mix_w0.weight", count: c),
                w1: try l.matrix("\(p).time_mix_w1.weight", inputs: c, outputs: cfg.decayRank),
                w2: try l.matrix("\(p).time_mix_w2.weight", inputs: cfg.decayRank, outputs: c),
                a0: try l.vector("\(p).time_mix_a0.weight", count: c),
                a1: try l.matrix("\(p).time_mix_a1.weight", inputs: c, outputs: cfg.iclrRank),
                a2: try l.matrix("\(p).time_mix_a2.weight", inputs: cfg.iclrRank, outputs: c),
                v0: hasV ? try l.vector("\(p).time_mix_v0.weight", count: c) : nil,
                v1: hasV ? try l.matrix("\(p).time_mix_v1.weight", inputs: c, outputs: cfg.valueRank) : nil,
                v2: hasV ? try l.matrix("\(p).time_mix_v2.weight", inputs: cfg.valueRank, outputs: c) : nil,
                g1: try l.matrix("\(p).time_mix_g1.weight", inputs: c, outputs: cfg.gateRank),
                g2: try l.matrix("\(p).time_mix_g2.weight", inputs: cfg.gateRank, outputs: c),
                kK: try l.vector("\(p).time_mix_k_k.weight", count: c),
                kA: try l.vector("\(p).time_mix_k_a.weight", count: c),
                rK: try l.vector("\(p).time_mix_r_k.weight", count: c)))
        case .mamba, .llama, .qwen2, .qwen2moe, .qwen3moe, .olmoe, .deepseek2:
            throw .unsupportedArchitecture(found: cfg.architecture.rawValue)
        }
        let hasFFNReceptance = cfg.architecture != .rwkv7
        return RWKVLayer(
            attnNorm: try NormWeights(l, "\(p).attn_norm", count: c),
            ffnNorm: try NormWeights(l, "\(p).attn_norm_2", count: c),
            lnX: try NormWeights(l, "\(p).time_mix_ln", count: c),
            key: try l.matrix("\(p).time_mix_key.weight", inputs: c, outputs: c),
            value: try l.matrix("\(p).time_mix_value.weight", inputs: c, outputs: c),
            receptance: try l.matrix("\(p).time_mix_receptance.weight", inputs: c, outputs: c),
            output: try l.matrix("\(p).time_mix_output.weight", inputs: c, outputs: c),
            mix: mix,
            ffnLerpK: try l.vector("\(p).channel_mix_lerp_k.weight", count: c),
            ffnLerpR: hasFFNReceptance ? try l.vector("\(p).channel_mix_lerp_r.weight", count: c) : nil,
            ffnKey: try l.matrix("\(p).channel_mix_key.weight", inputs: c, outputs: f),
            ffnValue: try l.matrix("\(p).channel_mix_value.weight", inputs: f, outputs: c),
            ffnReceptance: hasFFNReceptance ? try l.matrix("\(p).channel_mix_receptance.weight", inputs: c, outputs: c) : nil)
    }

    /// FNV-1a 64 over the header, metadata and tensor table, the file size, and 16
    /// windows of 4 KiB spread over the tensor data (so two files of the same shapes with
    /// different weights differ). Reads at most 64 KiB of weights.
    static func fingerprint(of file: GGUFFile) -> UInt64 {
        let raw = file.rawBytes
        var h = fnv1a64(UnsafeRawBufferPointer(rebasing: raw[0..<min(file.dataOffset, raw.count)]))
        var size = UInt64(raw.count)
        withUnsafeBytes(of: &size) { h ^= fnv1a64($0) &* 31 }
        let dataBytes = raw.count - file.dataOffset
        if dataBytes > 0 {
            let window = min(4096, dataBytes)
            for i in 0..<16 {
                let start = file.dataOffset + (dataBytes - window) * i / 15
                h = h &* 0x100_0000_01b3 ^ fnv1a64(UnsafeRawBufferPointer(rebasing: raw[start..<(start + window)]))
            }
        }
        return h
    }

    /// A zero state for this model.
    public func makeState() -> RWKVState { RWKVState(config: config, fingerprint: fingerprint) }

    /// Bytes of weights one decoded token reads: every matrix once, plus one embedding row.
    public var weightBytesPerToken: Int {
        var total = head.byteCount + embedding.rowBytes
        for layer in layers {
            var ms = [layer.key, layer.value, layer.receptance, layer.output, layer.ffnKey, layer.ffnValue]
            if let r = layer.ffnReceptance { ms.append(r) }
            switch layer.mix {
            case let .v5(m): ms.append(m.gate)
            case let .v6(m): ms += [m.w1, m.decayW1, m.decayW2, m.gate] + m.w2
            case let .v7(m):
                ms += [m.w1, m.w2, m.a1, m.a2, m.g1, m.g2]
                if let v1 = m.v1, let v2 = m.v2 { ms += [v1, v2] }
            }
            total += ms.reduce(0) { $0 + $1.byteCount }
        }
        return total
    }

    /// Bytes of the weights in the file (all tensors).
    public var fileWeightBytes: Int { file.tensors.reduce(0) { $0 + $1.byteCount } }
}
