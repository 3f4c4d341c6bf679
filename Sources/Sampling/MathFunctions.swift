// Elementary functions implemented here with plain IEEE arithmetic (no libm),
// so that sampling decisions are bit-identical on every platform and the
// module needs no import.

/// exp(x) in Float, relative error about 2e-7, branch-free. Returns 0 for
/// x < -87.3, -infinity and NaN (so NaN logits get zero probability) and
/// saturates at exp(88.3) for larger x. `samplingExp8` computes the same
/// operations lane-wise, so both give bit-identical results.
@inline(__always)
@usableFromInline
func samplingExp(_ x: Float) -> Float {
    let xc = x > 88.3 ? 88.3 : (x < -87.3 ? -87.3 : x)
    let t = xc * 1.442_695_04
    // Round to nearest even with the 1.5 * 2^23 trick (no libm rintf).
    let big = t + 12_582_912
    let k = big - 12_582_912
    let ki = Int32(bitPattern: big.bitPattern) &- 0x4B40_0000
    // Cody-Waite reduction: ln 2 = 0.693145751953125 + 1.428606765330187e-6.
    let r = (xc - k * 0.693_145_751_953_125) - k * 1.428_606_765_330_187e-6
    // Taylor polynomial of degree 7 on |r| <= 0.347.
    var p: Float = 1.0 / 5040
    p = p * r + 1.0 / 720
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    let scale = Float(bitPattern: UInt32(bitPattern: (ki &+ 127) << 23))
    let result = p * scale
    return x >= -87.3 ? result : 0
}

/// Lane-wise `samplingExp`.
@inline(__always)
@usableFromInline
func samplingExp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
    var xc = x
    xc.replace(with: 88.3, where: x .> 88.3)
    xc.replace(with: -87.3, where: x .< -87.3)
    let t = xc * 1.442_695_04
    let big = t + 12_582_912
    let k = big - 12_582_912
    let ki = unsafeBitCast(big, to: SIMD8<Int32>.self) &- 0x4B40_0000
    let r = (xc - k * 0.693_145_751_953_125) - k * 1.428_606_765_330_187e-6
    var p = SIMD8<Float>(repeating: 1.0 / 5040)
    p = p * r + 1.0 / 720
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    let scale = unsafeBitCast((ki &+ 127) &<< 23, to: SIMD8<Float>.self)
    var result = p * scale
    result.replace(with: 0, where: .!(x .>= -87.3))
    return result
}

/// Natural logarithm in Double for positive finite x (full precision);
/// -infinity for 0, NaN for negative or NaN input.
@usableFromInline
func samplingLog(_ x: Double) -> Double {
    if x.isNaN || x < 0 { return .nan }
    if x == 0 { return -.infinity }
    if x.isInfinite { return .infinity }
    // x = m * 2^e with m in [sqrt(1/2), sqrt(2)).
    var e = Double(x.exponent)
    var m = x.significand  // [1, 2)
    if m > 1.414_213_562_373_095_1 {
        m *= 0.5
        e += 1
    }
    // ln m = 2 atanh(z), z = (m - 1) / (m + 1), |z| <= 0.1716.
    let z = (m - 1) / (m + 1)
    let z2 = z * z
    var term = z
    var sum = 0.0
    var n = 1.0
    while true {
        let next = sum + term / n
        if next == sum { break }
        sum = next
        term *= z2
        n += 2
    }
    return 2 * sum + e * 0.693_147_180_559_945_309_4
}
