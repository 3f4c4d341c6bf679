/// One alternative reported with `logprobs`.
public struct TokenLogprob: Sendable, Equatable {
    public var token: Int32
    public var logprob: Float

    public init(token: Int32, logprob: Float) {
        self.token = token
        self.logprob = logprob
    }
}

/// The result of one sampling step.
public struct SampledToken: Sendable, Equatable {
    public var token: Int32
    /// log-softmax of the processed logits (after the penalties, at
    /// temperature 1, over the whole vocabulary, before top-k/top-p/min-p),
    /// as OpenAI reports it. nil unless `logprobs` or `topLogprobs > 0`.
    public var logprob: Float?
    /// The `topLogprobs` most likely tokens with their logprobs, sorted by
    /// logprob descending (ties: lower id first). nil when `topLogprobs == 0`.
    public var topLogprobs: [TokenLogprob]?

    public init(token: Int32, logprob: Float? = nil, topLogprobs: [TokenLogprob]? = nil) {
        self.token = token
        self.logprob = logprob
        self.topLogprobs = topLogprobs
    }
}

/// Turns one step's logits into a token, for one sequence.
///
/// Processing order follows llama.cpp's default chain: penalties (repeat,
/// presence, frequency), top-k, top-p, min-p, temperature, softmax, draw.
/// top-p and min-p therefore see the temperature-1 distribution. Temperature 0
/// is greedy: the argmax after penalties, ties to the lowest id, and the random
/// generator is not advanced.
///
/// The random generator is xoshiro256** seeded through SplitMix64
/// (`Xoshiro256StarStar`); exp and log are implemented in this module with
/// plain IEEE arithmetic, so the same seed and the same logits give the same
/// tokens on every run and platform. Without a seed, the generator is seeded
/// from `SystemRandomNumberGenerator`.
///
/// Every buffer is allocated in `init`; `sample` allocates nothing, except
/// the returned `topLogprobs` array when `topLogprobs > 0`.
///
/// History: `acceptPrompt(_:)` feeds prompt tokens (repeat-penalty window
/// only); `sample(logits:)` records the sampled token by default, and
/// `accept(_:)` records a token chosen elsewhere (presence/frequency counts and
/// the repeat-penalty window). Not thread-safe: one sampler per sequence.
public final class Sampler {
    public let parameters: SamplingParameters
    public let vocabularySize: Int

    private var rng: Xoshiro256StarStar

    /// Candidate token ids (top-k heap, top-p heap, filtered set).
    private let candidates: UnsafeMutablePointer<Int32>
    /// Unnormalized probabilities of the candidates for the draw.
    private let weights: UnsafeMutablePointer<Float>
    /// Generated-token counts for the presence/frequency penalties.
    private let counts: UnsafeMutablePointer<Int32>
    /// Distinct generated tokens (those with counts > 0).
    private let generated: UnsafeMutablePointer<Int32>
    private var generatedDistinct = 0
    /// Stamps that mark a token as already penalized in this step.
    private let marks: UnsafeMutablePointer<UInt32>
    private var stamp: UInt32 = 0
    /// Ring of the last `repeatLastN` tokens.
    private let ring: UnsafeMutablePointer<Int32>
    private var ringStart = 0
    private var ringCount = 0
    /// Buffer for the top-logprobs selection.
    private let topBuffer: UnsafeMutablePointer<Int32>
    /// Sums of `weights` per block of `blockSize` tokens.
    private let blockSums: UnsafeMutablePointer<Double>
    /// Scratch ids, and the mass and size of each logit bucket, for top-p.
    private let scratch: UnsafeMutablePointer<Int32>
    private let bucketMass: UnsafeMutablePointer<Double>
    private let bucketCount: UnsafeMutablePointer<Int>
    static let bucketCountLimit = 256

    public init(parameters: SamplingParameters, vocabularySize: Int) throws(SamplingError) {
        try parameters.validate()
        guard vocabularySize > 0, vocabularySize <= Int(Int32.max) else {
            throw .invalidVocabularySize(vocabularySize)
        }
        self.parameters = parameters
        self.vocabularySize = vocabularySize
        if let seed = parameters.seed {
            rng = Xoshiro256StarStar(seed: seed)
        } else {
            rng = Xoshiro256StarStar()
        }
        let n = vocabularySize
        candidates = .allocate(capacity: n)
        weights = .allocate(capacity: n)
        counts = .allocate(capacity: n)
        counts.initialize(repeating: 0, count: n)
        generated = .allocate(capacity: n)
        marks = .allocate(capacity: n)
        marks.initialize(repeating: 0, count: n)
        ring = .allocate(capacity: max(parameters.repeatLastN, 1))
        topBuffer = .allocate(capacity: max(parameters.topLogprobs, 1))
        blockSums = .allocate(capacity: (n + Self.blockSize - 1) / Self.blockSize)
        scratch = .allocate(capacity: n)
        bucketMass = .allocate(capacity: Self.bucketCountLimit)
        bucketCount = .allocate(capacity: Self.bucketCountLimit)
    }

    deinit {
        candidates.deallocate()
        weights.deallocate()
        counts.deallocate()
        generated.deallocate()
        marks.deallocate()
        ring.deallocate()
        topBuffer.deallocate()
        blockSums.deallocate()
        scratch.deallocate()
        bucketMass.deallocate()
        bucketCount.deallocate()
    }

    // MARK: History

    /// Forgets all history (counts and the repeat window); keeps the RNG state.
    public func reset() {
        for i in 0..<generatedDistinct { counts[Int(generated[i])] = 0 }
        generatedDistinct = 0
        ringStart = 0
        ringCount = 0
    }

    /// Feeds prompt tokens: they count for the repetition penalty window but
    /// not for the presence/frequency penalties (OpenAI: generated tokens).
    /// Ids outside the vocabulary are ignored.
    public func acceptPrompt<S: Sequence>(_ tokens: S) where S.Element == Int32 {
        for t in tokens where t >= 0 && Int(t) < vocabularySize { pushRing(t) }
    }

    /// Records a generated token. Ids outside the vocabulary are ignored.
    public func accept(_ token: Int32) {
        guard token >= 0, Int(token) < vocabularySize else { return }
        pushRing(token)
        let t = Int(token)
        if counts[t] == 0 {
            generated[generatedDistinct] = token
            generatedDistinct += 1
        }
        if counts[t] < Int32.max { counts[t] += 1 }
    }

    /// How many times `token` was generated (accepted).
    public func generatedCount(of token: Int32) -> Int {
        guard token >= 0, Int(token) < vocabularySize else { return 0 }
        return Int(counts[Int(token)])
    }

    private func pushRing(_ token: Int32) {
        let capacity = parameters.repeatLastN
        guard capacity > 0 else { return }
        if ringCount < capacity {
            ring[(ringStart + ringCount) % capacity] = token
            ringCount += 1
        } else {
            ring[ringStart] = token
            ringStart = (ringStart + 1) % capacity
        }
    }

    // MARK: Sampling

    /// Samples from an array of `vocabularySize` logits (modified in place by
    /// the penalties).
    public func sample(logits: inout [Float], accept: Bool = true) -> SampledToken {
        precondition(logits.count == vocabularySize, "logits.count != vocabularySize")
        return logits.withUnsafeMutableBufferPointer { sample(logits: $0.baseAddress!, accept: accept) }
    }

    /// Samples one token from `vocabularySize` logits. The penalties are
    /// applied in place (NaN logits become -infinity). With `accept` (the
    /// default) the token is recorded as generated, as by `accept(_:)`.
    public func sample(logits: UnsafeMutablePointer<Float>, accept: Bool = true) -> SampledToken {
        applyPenalties(logits)
        let maxLogit = sanitizeAndMax(logits)

        let token: Int32
        if parameters.temperature == 0 || parameters.topK == 1 || maxLogit == -.infinity {
            token = firstIndex(of: maxLogit, logits)
        } else {
            token = draw(logits, maxLogit: maxLogit)
        }

        var result = SampledToken(token: token)
        if parameters.logprobs || parameters.topLogprobs > 0 {
            fillLogprobs(logits, maxLogit: maxLogit, into: &result)
        }
        if accept { self.accept(token) }
        return result
    }

    /// Replaces NaN by -infinity in place and returns the maximum logit.
    private func sanitizeAndMax(_ logits: UnsafeMutablePointer<Float>) -> Float {
        let n = vocabularySize
        let raw = UnsafeMutableRawPointer(logits)
        var m8 = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= n {
            var v = raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
            let nan = v .!= v
            if any(nan) {
                v.replace(with: -.infinity, where: nan)
                raw.storeBytes(of: v, toByteOffset: i &* 4, as: SIMD8<Float>.self)
            }
            m8.replace(with: v, where: v .> m8)
            i += 8
        }
        var m = m8[0]
        for lane in 1..<8 where m8[lane] > m { m = m8[lane] }
        while i < n {
            if logits[i].isNaN { logits[i] = -.infinity }
            if logits[i] > m { m = logits[i] }
            i += 1
        }
        return m
    }

    /// The lowest id whose logit equals `value` (the argmax, ties to the
    /// lowest id, when `value` is the maximum).
    private func firstIndex(of value: Float, _ logits: UnsafeMutablePointer<Float>) -> Int32 {
        for i in 0..<vocabularySize where logits[i] == value { return Int32(i) }
        return 0
    }

    /// weights[i] = exp((logits[i] - maxLogit) * invT) for the whole
    /// vocabulary, with per-block sums in `blockSums`; returns the total.
    /// Summation order is fixed (8 lanes per block, lanes in order, blocks in
    /// order), so the result is the same on every platform.
    private func fillWeights(_ logits: UnsafeMutablePointer<Float>, maxLogit: Float, invT: Float) -> Double {
        let n = vocabularySize
        let src = UnsafeRawPointer(logits)
        let dst = UnsafeMutableRawPointer(weights)
        let m8 = SIMD8<Float>(repeating: maxLogit)
        let t8 = SIMD8<Float>(repeating: invT)
        var total = 0.0
        var block = 0
        var i = 0
        while i < n {
            let blockEnd = min(i + Self.blockSize, n)
            var acc = SIMD8<Float>()
            while i + 8 <= blockEnd {
                let v = src.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
                let w = samplingExp8((v - m8) * t8)
                dst.storeBytes(of: w, toByteOffset: i &* 4, as: SIMD8<Float>.self)
                acc += w
                i += 8
            }
            var sum = 0.0
            for lane in 0..<8 { sum += Double(acc[lane]) }
            while i < blockEnd {
                let w = samplingExp((logits[i] - maxLogit) * invT)
                weights[i] = w
                sum += Double(w)
                i += 1
            }
            blockSums[block] = sum
            total += sum
            block += 1
        }
        return total
    }

    static let blockSize = 1024

    private func applyPenalties(_ logits: UnsafeMutablePointer<Float>) {
        let p = parameters
        if p.repeatPenalty != 1, ringCount > 0 {
            stamp &+= 1
            if stamp == 0 {
                marks.update(repeating: 0, count: vocabularySize)
                stamp = 1
            }
            let capacity = p.repeatLastN
            for j in 0..<ringCount {
                let t = Int(ring[(ringStart + j) % capacity])
                if marks[t] == stamp { continue }
                marks[t] = stamp
                let l = logits[t]
                logits[t] = l <= 0 ? l * p.repeatPenalty : l / p.repeatPenalty
            }
        }
        if p.presencePenalty != 0 || p.frequencyPenalty != 0 {
            for j in 0..<generatedDistinct {
                let t = Int(generated[j])
                logits[t] -= p.presencePenalty + p.frequencyPenalty * Float(counts[t])
            }
        }
    }

    /// "a ranks before b": higher logit, ties to the lower id.
    @inline(__always)
    private static func before(_ a: Int32, _ b: Int32, _ logits: UnsafeMutablePointer<Float>) -> Bool {
        let la = logits[Int(a)], lb = logits[Int(b)]
        return la > lb || (la == lb && a < b)
    }

    /// Selects the k best tokens of the vocabulary into `buffer[0..<k]`,
    /// sorted best first: a heap of size k whose root is the worst kept token
    /// (O(n log k), mostly O(n) since most tokens lose against the root),
    /// then a heap sort of the k kept tokens.
    private func selectTop(_ k: Int, _ logits: UnsafeMutablePointer<Float>, into buffer: UnsafeMutablePointer<Int32>) {
        let n = vocabularySize
        // worse(a, b): a ranks after b; the root is the element ranking last.
        @inline(__always) func worse(_ a: Int32, _ b: Int32) -> Bool { Self.before(b, a, logits) }
        @inline(__always) func siftDown(_ start: Int, _ count: Int) {
            var i = start
            while true {
                let l = 2 * i + 1
                if l >= count { return }
                var c = l
                if l + 1 < count && worse(buffer[l + 1], buffer[l]) { c = l + 1 }
                if worse(buffer[c], buffer[i]) {
                    let tmp = buffer[c]; buffer[c] = buffer[i]; buffer[i] = tmp
                    i = c
                } else {
                    return
                }
            }
        }
        for i in 0..<k { buffer[i] = Int32(i) }
        if k > 1 {
            for i in stride(from: k / 2 - 1, through: 0, by: -1) { siftDown(i, k) }
        }
        if k < n {
            var rootLogit = logits[Int(buffer[0])]
            for i in k..<n {
                let l = logits[i]
                // Later ids lose ties, so only a strictly larger logit enters.
                if l > rootLogit {
                    buffer[0] = Int32(i)
                    siftDown(0, k)
                    rootLogit = logits[Int(buffer[0])]
                }
            }
        }
        // Heap sort: repeatedly move the worst to the end -> best first.
        var end = k - 1
        while end > 0 {
            let tmp = buffer[0]; buffer[0] = buffer[end]; buffer[end] = tmp
            siftDown(0, end)
            end -= 1
        }
    }

    /// top-k, top-p, min-p, temperature and the draw.
    private func draw(_ logits: UnsafeMutablePointer<Float>, maxLogit: Float) -> Int32 {
        let invT = 1 / parameters.temperature
        guard let count = filter(logits, maxLogit: maxLogit) else {
            // No filter: draw over the whole vocabulary, blockwise.
            let total = fillWeights(logits, maxLogit: maxLogit, invT: invT)
            let u = rng.nextUnitDouble() * total
            var cumulative = 0.0
            var block = 0
            var start = 0
            while start < vocabularySize {
                let end = min(start + Self.blockSize, vocabularySize)
                if u < cumulative + blockSums[block] {
                    for i in start..<end where weights[i] > 0 {
                        cumulative += Double(weights[i])
                        if u < cumulative { return Int32(i) }
                    }
                    // Rounding between the block sum and this scan: go on.
                } else {
                    cumulative += blockSums[block]
                }
                start = end
                block += 1
            }
            return firstIndex(of: maxLogit, logits)
        }

        // Temperature, unnormalized softmax and the draw over the candidates.
        // The most likely token (weight 1) is always among them.
        var total = 0.0
        for j in 0..<count {
            let w = samplingExp((logits[Int(candidates[j])] - maxLogit) * invT)
            weights[j] = w
            total += Double(w)
        }
        let u = rng.nextUnitDouble() * total
        var cumulative = 0.0
        var last = 0
        for j in 0..<count where weights[j] > 0 {
            cumulative += Double(weights[j])
            last = j
            if u < cumulative { return candidates[j] }
        }
        return candidates[last]
    }

    /// For tests: the candidate set left by top-k, top-p and min-p (no
    /// penalties), in ascending id order.
    func filteredCandidates(_ logits: [Float]) -> [Int32] {
        var copy = logits
        precondition(copy.count == vocabularySize)
        return copy.withUnsafeMutableBufferPointer { buffer -> [Int32] in
            let p = buffer.baseAddress!
            let maxLogit = sanitizeAndMax(p)
            if maxLogit == -.infinity { return [0] }
            guard let count = filter(p, maxLogit: maxLogit) else { return (0..<Int32(vocabularySize)).map { $0 } }
            return Array(UnsafeBufferPointer(start: candidates, count: count)).sorted()
        }
    }

    /// top-k, top-p and min-p: leaves the candidates in candidates[0..<count]
    /// and returns count, or nil when no filter is active (every token is a
    /// candidate). `maxLogit` is the finite maximum over the vocabulary.
    private func filter(_ logits: UnsafeMutablePointer<Float>, maxLogit: Float) -> Int? {
        let p = parameters
        let n = vocabularySize
        var count: Int

        if p.topK > 0 && p.topK < n {
            selectTop(p.topK, logits, into: candidates)
            count = p.topK
            if p.topP < 1 { count = nucleusOfSorted(count, logits) }
        } else if p.topP < 1 {
            count = nucleusOfVocabulary(logits, maxLogit: maxLogit)
        } else if p.minP > 0 {
            // min-p alone: one comparison pass over the vocabulary.
            let cutoff = maxLogit + Float(samplingLog(Double(p.minP)))
            count = 0
            for i in 0..<n where logits[i] >= cutoff {
                candidates[count] = Int32(i)
                count += 1
            }
            return max(count, 1)
        } else {
            return nil
        }

        if p.minP > 0 {
            // Keep tokens with logit >= max + ln(minP), i.e. probability >=
            // minP * max probability (llama.cpp's formulation).
            let cutoff = maxLogit + Float(samplingLog(Double(p.minP)))
            var kept = 0
            for j in 0..<count {
                let t = candidates[j]
                if logits[Int(t)] >= cutoff {
                    candidates[kept] = t
                    kept += 1
                }
            }
            count = max(kept, 1)  // the max-logit token always passes
        }
        return count
    }

    /// top-p over candidates[0..<count] already sorted best first; returns
    /// the length of the smallest prefix with probability >= topP.
    private func nucleusOfSorted(_ count: Int, _ logits: UnsafeMutablePointer<Float>) -> Int {
        let maxLogit = logits[Int(candidates[0])]
        var total = 0.0
        for j in 0..<count {
            let w = samplingExp(logits[Int(candidates[j])] - maxLogit)
            weights[j] = w
            total += Double(w)
        }
        let target = Double(parameters.topP) * total
        var cumulative = 0.0
        for j in 0..<count {
            cumulative += Double(weights[j])
            if cumulative >= target { return j + 1 }
        }
        return count
    }

    /// top-p over the whole vocabulary without sorting it: collect the tokens
    /// above a probability threshold (lowered until their mass reaches topP),
    /// build a max-heap of those and pop only until the cumulative probability
    /// reaches topP (large sets are first bucketed by logit so that only the
    /// boundary bucket is heap-ordered). Leaves the nucleus in
    /// candidates[0..<result], unordered.
    private func nucleusOfVocabulary(_ logits: UnsafeMutablePointer<Float>, maxLogit: Float) -> Int {
        let n = vocabularySize
        let total = fillWeights(logits, maxLogit: maxLogit, invT: 1)
        let target = Double(parameters.topP) * total

        var margin: Float = 8  // weight e^-8 = 3.4e-4 of the top token
        var count = 0
        while true {
            let cutoff = margin > 90 ? -Float.infinity : maxLogit - margin
            count = 0
            var mass = 0.0
            for i in 0..<n where logits[i] >= cutoff && logits[i] > -.infinity {
                candidates[count] = Int32(i)
                count += 1
                mass += Double(weights[i])
            }
            if mass >= target || cutoff == -.infinity { break }
            margin *= 2
        }

        // Large candidate sets: bucket them by logit (O(n)); every bucket
        // above the one where the cumulative mass reaches topP is wholly in
        // the nucleus, and only that boundary bucket is ordered by the heap.
        var heapStart = 0
        var heapEnd = count
        var cumulative = 0.0
        var buffer = candidates
        var lowest = maxLogit
        for j in 0..<count { lowest = min(lowest, logits[Int(candidates[j])]) }
        let buckets = Self.bucketCountLimit
        let scale = Float(buckets) / (maxLogit - lowest)
        if count > Self.blockSize && lowest < maxLogit && scale.isFinite {
            @inline(__always) func bucket(_ t: Int32) -> Int {
                min(Int((maxLogit - logits[Int(t)]) * scale), buckets - 1)
            }
            bucketMass.update(repeating: 0, count: buckets)
            bucketCount.update(repeating: 0, count: buckets)
            for j in 0..<count {
                let t = candidates[j]
                let b = bucket(t)
                bucketMass[b] += Double(weights[Int(t)])
                bucketCount[b] += 1
            }
            var boundary = buckets - 1
            var before = 0  // tokens in buckets above the boundary
            for b in 0..<buckets {
                if cumulative + bucketMass[b] >= target || b == buckets - 1 {
                    boundary = b
                    break
                }
                cumulative += bucketMass[b]
                before += bucketCount[b]
            }
            var head = 0
            var tail = before
            for j in 0..<count {
                let t = candidates[j]
                let b = bucket(t)
                if b < boundary {
                    scratch[head] = t
                    head += 1
                } else if b == boundary {
                    scratch[tail] = t
                    tail += 1
                }
            }
            buffer = scratch
            heapStart = before
            heapEnd = tail
        }

        // Max-heap over buffer[heapStart..<heapEnd] (root = best).
        let heap = buffer + heapStart
        @inline(__always) func siftDown(_ start: Int, _ size: Int) {
            var i = start
            while true {
                let l = 2 * i + 1
                if l >= size { return }
                var c = l
                if l + 1 < size && Self.before(heap[l + 1], heap[l], logits) { c = l + 1 }
                if Self.before(heap[c], heap[i], logits) {
                    let tmp = heap[c]; heap[c] = heap[i]; heap[i] = tmp
                    i = c
                } else {
                    return
                }
            }
        }
        let heapCount = heapEnd - heapStart
        if heapCount > 1 {
            for i in stride(from: heapCount / 2 - 1, through: 0, by: -1) { siftDown(i, heapCount) }
        }
        // Pop the best to the end until the nucleus is complete.
        var size = heapCount
        while size > 0 {
            let best = heap[0]
            cumulative += Double(weights[Int(best)])
            size -= 1
            heap[0] = heap[size]
            heap[size] = best
            siftDown(0, size)
            if cumulative >= target { break }
        }
        // Nucleus: buffer[0..<heapStart] and heap[size..<heapCount]; gather
        // it into candidates in that order (the order is not needed later).
        // Without buckets, buffer is candidates and heapStart is 0, so this
        // is a forward copy with destination below source.
        var kept = 0
        for j in 0..<heapStart {
            candidates[kept] = buffer[j]
            kept += 1
        }
        for j in size..<heapCount {
            candidates[kept] = heap[j]
            kept += 1
        }
        if kept == 0 {
            candidates[0] = firstIndex(of: maxLogit, logits)
            return 1
        }
        return kept
    }

    private func fillLogprobs(_ logits: UnsafeMutablePointer<Float>, maxLogit: Float, into result: inout SampledToken) {
        let n = vocabularySize
        let sum = fillWeights(logits, maxLogit: maxLogit, invT: 1)
        let logZ = Double(maxLogit) + samplingLog(sum)
        @inline(__always) func logprob(_ t: Int32) -> Float {
            Float(Double(logits[Int(t)]) - logZ)
        }
        result.logprob = logprob(result.token)
        let k = min(parameters.topLogprobs, n)
        if k > 0 {
            selectTop(k, logits, into: topBuffer)
            var top: [TokenLogprob] = []
            top.reserveCapacity(k)
            for j in 0..<k { top.append(TokenLogprob(token: topBuffer[j], logprob: logprob(topBuffer[j]))) }
            result.topLogprobs = top
        }
    }
}
