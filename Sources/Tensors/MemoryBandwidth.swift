/// A streaming-read probe of memory bandwidth: every thread of the pool sums its share
/// of a large buffer with wide integer vector adds (the loop compiles to 256/512-bit
/// loads in release builds), so the time is that of reading the bytes. The buffer should
/// be several times the last-level cache.
public enum MemoryBandwidth {
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
