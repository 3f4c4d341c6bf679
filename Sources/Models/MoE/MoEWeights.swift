import GGUF
import Tensors

/// The bytes one expert of one layer occupies in the file: its slices of
/// `ffn_gate_exps`, `ffn_up_exps` and `ffn_down_exps` (each slice one contiguous range,
/// the tensors being (inputs, outputs, n_expert) in ggml order). Offsets are from the
/// start of the file. An expert store keeps these resident or brings them in.
public struct ExpertByteRange: Sendable, Equatable {
    public let layer: Int
    public let expert: Int
    public let gate: Range<Int>
    public let up: Range<Int>
    public let down: Range<Int>

    /// Bytes of the three slices.
    public var byteCount: Int { gate.count + up.count + down.count }
}

/// A SwiGLU feed-forward block: down(silu(gate x) * up x).
/// gate, up: [E] -> [F]; down: [F] -> [E].
struct FFNWeights {
    let gate: WeightMatrix
    let up: WeightMatrix
    let down: WeightMatrix

    var byteCount: Int { gate.byteCount + up.byteCount + down.byteCount }
}

/// A mixture-of-experts FFN block: a router, `n_expert` SwiGLU experts (slices of the
/// 3-D exps tensors), and optionally a shared expert with a sigmoid gate (qwen2moe).
struct MoEWeights {
    /// ffn_gate_inp: [E] -> [n_expert] router logits.
    let router: WeightMatrix
    /// One SwiGLU per expert: gate, up [E] -> [Fe], down [Fe] -> [E].
    let experts: [FFNWeights]
    /// The shared expert: [E] -> [Fs] -> [E].
    let shared: FFNWeights?
    /// ffn_gate_inp_shexp: [E], the shared expert's scale is sigmoid(dot(this, x)).
    let sharedGate: UnsafeMutablePointer<Float>?
    /// The experts' byte ranges in the file, index = expert.
    let ranges: [ExpertByteRange]

    /// Loads block `i`'s MoE weights: `count` experts of width `ff`, a shared expert of
    /// width `sharedFF` when `sharedFF` > 0.
    static func load(_ l: WeightLoader, layer i: Int, embedding e: Int, experts count: Int, ff: Int,
                     sharedFF: Int, shared: Presence) throws(ModelError) -> MoEWeights {
        let N = TransformerNames.self
        let router = try l.matrix(N.ffnRouter(i), inputs: e, outputs: count)
        let gates = try l.matrices(N.ffnGateExps(i), inputs: e, outputs: ff, count: count)
        let ups = try l.matrices(N.ffnUpExps(i), inputs: e, outputs: ff, count: count)
        let downs = try l.matrices(N.ffnDownExps(i), inputs: ff, outputs: e, count: count)
        var experts: [FFNWeights] = []
        experts.reserveCapacity(count)
        for x in 0..<count { experts.append(FFNWeights(gate: gates[x], up: ups[x], down: downs[x])) }
        let base = l.file.rawBytes.baseAddress
        func range(_ m: WeightMatrix) -> Range<Int> {
            guard let base else { return 0..<0 }
            let start = UnsafeRawPointer(m.base) - UnsafeRawPointer(base)
            return start..<(start + m.byteCount)
        }
        let ranges = (0..<count).map { x in
            ExpertByteRange(layer: i, expert: x, gate: range(gates[x]), up: range(ups[x]), down: range(downs[x]))
        }
        var sharedFFN: FFNWeights?
        var sharedGate: UnsafeMutablePointer<Float>?
        let wantShared: Bool
        switch shared {
        case .absent: wantShared = false
        case .optional: wantShared = l.has(N.ffnUpShared(i))
        case .required: wantShared = true
        }
        if wantShared {
            sharedFFN = FFNWeights(gate: try l.matrix(N.ffnGateShared(i), inputs: e, outputs: sharedFF),
                                   up: try l.matrix(N.ffnUpShared(i), inputs: e, outputs: sharedFF),
                                   down: try l.matrix(N.ffnDownShared(i), inputs: sharedFF, outputs: e))
            sharedGate = try l.vector(N.ffnSharedGateInp(i), count: e)
        }
        return MoEWeights(router: router, experts: experts, shared: sharedFFN, sharedGate: sharedGate, ranges: ranges)
    }
}
