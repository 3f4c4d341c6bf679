import Foundation
import Testing
import GGUF

@Suite struct FuzzTests {
    /// Valid seed files with their layouts (field positions to aim integer mutations at).
    static func seeds() throws -> [(bytes: [UInt8], layout: GGUFWriter.Layout)] {
        var out = [try smallFile(), try smallFile(alignment: 64)]
        var rng = SeededRNG(seed: 11)
        var w = try GGUFWriter(version: 2)
        for (k, v) in everyTypeMetadata() { w.add(k, v) }
        try w.addTensor(name: "blk.0.ffn_up_exps.weight", type: .q4_0, dims: [32, 2, 4], data: randomBytes(18 * 8, &rng))
        try w.addTensor(name: "k", type: .q4_K, dims: [256], data: randomBytes(144, &rng))
        try w.addTensor(name: "h", type: .f16, dims: [3], data: randomBytes(6, &rng))
        out.append(w.serializeWithLayout())
        return out
    }

    static let boundaries: [UInt64] = [
        0, 1, 2, 3, 4, 5, 31, 32, 33, 0xFF, 0x100, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
        0x1_0000_0000, UInt64(Int64.max), UInt64(Int64.max) + 1, UInt64.max, UInt64.max - 1,
    ]

    @Test func mutatedFilesParseOrFailCleanly() throws {
        let seeds = try Self.seeds()
        for s in seeds { _ = try GGUFFile(bytes: s.bytes) }
        var rng = SeededRNG(seed: 0x5EED)
        var outcomes: [String: Int] = [:]
        let iterations = 12_000
        for i in 0..<iterations {
            let seed = seeds[i % seeds.count]
            var b = seed.bytes
            let layout = seed.layout
            let rounds = Int.random(in: 1...3, using: &rng)
            for _ in 0..<rounds {
                switch Int.random(in: 0..<7, using: &rng) {
                case 0: // flip bits
                    if !b.isEmpty { b[Int.random(in: 0..<b.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng) }
                case 1: // truncate
                    b = Array(b.prefix(Int.random(in: 0...b.count, using: &rng)))
                case 2: // insert a random range
                    let at = Int.random(in: 0...b.count, using: &rng)
                    b.insert(contentsOf: randomBytes(Int.random(in: 1...16, using: &rng), &rng), at: at)
                case 3: // delete a range
                    if !b.isEmpty {
                        let at = Int.random(in: 0..<b.count, using: &rng)
                        let n = min(b.count - at, Int.random(in: 1...16, using: &rng))
                        b.removeSubrange(at..<(at + n))
                    }
                default: // set a known integer field to a boundary value
                    var fields: [(Int, Int)] = [(layout.versionField, 4), (layout.tensorCountField, 8), (layout.kvCountField, 8)]
                    fields += layout.kvStarts.map { ($0, 8) }
                    fields += layout.valueStarts.map { ($0, 8) }
                    fields += layout.valueStarts.map { ($0 - 4, 4) }
                    for t in layout.tensorInfos {
                        fields += [(t.infoStart, 8), (t.nDimsField, 4), (t.typeField, 4), (t.offsetField, 8)]
                        fields += t.dimFields.map { ($0, 8) }
                    }
                    let (at, width) = fields[Int.random(in: 0..<fields.count, using: &rng)]
                    let v = Self.boundaries[Int.random(in: 0..<Self.boundaries.count, using: &rng)]
                    if width == 4 { putLE(UInt32(truncatingIfNeeded: v), at: at, in: &b) } else { putLE(v, at: at, in: &b) }
                }
            }
            outcomes[parseOutcome(b), default: 0] += 1
        }
        #expect(outcomes.values.reduce(0, +) == iterations)
        // The mutations reach deep: many different errors, and some files survive.
        #expect(outcomes.count >= 12, "\(outcomes)")
        #expect((outcomes["ok"] ?? 0) > 0)
    }
}
