import CKernels
import Foundation

/// The gguf-py oracle vectors committed in Tests/Fixtures/kernels (made by
/// tools/gen_kernel_vectors.py; see the README there).
enum KernelVectors {
    static var directory: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent() // CKernelsTests
            .deletingLastPathComponent() // Tests
            .appendingPathComponent("Fixtures/kernels")
    }

    struct Manifest: Decodable {
        let ggufVersion: String
        let dequantize: [Dequant]
        let quantize: [Quant]
    }

    /// Weight blocks and the floats gguf-py dequantizes them to.
    struct Dequant: Decodable {
        let type: String
        let ggmlType: Int
        let nElements: Int
        let blockSize: Int
        let typeSize: Int
        let blocksFile: String
        let blocksSha256: String
        let expectedFile: String
        let expectedSha256: String
        let source: String
    }

    /// Activation floats and the blocks gguf-py quantizes them to.
    struct Quant: Decodable {
        let type: String
        let ggmlType: Int
        let nElements: Int
        let inputFile: String
        let inputSha256: String
        let expectedFile: String
        let expectedSha256: String
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func manifest() throws -> Manifest {
        let data = try read("manifest.json", sha256: nil)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try decoder.decode(Manifest.self, from: data)
        } catch {
            throw Failure(description: "\(directory.path)/manifest.json does not decode: \(error)")
        }
    }

    /// A committed fixture file; a missing file or a wrong sha256 is an error that says so.
    static func read(_ name: String, sha256 expected: String?) throws -> Data {
        let url = directory.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw Failure(description: "missing fixture file \(url.path): the kernel vectors are committed "
                + "files (regenerate with `make fixtures`)")
        }
        let data = try Data(contentsOf: url)
        if let expected {
            let got = SHA256.hex(data)
            guard got == expected else {
                throw Failure(description: "\(url.path): sha256 \(got) is not the manifest's \(expected) "
                    + "(file changed or corrupt; regenerate with `make fixtures`)")
            }
        }
        return data
    }

    static func floats(_ data: Data) -> [Float] {
        data.withUnsafeBytes { raw in
            (0..<raw.count / 4).map { i in
                Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
            }
        }
    }
}

/// Every path compiled in and supported by this CPU, with its kernel table.
struct KernelPathTable {
    let path: Int32
    let name: String
    let table: UnsafePointer<roost_kernels>

    static var available: [KernelPathTable] {
        (0..<Int32(ROOST_PATH_COUNT.rawValue)).compactMap { p in
            guard roost_path_available(p) != 0, let t = roost_kernels_for(p) else { return nil }
            let name = roost_path_name(p).map { String(cString: $0) } ?? "path \(p)"
            return KernelPathTable(path: p, name: name, table: t)
        }
    }

    func dequantize(_ type: Int) -> roost_dequantize_fn? {
        Self.entry(table.pointee.dequantize, type, roost_dequantize_fn?.self)
    }

    func quantize(_ type: Int) -> roost_quantize_fn? {
        Self.entry(table.pointee.quantize, type, roost_quantize_fn?.self)
    }

    /// Entry `index` of an imported C array of ROOST_TYPE_COUNT function pointers.
    static func entry<Tuple, F>(_ tuple: Tuple, _ index: Int, _: F?.Type) -> F? {
        let count = Int(ROOST_TYPE_COUNT.rawValue)
        precondition(MemoryLayout<Tuple>.size == count * MemoryLayout<F?>.stride)
        guard index >= 0, index < count else { return nil }
        return withUnsafeBytes(of: tuple) { raw in
            raw.load(fromByteOffset: index * MemoryLayout<F?>.stride, as: F?.self)
        }
    }
}

/// Minimal SHA-256 (FIPS 180-4), to check the fixture files against the manifest.
enum SHA256 {
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    static func hex(_ data: Data) -> String {
        var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
        var msg = [UInt8](data)
        let bitLength = UInt64(msg.count) * 8
        msg.append(0x80)
        while msg.count % 64 != 56 { msg.append(0) }
        for i in (0..<8).reversed() { msg.append(UInt8(truncatingIfNeeded: bitLength >> (UInt64(i) * 8))) }
        var w = [UInt32](repeating: 0, count: 64)
        for chunk in stride(from: 0, to: msg.count, by: 64) {
            for i in 0..<16 {
                let o = chunk + 4 * i
                w[i] = UInt32(msg[o]) << 24 | UInt32(msg[o + 1]) << 16 | UInt32(msg[o + 2]) << 8 | UInt32(msg[o + 3])
            }
            for i in 16..<64 {
                let s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
                let s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
                w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
            }
            var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
            for i in 0..<64 {
                let t1 = hh &+ (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) &+ ((e & f) ^ (~e & g)) &+ k[i] &+ w[i]
                let t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) &+ ((a & b) ^ (a & c) ^ (b & c))
                (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
            }
            for (i, v) in [a, b, c, d, e, f, g, hh].enumerated() { h[i] = h[i] &+ v }
        }
        return h.map { word in
            let s = String(word, radix: 16)
            return String(repeating: "0", count: 8 - s.count) + s
        }.joined()
    }

    private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
}
