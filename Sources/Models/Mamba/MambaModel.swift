import CKernels
import GGUF
import Tensors

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One Mamba-1 block: RMSNorm, then the mixer
/// in_proj -> (x, z); x -> conv1d + SiLU -> x_proj -> (dt, B, C); dt -> dt_proj;
/// selective scan with D skip, times SiLU(z); out_proj; added to the residual.
struct MambaLayer {
    let norm: FloatPtr           // [d_model]              blk.N.attn_norm.weight
    let inProj: WeightMatrix     // [d_model] -> [2 d_inner] blk.N.ssm_in.weight (x rows, then z rows)
    let convWeight: FloatPtr     // [d_conv][d_inner]      blk.N.ssm_conv1d.weight, stored [d_inner][d_conv], transposed
    let convBias: FloatPtr       // [d_inner]              blk.N.ssm_conv1d.bias
    let xProj: WeightMatrix      // [d_inner] -> [R + 2N]  blk.N.ssm_x.weight (dt, B, C)
    let dtProj: WeightMatrix     // [R] -> [d_inner]       blk.N.ssm_dt.weight
    let dtBias: FloatPtr         // [d_inner]              blk.N.ssm_dt.bias
    let a: FloatPtr              // [d_inner][N]           blk.N.ssm_a (-exp(A_log), as the converter stores it)
    let d: FloatPtr              // [d_inner]              blk.N.ssm_d
    let outProj: WeightMatrix    // [d_inner] -> [d_model] blk.N.ssm_out.weight
}

/// A Mamba-1 language model on a memory-mapped GGUF file, in llama.cpp's layout (the file
/// its convert_hf_to_gguf.py writes from a MambaForCausalLM).
///
/// `forward` runs a chunk of tokens: every projection of the chunk as one batched matrix
/// product, only the conv and the scan sequential over the tokens (parallel over the
/// channels). A token's result does not depend on how the tokens are chunked or batched.
///
/// `@unchecked Sendable`: immutable after loading (mapped weights, arena vectors).
public final class MambaModel: @unchecked Sendable {
    public let config: MambaConfig
    public let file: GGUFFile
    public let kernels: Kernels
    /// FNV-1a 64 of the file's header, tensor table, size and weight samples (as RWKV's).
    public let fingerprint: UInt64
    let arena: FloatArena
    let embedding: WeightMatrix  // rows: tokens, cols: d_model
    let outputNorm: FloatPtr     // [d_model]
    let head: WeightMatrix       // [d_model] -> [vocabulary]; token_embd when output is absent
    let layers: [MambaLayer]
    let conv: roost_ssm_conv_fn
    let scan: roost_ssm_scan_fn

    public convenience init(path: String, kernels: Kernels) throws(ModelError) {
        let f: GGUFFile
        do { f = try GGUFFile(path: path) } catch { throw .file(error) }
        try self.init(file: f, kernels: kernels)
    }

    public init(file: GGUFFile, kernels: Kernels) throws(ModelError) {
        guard file.architecture == Architecture.mamba.rawValue else {
            throw .unsupportedArchitecture(found: file.architecture)
        }
        guard let table = roost_kernels_for(kernels.path.rawValue), let conv = table.pointee.ssm_conv,
              let scan = table.pointee.ssm_scan
        else {
            throw .noKernel(tensor: "(selective scan)", type: "f32", path: kernels.path.name)
        }
        self.conv = conv
        self.scan = scan
        let arena = FloatArena()
        let l = WeightLoader(file: file, kernels: kernels, arena: arena)
        let cfg = try MambaConfig.read(l)
        self.config = cfg
        self.file = file
        self.kernels = kernels
        self.arena = arena
        fingerprint = RWKVModel.fingerprint(of: file)

        let c = cfg.embedding
        let emb = try l.info("token_embd.weight")
        let embType = try l.quantType(emb)
        guard kernels.dequantize(embType) != nil else { throw .unsupportedType(tensor: emb.name, type: embType.name) }
        guard let embBase = file.data(of: emb).baseAddress else { throw .missingTensor(name: emb.name) }
        do {
            embedding = try WeightMatrix(type: embType, rows: cfg.vocabulary, cols: c, region: embBase,
                                         available: emb.byteCount, name: emb.name, owner: file)
        } catch { throw .tensor(name: emb.name, error) }
        outputNorm = try MambaModel.shaped(l, "output_norm.weight", [c])
        if l.has("output.weight") {
            head = try l.matrix("output.weight", inputs: c, outputs: cfg.vocabulary)
        } else {
            head = try l.matrix("token_embd.weight", inputs: c, outputs: cfg.vocabulary)
        }
        var layers: [MambaLayer] = []
        for i in 0..<cfg.layers { layers.append(try MambaModel.loadLayer(l, cfg, i)) }
        self.layers = layers
    }

    /// A float tensor whose shape (ggml order, trailing ones ignored) must be `dims`.
    static func shaped(_ l: WeightLoader, _ name: String, _ dims: [Int]) throws(ModelError) -> FloatPtr {
        let t = try l.info(name)
        guard WeightLoader.trimmed(t.dims) == WeightLoader.trimmed(dims) else {
            throw .wrongShape(tensor: name, expected: dims, found: t.dims)
        }
        return try l.vector(name, count: dims.reduce(1, *))
    }

    private static func loadLayer(_ l: WeightLoader, _ cfg: MambaConfig, _ i: Int) throws(ModelError) -> MambaLayer {
        let c = cfg.embedding, di = cfg.inner, k = cfg.convKernel, n = cfg.stateSize, r = cfg.timeStepRank
        let p = "blk.\(i)"
        for extra in ["ssm_in.bias", "ssm_x.bias", "ssm_out.bias"] where l.has("\(p).\(extra)") {
            throw .unsupportedType(tensor: "\(p).\(extra)", type: "bias (Mamba's projections have none)")
        }
        // ssm_conv1d.weight: ggml (d_conv, d_inner), channel c's taps at c * d_conv; the
        // kernel takes them tap-major, [d_conv][d_inner].
        let raw = try shaped(l, "\(p).ssm_conv1d.weight", [k, di])
        let convWeight = l.arena.allocate(k * di)
        for ch in 0..<di {
            for tap in 0..<k { convWeight[tap * di + ch] = raw[ch * k + tap] }
        }
        let a = try shaped(l, "\(p).ssm_a", [n, di])
        for j in 0..<(n * di) where !(a[j] <= 0) {
            throw .badMetadata(key: "\(p).ssm_a", expected: "values <= 0 (-exp(A_log))", found: "\(a[j]) at element \(j)")
        }
        return MambaLayer(
            norm: try shaped(l, "\(p).attn_norm.weight", [c]),
            inProj: try l.matrix("\(p).ssm_in.weight", inputs: c, outputs: 2 * di),
            convWeight: convWeight,
            convBias: try shaped(l, "\(p).ssm_conv1d.bias", [di]),
            xProj: try l.matrix("\(p).ssm_x.weight", inputs: di, outputs: cfg.xProjOutputs),
            dtProj: try l.matrix("\(p).ssm_dt.weight", inputs: r, outputs: di),
            dtBias: try shaped(l, "\(p).ssm_dt.bias", [di]),
            a: a,
            d: try shaped(l, "\(p).ssm_d", [di]),
            outProj: try l.matrix("\(p).ssm_out.weight", inputs: di, outputs: c))
    }

    /// An empty state for this model.
    public func makeState() -> MambaState { MambaState(config: config, fingerprint: fingerprint) }

    /// Bytes of weights one decoded token reads: every matrix once, plus one embedding row.
    public var weightBytesPerToken: Int {
        var total = head.byteCount + embedding.rowBytes
        for layer in layers {
            total += layer.inProj.byteCount + layer.xProj.byteCount + layer.dtProj.byteCount + layer.outProj.byteCount
        }
        return total
    }

    /// Bytes of the weights in the file (all tensors).
    public var fileWeightBytes: Int { file.tensors.reduce(0) { $0 + $1.byteCount } }
}
