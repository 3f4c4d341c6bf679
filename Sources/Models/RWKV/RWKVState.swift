import GGUF

/// The recurrent state of one RWKV sequence: per layer the time-mix token shift (C
/// floats), the channel-mix token shift (C) and the WKV state (H x N x N), in one
/// contiguous buffer. Its size does not grow with the sequence.
///
/// Not thread-safe: one sequence, one user at a time (the engine's session owns it).
/// `@unchecked Sendable` so a session can move between tasks; it is never shared.
public final class RWKVState: @unchecked Sendable {
    public let config: RWKVConfig
    /// The model's fingerprint (see `RWKVModel.fingerprint`): a state only fits that model.
    public let fingerprint: UInt64
    /// Tokens consumed since the zero state.
    public internal(set) var tokenCount: Int = 0
    let floatCount: Int
    let storage: UnsafeMutablePointer<Float>

    init(config: RWKVConfig, fingerprint: UInt64) {
        self.config = config
        self.fingerprint = fingerprint
        floatCount = config.layers * config.stateFloatsPerLayer
        storage = .allocate(capacity: max(floatCount, 1))
        storage.initialize(repeating: 0, count: max(floatCount, 1))
    }

    deinit { storage.deallocate() }

    /// Bytes of state memory.
    public var byteCount: Int { floatCount * MemoryLayout<Float>.stride }

    /// The zero state (as after loading, before any token).
    public func reset() {
        storage.update(repeating: 0, count: floatCount)
        tokenCount = 0
    }

    /// An independent copy (one memcpy).
    public func copy() -> RWKVState {
        let s = RWKVState(config: config, fingerprint: fingerprint)
        s.storage.update(from: storage, count: floatCount)
        s.tokenCount = tokenCount
        return s
    }

    /// Overwrites this state with `other` (same model).
    public func assign(from other: RWKVState) throws(ModelError) {
        guard other.fingerprint == fingerprint, other.floatCount == floatCount else {
            throw .stateMismatch("the states belong to different models")
        }
        storage.update(from: other.storage, count: floatCount)
        tokenCount = other.tokenCount
    }

    func attShift(_ layer: Int) -> UnsafeMutablePointer<Float> { storage + layer * config.stateFloatsPerLayer }
    func ffnShift(_ layer: Int) -> UnsafeMutablePointer<Float> { attShift(layer) + config.embedding }
    func wkv(_ layer: Int) -> UnsafeMutablePointer<Float> { attShift(layer) + 2 * config.embedding }

    /// A copy of the raw floats (for tests and tools).
    public var floats: [Float] { Array(UnsafeBufferPointer(start: storage, count: floatCount)) }

    // MARK: serialization

    /// Format of `serialized()`:
    ///
    ///     "ROOSTRWK"                        8 bytes magic
    ///     format version                    u32 (1)
    ///     architecture                      u8 length + ASCII
    ///     layers, C, H, N                   4 x u32
    ///     token count                       u64
    ///     model fingerprint                 u64
    ///     float count                       u64
    ///     floats                            f32 x count
    ///     FNV-1a 64 of everything above     u64
    ///
    /// all little-endian.
    public static let magic: [UInt8] = Array("ROOSTRWK".utf8)
    public static let formatVersion: UInt32 = 1

    /// The state as bytes: a header that names the model and shapes, the floats, and a
    /// checksum.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(96 + byteCount)
        out += RWKVState.magic
        put32(&out, RWKVState.formatVersion)
        let arch = Array(config.architecture.rawValue.utf8)
        out.append(UInt8(arch.count))
        out += arch
        for v in [config.layers, config.embedding, config.heads, config.headSize] { put32(&out, UInt32(v)) }
        put64(&out, UInt64(tokenCount))
        put64(&out, fingerprint)
        put64(&out, UInt64(floatCount))
        for i in 0..<floatCount { put32(&out, storage[i].bitPattern) }
        let sum = out.withUnsafeBytes { fnv1a64($0) }
        put64(&out, sum)
        return out
    }

    /// Restores a state written by `serialized()`. Refuses (without changing anything) a
    /// state of another format version, architecture, shape or model, and corrupt bytes.
    public func restore(from bytes: [UInt8]) throws(ModelError) {
        var r = StateReader(bytes: bytes)
        guard bytes.count >= 8 + 8, Array(bytes[0..<8]) == RWKVState.magic else {
            throw .corruptState("not an RWKV state (bad magic)")
        }
        let stored = bytes.count - 8
        let expected = bytes.withUnsafeBytes { fnv1a64(UnsafeRawBufferPointer(rebasing: $0[0..<stored])) }
        r.position = stored
        guard let sum = r.u64(), sum == expected else { throw .corruptState("checksum mismatch (truncated or damaged)") }
        r = StateReader(bytes: Array(bytes[0..<stored]))
        r.position = 8
        guard let version = r.u32() else { throw .corruptState("truncated header") }
        guard version == RWKVState.formatVersion else {
            throw .stateMismatch("format version \(version); this build reads version \(RWKVState.formatVersion)")
        }
        guard let archLen = r.u8(), let archBytes = r.bytes(Int(archLen)) else { throw .corruptState("truncated header") }
        let arch = String(decoding: archBytes, as: UTF8.self)
        guard arch == config.architecture.rawValue else {
            throw .stateMismatch("architecture \(arch), the model is \(config.architecture.rawValue)")
        }
        guard let layers = r.u32(), let c = r.u32(), let h = r.u32(), let n = r.u32() else {
            throw .corruptState("truncated header")
        }
        let shape = [Int(layers), Int(c), Int(h), Int(n)]
        let mine = [config.layers, config.embedding, config.heads, config.headSize]
        guard shape == mine else {
            throw .stateMismatch("shape (layers, C, H, N) \(shape), the model has \(mine)")
        }
        guard let tokens = r.u64(), let fp = r.u64(), let count = r.u64() else { throw .corruptState("truncated header") }
        guard fp == fingerprint else {
            throw .stateMismatch("it was made by another model file (fingerprint \(hex(fp)), this model \(hex(fingerprint)))")
        }
        guard count == UInt64(floatCount), r.remaining == floatCount * 4 else {
            throw .corruptState("\(count) floats declared, \(r.remaining / 4) present, \(floatCount) expected")
        }
        guard tokens <= UInt64(Int.max) else { throw .corruptState("token count \(tokens)") }
        let base = r.position
        for i in 0..<floatCount {
            let o = base + i * 4
            let bits = UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24
            storage[i] = Float(bitPattern: bits)
        }
        tokenCount = Int(tokens)
    }

    private func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, 16 - s.count)) + s
    }
}
