import Foundation

/// The on-disk form of a session: one file per session,
///
///     "ROOSTSES" | version u32 | header length u32 | header (JSON) | state length u64 | state | FNV-1a 64 of all before
///
/// written to a temporary name, fsynced, renamed over the final name and the directory
/// fsynced, so a crash leaves either the old file or the new one, never half of one. The
/// same bytes are the export/import blob.
public struct SessionRecord: Codable, Sendable, Equatable {
    public var id: String
    public var model: String
    /// `RWKVModel.fingerprint` of the model the state belongs to, in hex.
    public var modelFingerprint: String
    public var owner: UInt32
    public var created: Double
    public var updated: Double
    /// Tokens the state has consumed.
    public var tokens: Int
    /// Completed request/answer turns.
    public var turns: Int

    enum CodingKeys: String, CodingKey {
        case id, model, owner, created, updated, tokens, turns
        case modelFingerprint = "model_fingerprint"
    }
}

public enum SessionFile {
    public static let magic: [UInt8] = Array("ROOSTSES".utf8)
    public static let version: UInt32 = 1
    /// Largest header accepted (a sanity bound against corrupt lengths).
    static let maxHeader = 1 << 20

    public static func encode(_ record: SessionRecord, state: [UInt8]) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let header = (try? encoder.encode(record)).map { Array($0) } ?? Array("{}".utf8)
        var out = magic
        out.reserveCapacity(32 + header.count + state.count)
        append(&out, version)
        append(&out, UInt32(header.count))
        out += header
        append(&out, UInt64(state.count))
        out += state
        append(&out, fnv1a64(out[...]))
        return out
    }

    public static func decode(_ bytes: [UInt8]) throws(EngineError) -> (SessionRecord, [UInt8]) {
        guard bytes.count >= magic.count + 4 + 4 + 8 + 8 else { throw .badSession("\(bytes.count) bytes is too short") }
        guard Array(bytes[0..<8]) == magic else { throw .badSession("not a Roost session (bad magic)") }
        let version = read32(bytes, 8)
        guard version == Self.version else {
            throw .badSession("format version \(version); this roostd reads version \(Self.version)")
        }
        let stored = read64(bytes, bytes.count - 8)
        guard fnv1a64(bytes[0..<(bytes.count - 8)]) == stored else { throw .badSession("checksum mismatch") }
        let headerLength = Int(read32(bytes, 12))
        guard headerLength <= maxHeader, 16 + headerLength + 8 + 8 <= bytes.count else {
            throw .badSession("header length \(headerLength) does not fit the file")
        }
        let header = Data(bytes[16..<(16 + headerLength)])
        let stateLength = read64(bytes, 16 + headerLength)
        let stateStart = 16 + headerLength + 8
        guard stateLength == UInt64(bytes.count - 8 - stateStart) else {
            throw .badSession("state length \(stateLength) does not fit the file")
        }
        let record: SessionRecord
        do { record = try JSONDecoder().decode(SessionRecord.self, from: header) } catch {
            throw .badSession("header is not valid: \(error)")
        }
        guard SessionID.isValid(record.id) else { throw .badSession("bad session id in header") }
        return (record, Array(bytes[stateStart..<(bytes.count - 8)]))
    }

    /// Writes atomically: temp file (0600), fsync, rename, fsync of the directory.
    public static func write(_ bytes: [UInt8], to path: String) throws(EngineError) {
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = dir + "/." + (path as NSString).lastPathComponent + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .internalFailure("cannot create \(tmp): \(String(cString: strerror(errno)))") }
        var ok = true
        bytes.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 { if errno == EINTR { continue }; ok = false; break }
                off += n
            }
        }
        if ok && fsync(fd) != 0 { ok = false }
        close(fd)
        guard ok else {
            unlink(tmp)
            throw .internalFailure("cannot write \(tmp): \(String(cString: strerror(errno)))")
        }
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw .internalFailure("cannot rename \(tmp): \(String(cString: strerror(errno)))")
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    static func append(_ out: inout [UInt8], _ v: UInt32) {
        for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) }
    }

    static func append(_ out: inout [UInt8], _ v: UInt64) {
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }

    static func read32(_ b: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[at + $1]) << (8 * UInt32($1)) }
    }

    static func read64(_ b: [UInt8], _ at: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) }
    }

    static func fnv1a64(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }
}

/// Session ids: "ses_" and 32 hex digits from the system's random generator (unguessable).
public enum SessionID {
    public static func make() -> String {
        var g = SystemRandomNumberGenerator()
        let a = g.next() as UInt64, b = g.next() as UInt64
        return "ses_" + hex(a) + hex(b)
    }

    public static func isValid(_ id: String) -> Bool {
        let u = Array(id.utf8)
        guard u.count == 36, id.hasPrefix("ses_") else { return false }
        return u[4...].allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
