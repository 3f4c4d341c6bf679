#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import Tensors

@Suite struct WorkerPoolTests {
    /// Every item is run exactly once, by a valid thread index, whatever the chunking.
    @Test(arguments: [1, 2, 3, 4])
    func everyItemRunsOnce(_ threads: Int) {
        let pool = WorkerPool(threads: threads)
        for count in [1, 2, 7, 64, 1000, 4097] {
            for granule in [1, 3, 16, 5000] {
                let hits = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: count)
                for i in 0..<count { (hits + i).initialize(to: Atomic<Int>(0)) }
                let badThread = Atomic<Int>(0)
                pool.parallelFor(count: count, granule: granule) { range, t in
                    if t < 0 || t >= pool.threads { badThread.add(1, ordering: .relaxed) }
                    for i in range { hits[i].add(1, ordering: .relaxed) }
                }
                var wrong = 0
                for i in 0..<count where hits[i].load(ordering: .relaxed) != 1 { wrong += 1 }
                #expect(wrong == 0, "threads \(threads) count \(count) granule \(granule): \(wrong) items not run once")
                #expect(badThread.load(ordering: .relaxed) == 0)
                hits.deinitialize(count: count)
                hits.deallocate()
            }
        }
    }

    /// Back-to-back calls (the decode pattern) with workers that sleep in between.
    @Test func manyCallsWithIdleGaps() {
        let pool = WorkerPool(threads: 3, spinMicroseconds: 10)
        let total = Atomic<Int>(0)
        for call in 0..<500 {
            if call % 100 == 99 { usleep(2000) } // workers fall asleep
            pool.parallelFor(count: 96, granule: 4) { range, _ in total.add(range.count, ordering: .relaxed) }
        }
        #expect(total.load(ordering: .relaxed) == 500 * 96)
    }
}
