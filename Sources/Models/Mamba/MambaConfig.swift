/// Hyperparameters of a Mamba-1 model, from its GGUF metadata (keys as llama.cpp's
/// converter writes them: `mamba.embedding_length`, `mamba.block_count`,
/// `mamba.ssm.conv_kernel`, `mamba.ssm.inner_size`, `mamba.ssm.state_size`,
/// `mamba.ssm.time_step_rank`, `mamba.attention.layer_norm_rms_epsilon`).
public struct MambaConfig: Sendable, Equatable {
    public let layers: Int
    /// d_model: channels of the residual stream.
    public let embedding: Int
    /// d_inner: channels of the mixer (2 d_model in the models llama.cpp converts).
    public let inner: Int
    /// d_conv: taps of the causal depthwise conv1d (the conv state keeps d_conv - 1 inputs).
    public let convKernel: Int
    /// d_state (N): the SSM state of a channel.
    public let stateSize: Int
    /// dt_rank (R): width of the low-rank time step projection.
    public let timeStepRank: Int
    public let vocabulary: Int
    /// RMSNorm epsilon (every layer's norm and the output norm).
    public let normEps: Float

    /// Columns of ssm_x's output per token: dt (R), B (N), C (N).
    public var xProjOutputs: Int { timeStepRank + 2 * stateSize }
    /// Floats of one layer's conv state: [d_conv - 1][d_inner].
    public var convStateFloats: Int { (convKernel - 1) * inner }
    /// Floats of one layer's SSM state: [d_inner][d_state].
    public var ssmStateFloats: Int { inner * stateSize }
    public var stateFloatsPerLayer: Int { convStateFloats + ssmStateFloats }

    /// Widest matrix input the model multiplies: sizes the activation scratch.
    var maxMatrixInputs: Int { max(embedding, inner, timeStepRank) }

    /// The largest conv kernel the C kernels take.
    static let maxConvKernel = 8

    static func read(_ l: WeightLoader) throws(ModelError) -> MambaConfig {
        let c = try l.positiveInt("mamba.embedding_length")
        let layers = try l.positiveInt("mamba.block_count")
        let k = try l.positiveInt("mamba.ssm.conv_kernel")
        guard k <= maxConvKernel else {
            throw .badMetadata(key: "mamba.ssm.conv_kernel", expected: "1...\(maxConvKernel)", found: "\(k)")
        }
        let inner = try l.positiveInt("mamba.ssm.inner_size")
        let n = try l.positiveInt("mamba.ssm.state_size")
        let r = try l.positiveInt("mamba.ssm.time_step_rank")
        let eps = try l.float("mamba.attention.layer_norm_rms_epsilon")
        guard eps > 0 else {
            throw .badMetadata(key: "mamba.attention.layer_norm_rms_epsilon", expected: "a positive number",
                               found: "\(eps)")
        }
        // FalconMamba (same architecture name) RMS-normalizes dt, B and C: not implemented.
        if let v = l.file.metadata["mamba.ssm.dt_b_c_rms"] {
            guard let b = v.bool else {
                throw .badMetadata(key: "mamba.ssm.dt_b_c_rms", expected: "a bool", found: v.typeName)
            }
            guard !b else {
                throw .badMetadata(key: "mamba.ssm.dt_b_c_rms", expected: "false (the RMS norms of dt, B and C "
                                   + "that FalconMamba uses are not supported)", found: "true")
            }
        }
        let emb = try l.info("token_embd.weight")
        guard emb.dims.count == 2, emb.dims[0] == c, emb.dims[1] > 0 else {
            throw .wrongShape(tensor: "token_embd.weight", expected: [c, -1], found: emb.dims)
        }
        return MambaConfig(layers: layers, embedding: c, inner: inner, convKernel: k, stateSize: n, timeStepRank: r,
                           vocabulary: emb.dims[1], normEps: eps)
    }
}
