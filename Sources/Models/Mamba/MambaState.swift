import GGUF
import Tensors

/// The recurrent state of one Mamba sequence: per layer the conv state
/// [d_conv - 1][d_inner] (the last d_conv - 1 inputs of the conv, oldest first) and the
/// SSM state [d_inner][d_state], F32, in one contiguous buffer. Its size does not grow.
///
/// Not thread-safe: one sequence, one user at a time (the engine's session owns it).
/// `@unchecked Sendable` so a session can move between tasks; it is never shared.
public final class MambaState: @unchecked Sendable, SequenceState {
    public let config: MambaConfig
    /// The model's fingerprint: a state only fits that model.
    public let fingerprint: UInt64
    /// Tokens consumed since the zero state.
    public internal(set) var tokenCount: Int = 0
    let floatCount: Int
    let storage: UnsafeMutablePointer<Float>

    init(config: MambaConfig, fingerprint: UInt64) {
        self.config = config
        self.fingerprint = fingerprint
        floatCount = config.layers * config.stateFloatsPerLayer
        storage = .allocate(capacity: max(floatCount, 1))
        storage.initialize(repeating: 0, count: max(floatCount, 1))
    }

    deinit { storage.deallocate() }

    public var byteCount: Int { floatCount * MemoryLayout<Float>.stride }

    /// Layer i's conv state: [d_conv - 1][d_inner].
    func conv(_ layer: Int) -> UnsafeMutablePointer<Float> { storage + layer * config.stateFloatsPerLayer }
    /// Layer i's SSM state: [d_inner][d_state].
    func ssm(_ layer: Int) -> UnsafeMutablePointer<Float> { conv(layer) + config.convStateFloats }

    /// A copy of the raw floats (for tests and tools).
    public var floats: [Float] { Array(UnsafeBufferPointer(start: storage, count: floatCount)) }

    public func reset() {
        storage.update(repeating: 0, count: floatCount)
        tokenCount = 0
    }

    /// An independent copy (one memcpy).
    public func copy() -> MambaState {
        let s = MambaState(config: config, fingerprint: fingerprint)
        s.storage.update(from: storage, count: floatCount)
        s.tokenCount = tokenCount
        return s
    }

    public func copyState() -> any SequenceState { copy() }

    public func assign(from other: any SequenceState) throws(ModelError) {
        guard let o = other as? MambaState else {
            throw .stateMismatch("a \(type(of: other)) cannot be assigned to a Mamba state")
        }
        guard o.fingerprint == fingerprint, o.floatCount == floatCount else {
            throw .stateMismatch("the states belong to different models")
        }
        storage.update(from: o.storage, count: floatCount)
        tokenCount = o.tokenCount
    }

    /// Only back to the empty state (or no change): a recurrent state cannot forget its
    /// last tokens.
    public func truncate(to tokens: Int) -> Bool {
        if tokens == tokenCount { return true }
        guard tokens == 0 else { return false }
        reset()
        return true
    }

    // MARK: serialization

    /// Format of `serialized()`:
    ///
    ///     "ROOSTMBA"                                8 bytes magic
    ///     format version                            u32 (1)
    ///     architecture                              u8 length + ASCII ("mamba")
    ///     layers, d_inner, d_conv, d_state          4 x u32
    ///     token count                               u64
    ///     model fingerprint                         u64
    ///     float count                               u64
    ///     floats                                    f32 x count (per layer: conv, then SSM)
    ///     FNV-1a 64 of everything above             u64
    ///
    /// all little-endian.
    public static let magic: [UInt8] = Array("ROOSTMBA".utf8)
    public static let formatVersion: UInt32 = 1

    private var shape: [Int] { [config.layers, config.inner, config.convKernel, config.stateSize] }

    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(96 + byteCount)
        out += MambaState.magic
        put32(&out, MambaState.formatVersion)
        let arch = Array(Architecture.mamba.rawValue.utf8)
        out.append(UInt8(arch.count))
        out += arch
        for v in shape { put32(&out, UInt32(v)) }
        put64(&out, UInt64(tokenCount))
        put64(&out, fingerprint)
        put64(&out, UInt64(floatCount))
        for i in 0..<floatCount { put32(&out, storage[i].bitPattern) }
        let sum = out.withUnsafeBytes { fnv1a64($0) }
        put64(&out, sum)
        return out
    }

    public func restore(from bytes: [UInt8]) throws(ModelError) {
        guard bytes.count >= 8 + 8, Array(bytes[0..<8]) == MambaState.magic else {
            throw .corruptState("not a Mamba state (bad magic)")
        }
        let stored = bytes.count - 8
        let expected = bytes.withUnsafeBytes { fnv1a64(UnsafeRawBufferPointer(rebasing: $0[0..<stored])) }
        var r = StateReader(bytes: bytes)
        r.position = stored
        guard let sum = r.u64(), sum == expected else { throw .corruptState("checksum mismatch (truncated or damaged)") }
        r = StateReader(bytes: Array(bytes[0..<stored]))
        r.position = 8
        guard let version = r.u32() else { throw .corruptState("truncated header") }
        guard version == MambaState.formatVersion else {
            throw .stateMismatch("format version \(version); this build reads version \(MambaState.formatVersion)")
        }
        guard let archLen = r.u8(), let archBytes = r.bytes(Int(archLen)) else { throw .corruptState("truncated header") }
        let arch = String(decoding: archBytes, as: UTF8.self)
        guard arch == Architecture.mamba.rawValue else {
            throw .stateMismatch("architecture \(arch), the model is mamba")
        }
        guard let layers = r.u32(), let inner = r.u32(), let k = r.u32(), let n = r.u32() else {
            throw .corruptState("truncated header")
        }
        let found = [Int(layers), Int(inner), Int(k), Int(n)]
        guard found == shape else {
            throw .stateMismatch("shape (layers, d_inner, d_conv, d_state) \(found), the model has \(shape)")
        }
        guard let tokens = r.u64(), let fp = r.u64(), let count = r.u64() else { throw .corruptState("truncated header") }
        guard fp == fingerprint else {
            throw .stateMismatch("it was made by another model file (fingerprint \(MambaStateBytes.hex(fp)), "
                                 + "this model \(MambaStateBytes.hex(fingerprint)))")
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
}

/// Little-endian helpers of the Mamba state format.
enum MambaStateBytes {
    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, 16 - s.count)) + s
    }
}
