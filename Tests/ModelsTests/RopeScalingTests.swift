import Foundation
import GGUF
import Models
import Tensors
import Testing

/// ggml's rope cache for one position, transliterated from ggml_rope_cache_init and
/// rope_yarn (float arithmetic, theta advanced by repeated multiplication as ggml does):
/// [cos, sin] per pair.
private func ggmlRopeCache(pos: Float, nDims: Int, base: Float, freqScale: Float, extFactor: Float,
                           attnFactor: Float, betaFast: Float, betaSlow: Float, nCtxOrig: Int) -> [(Float, Float)] {
    func corrDim(_ nRot: Float) -> Float {
        Float(nDims) * logf(Float(nCtxOrig) / (nRot * 2 * Float.pi)) / (2 * logf(base))
    }
    let start = floorf(corrDim(betaFast)), end = ceilf(corrDim(betaSlow))
    let low = max(0, start), high = min(Float(nDims - 1), end)
    let thetaScale = powf(base, -2 / Float(nDims))
    var theta = pos
    var out: [(Float, Float)] = []
    for i0 in stride(from: 0, to: nDims, by: 2) {
        let thetaExtrap = theta
        let thetaInterp = freqScale * thetaExtrap
        var t = thetaInterp
        var mscale = attnFactor
        if extFactor != 0 {
            let y = (Float(i0) / 2 - low) / max(0.001, high - low)
            let rampMix = (1 - min(1, max(0, y))) * extFactor
            t = thetaInterp * (1 - rampMix) + thetaExtrap * rampMix
            mscale *= 1 + 0.1 * logf(1 / freqScale)
        }
        out.append((cosf(t) * mscale, sinf(t) * mscale))
        theta *= thetaScale
    }
    return out
}

@Suite struct RopeScalingTests {
    private func model(_ extra: [String: GGUFValue], variant: TransformerVariant = .qwen2) throws -> TransformerModel {
        let r = try makeRandomTransformer(RandomTransformerSpec(variant: variant, contextLength: 4096, seed: 1,
                                                                extraMetadata: extra))
        return try TransformerModel(file: try GGUFFile(bytes: r.bytes), kernels: Kernels.best)
    }

    /// cos/sin of the model's RoPE tables against ggml's formulas, for plain, linear and
    /// YaRN scaling.
    @Test func anglesMatchGGML() throws {
        let cases: [(String, [String: GGUFValue], Float, Float)] = [
            ("none", [:], 1, 0),
            ("linear", ["qwen2.rope.scaling.type": .string("linear"), "qwen2.rope.scaling.factor": .float32(4)], 0.25, 0),
            ("yarn", ["qwen2.rope.scaling.type": .string("yarn"), "qwen2.rope.scaling.factor": .float32(8),
                      "qwen2.rope.scaling.original_context_length": .uint32(512)], 0.125, 1),
        ]
        for (name, extra, freqScale, ext) in cases {
            let m = try model(extra)
            let rope = m.config.rope
            #expect(rope.layout == .neox)
            #expect(rope.freqScale == freqScale && rope.extFactor == ext, "\(name)")
            let half = rope.dims / 2
            for pos in [0, 1, 7, 100, 3000] {
                let want = ggmlRopeCache(pos: Float(pos), nDims: rope.dims, base: 10000, freqScale: freqScale,
                                         extFactor: ext, attnFactor: 1, betaFast: 32, betaSlow: 1,
                                         nCtxOrig: ext != 0 ? 512 : 4096)
                for i in 0..<half {
                    let angle = Double(pos) * rope.frequencies[i]
                    let c = Float(cos(angle)) * rope.magnitude, s = Float(sin(angle)) * rope.magnitude
                    // ggml advances theta in float: ~1e-6 relative per step, times the angle.
                    let tol: Float = 2e-6 * Float(max(1, pos)) + 1e-6
                    #expect(abs(c - want[i].0) <= tol && abs(s - want[i].1) <= tol,
                            "\(name) pos \(pos) pair \(i): (\(c), \(s)) vs ggml (\(want[i].0), \(want[i].1))")
                }
            }
        }
    }

    /// Llama 3's rope scaling as the converter writes it: `rope_freqs.weight` divides each
    /// pair's frequency.
    @Test func ropeFreqsDivideTheFrequencies() throws {
        let factors: [Float] = [1, 1, 2, 4, 8, 8, 8, 8]
        let r = try makeRandomTransformer(RandomTransformerSpec(variant: .llama, seed: 2,
                                                                extraTensors: ["rope_freqs.weight": factors]))
        let m = try TransformerModel(file: try GGUFFile(bytes: r.bytes), kernels: Kernels.best)
        let rope = m.config.rope
        #expect(rope.layout == .normal && rope.dims == 16)
        for i in 0..<8 {
            let want = pow(10000, -2 * Double(i) / 16) / Double(factors[i])
            #expect(abs(rope.frequencies[i] - want) <= 1e-12 * want, "pair \(i)")
        }
        let bad = try makeRandomTransformer(RandomTransformerSpec(variant: .llama, seed: 2,
                                                                  extraTensors: ["rope_freqs.weight": [1, 2, 3]]))
        #expect(throws: ModelError.wrongShape(tensor: "rope_freqs.weight", expected: [8], found: [3])) {
            _ = try TransformerModel(file: try GGUFFile(bytes: bad.bytes), kernels: Kernels.best)
        }
    }

    @Test func unknownScalingTypeIsRefused() {
        #expect(throws: ModelError.badMetadata(key: "qwen2.rope.scaling.type", expected: "none, linear or yarn",
                                               found: "longrope")) {
            _ = try model(["qwen2.rope.scaling.type": .string("longrope")])
        }
        #expect(throws: ModelError.badMetadata(key: "llama.rope.dimension_count",
                                               expected: "an even number in 2...16 (the head size)", found: "7")) {
            let r = try makeRandomTransformer(RandomTransformerSpec(variant: .llama, ropeDims: 7))
            _ = try TransformerModel(file: try GGUFFile(bytes: r.bytes), kernels: Kernels.best)
        }
    }
}
