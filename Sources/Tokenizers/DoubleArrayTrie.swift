/// A byte trie in double-array form: state `s` goes on byte `c` to `t = base[s] + c` when
/// `check[t] == s`; `value[t]` is the token id ending there, or -1. The root is state 0.
///
/// The arrays are padded so that `base[s] + 255` is always a valid index: the lookup loop needs no
/// bounds check besides the input's. Built once from sorted keys (as darts-clone does), then
/// read-only.
struct DoubleArrayTrie: Sendable {
    private(set) var base: [Int32]
    private(set) var check: [Int32]
    private(set) var value: [Int32]

    /// Number of slots (states plus holes).
    var slotCount: Int { check.count }

    /// `keys[i]` ends in token `ids[i]`. Empty keys are ignored (they can never be matched); of
    /// equal keys the one that comes last wins, as in the reference's `token2idx` dict.
    init(keys: [[UInt8]], ids: [Int32]) {
        // Sort key indices lexicographically; equal keys by position, so the last one wins below.
        var order = Array(keys.indices.filter { !keys[$0].isEmpty })
        order.sort { a, b in
            let ka = keys[a], kb = keys[b]
            let n = min(ka.count, kb.count)
            var i = 0
            while i < n {
                if ka[i] != kb[i] { return ka[i] < kb[i] }
                i += 1
            }
            if ka.count != kb.count { return ka.count < kb.count }
            return a < b
        }

        // Slots come in blocks of 256. Free slots of the last `window` blocks are kept in a
        // doubly linked list (first fit walks only free slots); older blocks are closed and their
        // holes stay unused, as in darts-clone, so that building stays linear.
        let blockSize = 256, window = 16
        var base: [Int32] = []
        var check: [Int32] = []
        var value: [Int32] = []
        var nextFree: [Int32] = []
        var prevFree: [Int32] = []
        var head = -1, tail = -1

        func unlink(_ p: Int) {
            let n = Int(nextFree[p]), q = Int(prevFree[p])
            if q >= 0 { nextFree[q] = Int32(n) } else { head = n }
            if n >= 0 { prevFree[n] = Int32(q) } else { tail = q }
        }
        func addBlock() {
            let start = check.count
            base += repeatElement(0, count: blockSize)
            check += repeatElement(-1, count: blockSize)
            value += repeatElement(-1, count: blockSize)
            nextFree += repeatElement(-1, count: blockSize)
            prevFree += repeatElement(-1, count: blockSize)
            for p in start ..< start + blockSize {
                prevFree[p] = Int32(tail)
                if tail >= 0 { nextFree[tail] = Int32(p) } else { head = p }
                tail = p
            }
            let blocks = check.count / blockSize
            if blocks > window {  // close the oldest open block
                let old = (blocks - window - 1) * blockSize
                for p in old ..< old + blockSize where check[p] == -1 { unlink(p) }
            }
        }
        func take(_ p: Int, parent: Int) {
            unlink(p)
            check[p] = Int32(parent)
        }

        addBlock()
        take(0, parent: Int(Int32.min))  // the root is nobody's child
        var maxSlot = 0

        // Work list of (state, lo, hi, depth): keys order[lo..<hi] share their first `depth` bytes
        // and lead to `state`.
        var work: [(state: Int, lo: Int, hi: Int, depth: Int)] = [(0, 0, order.count, 0)]
        var childBytes: [Int] = []
        var childRanges: [(lo: Int, hi: Int)] = []
        childBytes.reserveCapacity(256)
        childRanges.reserveCapacity(256)

        while let (state, lo, hi, depth) = work.popLast() {
            childBytes.removeAll(keepingCapacity: true)
            childRanges.removeAll(keepingCapacity: true)
            var i = lo
            while i < hi {
                let k = keys[order[i]]
                if k.count == depth {
                    value[state] = ids[order[i]]  // sorted by index: the last equal key wins
                    i += 1
                    continue
                }
                let c = Int(k[depth])
                var j = i + 1
                while j < hi, keys[order[j]][depth] == k[depth] { j += 1 }
                childBytes.append(c)
                childRanges.append((i, j))
                i = j
            }
            if childBytes.isEmpty { continue }

            // First fit over the open free slots: the first child goes to free slot p, base
            // b = p - first >= 1, and every other child's slot b + c must be free too.
            let first = childBytes[0]
            var b = -1
            var p = head
            search: while p >= 0 {
                let candidate = p - first
                p = Int(nextFree[p])
                if candidate < 1 { continue }
                for c in childBytes.dropFirst() where candidate + c >= check.count || check[candidate + c] != -1 {
                    continue search
                }
                b = candidate
                break
            }
            if b < 0 {  // nothing fits: a fresh block holds every child
                b = check.count
                addBlock()
            }
            base[state] = Int32(b)
            for c in childBytes {
                take(b + c, parent: state)
                maxSlot = max(maxSlot, b + c)
            }
            // Depth-first keeps related states close together in memory.
            for (c, r) in zip(childBytes, childRanges).reversed() {
                work.append((b + c, r.lo, r.hi, depth + 1))
            }
        }

        // Exactly as many slots as needed, with base[s] + 255 in range for every state.
        var maxBase = 0
        for s in 0 ... maxSlot where check[s] != -1 { maxBase = max(maxBase, Int(base[s])) }
        let size = max(maxSlot, maxBase + 255) + 1
        if size < check.count {
            base.removeSubrange(size...)
            check.removeSubrange(size...)
            value.removeSubrange(size...)
        } else if size > check.count {
            let extra = size - check.count
            base += repeatElement(0, count: extra)
            check += repeatElement(-1, count: extra)
            value += repeatElement(-1, count: extra)
        }
        self.base = base
        self.check = check
        self.value = value
    }
}
