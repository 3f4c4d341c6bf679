import Foundation
import Testing

@testable import Models

/// The expert buffer pool on a file of random bytes: whatever is acquired reads exactly the
/// file's bytes, reads are whole slices and counted once, the budget bounds the slots, and
/// read failures are errors, not crashes.
@Suite struct ExpertStoreTests {
    /// A temporary file of random bytes and [layer][expert] slices at unaligned offsets:
    /// three slices (gate, up, down) per expert, as in a GGUF's 3-D expert tensors.
    final class Fixture: @unchecked Sendable {
        let path: String
        let bytes: [UInt8]
        let mapped: UnsafeMutableRawBufferPointer
        let layers: [[ExpertSlices]]

        init(layers nLayers: Int, experts: Int, sliceBytes: Int, seed: UInt64) throws {
            var rng = SplitMix(seed)
            let header = 1234
            var layers: [[ExpertSlices]] = []
            var offset = header
            for _ in 0..<nLayers {
                var tensors: [Int] = []
                for _ in 0..<3 {
                    tensors.append(offset)
                    offset += experts * sliceBytes + 96 // other tensors between
                }
                layers.append((0..<experts).map { e in
                    ExpertSlices(ranges: tensors.map { ($0 + e * sliceBytes)..<($0 + (e + 1) * sliceBytes) })
                })
            }
            let bytes = (0..<offset).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            self.bytes = bytes
            path = NSTemporaryDirectory() + "roost-experts-\(seed)-\(getpid())-\(UUID().uuidString).bin"
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let mapped = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 64)
            bytes.withUnsafeBytes { mapped.copyMemory(from: $0) }
            self.mapped = mapped
            self.layers = layers
        }

        deinit {
            mapped.deallocate()
            unlink(path)
        }

        func store(budget: Int?, minimumSlots: Int = 1) throws -> ExpertStore {
            try ExpertStore(path: path, mapped: UnsafeRawBufferPointer(mapped), layers: layers,
                            budgetBytes: budget, minimumSlots: minimumSlots)
        }

        /// Acquires `experts` of `layer` and checks every slice against the file.
        func check(_ store: ExpertStore, layer: Int, experts: [Int32]) throws {
            let per = layers[layer][0].ranges.count
            var out = [UnsafeRawPointer](repeating: UnsafeRawPointer(bitPattern: 1)!, count: experts.count * per)
            try experts.withUnsafeBufferPointer { e in
                try out.withUnsafeMutableBufferPointer { o in
                    try store.acquire(layer: layer, experts: e, into: o.baseAddress!)
                }
            }
            for (i, e) in experts.enumerated() {
                for (j, r) in layers[layer][Int(e)].ranges.enumerated() {
                    let got = UnsafeRawBufferPointer(start: out[i * per + j], count: r.count)
                    #expect(got.elementsEqual(bytes[r]), "layer \(layer) expert \(e) slice \(j)")
                }
            }
            store.release(layer: layer)
        }
    }

    struct SplitMix {
        var state: UInt64
        init(_ seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test func budgetedReadsAreExactAndCountedOnce() throws {
        let f = try Fixture(layers: 3, experts: 8, sliceBytes: 5000, seed: 1)
        let slot = try f.store(budget: nil).slotBytes
        let store = try f.store(budget: 5 * slot + 100)
        #expect(store.slotCount == 5)
        var rng = SplitMix(7)
        for _ in 0..<60 {
            for layer in 0..<3 {
                let a = Int32(rng.next() % 8)
                var b = Int32(rng.next() % 8)
                if b == a { b = (a + 1) % 8 }
                if rng.next() % 2 == 0 {
                    let next = [Int32(rng.next() % 8)]
                    next.withUnsafeBufferPointer { store.prefetch(layer: (layer + 1) % 3, experts: $0) }
                }
                try f.check(store, layer: layer, experts: [a, b])
            }
            store.endToken()
        }
        let s = store.stats
        #expect(s.tokens == 60)
        #expect(s.total.requests == 60 * 3 * 2)
        #expect(s.total.misses > 0 && s.total.hits > 0)
        // Each read is one expert's slices, padded to the I/O alignment: nothing more.
        let reads = s.total.misses + s.total.prefetched
        let expert = f.layers[0][0].byteCount
        #expect(s.total.bytesRead >= reads * expert)
        #expect(s.total.bytesRead <= reads * (expert + 3 * 2 * ExpertStore.alignment))
        #expect(s.total.residentBytes <= 5 * f.layers[0][0].byteCount)
    }

    /// A prefetch that runs out of slots part way still starts the reads it queued: an
    /// `acquire` that then asks only for experts already on their way (no read of its own
    /// to wake the I/O threads) gets them. The reads are checked from a second thread, so a
    /// lost wake-up fails the test instead of hanging it.
    @Test func aPrefetchCutShortByFullSlotsStillReads() throws {
        let f = try Fixture(layers: 2, experts: 6, sliceBytes: 3000, seed: 4)
        let store = try f.store(budget: 3 * f.store(budget: nil).slotBytes)
        // Layer 0 pins two of the three slots, so the prefetch of layer 1 gets one slot for
        // expert 5 and none for 4 or 3.
        let per = f.layers[0][0].ranges.count
        var out = [UnsafeRawPointer](repeating: UnsafeRawPointer(bitPattern: 1)!, count: 2 * per)
        try [Int32(0), 1].withUnsafeBufferPointer { e in
            try out.withUnsafeMutableBufferPointer { try store.acquire(layer: 0, experts: e, into: $0.baseAddress!) }
        }
        [Int32(5), 4, 3].withUnsafeBufferPointer { store.prefetch(layer: 1, experts: $0) }
        store.release(layer: 0)
        let done = DispatchSemaphore(value: 0)
        let checker = Thread {
            try? f.check(store, layer: 1, experts: [5])
            done.signal()
        }
        checker.start()
        #expect(done.wait(timeout: .now() + 20) == .success, "acquire of a prefetched expert never returned")
        #expect(store.stats.layers[1].prefetched == 1)
        #expect(store.stats.layers[1].prefetchUsed == 1)
    }

    /// A store that is no longer used goes away with its I/O threads and buffer pool (a
    /// model unloaded by the daemon must give its budget back), also after reads.
    @Test func anUnusedStoreIsFreed() throws {
        let f = try Fixture(layers: 2, experts: 4, sliceBytes: 3000, seed: 5)
        weak var gone: ExpertStore?
        do {
            let store = try f.store(budget: 2 * f.store(budget: nil).slotBytes)
            try f.check(store, layer: 0, experts: [1, 2])
            [Int32(3)].withUnsafeBufferPointer { store.prefetch(layer: 1, experts: $0) }
            try f.check(store, layer: 1, experts: [0])
            gone = store
        }
        #expect(gone == nil, "the store outlived its last reference")
    }

    @Test func frequentExpertsStayResident() throws {
        let f = try Fixture(layers: 1, experts: 16, sliceBytes: 4096, seed: 2)
        let store = try f.store(budget: 4 * f.store(budget: nil).slotBytes)
        var rng = SplitMix(3)
        for _ in 0..<200 {
            // Expert 0 is chosen every token, the other one at random.
            try f.check(store, layer: 0, experts: [0, Int32(1 + rng.next() % 15)])
            store.endToken()
        }
        let s = store.stats.total
        // Expert 0 misses once; the random one hits about 3 of 15 times.
        #expect(s.misses <= 1 + 200 * 13 / 15 + 20)
        #expect(s.hits >= 199)
    }

    /// An expert used every fourth token among a stream of one-off ones: frequency with decay
    /// keeps it, least-recently-used evicts it between uses. Both read exact bytes.
    @Test func frequencyKeepsARecurringExpertThatLRUEvicts() throws {
        let f = try Fixture(layers: 1, experts: 16, sliceBytes: 4096, seed: 6)
        let slot = try f.store(budget: nil).slotBytes
        var hitsOfHot: [ExpertEvictionPolicy: Int] = [:]
        for policy in ExpertEvictionPolicy.allCases {
            let store = try ExpertStore(path: f.path, mapped: UnsafeRawBufferPointer(f.mapped), layers: f.layers,
                                        budgetBytes: 3 * slot, policy: policy)
            #expect(store.policy == policy)
            var rng = SplitMix(9)
            var hot = 0
            for t in 0..<200 {
                let other = Int32(1 + rng.next() % 15)
                if t % 4 == 0 {
                    let before = store.stats.total.hits
                    try f.check(store, layer: 0, experts: [0])
                    hot += store.stats.total.hits - before
                }
                try f.check(store, layer: 0, experts: [other])
                store.endToken()
            }
            hitsOfHot[policy] = hot
        }
        // 50 uses of the hot expert: kept almost always by frequency, rarely by LRU.
        #expect(hitsOfHot[.frequency]! >= 45, "\(hitsOfHot)")
        #expect(hitsOfHot[.lru]! < hitsOfHot[.frequency]!, "\(hitsOfHot)")
    }

    /// Reads ahead that the router then does not choose must not crowd out the experts in
    /// use: each token mispredicts two new experts, and the three in use stay resident.
    @Test func mispredictedPrefetchesDoNotPileUp() throws {
        let f = try Fixture(layers: 1, experts: 12, sliceBytes: 4096, seed: 14)
        let store = try f.store(budget: 5 * f.store(budget: nil).slotBytes)
        var wrong = Int32(3)
        for _ in 0..<100 {
            let guess = [wrong, wrong + 1]
            wrong = wrong == 9 ? 3 : wrong + 2
            guess.withUnsafeBufferPointer { store.prefetch(layer: 0, experts: $0) }
            try f.check(store, layer: 0, experts: [0, 1, 2])
            store.endToken()
        }
        let s = store.stats.total
        #expect(s.prefetchUsed == 0)
        // The three in use miss once each at the start, and rarely after.
        #expect(s.hits >= 290, "hits \(s.hits), misses \(s.misses)")
    }

    /// Reads ahead stop for a layer whose guesses are mostly wrong (a wasted read costs disk
    /// time a demand read needs) and go on where they are right.
    @Test func readsAheadFollowHowGoodTheGuessesAre() throws {
        let f = try Fixture(layers: 2, experts: 12, sliceBytes: 4096, seed: 15)
        let store = try f.store(budget: 6 * f.store(budget: nil).slotBytes)
        var wrong = Int32(3)
        for t in 0..<100 {
            // Layer 0: two new wrong guesses a token. Layer 1: the one expert it then uses,
            // one not resident (a cycle longer than the slots).
            let guess = [wrong, wrong + 1]
            wrong = wrong == 9 ? 3 : wrong + 2
            guess.withUnsafeBufferPointer { store.prefetch(layer: 0, experts: $0) }
            try f.check(store, layer: 0, experts: [0, 1])
            let next = [Int32(t % 12)]
            next.withUnsafeBufferPointer { store.prefetch(layer: 1, experts: $0) }
            try f.check(store, layer: 1, experts: next)
            store.endToken()
        }
        let s = store.stats.layers
        #expect(s[0].prefetched <= 10, "layer 0 read \(s[0].prefetched) wrong guesses")
        #expect(s[1].prefetched >= 80 && s[1].prefetchUsed == s[1].prefetched, "\(s[1])")
    }

    /// The threshold bounds it: 0 reads every guess, above 1 none.
    @Test func thePrefetchThresholdBoundsReadsAhead() throws {
        let f = try Fixture(layers: 1, experts: 12, sliceBytes: 4096, seed: 16)
        let slot = try f.store(budget: nil).slotBytes
        var prefetched: [Double: Int] = [:]
        for threshold in [0.0, 2.0] {
            let store = try ExpertStore(path: f.path, mapped: UnsafeRawBufferPointer(f.mapped), layers: f.layers,
                                        budgetBytes: 5 * slot, prefetchThreshold: threshold)
            #expect(store.prefetchThreshold == threshold)
            var wrong = Int32(3)
            for _ in 0..<40 {
                let guess = [wrong, wrong + 1]
                wrong = wrong == 9 ? 3 : wrong + 2
                guess.withUnsafeBufferPointer { store.prefetch(layer: 0, experts: $0) }
                try f.check(store, layer: 0, experts: [0, 1])
                store.endToken()
            }
            prefetched[threshold] = store.stats.total.prefetched
        }
        #expect(prefetched[0.0]! >= 25, "\(prefetched)")
        #expect(prefetched[2.0]! == 0, "\(prefetched)")
    }

    @Test func withoutBudgetExpertsComeFromTheMapping() throws {
        let f = try Fixture(layers: 2, experts: 4, sliceBytes: 1000, seed: 4)
        let store = try f.store(budget: nil)
        #expect(!store.isBudgeted)
        try f.check(store, layer: 1, experts: [3, 0])
        #expect(store.stats.total.bytesRead == 0)
        #expect(store.stats.total.hits == 2)
    }

    @Test func tooSmallABudgetIsRefused() throws {
        let f = try Fixture(layers: 1, experts: 4, sliceBytes: 4096, seed: 5)
        #expect(throws: ModelError.self) { try f.store(budget: 1000) }
        let padded = try f.store(budget: nil).slotBytes
        #expect(throws: ModelError.self) { try f.store(budget: 3 * padded, minimumSlots: 4) }
        _ = try f.store(budget: 4 * padded, minimumSlots: 4)
    }

    @Test func aTruncatedFileIsAnErrorAndTheStoreGoesOn() throws {
        let f = try Fixture(layers: 2, experts: 4, sliceBytes: 8192, seed: 6)
        let store = try f.store(budget: 4 * 3 * 8192 + 4 * 4096 * 3)
        try f.check(store, layer: 0, experts: [1])
        // Cut the file in the middle of layer 1's experts.
        #expect(truncate(f.path, off_t(f.layers[1][0].ranges[1].lowerBound)) == 0)
        #expect(throws: ModelError.self) { try f.check(store, layer: 1, experts: [2]) }
        // What is resident still works; a read of layer 0 still works.
        try f.check(store, layer: 0, experts: [1, 3])
    }
}
