/// How `encode` treats special tokens.
public struct EncodeOptions: Sendable, Equatable {
    /// Adds BOS in front and EOS at the end when the model asks for them
    /// (`tokenizer.ggml.add_bos_token`, `tokenizer.ggml.add_eos_token`), as llama.cpp's `add_special`.
    public var addSpecial: Bool
    /// Turns the text of control tokens (`<|eot_id|>`, `<s>`, ...) found in the input into those
    /// tokens, as llama.cpp's `parse_special`. User-defined tokens are always matched; without
    /// this, control-token text is tokenized as ordinary text.
    public var parseSpecial: Bool

    public init(addSpecial: Bool = false, parseSpecial: Bool = false) {
        self.addSpecial = addSpecial
        self.parseSpecial = parseSpecial
    }

    /// Plain text: nothing added, no control tokens parsed (what `encode(bytes:)` does).
    public static let plain = EncodeOptions()
    /// A prompt: BOS/EOS as the model says, and control tokens parsed (rendered chat templates).
    public static let prompt = EncodeOptions(addSpecial: true, parseSpecial: true)
}

/// The GPT-2 byte-to-unicode table of byte-level BPE: printable Latin-1 bytes stand for
/// themselves, the other 68 bytes for U+0100... in byte order.
enum ByteLevel {
    /// `scalar[b]` is the code point byte b is written as in a vocabulary.
    static let scalar: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 256)
        var n: UInt32 = 0
        for b in 0 ..< 256 {
            if (33 ... 126).contains(b) || (161 ... 172).contains(b) || (174 ... 255).contains(b) {
                t[b] = UInt32(b)
            } else {
                t[b] = 256 + n
                n += 1
            }
        }
        return t
    }()

    /// The byte a vocabulary code point stands for, or nil.
    static func byte(for cp: UInt32) -> UInt8? {
        if cp < 256 {
            let b = Int(cp)
            if (33 ... 126).contains(b) || (161 ... 172).contains(b) || (174 ... 255).contains(b) { return UInt8(b) }
            return nil
        }
        guard cp < 256 + 68 else { return nil }
        return inverseHigh[Int(cp - 256)]
    }

    private static let inverseHigh: [UInt8] = {
        var t = [UInt8](repeating: 0, count: 68)
        for b in 0 ..< 256 where scalar[b] >= 256 { t[Int(scalar[b] - 256)] = UInt8(b) }
        return t
    }()

    /// The bytes a vocabulary string stands for; a code point outside the table is kept as its
    /// own UTF-8 bytes (llama.cpp prints a marker there).
    static func decode(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        for u in s.unicodeScalars {
            if let b = byte(for: u.value) { out.append(b) } else { out += Array(String(u).utf8) }
        }
        return out
    }

    /// The vocabulary string for a byte.
    static func string(for b: UInt8) -> String {
        String(Character(Unicode.Scalar(scalar[Int(b)]) ?? "?"))
    }
}

/// Token bytes back to back, with the per-token flag "decodes to nothing".
struct TokenTable: Sendable {
    let data: [UInt8]
    let offsets: [Int]
    let silent: [Bool]

    init(_ tokens: [[UInt8]], silent: [Bool]) {
        var d: [UInt8] = []
        var o: [Int] = [0]
        d.reserveCapacity(tokens.reduce(0) { $0 + $1.count })
        o.reserveCapacity(tokens.count + 1)
        for t in tokens {
            d += t
            o.append(d.count)
        }
        data = d
        offsets = o
        self.silent = silent
    }

    var count: Int { offsets.count - 1 }

    func bytes(_ i: Int) -> ArraySlice<UInt8> { data[offsets[i] ..< offsets[i + 1]] }
}

/// Finds special tokens (control, unknown and user-defined) in the input, as llama.cpp's
/// `tokenizer_st_partition`: at each position the longest special token that starts there
/// wins (the `tokenizers` package's rule; llama.cpp tries longer tokens first, which agrees
/// unless special tokens overlap each other).
struct SpecialTokenMatcher: Sendable {
    /// All special tokens, and the user-defined ones only (used when control tokens are not parsed).
    let all: DoubleArrayTrie
    let userDefined: DoubleArrayTrie
    let firstBytesAll: [Bool]
    let firstBytesUser: [Bool]
    let isEmpty: Bool

    init(texts: [[UInt8]], ids: [Int32], isUserDefined: [Bool]) {
        all = DoubleArrayTrie(keys: texts, ids: ids)
        var uk: [[UInt8]] = [], ui: [Int32] = []
        var fa = [Bool](repeating: false, count: 256), fu = fa
        for (i, t) in texts.enumerated() where !t.isEmpty {
            fa[Int(t[0])] = true
            if isUserDefined[i] {
                uk.append(t)
                ui.append(ids[i])
                fu[Int(t[0])] = true
            }
        }
        userDefined = DoubleArrayTrie(keys: uk, ids: ui)
        firstBytesAll = fa
        firstBytesUser = fu
        isEmpty = texts.allSatisfy(\.isEmpty)
    }

    enum Piece {
        case text(Int, Int)
        case token(Int32)
    }

    /// Cuts `b` into text ranges and special tokens, in order.
    func partition(_ b: UnsafeBufferPointer<UInt8>, parseControl: Bool) -> [Piece] {
        let n = b.count
        if isEmpty || n == 0 { return n == 0 ? [] : [.text(0, n)] }
        let trie = parseControl ? all : userDefined
        let first = parseControl ? firstBytesAll : firstBytesUser
        var out: [Piece] = []
        var start = 0, i = 0
        while i < n {
            if first[Int(b[i])], let (id, end) = trie.longestPrefix(b, from: i) {
                if start < i { out.append(.text(start, i)) }
                out.append(.token(id))
                i = end
                start = end
            } else {
                i += 1
            }
        }
        if start < n { out.append(.text(start, n)) }
        return out
    }
}

extension DoubleArrayTrie {
    /// The longest key that is a prefix of `b[from...]`: its id and end offset.
    func longestPrefix(_ b: UnsafeBufferPointer<UInt8>, from: Int) -> (Int32, Int)? {
        var s = 0, i = from
        var best: (Int32, Int)?
        while i < b.count {
            let t = Int(base[s]) + Int(b[i])
            guard t < check.count, check[t] == Int32(truncatingIfNeeded: s) else { break }
            s = t
            i += 1
            if value[s] >= 0 { best = (value[s], i) }
        }
        return best
    }

    /// The id of the key equal to `b[lo..<hi]`, or -1.
    @inline(__always)
    func exact(_ b: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int) -> Int32 {
        var s = 0, i = lo
        while i < hi {
            let t = Int(base[s]) + Int(b[i])
            guard t < check.count, check[t] == Int32(truncatingIfNeeded: s) else { return -1 }
            s = t
            i += 1
        }
        return lo < hi ? value[s] : -1
    }
}

/// A binary min-heap, reused between words.
struct MinHeap<Element: Comparable> {
    var items: [Element] = []

    mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    mutating func push(_ e: Element) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) >> 1
            if !(items[i] < items[p]) { break }
            items.swapAt(i, p)
            i = p
        }
    }

    mutating func pop() -> Element? {
        guard let last = items.popLast() else { return nil }
        if items.isEmpty { return last }
        let top = items[0]
        items[0] = last
        var i = 0
        let n = items.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n, items[l] < items[m] { m = l }
            if r < n, items[r] < items[m] { m = r }
            if m == i { break }
            items.swapAt(i, m)
            i = m
        }
        return top
    }
}

/// The ids of recently merged words, for one `encode` call: an open-addressing table keyed by
/// the word's bytes (FNV-1a), with the bytes and ids in flat pools, so a hit allocates nothing.
/// Emptied when half full.
struct WordCache {
    /// Allocated on the first insert, so short encodes that never repeat a word pay nothing.
    private var slots: [Int32] = []
    private var hashes: [UInt64] = []
    private var byteStart: [Int32] = []
    private var idStart: [Int32] = []
    private var bytes: [UInt8] = []
    private var ids: [Int32] = []
    private let mask: Int

    init(capacity: Int = 1 << 14) {
        mask = capacity - 1
    }

    @inline(__always)
    static func hash(_ b: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for i in lo ..< hi { h = (h ^ UInt64(b[i])) &* 0x0000_0100_0000_01B3 }
        return h
    }

    /// Appends the cached ids of `b[lo..<hi]` to `out`; false when not cached.
    func lookup(_ b: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int, hash: UInt64, into out: inout [Int32]) -> Bool {
        if slots.isEmpty { return false }
        var s = Int(truncatingIfNeeded: hash) & mask
        while true {
            let e = Int(slots[s])
            if e < 0 { return false }
            if hashes[e] == hash {
                let a = Int(byteStart[e]), z = Int(byteStart[e + 1])
                if z - a == hi - lo {
                    var same = true
                    var k = 0
                    while k < z - a {
                        if bytes[a + k] != b[lo + k] { same = false; break }
                        k += 1
                    }
                    if same {
                        out.append(contentsOf: ids[Int(idStart[e]) ..< Int(idStart[e + 1])])
                        return true
                    }
                }
            }
            s = (s + 1) & mask
        }
    }

    mutating func insert(_ b: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int, hash: UInt64, ids new: ArraySlice<Int32>) {
        if hi - lo > 256 { return }  // long words rarely repeat
        if slots.isEmpty { slots = [Int32](repeating: -1, count: mask + 1) }
        if hashes.count * 2 >= slots.count {
            for i in slots.indices { slots[i] = -1 }
            hashes.removeAll(keepingCapacity: true)
            byteStart.removeAll(keepingCapacity: true)
            idStart.removeAll(keepingCapacity: true)
            bytes.removeAll(keepingCapacity: true)
            ids.removeAll(keepingCapacity: true)
        }
        if byteStart.isEmpty {
            byteStart.append(0)
            idStart.append(0)
        }
        var s = Int(truncatingIfNeeded: hash) & mask
        while slots[s] >= 0 { s = (s + 1) & mask }
        slots[s] = Int32(hashes.count)
        hashes.append(hash)
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: b[lo ..< hi]))
        ids.append(contentsOf: new)
        byteStart.append(Int32(bytes.count))
        idStart.append(Int32(ids.count))
    }
}
