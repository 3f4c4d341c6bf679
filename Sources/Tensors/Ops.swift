#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Element-wise and normalization operations on float rows, for model code. They work in
/// place or between caller-owned buffers and allocate nothing. Reductions sum in index
/// order into one accumulator (deterministic, independent of batching).
public enum Ops {
    /// y = (x - mean) / sqrt(var + eps) * weight + bias over n elements (LayerNorm).
    /// x: [n], weight: [n], bias: [n] or nil -> y: [n] (y may be x).
    @inlinable
    public static func layerNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                 eps: Float, n: Int, into y: UnsafeMutablePointer<Float>) {
        var sum: Float = 0
        for i in 0..<n { sum += x[i] }
        let mean = sum / Float(n)
        var sq: Float = 0
        for i in 0..<n {
            let d = x[i] - mean
            sq += d * d
        }
        let inv = 1 / (sq / Float(n) + eps).squareRoot()
        if let bias {
            for i in 0..<n { y[i] = (x[i] - mean) * inv * weight[i] + bias[i] }
        } else {
            for i in 0..<n { y[i] = (x[i] - mean) * inv * weight[i] }
        }
    }

    /// GroupNorm with `groups` groups of n / groups consecutive elements, then the
    /// per-element affine: x: [n] -> y: [n] (y may be x).
    @inlinable
    public static func groupNorm(_ x: UnsafePointer<Float>, groups: Int, weight: UnsafePointer<Float>,
                                 bias: UnsafePointer<Float>, eps: Float, n: Int, into y: UnsafeMutablePointer<Float>) {
        let g = n / groups
        for h in 0..<groups {
            let o = h * g
            var sum: Float = 0
            for i in 0..<g { sum += x[o + i] }
            let mean = sum / Float(g)
            var sq: Float = 0
            for i in 0..<g {
                let d = x[o + i] - mean
                sq += d * d
            }
            let inv = 1 / (sq / Float(g) + eps).squareRoot()
            for i in 0..<g { y[o + i] = (x[o + i] - mean) * inv * weight[o + i] + bias[o + i] }
        }
    }

    /// Each group of n / groups elements divided by max(its L2 norm, eps), in place.
    @inlinable
    public static func l2NormalizeGroups(_ x: UnsafeMutablePointer<Float>, groups: Int, n: Int, eps: Float = 1e-12) {
        let g = n / groups
        for h in 0..<groups {
            let o = h * g
            var sq: Float = 0
            for i in 0..<g { sq += x[o + i] * x[o + i] }
            let inv = 1 / max(sq.squareRoot(), eps)
            for i in 0..<g { x[o + i] *= inv }
        }
    }

    @inlinable public static func sigmoid(_ v: Float) -> Float { 1 / (1 + expf(-v)) }
    @inlinable public static func silu(_ v: Float) -> Float { v / (1 + expf(-v)) }

    /// Index of the largest value (the first one on ties); -1 for n == 0.
    public static func argmax(_ x: UnsafePointer<Float>, n: Int) -> Int {
        guard n > 0 else { return -1 }
        var best = 0
        for i in 1..<n where x[i] > x[best] { best = i }
        return best
    }

    /// log(sum(exp(x))) over n elements, computed stably in double.
    public static func logSumExp(_ x: UnsafePointer<Float>, n: Int) -> Double {
        var m = -Double.infinity
        for i in 0..<n { m = Swift.max(m, Double(x[i])) }
        guard m.isFinite else { return m }
        var s = 0.0
        for i in 0..<n { s += exp(Double(x[i]) - m) }
        return m + log(s)
    }
}
