import Testing
@testable import Sampling

@Suite struct GreedyAndPenaltyTests {
    func sampler(_ p: SamplingParameters, _ n: Int) -> Sampler {
        try! Sampler(parameters: p, vocabularySize: n)
    }

    @Test func greedyIsArgmax() {
        let s = sampler(.greedy, 1000)
        for seed in 0..<20 as Range<UInt64> {
            var logits = randomLogits(count: 1000, seed: seed)
            let expected = Int32(logits.indices.max { logits[$0] < logits[$1] }!)
            #expect(s.sample(logits: &logits, accept: false).token == expected)
        }
    }

    @Test func greedyTiesGoToLowestId() {
        let s = sampler(.greedy, 5)
        var logits: [Float] = [1, 3, 0, 3, 3]
        #expect(s.sample(logits: &logits).token == 1)
        var allMasked = [Float](repeating: -.infinity, count: 5)
        #expect(s.sample(logits: &allMasked).token == 0)
        var withNaN: [Float] = [.nan, 1, 2, .nan, 2]
        #expect(s.sample(logits: &withNaN).token == 2)
    }

    @Test func repeatPenaltyDividesPositiveLogits() {
        // 2.0 / 1.5 = 1.333 < 1.9 -> token 1 wins.
        let s = sampler(SamplingParameters(temperature: 0, repeatPenalty: 1.5), 4)
        s.acceptPrompt([0])
        var logits: [Float] = [2.0, 1.9, 0.5, -1.0]
        #expect(s.sample(logits: &logits, accept: false).token == 1)
        #expect(abs(logits[0] - 4.0 / 3.0) < 1e-6)
        #expect(logits[1] == 1.9)
    }

    @Test func repeatPenaltyMultipliesNegativeLogits() {
        // -1.0 * 1.5 = -1.5 < -1.2 -> token 1 wins.
        let s = sampler(SamplingParameters(temperature: 0, repeatPenalty: 1.5), 3)
        s.acceptPrompt([0])
        var logits: [Float] = [-1.0, -1.2, -3.0]
        #expect(s.sample(logits: &logits, accept: false).token == 1)
        #expect(logits[0] == -1.5)
    }

    @Test func repeatPenaltyOncePerTokenAndOnlyInWindow() {
        // Window of 2 over prompt [0, 3, 3]: token 0 is outside, token 3 is
        // penalized once (4 / 2 = 2, not 4 / 4 = 1).
        let s = sampler(SamplingParameters(temperature: 0, repeatPenalty: 2, repeatLastN: 2), 4)
        s.acceptPrompt([0, 3, 3])
        var logits: [Float] = [3.0, 2.5, 0, 4.0]
        #expect(s.sample(logits: &logits, accept: false).token == 0)
        #expect(logits == [3.0, 2.5, 0, 2.0])
    }

    @Test func presenceAndFrequencyPenalties() {
        // Generated: 0 twice, 1 once. presence 0.2, frequency 0.5:
        // 3.0 - 0.2 - 2 * 0.5 = 1.8; 2.5 - 0.2 - 0.5 = 1.8; 2.0 unchanged.
        let s = sampler(SamplingParameters(temperature: 0, presencePenalty: 0.2, frequencyPenalty: 0.5), 3)
        s.acceptPrompt([2, 2, 2])  // prompt tokens do not count for OpenAI penalties
        s.accept(0); s.accept(0); s.accept(1)
        var logits: [Float] = [3.0, 2.5, 2.0]
        #expect(s.sample(logits: &logits).token == 2)
        #expect(abs(logits[0] - 1.8) < 1e-6 && abs(logits[1] - 1.8) < 1e-6 && logits[2] == 2.0)
        #expect(s.generatedCount(of: 2) == 1)  // sample accepted it
    }

    @Test func negativePresencePenaltyFavoursRepeats() {
        // 1.0 + 0.6 = 1.6 > 1.5
        let s = sampler(SamplingParameters(temperature: 0, presencePenalty: -0.6), 2)
        s.accept(0)
        var logits: [Float] = [1.0, 1.5]
        #expect(s.sample(logits: &logits).token == 0)
    }

    @Test func resetForgetsHistory() {
        let s = sampler(SamplingParameters(temperature: 0, repeatPenalty: 10, frequencyPenalty: 2), 2)
        s.accept(0)
        s.reset()
        var logits: [Float] = [1.0, 0.5]
        #expect(s.sample(logits: &logits).token == 0)
        #expect(logits == [1.0, 0.5])
    }
}

@Suite struct RandomSamplingTests {
    @Test func sameSeedSameSequence() throws {
        let p = SamplingParameters(temperature: 1, seed: 1234)
        let a = try Sampler(parameters: p, vocabularySize: 64)
        let b = try Sampler(parameters: p, vocabularySize: 64)
        let base = randomLogits(count: 64, seed: 7, scale: 2)
        var ta: [Int32] = [], tb: [Int32] = []
        for _ in 0..<1000 {
            var la = base, lb = base
            ta.append(a.sample(logits: &la).token)
            tb.append(b.sample(logits: &lb).token)
        }
        #expect(ta == tb)
        #expect(Set(ta).count > 10)

        let c = try Sampler(parameters: SamplingParameters(temperature: 1, seed: 1235), vocabularySize: 64)
        var tc: [Int32] = []
        for _ in 0..<1000 {
            var l = base
            tc.append(c.sample(logits: &l).token)
        }
        #expect(tc != ta)
    }

    @Test func xoshiroReferenceValues() {
        // Reference outputs of xoshiro256** from state {1, 2, 3, 4} (the
        // authors' C code): any change here would change every seeded output.
        var g = Xoshiro256StarStar(state: (1, 2, 3, 4))
        #expect((0..<4).map { _ in g.next() } == [11520, 0, 1_509_978_240, 1_215_971_899_390_074_240])
        // Seeding expands the seed with SplitMix64; its reference outputs for
        // seed 0 are the four state words.
        let state = Xoshiro256StarStar(seed: 0).state
        #expect(state.0 == 0xE220_A839_7B1D_CDAF && state.1 == 0x6E78_9E6A_A1B9_65F4)
        #expect(state.2 == 0x06C4_5D18_8009_454F && state.3 == 0xF88B_B8A8_724C_81EC)
    }

    @Test func empiricalFrequenciesMatchSoftmax() throws {
        let logits: [Float] = [1.0, 0.0, -0.5]
        let expected = softmax(logits)
        let s = try Sampler(parameters: SamplingParameters(temperature: 1, seed: 99), vocabularySize: 3)
        var counts = [0, 0, 0]
        let draws = 100_000
        for _ in 0..<draws {
            var l = logits
            counts[Int(s.sample(logits: &l, accept: false).token)] += 1
        }
        var chiSquare = 0.0
        for i in 0..<3 {
            let f = Double(counts[i]) / Double(draws)
            #expect(abs(f - expected[i]) < 0.01, "token \(i): \(f) vs \(expected[i])")
            let e = expected[i] * Double(draws)
            chiSquare += (Double(counts[i]) - e) * (Double(counts[i]) - e) / e
        }
        // 2 degrees of freedom: P(chi2 > 13.8) = 0.001.
        #expect(chiSquare < 13.8)
    }

    @Test func temperatureSharpensDistribution() throws {
        let logits: [Float] = [1.0, 0.0]
        let s = try Sampler(parameters: SamplingParameters(temperature: 0.5, seed: 5), vocabularySize: 2)
        var zeros = 0
        for _ in 0..<20_000 {
            var l = logits
            if s.sample(logits: &l, accept: false).token == 0 { zeros += 1 }
        }
        // p0 = e^2 / (e^2 + 1) = 0.8808
        #expect(abs(Double(zeros) / 20_000 - 0.8808) < 0.01)
    }

    @Test func topKOneIsGreedy() throws {
        let s = try Sampler(parameters: SamplingParameters(temperature: 1.5, topK: 1, seed: 3), vocabularySize: 5000)
        let g = try Sampler(parameters: .greedy, vocabularySize: 5000)
        for seed in 0..<10 as Range<UInt64> {
            var a = randomLogits(count: 5000, seed: seed), b = a
            #expect(s.sample(logits: &a).token == g.sample(logits: &b).token)
        }
    }

    @Test func topKKeepsTheKBest() throws {
        let n = 3000
        let logits = randomLogits(count: n, seed: 11)
        // Reference: full sort by (logit desc, id asc).
        let order = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        for k in [2, 7, 40, 1000, 2999] {
            let s = try Sampler(parameters: SamplingParameters(topK: k), vocabularySize: n)
            #expect(s.filteredCandidates(logits) == order.prefix(k).map { Int32($0) }.sorted())
        }
        // Ties at the boundary keep the lowest ids.
        let flat = [Float](repeating: 0, count: 10)
        let s = try Sampler(parameters: SamplingParameters(topK: 3), vocabularySize: 10)
        #expect(s.filteredCandidates(flat) == [0, 1, 2])
        // k >= vocabulary: no filtering.
        let all = try Sampler(parameters: SamplingParameters(topK: 50), vocabularySize: 10)
        #expect(all.filteredCandidates(flat) == Array(0..<10))
    }

    @Test func topKDrawsOnlyFromTheKBest() throws {
        let s = try Sampler(parameters: SamplingParameters(temperature: 2, topK: 2, seed: 1), vocabularySize: 4)
        var seen = Set<Int32>()
        for _ in 0..<2000 {
            var l: [Float] = [0.1, 0.3, 0.2, 0.0]
            seen.insert(s.sample(logits: &l, accept: false).token)
        }
        #expect(seen == [1, 2])
    }

    @Test func topPKeepsSmallestSetReachingP() throws {
        // Probabilities 0.5, 0.3, 0.15, 0.05 (shuffled ids).
        let p: [Double] = [0.15, 0.5, 0.05, 0.3]
        let logits = logitsFromProbabilities(p)
        let cases: [(Float, [Int32])] = [
            (0.45, [1]),           // 0.5 >= 0.45
            (0.75, [1, 3]),        // 0.8 >= 0.75
            (0.85, [0, 1, 3]),     // 0.95 >= 0.85
            (0.97, [0, 1, 2, 3]),
        ]
        for (topP, expected) in cases {
            let vocabWide = try Sampler(parameters: SamplingParameters(topP: topP), vocabularySize: 4)
            #expect(vocabWide.filteredCandidates(logits) == expected, "topP \(topP)")
            let afterTopK = try Sampler(parameters: SamplingParameters(topK: 3, topP: topP), vocabularySize: 4)
            #expect(afterTopK.filteredCandidates(logits) == expected.filter { $0 != 2 }, "topK 3, topP \(topP)")
        }
    }

    @Test func topPOnLargeVocabularyWithLongTail() throws {
        // 10 tokens at logit 0 and 5000 at -9 (mass ~0.617): the first
        // threshold pass misses the target and the threshold is lowered.
        let n = 5010
        var logits = [Float](repeating: -9, count: n)
        for i in stride(from: 0, to: n, by: 501) { logits[i] = 0 }
        let probs = softmax(logits)
        for topP: Float in [0.3, 0.9, 0.99] {
            let order = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
            var cumulative = 0.0
            var expected: [Int32] = []
            for i in order {
                expected.append(Int32(i))
                cumulative += probs[i]
                if cumulative >= Double(topP) { break }
            }
            let s = try Sampler(parameters: SamplingParameters(topP: topP), vocabularySize: n)
            let got = s.filteredCandidates(logits)
            // Float vs Double rounding may move the boundary by one token.
            #expect(abs(got.count - expected.count) <= 1, "topP \(topP): \(got.count) vs \(expected.count)")
            #expect(Set(got).isSubset(of: Set(order.prefix(expected.count + 1).map { Int32($0) })))
        }
    }

    @Test(arguments: [Float(0.5), 0.9, 0.99])
    func topPOnRandomLargeVocabulary(_ topP: Float) throws {
        // Thousands of tokens in the nucleus: exercises the bucketed path.
        let n = 20000
        let logits = randomLogits(count: n, seed: 31, scale: 3)
        let probs = softmax(logits)
        let order = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        var cumulative = 0.0
        var expectedCount = 0
        for i in order {
            expectedCount += 1
            cumulative += probs[i]
            if cumulative >= Double(topP) { break }
        }
        let s = try Sampler(parameters: SamplingParameters(topP: topP), vocabularySize: n)
        let got = s.filteredCandidates(logits)
        #expect(expectedCount > 1000)
        #expect(abs(got.count - expectedCount) <= 1, "\(got.count) vs \(expectedCount)")
        #expect(Set(got).isSubset(of: Set(order.prefix(expectedCount + 1).map { Int32($0) })))
        #expect(Set(got).count == got.count)
    }

    @Test func minPDropsTokensBelowFractionOfMax() throws {
        let logits = logitsFromProbabilities([0.05, 0.3, 0.15, 0.5])
        // minP 0.2 -> threshold 0.1: keeps 0.5, 0.3, 0.15.
        let a = try Sampler(parameters: SamplingParameters(minP: 0.2), vocabularySize: 4)
        #expect(a.filteredCandidates(logits) == [1, 2, 3])
        // minP 0.35 -> threshold 0.175: keeps 0.5, 0.3.
        let b = try Sampler(parameters: SamplingParameters(minP: 0.35), vocabularySize: 4)
        #expect(b.filteredCandidates(logits) == [1, 3])
        // minP 1: only the most likely token.
        let c = try Sampler(parameters: SamplingParameters(minP: 1), vocabularySize: 4)
        #expect(c.filteredCandidates(logits) == [3])
        // Combined with top-p 0.75 (keeps 0.5, 0.3) and min-p 0.7 (threshold 0.35).
        let d = try Sampler(parameters: SamplingParameters(topP: 0.75, minP: 0.7), vocabularySize: 4)
        #expect(d.filteredCandidates(logits) == [3])
    }

    @Test func maskedLogitsAreNeverSampled() throws {
        let s = try Sampler(parameters: SamplingParameters(temperature: 2, seed: 8), vocabularySize: 6)
        for _ in 0..<2000 {
            var l: [Float] = [-.infinity, 0, .nan, 0.5, -.infinity, -1]
            let t = s.sample(logits: &l, accept: false).token
            #expect(t == 1 || t == 3 || t == 5)
        }
        var all = [Float](repeating: -.infinity, count: 6)
        #expect(s.sample(logits: &all).token == 0)
    }
}

@Suite struct LogprobTests {
    @Test func topLogprobsOverFullVocabularySumToOne() throws {
        let logits = randomLogits(count: 20, seed: 21, scale: 6)
        let s = try Sampler(parameters: SamplingParameters(seed: 2, logprobs: true, topLogprobs: 20), vocabularySize: 20)
        var l = logits
        let r = s.sample(logits: &l)
        let top = try #require(r.topLogprobs)
        #expect(top.count == 20)
        var sum = 0.0
        for t in top { sum += doubleExp(Double(t.logprob)) }
        #expect(abs(sum - 1) < 1e-5)
        #expect(zip(top, top.dropFirst()).allSatisfy { $0.logprob >= $1.logprob })
        #expect(Set(top.map(\.token)).count == 20)
    }

    @Test func sampledLogprobMatchesDoubleLogSoftmax() throws {
        let n = 32000
        let s = try Sampler(
            parameters: SamplingParameters(temperature: 0.8, topK: 50, seed: 4, logprobs: true, topLogprobs: 5),
            vocabularySize: n)
        for seed in 0..<5 as Range<UInt64> {
            let logits = randomLogits(count: n, seed: 100 + seed, scale: 8)
            let reference = doubleLogSoftmax(logits)
            var l = logits
            let r = s.sample(logits: &l, accept: false)
            let lp = try #require(r.logprob)
            #expect(abs(Double(lp) - reference[Int(r.token)]) < 1e-5)
            let top = try #require(r.topLogprobs)
            let order = reference.indices.sorted { reference[$0] > reference[$1] }
            #expect(top.map(\.token) == order.prefix(5).map { Int32($0) })
            for t in top { #expect(abs(Double(t.logprob) - reference[Int(t.token)]) < 1e-5) }
        }
    }

    @Test func logprobsAreComputedAfterPenalties() throws {
        let s = try Sampler(parameters: SamplingParameters(temperature: 0, repeatPenalty: 2, logprobs: true), vocabularySize: 3)
        s.acceptPrompt([0])
        var l: [Float] = [2, 1.5, -1]
        let r = s.sample(logits: &l)
        #expect(r.token == 1)
        // Penalized logits: [1, 1.5, -1].
        let reference = doubleLogSoftmax([1, 1.5, -1])
        #expect(abs(Double(try #require(r.logprob)) - reference[1]) < 1e-6)
        #expect(r.topLogprobs == nil)
    }

    @Test func noLogprobsUnlessRequested() throws {
        let s = try Sampler(parameters: .greedy, vocabularySize: 3)
        var l: [Float] = [0, 1, 2]
        let r = s.sample(logits: &l)
        #expect(r.logprob == nil && r.topLogprobs == nil)
    }

    @Test func mathFunctionsAreAccurate() {
        for x in stride(from: -80.0, through: 80.0, by: 0.37) {
            let e = Double(samplingExp(Float(x)))
            let ref = doubleExp(Double(Float(x)))
            #expect(abs(e - ref) / ref < 5e-7, "exp(\(x))")
        }
        #expect(samplingExp(-.infinity) == 0 && samplingExp(.nan) == 0 && samplingExp(0) == 1)
        for x in [1e-300, 1e-5, 0.5, 1, 2, 3.14159, 1e5, 1e300] {
            #expect(abs(samplingLog(x) - doubleLn(x)) <= 1e-13 * max(1, abs(doubleLn(x))), "log(\(x))")
        }
        #expect(samplingLog(1) == 0 && samplingLog(0) == -.infinity)
    }
}

@Suite struct ValidationTests {
    static let invalid: [(SamplingParameters, String)] = [
        (SamplingParameters(temperature: -0.1), "temperature"),
        (SamplingParameters(temperature: 2.1), "temperature"),
        (SamplingParameters(temperature: .nan), "temperature"),
        (SamplingParameters(topK: -1), "topK"),
        (SamplingParameters(topP: 0), "topP"),
        (SamplingParameters(topP: 1.01), "topP"),
        (SamplingParameters(minP: -0.01), "minP"),
        (SamplingParameters(minP: 1.5), "minP"),
        (SamplingParameters(repeatPenalty: 0), "repeatPenalty"),
        (SamplingParameters(repeatPenalty: -1), "repeatPenalty"),
        (SamplingParameters(repeatPenalty: .infinity), "repeatPenalty"),
        (SamplingParameters(presencePenalty: 2.5), "presencePenalty"),
        (SamplingParameters(presencePenalty: -2.01), "presencePenalty"),
        (SamplingParameters(frequencyPenalty: -3), "frequencyPenalty"),
        (SamplingParameters(repeatLastN: -1), "repeatLastN"),
        (SamplingParameters(topLogprobs: 21), "topLogprobs"),
        (SamplingParameters(topLogprobs: -1), "topLogprobs"),
    ]

    @Test(arguments: invalid)
    func rejectsOutOfRange(_ parameters: SamplingParameters, _ name: String) {
        do {
            try parameters.validate()
            Issue.record("\(name) accepted")
        } catch {
            guard case let .invalidParameter(got, _, allowed) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(got == name)
            #expect(!allowed.isEmpty)
            #expect(error.description.contains(name))
        }
        #expect(throws: SamplingError.self) { try Sampler(parameters: parameters, vocabularySize: 10) }
    }

    @Test func exactErrorForTemperature() {
        #expect(throws: SamplingError.invalidParameter(name: "temperature", value: "2.5", allowed: "0...2 (0 = greedy)")) {
            try SamplingParameters(temperature: 2.5).validate()
        }
    }

    @Test func acceptsBoundaryValues() throws {
        try SamplingParameters().validate()
        try SamplingParameters(
            temperature: 2, topK: 0, topP: 1, minP: 1, repeatPenalty: 0.01, presencePenalty: -2,
            frequencyPenalty: 2, repeatLastN: 0, seed: 0, logprobs: true, topLogprobs: 20
        ).validate()
        try SamplingParameters(temperature: 0, topP: 1e-6, minP: 0, presencePenalty: 2, frequencyPenalty: -2).validate()
    }

    @Test func rejectsBadVocabularySize() {
        #expect(throws: SamplingError.invalidVocabularySize(0)) { try Sampler(parameters: .greedy, vocabularySize: 0) }
    }
}
