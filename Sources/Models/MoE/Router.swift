#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Expert routing of one token: softmax over every expert's router logit, the k most
/// probable experts (ties: the lower index first), their probabilities as weights,
/// renormalized to sum to 1 when `normalize` (Mixtral, Qwen3-MoE) or kept as they are
/// (Qwen2-MoE, OLMoE). Deterministic: fixed summation orders, in float.
///
/// logits: [n] (overwritten with the probabilities) -> experts: [k] (by rank),
/// weights: [k] (by rank).
@inline(__always)
func routeTopK(_ logits: UnsafeMutablePointer<Float>, n: Int, k: Int, normalize: Bool,
               experts: UnsafeMutablePointer<Int32>, weights: UnsafeMutablePointer<Float>) {
    var m = -Float.infinity
    for i in 0..<n where logits[i] > m { m = logits[i] }
    var sum: Float = 0
    for i in 0..<n {
        logits[i] = expf(logits[i] - m)
        sum += logits[i]
    }
    let inv = 1 / sum
    for i in 0..<n { logits[i] *= inv }
    // Selection by rank: k passes over n (k and n are small).
    for r in 0..<k {
        var best = -1
        var bestP = -Float.infinity
        for i in 0..<n where logits[i] > bestP {
            var taken = false
            for q in 0..<r where experts[q] == Int32(i) {
                taken = true
                break
            }
            if !taken {
                best = i
                bestP = logits[i]
            }
        }
        experts[r] = Int32(max(best, 0))
        weights[r] = max(bestP, 0)
    }
    if normalize {
        var s: Float = 0
        for r in 0..<k { s += weights[r] }
        if s > 0 {
            for r in 0..<k { weights[r] /= s }
        }
    }
}
