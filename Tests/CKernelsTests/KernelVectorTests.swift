import CKernels
import Foundation
import Testing

/// Every kernel path's dequantize and Q8_0 activation quantize against gguf-py, bit for
/// bit, on the vectors committed in Tests/Fixtures/kernels (tools/gen_kernel_vectors.py).
/// A kernel missing from a table fails (it is not skipped), and so does a missing file.
@Suite struct KernelVectorTests {
    /// The weight types the fixtures must cover (and this suite checks).
    static let weightTypes = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "F16", "BF16"]

    /// Output slots past n that a kernel must not touch.
    static let guardCount = 16
    static let guardValue = Float(bitPattern: 0xDEAD_BEEF)

    @Test func manifestCoversEveryTestedType() throws {
        let m = try KernelVectors.manifest()
        #expect(m.dequantize.map(\.type) == Self.weightTypes)
        #expect(m.quantize.map(\.type) == ["Q8_0"])
        #expect(!KernelPathTable.available.isEmpty)
        #expect(KernelPathTable.available.first?.name == "ref")
    }

    @Test(arguments: weightTypes)
    func dequantizeMatchesGGUFPy(type: String) throws {
        let manifest = try KernelVectors.manifest()
        guard let v = manifest.dequantize.first(where: { $0.type == type }) else {
            Issue.record("\(KernelVectors.directory.path)/manifest.json has no dequantize vector for \(type) (regenerate with `make fixtures`)")
            return
        }
        let blocks = [UInt8](try KernelVectors.read(v.blocksFile, sha256: v.blocksSha256))
        let expected = KernelVectors.floats(try KernelVectors.read(v.expectedFile, sha256: v.expectedSha256))

        // The fixture's layout must be the one the C side uses for this type.
        guard let traits = roost_type_traits_get(Int32(v.ggmlType)) else {
            Issue.record("roost_type_traits_get(\(v.ggmlType)) is NULL: CKernels does not know \(type)")
            return
        }
        try #require(Int(traits.pointee.block_size) == v.blockSize && Int(traits.pointee.type_size) == v.typeSize,
                     "\(type): CKernels block \(traits.pointee.block_size) elements / \(traits.pointee.type_size) bytes, fixture \(v.blockSize) / \(v.typeSize)")
        let nBlocks = v.nElements / v.blockSize
        try #require(v.nElements % v.blockSize == 0 && blocks.count == nBlocks * v.typeSize && expected.count == v.nElements,
                     "\(type): fixture sizes disagree with the manifest (\(blocks.count) block bytes, \(expected.count) floats, \(v.nElements) elements)")

        let paths = KernelPathTable.available
        let refFn = paths.first { $0.path == Int32(ROOST_PATH_REF.rawValue) }?.dequantize(v.ggmlType)
        for p in paths {
            guard let fn = p.dequantize(v.ggmlType) else {
                Issue.record("path \(p.name): dequantize kernel for \(type) is missing (NULL in roost_kernels_for(\(p.name))->dequantize[\(v.ggmlType)])")
                continue
            }
            let impl = p.name != "ref" && refFn.map { unsafeBitCast(fn, to: UnsafeRawPointer.self) == unsafeBitCast($0, to: UnsafeRawPointer.self) } == true
                ? "\(p.name) (ref fallback)" : p.name

            // All blocks in one call.
            let whole = Self.run(fn, blocks, v.nElements)
            Self.compare(whole, expected, label: "path \(impl), \(type) dequantize of \(nBlocks) blocks in one call", blockSize: v.blockSize)

            // Block by block (each block at its packed, possibly unaligned, offset).
            var pieces: [Float] = []
            var overrun: [Int] = []
            for b in 0..<nBlocks {
                let one = Self.run(fn, Array(blocks[(b * v.typeSize)..<((b + 1) * v.typeSize)]), v.blockSize)
                pieces += one.prefix(v.blockSize)
                if !one[v.blockSize...].allSatisfy({ $0.bitPattern == Self.guardValue.bitPattern }) { overrun.append(b) }
            }
            #expect(overrun.isEmpty, "path \(impl), \(type): a one-block dequantize wrote past its \(v.blockSize) floats (blocks \(overrun))")
            Self.compare(pieces + [Float](repeating: Self.guardValue, count: Self.guardCount), expected,
                         label: "path \(impl), \(type) dequantize block by block", blockSize: v.blockSize)
        }
    }

    @Test func quantizeQ8_0MatchesGGUFPy() throws {
        let manifest = try KernelVectors.manifest()
        guard let v = manifest.quantize.first(where: { $0.type == "Q8_0" }) else {
            Issue.record("\(KernelVectors.directory.path)/manifest.json has no Q8_0 quantize vector (regenerate with `make fixtures`)")
            return
        }
        let input = KernelVectors.floats(try KernelVectors.read(v.inputFile, sha256: v.inputSha256))
        let expected = [UInt8](try KernelVectors.read(v.expectedFile, sha256: v.expectedSha256))
        let q8 = Int(ROOST_TYPE_Q8_0.rawValue)
        try #require(v.ggmlType == q8)
        let traits = try #require(roost_type_traits_get(Int32(q8)))
        let blockSize = Int(traits.pointee.block_size), typeSize = Int(traits.pointee.type_size)
        try #require(input.count == v.nElements && expected.count == v.nElements / blockSize * typeSize,
                     "Q8_0 quantize fixture sizes disagree with the manifest")
        let nBlocks = v.nElements / blockSize

        for p in KernelPathTable.available {
            guard let fn = p.quantize(q8) else {
                Issue.record("path \(p.name): quantize kernel for Q8_0 is missing (NULL in roost_kernels_for(\(p.name))->quantize[\(q8)])")
                continue
            }
            let guardByte: UInt8 = 0xA5
            var out = [UInt8](repeating: guardByte, count: expected.count + 64)
            input.withUnsafeBufferPointer { x in
                out.withUnsafeMutableBytes { y in fn(x.baseAddress, y.baseAddress, Int64(v.nElements)) }
            }
            #expect(out[expected.count...].allSatisfy { $0 == guardByte },
                    "path \(p.name): Q8_0 quantize wrote past the end of its \(nBlocks) blocks")
            var bad: [String] = []
            for b in 0..<nBlocks where out[(b * typeSize)..<((b + 1) * typeSize)] != expected[(b * typeSize)..<((b + 1) * typeSize)] {
                let got = Array(out[(b * typeSize)..<((b + 1) * typeSize)])
                let want = Array(expected[(b * typeSize)..<((b + 1) * typeSize)])
                let d = { (x: [UInt8]) in UInt16(x[0]) | UInt16(x[1]) << 8 }
                let j = (2..<typeSize).first { got[$0] != want[$0] }
                var s = "block \(b): d 0x\(String(d(got), radix: 16)) vs gguf-py 0x\(String(d(want), radix: 16))"
                if let j {
                    s += ", first differing q[\(j - 2)] = \(Int8(bitPattern: got[j])) vs gguf-py \(Int8(bitPattern: want[j])) (input \(input[b * blockSize + j - 2]))"
                }
                bad.append(s)
            }
            if !bad.isEmpty {
                Issue.record("path \(p.name): Q8_0 quantize differs from gguf-py in \(bad.count) of \(nBlocks) blocks: \(bad.prefix(4).joined(separator: "; "))")
            }
        }
    }

    // MARK: - helpers

    /// Dequantizes n elements from `blocks` into n floats followed by guard slots.
    static func run(_ fn: roost_dequantize_fn, _ blocks: [UInt8], _ n: Int) -> [Float] {
        var out = [Float](repeating: guardValue, count: n + guardCount)
        blocks.withUnsafeBytes { x in
            out.withUnsafeMutableBufferPointer { y in fn(x.baseAddress, y.baseAddress, Int64(n)) }
        }
        return out
    }

    /// Bitwise comparison (any NaN equals any NaN); also checks the guard slots after n.
    static func compare(_ got: [Float], _ expected: [Float], label: String, blockSize: Int) {
        let n = expected.count
        #expect(got[n...].allSatisfy { $0.bitPattern == guardValue.bitPattern }, "\(label): wrote past the end of its \(n) floats")
        var mismatches: [Int] = []
        for i in 0..<n {
            let a = got[i], b = expected[i]
            if a.bitPattern != b.bitPattern && !(a.isNaN && b.isNaN) { mismatches.append(i) }
        }
        guard !mismatches.isEmpty else { return }
        let examples = mismatches.prefix(4).map { i in
            "[\(i)] (block \(i / blockSize)) got \(got[i]) (0x\(String(got[i].bitPattern, radix: 16))), gguf-py \(expected[i]) (0x\(String(expected[i].bitPattern, radix: 16)))"
        }
        Issue.record("\(label): \(mismatches.count) of \(n) floats differ from gguf-py; \(examples.joined(separator: "; "))")
    }
}
