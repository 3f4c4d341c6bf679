@testable import Sampling

/// Log-softmax computed independently in Double with the test-side exp/ln
/// below (not the module's functions).
func doubleLogSoftmax(_ logits: [Float]) -> [Double] {
    let m = Double(logits.max()!)
    var sum = 0.0
    for l in logits { sum += doubleExp(Double(l) - m) }
    let logSum = doubleLn(sum)
    return logits.map { Double($0) - m - logSum }
}

/// exp in Double by range reduction and a Taylor series (test-side, independent
/// of the module's Float implementation).
func doubleExp(_ x: Double) -> Double {
    if x < -700 { return 0 }
    let k = (x / 0.693_147_180_559_945_309_4).rounded()
    let r = x - k * 0.693_147_180_559_945_309_4
    var term = 1.0, sum = 1.0, n = 1.0
    while abs(term) > 1e-18 {
        term *= r / n
        sum += term
        n += 1
    }
    return Double(sign: .plus, exponent: Int(k), significand: sum)
}

/// ln in Double by Newton iteration on doubleExp (test-side, independent).
func doubleLn(_ x: Double) -> Double {
    var y = Double(x.exponent) * 0.693_147_180_559_945_309_4
    for _ in 0..<60 {
        let e = doubleExp(y)
        let next = y + 2 * (x - e) / (x + e)
        if abs(next - y) < 1e-16 { return next }
        y = next
    }
    return y
}

func softmax(_ logits: [Float]) -> [Double] {
    doubleLogSoftmax(logits).map(doubleExp)
}

/// Deterministic pseudo-random logits for tests.
func randomLogits(count: Int, seed: UInt64, scale: Float = 4) -> [Float] {
    var g = Xoshiro256StarStar(seed: seed)
    return (0..<count).map { _ in (Float(g.nextUnitDouble()) * 2 - 1) * scale }
}

func logitsFromProbabilities(_ p: [Double]) -> [Float] {
    p.map { Float(doubleLn($0)) }
}
