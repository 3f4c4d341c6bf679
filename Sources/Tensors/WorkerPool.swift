#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// A job of a parallel call: `(context, begin, end, thread)` computes items
/// `begin..<end`; `thread` is 0 for the calling thread, 1..<threads for the workers.
public typealias ParallelJob = @convention(c) (UnsafeMutableRawPointer?, Int, Int, Int) -> Void

/// Persistent compute threads. `threads - 1` pthreads plus the calling thread share
/// each parallel call. The items `0..<count` are cut into chunks of whole granules that
/// the threads claim from an atomic counter; the caller works too, and a worker that is
/// not scheduled in time (another process holds its CPU) simply finds no chunk left, so
/// a busy CPU slows a call down instead of stalling it. Which thread runs which chunk
/// depends on timing: a job's result for an item must not depend on the chunk it lands
/// in (the kernels guarantee this: a row's value does not depend on the row split).
///
/// Idle workers spin for `spinMicroseconds` after a call (so back-to-back calls of a
/// decode step do not pay a wake-up), then block on a condition variable: an idle pool
/// uses no CPU.
///
/// A parallel call allocates nothing: the job is a C function pointer plus a context
/// pointer stored in a preallocated slot; `parallelFor` passes a non-escaping closure
/// the same way, by address.
///
/// Calls from several threads are serialized. A job must not call into the same pool
/// (that would deadlock).
///
/// `@unchecked Sendable`: every mutable field lives in `PoolShared`, whose atomics and
/// mutex order all accesses (see there); the thread handles are written in init and read
/// in deinit only.
public final class WorkerPool: @unchecked Sendable {
    /// Threads taking part in a call, the caller included.
    public let threads: Int
    private let shared: PoolShared
    private var handles: [pthread_t] = []

    /// A pool of `threads` threads (the caller counts as one); nil means
    /// `SystemCPU.usableCount`. `spinMicroseconds` is how long idle threads poll for the
    /// next call before they sleep.
    public init(threads: Int? = nil, spinMicroseconds: Int = 100) {
        let n = max(1, threads ?? SystemCPU.usableCount)
        self.shared = PoolShared(threads: n, spinNanoseconds: max(0, spinMicroseconds) * 1000)
        var started: [pthread_t] = []
        for index in 1..<max(n, 1) {
            let box = Unmanaged.passRetained(WorkerStart(shared: shared, index: index)).toOpaque()
            var handle = pthread_t()
            if pthread_create(&handle, nil, workerEntry, box) == 0 {
                started.append(handle)
            } else {
                Unmanaged<WorkerStart>.fromOpaque(box).release()
                break
            }
        }
        // If the system refused threads, the pool works with what it got.
        self.threads = started.count + 1
        self.handles = started
    }

    deinit {
        shared.shutdown.store(true, ordering: .sequentiallyConsistent)
        shared.generation.add(1, ordering: .sequentiallyConsistent)
        shared.lock()
        pthread_cond_broadcast(shared.wake)
        shared.unlock()
        for h in handles { pthread_join(h, nil) }
    }

    /// Runs `job(context, begin, end, thread)` over `0..<count` in chunks of whole
    /// `granule`s (the last may be partial); returns when every chunk is done. A thread
    /// may run several chunks, one after another; `thread` identifies it (0 = caller) so
    /// a job can use per-thread scratch. Allocates nothing.
    public func run(count: Int, granule: Int = 1, context: UnsafeMutableRawPointer?, job: ParallelJob) {
        guard count > 0 else { return }
        let g = max(1, granule)
        let units = (count + g - 1) / g
        if threads <= 1 || units <= 1 {
            job(context, 0, count, 0)
            return
        }
        shared.callLock()
        defer { shared.callUnlock() }
        // Each thread owns a contiguous share (its reads stay sequential) taken in
        // chunks, and steals chunks from the others' shares once its own is done.
        let chunk = max(1, units / (threads * 8))
        shared.slot.pointee = JobSlot(job: job, context: context, count: count, granule: g, units: units,
                                      chunkUnits: chunk)
        for t in 0..<threads { shared.next[t].store(units * t / threads, ordering: .relaxed) }
        shared.open.store(true, ordering: .sequentiallyConsistent)
        shared.generation.add(1, ordering: .sequentiallyConsistent)
        if shared.sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            shared.lock()
            pthread_cond_broadcast(shared.wake)
            shared.unlock()
        }
        shared.runChunks(shared.slot.pointee, thread: 0)
        shared.open.store(false, ordering: .sequentiallyConsistent)
        shared.waitForWorkers()
    }

    /// Runs `body(range, thread)` over `0..<count` as `run` does. The closure is not
    /// copied to the heap: it is passed to the workers by address for the duration of the
    /// call. It runs concurrently on several threads: it must only write what its own
    /// range owns.
    /// One heap allocation per call (withoutActuallyEscaping's wrapper of the closure,
    /// measured with Swift 6.3 on Linux): the decode step calls `run` with a context instead.
    /// The closure travels inside a struct: handing the bare function value to a generic
    /// (`withUnsafePointer(to:)`) reabstracts it through a second heap-allocated thunk.
    public func parallelFor(count: Int, granule: Int = 1, _ body: (Range<Int>, Int) -> Void) {
        withoutActuallyEscaping(body) { escapable in
            var boxed = ParallelBody(body: escapable)
            withUnsafeMutablePointer(to: &boxed) { p in
                run(count: count, granule: granule, context: UnsafeMutableRawPointer(p)) { ctx, b, e, t in
                    guard let ctx else { return }
                    ctx.assumingMemoryBound(to: ParallelBody.self).pointee.body(b..<e, t)
                }
            }
        }
    }
}

/// `parallelFor`'s closure, stored at its own (non-generic) abstraction.
private struct ParallelBody {
    let body: (Range<Int>, Int) -> Void
}

struct JobSlot {
    var job: ParallelJob?
    var context: UnsafeMutableRawPointer?
    var count = 0
    var granule = 1
    var units = 0
    var chunkUnits = 1

    init() {}

    init(job: ParallelJob, context: UnsafeMutableRawPointer?, count: Int, granule: Int, units: Int, chunkUnits: Int) {
        self.job = job
        self.context = context
        self.count = count
        self.granule = granule
        self.units = units
        self.chunkUnits = chunkUnits
    }
}

/// State shared by the pool and its workers.
///
/// Ordering: the caller writes `slot` and resets `next`, then sets `open` and bumps
/// `generation` (sequentially consistent). A worker that sees a new generation first
/// increments `active`, then reads `open`: if it is set, `slot` is complete and the
/// worker claims chunks until every share is taken. When the caller has run out of
/// chunks it clears `open` and waits for `active == 0`. In the single total order of
/// these operations a worker either incremented `active` before the caller cleared
/// `open` (the caller then waits for it) or it sees `open` cleared and touches nothing,
/// so no worker runs a job whose caller has returned. The decrement of `active`
/// publishes a worker's results. Sleeping uses the Dekker pattern on (`generation`,
/// `sleepers`) and (`active`, `callerWaiting`) with every check-then-wait done under
/// `mutex`, so no wake-up is lost.
final class PoolShared: @unchecked Sendable {
    let generation = Atomic<UInt64>(0)
    /// Per thread: the next unit of its share (shares: units * t / threads ..< units * (t + 1) / threads).
    let next: UnsafeMutablePointer<Atomic<Int>>
    let active = Atomic<Int>(0)
    let open = Atomic<Bool>(false)
    let sleepers = Atomic<Int>(0)
    let callerWaiting = Atomic<Bool>(false)
    let shutdown = Atomic<Bool>(false)
    let slot: UnsafeMutablePointer<JobSlot>
    let mutex: UnsafeMutablePointer<pthread_mutex_t>
    let callMutex: UnsafeMutablePointer<pthread_mutex_t>
    let wake: UnsafeMutablePointer<pthread_cond_t>
    let done: UnsafeMutablePointer<pthread_cond_t>
    let threads: Int
    let spinNanoseconds: Int

    init(threads: Int, spinNanoseconds: Int) {
        self.threads = threads
        self.spinNanoseconds = spinNanoseconds
        slot = .allocate(capacity: 1)
        slot.initialize(to: JobSlot())
        next = .allocate(capacity: threads)
        for t in 0..<threads { (next + t).initialize(to: Atomic<Int>(0)) }
        mutex = .allocate(capacity: 1)
        callMutex = .allocate(capacity: 1)
        wake = .allocate(capacity: 1)
        done = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_mutex_init(callMutex, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(done, nil)
    }

    deinit {
        pthread_cond_destroy(done)
        pthread_cond_destroy(wake)
        pthread_mutex_destroy(callMutex)
        pthread_mutex_destroy(mutex)
        done.deallocate()
        wake.deallocate()
        callMutex.deallocate()
        mutex.deallocate()
        slot.deinitialize(count: 1)
        slot.deallocate()
        next.deinitialize(count: threads)
        next.deallocate()
    }

    @inline(__always) func lock() { pthread_mutex_lock(mutex) }
    @inline(__always) func unlock() { pthread_mutex_unlock(mutex) }
    @inline(__always) func callLock() { pthread_mutex_lock(callMutex) }
    @inline(__always) func callUnlock() { pthread_mutex_unlock(callMutex) }

    /// Claims chunks of the current job until none is left: first from this thread's
    /// own share, then from the others'.
    @inline(__always)
    func runChunks(_ s: JobSlot, thread: Int) {
        guard let job = s.job else { return }
        for i in 0..<threads {
            let owner = (thread + i) % threads
            let end = s.units * (owner + 1) / threads
            while true {
                let u = next[owner].add(s.chunkUnits, ordering: .relaxed).oldValue
                if u >= end { break }
                let b = u * s.granule
                let e = min(s.count, min(u + s.chunkUnits, end) * s.granule)
                job(s.context, b, e, thread)
            }
        }
    }

    /// The caller's wait for `active == 0`: spin, then sleep.
    func waitForWorkers() {
        if active.load(ordering: .sequentiallyConsistent) == 0 { return }
        let deadline = monotonicNanoseconds() &+ UInt64(spinNanoseconds)
        var spins = 0
        while active.load(ordering: .sequentiallyConsistent) != 0 {
            spins += 1
            if spins & 255 == 0 && monotonicNanoseconds() > deadline { break }
        }
        if active.load(ordering: .sequentiallyConsistent) == 0 { return }
        lock()
        callerWaiting.store(true, ordering: .sequentiallyConsistent)
        while active.load(ordering: .sequentiallyConsistent) != 0 {
            pthread_cond_wait(done, mutex)
        }
        callerWaiting.store(false, ordering: .relaxed)
        unlock()
    }

    /// A worker's main loop.
    func workerLoop(index: Int) {
        var seen: UInt64 = 0
        while true {
            var gen = generation.load(ordering: .acquiring)
            if gen == seen {
                let deadline = monotonicNanoseconds() &+ UInt64(spinNanoseconds)
                var spins = 0
                while gen == seen {
                    spins += 1
                    if spins & 255 == 0 && monotonicNanoseconds() > deadline { break }
                    gen = generation.load(ordering: .acquiring)
                }
                if gen == seen {
                    lock()
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    gen = generation.load(ordering: .sequentiallyConsistent)
                    while gen == seen {
                        pthread_cond_wait(wake, mutex)
                        gen = generation.load(ordering: .sequentiallyConsistent)
                    }
                    sleepers.subtract(1, ordering: .relaxed)
                    unlock()
                }
            }
            seen = gen
            if shutdown.load(ordering: .acquiring) { return }
            active.add(1, ordering: .sequentiallyConsistent)
            if open.load(ordering: .sequentiallyConsistent) {
                runChunks(slot.pointee, thread: index)
            }
            if active.subtract(1, ordering: .sequentiallyConsistent).newValue == 0,
               callerWaiting.load(ordering: .sequentiallyConsistent) {
                lock()
                pthread_cond_signal(done)
                unlock()
            }
        }
    }
}

private final class WorkerStart {
    let shared: PoolShared
    let index: Int
    init(shared: PoolShared, index: Int) {
        self.shared = shared
        self.index = index
    }
}

private func workerEntry(_ arg: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    guard let arg else { return nil }
    let start = Unmanaged<WorkerStart>.fromOpaque(arg).takeRetainedValue()
    start.shared.workerLoop(index: start.index)
    return nil
}

@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}
