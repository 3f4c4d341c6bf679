import GGUF

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where one routed expert's weights are in the model file: its slice of each expert
/// tensor of its layer (gate, up, down; each slice one contiguous byte range).
public struct ExpertSlices: Sendable, Equatable {
    /// Absolute byte ranges in the file, in the order `ExpertStore.acquire` returns them.
    public var ranges: [Range<Int>]

    public init(ranges: [Range<Int>]) { self.ranges = ranges }

    public var byteCount: Int { ranges.reduce(0) { $0 + $1.count } }
}

/// Which resident, unpinned expert makes room when a read needs a slot.
public enum ExpertEvictionPolicy: String, Sendable, CaseIterable {
    /// The lowest use count, each use decayed by 0.9 per token since (frequency with decay).
    case frequency
    /// The least recently used.
    case lru
}

/// How a budgeted expert store chooses what to keep and what to read ahead.
public struct ExpertStoreOptions: Sendable, Equatable {
    public var policy: ExpertEvictionPolicy
    /// A layer's guesses are read ahead while at least this share of its recent guesses were
    /// then chosen (0: always; above 1: never).
    public var prefetchThreshold: Double

    public init(policy: ExpertEvictionPolicy = .frequency,
                prefetchThreshold: Double = ExpertStore.defaultPrefetchThreshold) {
        self.policy = policy
        self.prefetchThreshold = prefetchThreshold
    }
}

/// Counters of one layer's experts (or of all layers summed).
public struct ExpertLayerStats: Sendable, Equatable {
    /// Experts the router chose that were resident without a read for this use.
    public var hits = 0
    /// Experts that had to be read on demand.
    public var misses = 0
    /// Experts read ahead of the router's choice, and those of them that it then chose
    /// (each such use is a read, counted here and not as a hit).
    public var prefetched = 0
    public var prefetchUsed = 0
    /// Bytes read from the file (whole slices, rounded to the I/O alignment).
    public var bytesRead = 0
    /// Seconds the compute thread waited for experts.
    public var stallSeconds = 0.0
    /// Bytes of this layer's experts resident now.
    public var residentBytes = 0

    public init() {}

    /// Every expert the router chose: served from memory, read on demand, or read ahead.
    public var requests: Int { hits + misses + prefetchUsed }
    /// Fraction of the chosen experts that needed no read: disk bytes per token are about
    /// (1 - hitRate) x the routed experts' bytes, plus the prefetches the router did not use.
    public var hitRate: Double { requests == 0 ? 1 : Double(hits) / Double(requests) }
    /// Reads ahead that the router did not then choose (wasted reads).
    public var prefetchWasted: Int { prefetched - prefetchUsed }
    public var prefetchAccuracy: Double { prefetched == 0 ? 0 : Double(prefetchUsed) / Double(prefetched) }

    static func + (a: ExpertLayerStats, b: ExpertLayerStats) -> ExpertLayerStats {
        var s = a
        s.hits += b.hits
        s.misses += b.misses
        s.prefetched += b.prefetched
        s.prefetchUsed += b.prefetchUsed
        s.bytesRead += b.bytesRead
        s.stallSeconds += b.stallSeconds
        s.residentBytes += b.residentBytes
        return s
    }
}

/// A snapshot of an `ExpertStore`'s counters.
public struct ExpertStoreStats: Sendable, Equatable {
    public var layers: [ExpertLayerStats]
    /// Bytes of expert memory the store may use (0: every expert is read from the mapping).
    public var budgetBytes: Int
    /// Slots of the buffer pool (one expert each).
    public var slots: Int
    /// Tokens counted by `endToken()`.
    public var tokens: Int
    /// Bytes of one slot (the largest expert, slices padded to the I/O alignment).
    public var slotBytes = 0
    /// Routed experts of each layer (0 for a layer without them).
    public var expertsPerLayer: [Int] = []

    /// Bytes of the buffer pool: every slot, resident or not.
    public var poolBytes: Int { slots * slotBytes }
    /// The layers with routed experts (a dense layer has no counters to show), by index.
    public var routedLayers: [(index: Int, stats: ExpertLayerStats)] {
        layers.enumerated().compactMap { i, l in i < expertsPerLayer.count && expertsPerLayer[i] > 0 ? (i, l) : nil }
    }
    public var total: ExpertLayerStats { layers.reduce(ExpertLayerStats(), +) }
}

/// Keeps the routed experts of an MoE model in a buffer pool of fixed-size slots inside a
/// memory budget, reading each expert's slices from the file (O_DIRECT, so the page cache
/// holds no second copy) on I/O threads when the router chooses it or when a prediction
/// asks for it ahead of time. Evicts the expert with the lowest use frequency (decayed
/// per token) that is not in use.
///
/// Without a budget (`budgetBytes` nil) every expert is used straight from the file's
/// memory mapping and only the counters work.
///
/// Protocol for the compute thread: per MoE layer, `acquire` the chosen experts (blocks
/// until they are resident; they stay pinned), compute, `release(layer:)`; `prefetch` may
/// be called at any time; `endToken()` after each token (or batch step).
///
/// The state and the I/O threads live in a core object; when the store goes away the
/// threads are stopped and the pool is unmapped.
public final class ExpertStore: @unchecked Sendable {
    static let alignment = 4096
    /// Linux's O_DIRECT (not exported by Glibc's Swift overlay): 0o40000 on x86-64,
    /// 0o200000 on AArch64.
    #if arch(arm64)
    static let oDirect: Int32 = 0o200000
    #else
    static let oDirect: Int32 = 0o40000
    #endif

    static func paddedLength(_ r: Range<Int>, _ a: Int) -> Int {
        let start = r.lowerBound / a * a
        let end = (r.upperBound + a - 1) / a * a
        return end - start
    }

    let core: ExpertStoreCore

    /// - Parameters:
    ///   - mapped: the whole file, memory-mapped (used without a budget, and for checks).
    ///   - layers: [layer][expert] slices; layers without routed experts have none.
    ///   - budgetBytes: bytes for the buffer pool; nil keeps every expert in the mapping.
    ///     A budget below one layer's top-k experts cannot make progress: `minimumSlots`
    ///     slots are required.
    ///   - policy: which resident expert makes room for a read.
    ///   - prefetchThreshold: a layer's guesses of its next experts are read ahead while at
    ///     least this share of its recent guesses were then chosen (0: always; above 1: never).
    public init(path: String, mapped: UnsafeRawBufferPointer, layers: [[ExpertSlices]], budgetBytes: Int?,
                minimumSlots: Int = 1, ioThreads: Int = 2, policy: ExpertEvictionPolicy = .frequency,
                decay: Double = 0.9, prefetchThreshold: Double = ExpertStore.defaultPrefetchThreshold) throws(ModelError) {
        core = try ExpertStoreCore(path: path, mapped: mapped, layers: layers, budgetBytes: budgetBytes,
                                   minimumSlots: minimumSlots, ioThreads: ioThreads, policy: policy, decay: decay,
                                   prefetchThreshold: prefetchThreshold)
    }

    /// Below this share of right guesses a read ahead costs more disk time than it saves
    /// (measured on OLMoE-shaped models: docs/PERFORMANCE.md).
    public static let defaultPrefetchThreshold = 0.8

    deinit { core.stop() }

    public var path: String { core.path }
    public var layers: [[ExpertSlices]] { core.layers }
    public var budgetBytes: Int? { core.budgetBytes }
    /// Bytes one slot holds: the largest expert, each slice padded to the I/O alignment.
    public var slotBytes: Int { core.slotBytes }
    public var slotCount: Int { core.slotCount }
    /// Frequency decay per token (score = sum over uses of decay^(age in tokens)).
    public var decay: Double { core.decay }
    public var policy: ExpertEvictionPolicy { core.policy }
    public var prefetchThreshold: Double { core.prefetchThreshold }
    /// True when experts live in the buffer pool (a budget was given).
    public var isBudgeted: Bool { core.isBudgeted }
    /// A snapshot of the counters.
    public var stats: ExpertStoreStats { core.stats }

    /// Makes `experts` of `layer` resident and writes, for each, the address of each of its
    /// slices (`ranges.count` per expert, expert after expert) to `out`. Blocks until all
    /// are resident; they stay pinned until `release(layer:)`. An expert listed twice is
    /// pinned twice. Throws when a read failed (the expert is read again next time).
    public func acquire(layer: Int, experts: UnsafeBufferPointer<Int32>,
                        into out: UnsafeMutablePointer<UnsafeRawPointer>) throws(ModelError) {
        try core.acquire(layer: layer, experts: experts, into: out)
    }

    /// Unpins every expert of `layer` pinned by `acquire`.
    public func release(layer: Int) { core.release(layer: layer) }

    /// Starts reading `experts` of `layer` if they are not resident, into free slots or
    /// slots of experts not used in this token or the one before (never pinned ones).
    /// Returns at once.
    public func prefetch(layer: Int, experts: UnsafeBufferPointer<Int32>) { core.prefetch(layer: layer, experts: experts) }

    /// Marks the end of `count` tokens (a chunk, or a batched step's sequences): use
    /// frequencies age by `decay` per token.
    public func endToken(count: Int = 1) { core.endToken(count: count) }
}

/// The state, buffer pool and I/O threads of an `ExpertStore`.
final class ExpertStoreCore: @unchecked Sendable {
    let path: String
    let layers: [[ExpertSlices]]
    let budgetBytes: Int?
    let slotBytes: Int
    let slotCount: Int
    let decay: Double
    let policy: ExpertEvictionPolicy

    private let mapped: UnsafeRawBufferPointer
    private let pool: UnsafeMutableRawPointer?
    private let poolBytes: Int
    private var fd: Int32 = -1
    private var direct = false

    // Guarded by mutex:
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var entries: [[Entry]]          // [layer][expert]
    private var slots: [Slot]
    private var freeSlots: [Int]
    private var jobs: [Job] = []            // FIFO; demand reads go first
    private var stopping = false
    private var token = 0
    private var uses = 0
    /// Per layer: prefetches issued since the layer was last acquired.
    private var prefetchedFor: [Int]
    /// Per layer: how often a guess for the layer (read ahead or not) was then chosen,
    /// averaged over recent guesses. Reads ahead run while it is at least `prefetchThreshold`.
    private var guessAccuracy: [Double]
    /// Below this accuracy a layer's guesses are not read (0: always read ahead; above 1:
    /// never).
    let prefetchThreshold: Double
    private var statsByLayer: [ExpertLayerStats]
    private var threads: [pthread_t] = []

    private enum Residency: Equatable {
        case absent
        case loading(slot: Int)
        case resident(slot: Int)
        case failed(errno: Int32)
    }

    private struct Entry {
        var residency: Residency = .absent
        /// Decayed use count as of `scoreToken`.
        var score = 0.0
        var scoreToken = 0
        /// When last used, counted in uses of any expert (for `.lru`).
        var lastUse = 0
        /// Read ahead and not used yet.
        var prefetchPending = false
        /// Guessed for the next acquire of its layer but not read (reads ahead were off for
        /// the layer): kept only to measure how good the guesses are.
        var guessed = false
    }

    private struct Slot {
        var layer = -1
        var expert = -1
        var pins = 0
    }

    private struct Job {
        let layer: Int
        let expert: Int
        let slot: Int
    }

    /// See `ExpertStore.init`.
    init(path: String, mapped: UnsafeRawBufferPointer, layers: [[ExpertSlices]], budgetBytes: Int?,
         minimumSlots: Int, ioThreads: Int, policy: ExpertEvictionPolicy, decay: Double,
         prefetchThreshold: Double) throws(ModelError) {
        self.path = path
        self.prefetchThreshold = prefetchThreshold
        self.mapped = mapped
        self.layers = layers
        self.budgetBytes = budgetBytes
        self.decay = decay
        self.policy = policy
        for (l, experts) in layers.enumerated() {
            for (e, x) in experts.enumerated() {
                for r in x.ranges where r.lowerBound < 0 || r.upperBound > mapped.count {
                    throw .badMetadata(key: "experts", expected: "slices inside the file (\(mapped.count) bytes)",
                                       found: "layer \(l) expert \(e): bytes \(r)")
                }
            }
        }
        let a = ExpertStore.alignment
        var largest = 0
        for x in layers.joined() {
            largest = max(largest, x.ranges.reduce(0) { $0 + ExpertStore.paddedLength($1, a) })
        }
        slotBytes = largest
        entries = layers.map { Array(repeating: Entry(), count: $0.count) }
        statsByLayer = Array(repeating: ExpertLayerStats(), count: layers.count)
        prefetchedFor = Array(repeating: 0, count: layers.count)
        guessAccuracy = Array(repeating: 1, count: layers.count)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)

        guard let budget = budgetBytes, largest > 0 else {
            slotCount = 0
            pool = nil
            poolBytes = 0
            slots = []
            freeSlots = []
            return
        }
        let count = budget / largest
        guard count >= max(1, minimumSlots) else {
            pthread_mutex_destroy(mutex)
            pthread_cond_destroy(cond)
            mutex.deallocate()
            cond.deallocate()
            throw .badMetadata(key: "memory-budget",
                               expected: "at least \(max(1, minimumSlots) * largest) bytes for routed experts (\(max(1, minimumSlots)) of \(largest) bytes)",
                               found: "\(budget) bytes")
        }
        slotCount = count
        poolBytes = count * largest
        // Anonymous memory: pages count only once an expert is read into them.
        let p = mmap(nil, poolBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else {
            let e = errno
            pthread_mutex_destroy(mutex)
            pthread_cond_destroy(cond)
            mutex.deallocate()
            cond.deallocate()
            throw .file(.mapFailed(path: "(expert buffer pool, \(poolBytes) bytes)", errno: e))
        }
        pool = p
        slots = Array(repeating: Slot(), count: count)
        freeSlots = Array((0..<count).reversed())
        fd = open(path, O_RDONLY | O_CLOEXEC | ExpertStore.oDirect)
        direct = fd >= 0
        if fd < 0 { fd = open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else {
            let e = errno
            munmap(p, poolBytes)
            pthread_mutex_destroy(mutex)
            pthread_cond_destroy(cond)
            mutex.deallocate()
            cond.deallocate()
            throw .file(.unreadable(path: path, errno: e))
        }
        for _ in 0..<max(1, ioThreads) { startIOThread() }
    }

    /// Stops and joins the I/O threads (each holds the core while it runs).
    func stop() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
        for t in threads { pthread_join(t, nil) }
        threads = []
    }

    deinit {
        if fd >= 0 { close(fd) }
        if let pool { munmap(pool, poolBytes) }
        pthread_mutex_destroy(mutex)
        pthread_cond_destroy(cond)
        mutex.deallocate()
        cond.deallocate()
    }

    /// True when experts live in the buffer pool (a budget was given).
    var isBudgeted: Bool { pool != nil }

    // MARK: - compute thread

    /// Makes `experts` of `layer` resident and writes, for each, the address of each of its
    /// slices (`ranges.count` per expert, expert after expert) to `out`. Blocks until all
    /// are resident; they stay pinned until `release(layer:)`. An expert listed twice is
    /// pinned twice. Throws when a read failed (the expert is read again next time).
    func acquire(layer: Int, experts: UnsafeBufferPointer<Int32>,
                        into out: UnsafeMutablePointer<UnsafeRawPointer>) throws(ModelError) {
        let perExpert = layers[layer].first?.ranges.count ?? 0
        guard let pool else {
            guard let base = mapped.baseAddress else { throw .file(.emptyFile(path: path)) }
            pthread_mutex_lock(mutex)
            statsByLayer[layer].hits += experts.count
            pthread_mutex_unlock(mutex)
            for (i, e) in experts.enumerated() {
                for (j, r) in layers[layer][Int(e)].ranges.enumerated() {
                    out[i * perExpert + j] = base + r.lowerBound
                }
            }
            return
        }
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        // Pin what is resident or arriving first, so no miss below evicts it.
        for e in experts {
            let x = Int(e)
            touch(layer, x)
            let readAhead = entries[layer][x].prefetchPending
            if readAhead || entries[layer][x].guessed { learn(layer, right: true) }
            entries[layer][x].prefetchPending = false
            entries[layer][x].guessed = false
            switch entries[layer][x].residency {
            case .resident(let s), .loading(let s):
                if readAhead {
                    statsByLayer[layer].prefetchUsed += 1
                } else {
                    statsByLayer[layer].hits += 1
                }
                slots[s].pins += 1
            case .absent, .failed: break
            }
        }
        // Experts read ahead for this layer that the router did not choose were mispredicted:
        // they lose the protection of a pending prefetch and age like any other (kept
        // protected, they would pile up and crowd out the experts in use).
        if prefetchedFor[layer] > 0 {
            for x in entries[layer].indices where entries[layer][x].prefetchPending || entries[layer][x].guessed {
                entries[layer][x].prefetchPending = false
                entries[layer][x].guessed = false
                learn(layer, right: false)
            }
            prefetchedFor[layer] = 0
        }
        // Then request every miss, so the reads run in parallel. When every free slot is
        // taken by reads in flight, wait for one to land.
        for e in experts {
            let x = Int(e)
            switch entries[layer][x].residency {
            case .resident, .loading: continue
            case .absent, .failed: break
            }
            statsByLayer[layer].misses += 1
            var slot = takeSlot(for: layer, x)
            while slot == nil && slots.contains(where: { $0.pins == 0 }) {
                pthread_cond_wait(cond, mutex)
                slot = takeSlot(for: layer, x)
            }
            guard let s = slot else {
                unpin(layer: layer, experts: experts, upTo: nil)
                throw .badMetadata(key: "memory-budget", expected: "room for \(experts.count) experts of layer \(layer) at once",
                                   found: "\(slotCount) slots, all in use")
            }
            slots[s].pins = 1
            entries[layer][x].residency = .loading(slot: s)
            jobs.insert(Job(layer: layer, expert: x, slot: s), at: 0)
            pthread_cond_broadcast(cond)
        }
        // Wait for the reads.
        var waitedSince: Double?
        while true {
            var pending = false
            var failure: (Int, Int32)?
            for e in experts {
                switch entries[layer][Int(e)].residency {
                case .loading: pending = true
                case .failed(let code): failure = (Int(e), code)
                case .resident, .absent: break
                }
            }
            if let (x, code) = failure {
                unpin(layer: layer, experts: experts, upTo: nil)
                entries[layer][x].residency = .absent
                throw .file(.unreadable(path: "\(path) (layer \(layer) expert \(x))", errno: code))
            }
            if !pending { break }
            if waitedSince == nil { waitedSince = monotonicNow() }
            pthread_cond_wait(cond, mutex)
        }
        if let t = waitedSince { statsByLayer[layer].stallSeconds += monotonicNow() - t }
        for (i, e) in experts.enumerated() {
            guard case .resident(let s) = entries[layer][Int(e)].residency else { continue }
            var offset = 0
            for (j, r) in layers[layer][Int(e)].ranges.enumerated() {
                out[i * perExpert + j] = UnsafeRawPointer(pool + s * slotBytes + offset + r.lowerBound % ExpertStore.alignment)
                offset += ExpertStore.paddedLength(r, ExpertStore.alignment)
            }
        }
    }

    /// Unpins every expert of `layer` pinned by `acquire`.
    func release(layer: Int) {
        guard pool != nil else { return }
        pthread_mutex_lock(mutex)
        for s in slots.indices where slots[s].layer == layer { slots[s].pins = 0 }
        pthread_mutex_unlock(mutex)
    }

    /// Starts reading `experts` of `layer` if they are not resident, into free slots or
    /// slots of experts not used in this token or the one before (never pinned ones).
    /// Returns at once.
    func prefetch(layer: Int, experts: UnsafeBufferPointer<Int32>) {
        guard pool != nil, layer >= 0, layer < layers.count else { return }
        pthread_mutex_lock(mutex)
        var queued = false
        defer {
            // Wake the I/O threads for whatever was queued, also when the slots ran out
            // part way (a queued job nobody is woken for would leave its expert loading
            // forever, and an `acquire` that pinned it waiting with it).
            if queued { pthread_cond_broadcast(cond) }
            pthread_mutex_unlock(mutex)
        }
        for e in experts {
            let x = Int(e)
            guard x >= 0, x < entries[layer].count else { continue }
            switch entries[layer][x].residency {
            case .resident, .loading: continue
            case .absent, .failed: break
            }
            // While this layer's guesses are mostly wrong, only note them (to see when they
            // get better) instead of reading them.
            if guessAccuracy[layer] < prefetchThreshold {
                if !entries[layer][x].guessed {
                    entries[layer][x].guessed = true
                    prefetchedFor[layer] += 1
                }
                continue
            }
            guard let s = takeSlot(for: layer, x, speculative: true) else { return }
            entries[layer][x].residency = .loading(slot: s)
            entries[layer][x].prefetchPending = true
            prefetchedFor[layer] += 1
            statsByLayer[layer].prefetched += 1
            jobs.append(Job(layer: layer, expert: x, slot: s))
            queued = true
        }
    }

    /// Marks the end of `count` tokens (a chunk, or a batched step's sequences): use
    /// frequencies age by `decay` per token.
    func endToken(count: Int = 1) {
        pthread_mutex_lock(mutex)
        token += count
        pthread_mutex_unlock(mutex)
    }

    /// A snapshot of the counters.
    var stats: ExpertStoreStats {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return ExpertStoreStats(layers: statsByLayer, budgetBytes: budgetBytes ?? 0, slots: slotCount, tokens: token,
                                slotBytes: slotBytes, expertsPerLayer: layers.map(\.count))
    }

    // MARK: - under the mutex

    private func score(_ layer: Int, _ x: Int) -> Double {
        let e = entries[layer][x]
        switch policy {
        case .frequency: return e.score * pow(decay, Double(token - e.scoreToken))
        // The most recently used is kept longest.
        case .lru: return Double(e.lastUse)
        }
    }

    /// One more guess for `layer` that the router then chose (or not).
    private func learn(_ layer: Int, right: Bool) {
        guessAccuracy[layer] = 0.9 * guessAccuracy[layer] + (right ? 0.1 : 0)
    }

    private func touch(_ layer: Int, _ x: Int) {
        uses += 1
        entries[layer][x].lastUse = uses
        entries[layer][x].score = score(layer, x) + 1
        entries[layer][x].scoreToken = token
    }

    /// A free slot, or the slot of the resident, unpinned expert with the lowest decayed
    /// frequency (prefetched experts not used yet are kept while others can go).
    private func takeSlot(for layer: Int, _ x: Int, speculative: Bool = false) -> Int? {
        if let s = freeSlots.popLast() {
            slots[s] = Slot(layer: layer, expert: x, pins: 0)
            return s
        }
        var best: Int?
        var bestKey = (true, Double.infinity)
        for s in slots.indices where slots[s].pins == 0 {
            let (l, e) = (slots[s].layer, slots[s].expert)
            guard case .resident = entries[l][e].residency else { continue }
            // A read ahead only replaces experts not used in this token or the one before:
            // a guess must not evict what the next layers are about to use.
            if speculative && entries[l][e].lastUse > 0 && entries[l][e].scoreToken >= token - 1 { continue }
            let key = (entries[l][e].prefetchPending, score(l, e))
            if best == nil || (!key.0 && bestKey.0) || (key.0 == bestKey.0 && key.1 < bestKey.1) {
                best = s
                bestKey = key
            }
        }
        guard let s = best else { return nil }
        let (l, e) = (slots[s].layer, slots[s].expert)
        entries[l][e].residency = .absent
        entries[l][e].prefetchPending = false
        statsByLayer[l].residentBytes -= layers[l][e].byteCount
        slots[s] = Slot(layer: layer, expert: x, pins: 0)
        return s
    }

    private func unpin(layer: Int, experts: UnsafeBufferPointer<Int32>, upTo stop: Int32?) {
        for e in experts {
            if let stop, e == stop { break }
            switch entries[layer][Int(e)].residency {
            case .resident(let s), .loading(let s): slots[s].pins = max(0, slots[s].pins - 1)
            case .absent, .failed: break
            }
        }
    }

    // MARK: - I/O threads

    private func startIOThread() {
        let box = Unmanaged.passRetained(self).toOpaque()
        var t = pthread_t()
        let rc = pthread_create(&t, nil, { arg in
            guard let arg else { return nil }
            Unmanaged<ExpertStoreCore>.fromOpaque(arg).takeRetainedValue().ioLoop()
            return nil
        }, box)
        if rc == 0 { threads.append(t) } else { Unmanaged<ExpertStoreCore>.fromOpaque(box).release() }
    }

    private func ioLoop() {
        pthread_mutex_lock(mutex)
        while true {
            while !stopping && jobs.isEmpty { pthread_cond_wait(cond, mutex) }
            if stopping { break }
            let job = jobs.removeFirst()
            pthread_mutex_unlock(mutex)
            let (bytes, failure) = read(job)
            pthread_mutex_lock(mutex)
            statsByLayer[job.layer].bytesRead += bytes
            if let failure {
                entries[job.layer][job.expert].residency = .failed(errno: failure)
                slots[job.slot] = Slot()
                freeSlots.append(job.slot)
            } else {
                entries[job.layer][job.expert].residency = .resident(slot: job.slot)
                statsByLayer[job.layer].residentBytes += layers[job.layer][job.expert].byteCount
            }
            pthread_cond_broadcast(cond)
        }
        pthread_mutex_unlock(mutex)
    }

    /// Reads one expert's slices into its slot: bytes read, or the errno of a failure.
    private func read(_ job: Job) -> (Int, Int32?) {
        guard let pool else { return (0, EINVAL) }
        let a = ExpertStore.alignment
        var offset = 0
        var total = 0
        for r in layers[job.layer][job.expert].ranges {
            let start = r.lowerBound / a * a
            let length = ExpertStore.paddedLength(r, a)
            let dest = pool + job.slot * slotBytes + offset
            var done = 0
            while done < length {
                let n = pread(fd, dest + done, length - done, off_t(start + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    return (total, errno)
                }
                if n == 0 { break }
                done += n
                total += n
            }
            // The last slice may end at the file's end, before the padded length.
            if start + done < r.upperBound { return (total, EIO) }
            if !direct { posix_fadvise(fd, off_t(start), off_t(length), POSIX_FADV_DONTNEED) }
            offset += length
        }
        return (total, nil)
    }
}

private func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
