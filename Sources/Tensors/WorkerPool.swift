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
/// each parallel call; the items `0..<count` are split into `threads` contiguous ranges
/// of whole granules, thread t taking the t-th (the split depends only on count,
/// granule and threads, never on timing).
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
        shared.activeWorkers = started.count
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

    /// Runs `job(context, begin, end, thread)` over `0..<count` split in `threads`
    /// ranges of whole `granule`s (the last may be partial); returns when every range
    /// is done. Empty ranges are not called. Allocates nothing.
    public func run(count: Int, granule: Int = 1, context: UnsafeMutableRawPointer?, job: ParallelJob) {
        guard count > 0 else { return }
        let g = max(1, granule)
        let units = (count + g - 1) / g
        let t = min(threads, units)
        if t <= 1 {
            job(context, 0, count, 0)
            return
        }
        shared.callLock()
        defer { shared.callUnlock() }
        shared.slot.pointee = JobSlot(job: job, context: context, count: count, granule: g, threads: t)
        shared.remaining.store(shared.activeWorkers, ordering: .relaxed)
        shared.generation.add(1, ordering: .sequentiallyConsistent)
        if shared.sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            shared.lock()
            pthread_cond_broadcast(shared.wake)
            shared.unlock()
        }
        let r = JobSlot.range(thread: 0, count: count, granule: g, threads: t)
        if r.begin < r.end { job(context, r.begin, r.end, 0) }
        shared.waitForWorkers()
    }

    /// Runs `body(range, thread)` over `0..<count` as `run` does. The closure is not
    /// copied to the heap: it is passed to the workers by address for the duration of the
    /// call. It runs concurrently on several threads: it must only write what its own
    /// range owns.
    public func parallelFor(count: Int, granule: Int = 1, _ body: (Range<Int>, Int) -> Void) {
        withoutActuallyEscaping(body) { escapable in
            withUnsafePointer(to: escapable) { p in
                run(count: count, granule: granule, context: UnsafeMutableRawPointer(mutating: p)) { ctx, b, e, t in
                    guard let ctx else { return }
                    ctx.assumingMemoryBound(to: ((Range<Int>, Int) -> Void).self).pointee(b..<e, t)
                }
            }
        }
    }

    /// The range thread `thread` gets in a call of `count` items with this pool.
    public func range(thread: Int, count: Int, granule: Int = 1) -> Range<Int> {
        let g = max(1, granule)
        let t = min(threads, max(1, (count + g - 1) / g))
        guard thread < t else { return count..<count }
        let r = JobSlot.range(thread: thread, count: count, granule: g, threads: t)
        return r.begin..<r.end
    }
}

struct JobSlot {
    var job: ParallelJob?
    var context: UnsafeMutableRawPointer?
    var count = 0
    var granule = 1
    var threads = 1

    init() {}

    init(job: ParallelJob, context: UnsafeMutableRawPointer?, count: Int, granule: Int, threads: Int) {
        self.job = job
        self.context = context
        self.count = count
        self.granule = granule
        self.threads = threads
    }

    /// Granule units split as evenly as possible: thread i gets units
    /// [units*i/threads, units*(i+1)/threads).
    @inline(__always)
    static func range(thread: Int, count: Int, granule: Int, threads: Int) -> (begin: Int, end: Int) {
        let units = (count + granule - 1) / granule
        let b = min(count, units * thread / threads * granule)
        let e = min(count, units * (thread + 1) / threads * granule)
        return (b, e)
    }
}

/// State shared by the pool and its workers.
///
/// Ordering: the caller writes `slot` and `remaining`, then bumps `generation`
/// (sequentially consistent, so a release); a worker that sees the new generation
/// (acquire) reads `slot`. A worker's `remaining` decrement (acq_rel) publishes its
/// results; the caller reads `remaining == 0` (acquire) before returning. Sleeping uses
/// the Dekker pattern on (`generation`, `sleepers`) and (`remaining`, `callerWaiting`)
/// with every check-then-wait done under `mutex`, so no wake-up is lost.
final class PoolShared: @unchecked Sendable {
    let generation = Atomic<UInt64>(0)
    let remaining = Atomic<Int>(0)
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
    /// Set once in WorkerPool.init before any call.
    var activeWorkers = 0

    init(threads: Int, spinNanoseconds: Int) {
        self.threads = threads
        self.spinNanoseconds = spinNanoseconds
        slot = .allocate(capacity: 1)
        slot.initialize(to: JobSlot())
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
    }

    @inline(__always) func lock() { pthread_mutex_lock(mutex) }
    @inline(__always) func unlock() { pthread_mutex_unlock(mutex) }
    @inline(__always) func callLock() { pthread_mutex_lock(callMutex) }
    @inline(__always) func callUnlock() { pthread_mutex_unlock(callMutex) }

    /// The caller's wait for `remaining == 0`: spin, then sleep.
    func waitForWorkers() {
        if remaining.load(ordering: .acquiring) == 0 { return }
        let deadline = monotonicNanoseconds() &+ UInt64(spinNanoseconds)
        var spins = 0
        while remaining.load(ordering: .acquiring) != 0 {
            spins += 1
            if spins & 255 == 0 && monotonicNanoseconds() > deadline { break }
        }
        if remaining.load(ordering: .acquiring) == 0 { return }
        lock()
        callerWaiting.store(true, ordering: .sequentiallyConsistent)
        while remaining.load(ordering: .sequentiallyConsistent) != 0 {
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
            let s = slot.pointee
            if index < s.threads, let job = s.job {
                let r = JobSlot.range(thread: index, count: s.count, granule: s.granule, threads: s.threads)
                if r.begin < r.end { job(s.context, r.begin, r.end, index) }
            }
            if remaining.subtract(1, ordering: .sequentiallyConsistent).newValue == 0,
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
