import GGUF

/// Element type of a KV cache.
public enum KVCacheType: Sendable, Equatable, CustomStringConvertible {
    /// Half the memory; keys and values rounded to 11 significant bits (llama.cpp's default).
    case f16
    /// Exact keys and values (the F32 oracles' precision).
    case f32
    /// About half of F16's memory: each head vector as ggml Q8_0 blocks of 32 (an F16 scale
    /// and 32 int8 values, 34 bytes); the head size must be a multiple of 32.
    case q8_0

    /// Bytes of `elements` values (a multiple of 32 for Q8_0).
    public func bytes(_ elements: Int) -> Int {
        switch self {
        case .f16: elements * 2
        case .f32: elements * 4
        case .q8_0: elements / 32 * 34
        }
    }

    /// The element code serialized states carry.
    var code: UInt32 {
        switch self {
        case .f16: 1
        case .f32: 2
        case .q8_0: 3
        }
    }

    public var description: String {
        switch self {
        case .f16: "f16"
        case .f32: "f32"
        case .q8_0: "q8_0"
        }
    }

    /// The type `description` names ("f16", "f32", "q8_0"), nil for others.
    public init?(name: String) {
        switch name.lowercased() {
        case "f16": self = .f16
        case "f32": self = .f32
        case "q8_0": self = .q8_0
        default: return nil
        }
    }
}

/// The shape of a model's KV cache.
public struct KVShape: Sendable, Equatable {
    public let architecture: Architecture
    public let layers: Int
    public let kvHeads: Int
    public let headDim: Int
    public let contextLength: Int
    public let element: KVCacheType
    /// deepseek2's latent cache: one row per position (the normalized compressed kv and
    /// the rotated shared rope key) that serves as keys and values; no value buffers.
    public let latent: Bool

    init(_ c: TransformerConfig, element: KVCacheType) {
        self.element = element
        latent = c.mla != nil
        architecture = c.architecture
        layers = c.layers
        kvHeads = c.kvHeads
        headDim = c.headDim
        contextLength = c.contextLength
    }

    /// Elements of one position's keys (or values) in one layer: Hkv * D.
    var rowElements: Int { kvHeads * headDim }
    /// Bytes of one position's keys (or values) in one layer.
    var rowBytes: Int { element.bytes(rowElements) }
    /// Bytes of one head's keys (or values) at one position.
    var headBytes: Int { element.bytes(headDim) }
    /// Bytes of one position's values in one layer (0 for a latent cache).
    var valueRowBytes: Int { latent ? 0 : rowBytes }
}

/// The KV cache of one sequence: per layer, keys and values as F16 (or F32), laid out
/// [position][kv head][head dim] (one position's row written by one store, all heads of a
/// position together; a head's keys are `Hkv * D` elements apart, the stride the
/// attention kernel takes). Positions are appended, so growing keeps every row where it
/// is: the cache grows in chunks of `growthTokens` positions up to the context length.
///
/// Not thread-safe: one sequence, one user at a time. `@unchecked Sendable` so a session
/// can move between tasks; it is never shared.
public final class TransformerState: @unchecked Sendable {
    public let shape: KVShape
    public let fingerprint: UInt64
    public internal(set) var tokenCount: Int = 0
    /// Positions the buffers hold.
    public private(set) var capacity: Int = 0
    /// Per layer: keys, then values, each [capacity][Hkv * D] elements.
    private var keys: [UnsafeMutableRawPointer] = []
    private var values: [UnsafeMutableRawPointer] = []

    static let growthTokens = 256

    init(shape: KVShape, fingerprint: UInt64) {
        self.shape = shape
        self.fingerprint = fingerprint
    }

    deinit { release() }

    private func release() {
        for p in keys { p.deallocate() }
        for p in values { p.deallocate() }
        keys = []
        values = []
        capacity = 0
    }

    public var byteCount: Int { shape.layers * capacity * (shape.rowBytes + shape.valueRowBytes) }

    /// Makes room for `tokens` positions (at most the context length), keeping the rows
    /// held. Allocates when it grows (once per `growthTokens` positions).
    func reserve(_ tokens: Int) {
        guard tokens > capacity else { return }
        let g = TransformerState.growthTokens
        let newCap = min(max(tokens, (tokens + g - 1) / g * g), max(tokens, shape.contextLength))
        let row = shape.rowBytes, vrow = shape.valueRowBytes
        var nk: [UnsafeMutableRawPointer] = []
        var nv: [UnsafeMutableRawPointer] = []
        for l in 0..<shape.layers {
            let k = UnsafeMutableRawPointer.allocate(byteCount: max(1, newCap * row), alignment: 64)
            let v = UnsafeMutableRawPointer.allocate(byteCount: max(1, newCap * vrow), alignment: 64)
            if capacity > 0 {
                k.copyMemory(from: keys[l], byteCount: tokenCount * row)
                v.copyMemory(from: values[l], byteCount: tokenCount * vrow)
            }
            nk.append(k)
            nv.append(v)
        }
        release()
        keys = nk
        values = nv
        capacity = newCap
    }

    /// Layer l's keys and values: position p's row at `+ p * rowBytes` (a latent cache's
    /// values are its keys).
    @inline(__always) func keys(_ l: Int) -> UnsafeMutableRawPointer { keys[l] }
    @inline(__always) func values(_ l: Int) -> UnsafeMutableRawPointer { shape.latent ? keys[l] : values[l] }

    public func reset() { tokenCount = 0 }

    public func copy() -> TransformerState {
        let s = TransformerState(shape: shape, fingerprint: fingerprint)
        s.copyRows(from: self)
        return s
    }

    private func copyRows(from o: TransformerState) {
        reserve(o.tokenCount)
        let n = o.tokenCount * shape.rowBytes, nv = o.tokenCount * shape.valueRowBytes
        for l in 0..<shape.layers where n > 0 {
            keys[l].copyMemory(from: o.keys[l], byteCount: n)
            if nv > 0 { values[l].copyMemory(from: o.values[l], byteCount: nv) }
        }
        tokenCount = o.tokenCount
    }

    public func assign(from other: TransformerState) throws(ModelError) {
        guard other.fingerprint == fingerprint, other.shape == shape else {
            throw .stateMismatch("the states belong to different models")
        }
        if other === self { return }
        copyRows(from: other)
    }

    // MARK: serialization

    /// Format of `serialized()`:
    ///
    ///     "ROOSTKVC"                        8 bytes magic
    ///     format version                    u32 (1)
    ///     architecture                      u8 length + ASCII
    ///     layers, Hkv, D, element type      4 x u32 (element type 1 = F16, 2 = F32, 3 = Q8_0)
    ///     token count                       u64
    ///     model fingerprint                 u64
    ///     per layer: keys, then values      token count * Hkv * D elements each (a latent
    ///                                       cache, deepseek2: the latent rows only)
    ///     FNV-1a 64 of everything above     u64
    ///
    /// all little-endian.
    public static let magic: [UInt8] = Array("ROOSTKVC".utf8)
    public static let formatVersion: UInt32 = 1

    public func serialized() -> [UInt8] {
        let row = shape.rowBytes, vrow = shape.valueRowBytes
        var out: [UInt8] = []
        out.reserveCapacity(80 + shape.layers * tokenCount * (row + vrow))
        out += TransformerState.magic
        put32(&out, TransformerState.formatVersion)
        let arch = Array(shape.architecture.rawValue.utf8)
        out.append(UInt8(arch.count))
        out += arch
        for v in [shape.layers, shape.kvHeads, shape.headDim] { put32(&out, UInt32(v)) }
        put32(&out, shape.element.code)
        put64(&out, UInt64(tokenCount))
        put64(&out, fingerprint)
        let n = tokenCount * row, nv = tokenCount * vrow
        for l in 0..<shape.layers where n > 0 {
            // Little-endian hosts only (x86-64, AArch64): the bytes as they are.
            out += UnsafeRawBufferPointer(start: keys[l], count: n)
            if nv > 0 { out += UnsafeRawBufferPointer(start: values[l], count: nv) }
        }
        let sum = out.withUnsafeBytes { fnv1a64($0) }
        put64(&out, sum)
        return out
    }

    public func restore(from bytes: [UInt8]) throws(ModelError) {
        guard bytes.count >= 16, Array(bytes[0..<8]) == TransformerState.magic else {
            throw .corruptState("not a transformer KV cache (bad magic)")
        }
        let stored = bytes.count - 8
        let expected = bytes.withUnsafeBytes { fnv1a64(UnsafeRawBufferPointer(rebasing: $0[0..<stored])) }
        var r = StateReader(bytes: bytes, position: stored)
        guard let sum = r.u64(), sum == expected else { throw .corruptState("checksum mismatch (truncated or damaged)") }
        r = StateReader(bytes: bytes, position: 8, end: stored)
        guard let version = r.u32() else { throw .corruptState("truncated header") }
        guard version == TransformerState.formatVersion else {
            throw .stateMismatch("format version \(version); this build reads version \(TransformerState.formatVersion)")
        }
        guard let archLen = r.u8(), let archBytes = r.bytes(Int(archLen)) else { throw .corruptState("truncated header") }
        let arch = String(decoding: archBytes, as: UTF8.self)
        guard arch == shape.architecture.rawValue else {
            throw .stateMismatch("architecture \(arch), the model is \(shape.architecture.rawValue)")
        }
        guard let layers = r.u32(), let hkv = r.u32(), let d = r.u32(), let type = r.u32() else {
            throw .corruptState("truncated header")
        }
        let found = [Int(layers), Int(hkv), Int(d)], mine = [shape.layers, shape.kvHeads, shape.headDim]
        guard found == mine else { throw .stateMismatch("shape (layers, Hkv, D) \(found), the model has \(mine)") }
        guard type == shape.element.code else {
            let made = [KVCacheType.f16, .f32, .q8_0].first { $0.code == type }.map { "\($0)" } ?? "code \(type)"
            throw .stateMismatch("it holds a \(made) KV cache; this model keeps a \(shape.element) KV cache")
        }
        guard let tokens = r.u64(), let fp = r.u64() else { throw .corruptState("truncated header") }
        guard fp == fingerprint else { throw .stateMismatch("it was made by another model file") }
        guard tokens <= UInt64(shape.contextLength) else {
            throw .corruptState("\(tokens) tokens, more than the context length \(shape.contextLength)")
        }
        let t = Int(tokens), n = t * shape.rowBytes, nv = t * shape.valueRowBytes
        guard r.remaining == shape.layers * (n + nv) else {
            throw .corruptState("\(r.remaining) bytes of cache, \(shape.layers * (n + nv)) expected for \(t) tokens")
        }
        reserve(t)
        var o = r.position
        bytes.withUnsafeBytes { src in
            guard let base = src.baseAddress else { return }
            for l in 0..<shape.layers where n > 0 {
                keys[l].copyMemory(from: base + o, byteCount: n)
                o += n
                if nv > 0 {
                    values[l].copyMemory(from: base + o, byteCount: nv)
                    o += nv
                }
            }
        }
        tokenCount = t
    }
}

extension TransformerState: SequenceState {
    public func copyState() -> any SequenceState { copy() }

    public func assign(from other: any SequenceState) throws(ModelError) {
        guard let o = other as? TransformerState else {
            throw .stateMismatch("a \(type(of: other)) cannot be assigned to a transformer state")
        }
        try assign(from: o)
    }

    /// Keeps the first `tokens` positions (prefix reuse); false when the state holds fewer.
    public func truncate(to tokens: Int) -> Bool {
        guard tokens >= 0, tokens <= tokenCount else { return false }
        tokenCount = tokens
        return true
    }
}
