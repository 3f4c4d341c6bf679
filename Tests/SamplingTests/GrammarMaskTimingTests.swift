import Testing
@testable import Sampling

/// A 65,536-token vocabulary (the size of RWKV World): the 256 bytes, then
/// pseudo-random words, punctuation runs and UTF-8 text, deterministic.
let largeVocabulary: GrammarVocabulary = {
    var g = Xoshiro256StarStar(seed: 42)
    var tokens: [[UInt8]] = (0..<256).map { [UInt8($0)] }
    let pieces: [[UInt8]] = ["\"", "\":", "\": ", "\",", "{\"", "}", "]", ",", " ", "\\n", "é", "日本", "😀", "\\"].map { Array($0.utf8) }
    var seen = Set(tokens)
    while tokens.count < 65_535 {
        var t: [UInt8] = []
        let parts = 1 + Int(g.next() % 3)
        for _ in 0..<parts {
            if g.next() % 4 == 0 {
                t += pieces[Int(g.next() % UInt64(pieces.count))]
            } else {
                if g.next() % 2 == 0 { t.append(0x20) }
                for _ in 0..<(1 + Int(g.next() % 8)) { t.append(UInt8(0x61 + g.next() % 26)) }
            }
        }
        if seen.insert(t).inserted { tokens.append(t) }
    }
    tokens.append([])
    do { return try GrammarVocabulary(tokens: tokens, eosTokens: [65_535]) } catch { preconditionFailure("\(error)") }
}()

@Suite struct GrammarMaskTimingTests {
    /// Prints the mask time per state (no timed assertion: debug builds and
    /// shared machines vary; `roostd grammar-sample --timing` measures release).
    @Test func maskTimeOnALargeVocabulary() throws {
        let schema = ##"{"type":"object","properties":{"name":{"type":"string"},"n":{"type":"number"},"tags":{"type":"array","items":{"anyOf":[{"type":"string","maxLength":4},{"type":"string"}]}}},"required":["tags"]}"##
        let m = GrammarMatcher(grammar: try Grammar.jsonSchema(Array(schema.utf8)), vocabulary: largeVocabulary)
        var logits = [Float](repeating: 0, count: largeVocabulary.size)
        let clock = ContinuousClock()
        for prefix in ["", "{", ##"{"name":"##, ##"{"name":"abc"##, ##"{"name":"a","n":1"##, ##"{"tags":["##, ##"{"tags":["x"##] {
            #expect(acceptsPrefix(m, Array(prefix.utf8)))
            var best = Duration.seconds(1000)
            var allowed = 0
            for _ in 0..<3 {
                for i in logits.indices { logits[i] = 0 }
                let start = clock.now
                logits.withUnsafeMutableBufferPointer { p in
                    if let base = p.baseAddress { m.maskLogits(base, count: p.count) }
                }
                best = min(best, clock.now - start)
                allowed = logits.filter { $0 == 0 }.count
            }
            #expect(allowed > 0 && !m.hitDeadEnd)
            print("grammar mask, \(largeVocabulary.size) tokens, \(largeVocabulary.trieNodeCount) trie nodes, after \(prefix): \(best), \(allowed) allowed")
        }
    }
}
