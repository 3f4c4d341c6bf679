#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A streaming-read probe of memory bandwidth: every thread of the pool sums its share
/// of a large buffer with wide integer vector adds (the loop compiles to 256/512-bit
/// loads in release builds), so the time is that of reading the bytes. The buffer should
/// be several times the last-level cache.
public enum MemoryBandwidth {
    /// Median read bandwidth (bytes/s) of `pool` over a buffer of `bytes` (rounded down to
    /// 256): one warm-up pass, then passes until at least `minRounds` are done and
    /// `minSeconds` have passed.
    public static func probe(bytes: Int, pool: WorkerPool, minRounds: Int = 5,
                             minSeconds: Double = 0.5) throws(TensorError) -> Double {
        let n = max(256, bytes / 256 * 256)
        guard let buffer = AlignedBuffer(byteCount: n) else {
            throw .allocationFailed(what: "bandwidth probe buffer", bytes: n)
        }
        memset(buffer.pointer, 1, n)
        let sums = UnsafeMutablePointer<UInt32>.allocate(capacity: pool.threads)
        defer { sums.deallocate() }
        var sink = readPass(buffer.pointer, bytes: n, pool: pool, sums: sums) // warm-up
        var times: [Double] = []
        let start = monotonicSeconds()
        while times.count < minRounds || (monotonicSeconds() - start < minSeconds && times.count < 10_000) {
            let t0 = monotonicSeconds()
            sink &+= readPass(buffer.pointer, bytes: n, pool: pool, sums: sums)
            times.append(monotonicSeconds() - t0)
        }
        blackHole = sink
        return Double(n) / median(times)
    }

    /// Keeps the probe's sums observable so the reads are not optimized away.
    nonisolated(unsafe) private static var blackHole: UInt32 = 0

    /// Reads `bytes` bytes at `buffer` (64-byte aligned) once, split across the pool;
    /// returns a checksum so the reads cannot be optimized away.
    public static func readPass(_ buffer: UnsafeRawPointer, bytes: Int, pool: WorkerPool,
                                sums: UnsafeMutablePointer<UInt32>) -> UInt32 {
        let lines = bytes / 256
        for t in 0..<pool.threads { sums[t] = 0 }
        var ctx = ReadContext(buffer: buffer, sums: sums)
        withUnsafeMutablePointer(to: &ctx) { p in
            pool.run(count: lines, granule: 64, context: UnsafeMutableRawPointer(p)) { raw, b, e, t in
                guard let c = raw?.assumingMemoryBound(to: ReadContext.self).pointee else { return }
                c.sums[t] &+= MemoryBandwidth.sum(c.buffer + b * 256, chunks: e - b)
            }
        }
        var total: UInt32 = 0
        for t in 0..<pool.threads { total &+= sums[t] }
        return total
    }

    /// Wrapping sum of `chunks` 256-byte chunks as 32-bit lanes.
    @inline(never)
    public static func sum(_ p: UnsafeRawPointer, chunks: Int) -> UInt32 {
        var a0 = SIMD16<UInt32>(repeating: 0)
        var a1 = a0, a2 = a0, a3 = a0
        var q = p
        for _ in 0..<chunks {
            a0 &+= q.load(as: SIMD16<UInt32>.self)
            a1 &+= q.load(fromByteOffset: 64, as: SIMD16<UInt32>.self)
            a2 &+= q.load(fromByteOffset: 128, as: SIMD16<UInt32>.self)
            a3 &+= q.load(fromByteOffset: 192, as: SIMD16<UInt32>.self)
            q += 256
        }
        return ((a0 &+ a1) &+ (a2 &+ a3)).wrappedSum()
    }

    private struct ReadContext {
        var buffer: UnsafeRawPointer
        var sums: UnsafeMutablePointer<UInt32>
    }
}

/// Seconds on the monotonic clock.
public func monotonicSeconds() -> Double {
    Double(monotonicNanoseconds()) * 1e-9
}

/// Median of a non-empty list.
public func median(_ v: [Double]) -> Double {
    let s = v.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
