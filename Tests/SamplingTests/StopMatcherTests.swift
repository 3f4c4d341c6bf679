import Testing
@testable import Sampling

@Suite struct StopMatcherTests {
    /// Feeds all chunks; returns the concatenated output (including finish()
    /// when not stopped) and whether it stopped.
    func run(_ stops: [String], _ chunks: [String]) throws -> (String, Bool) {
        var m = try StopMatcher(stops: stops)
        var out = ""
        for c in chunks {
            let (emit, stopped) = m.feed(c)
            out += emit
            if stopped { return (out, true) }
        }
        return (out + m.finish(), false)
    }

    @Test func stopSplitAcrossFeedsIsNeverEmitted() throws {
        var m = try StopMatcher(stops: ["STOP"])
        let a = m.feed("Hello ST")
        #expect(a.emit == "Hello " && !a.stopped)
        #expect(m.heldBack == "ST")
        let b = m.feed("O")
        #expect(b.emit == "" && !b.stopped)
        let c = m.feed("P and more")
        #expect(c.emit == "" && c.stopped)
        #expect(m.stopped && m.matchedStopIndex == 0)
        #expect(m.feed("later") == ("", true))
        #expect(m.finish() == "")
    }

    @Test func textBeforeStopInSameFeedIsEmitted() throws {
        #expect(try run(["</s>"], ["abc</s>def"]) == ("abc", true))
        #expect(try run(["</s>"], ["a", "</", "s", ">b"]) == ("a", true))
    }

    @Test func partialPrefixThatDoesNotCompleteIsEmittedLater() throws {
        var m = try StopMatcher(stops: ["STOP"])
        #expect(m.feed("ab S") == ("ab ", false))
        #expect(m.feed("T") == ("", false))
        #expect(m.feed("Ox") == ("STOx", false))
        #expect(m.feed("STO") == ("", false))
        #expect(m.finish() == "STO")
    }

    @Test func overlappingPrefixes() throws {
        // "aab": after "aa", "a" could still start the stop.
        #expect(try run(["aab"], ["a", "a", "a", "b", "c"]) == ("a", true))
        #expect(try run(["abab"], ["aba", "bab"]) == ("", true))
        #expect(try run(["abab"], ["abac", "ab"]) == ("abacab", false))
    }

    @Test func multipleStops() throws {
        var m = try StopMatcher(stops: ["\n\n", "END", "User:"])
        #expect(m.feed("one\n") == ("one", false))
        #expect(m.feed("two U") == ("\ntwo ", false))
        #expect(m.feed("ser:") == ("", true))
        #expect(m.matchedStopIndex == 2)
        // The stop that completes first wins, even if another started earlier.
        #expect(try run(["abcd", "bc"], ["abc", "d"]) == ("a", true))
        // Same completion point: the one starting earlier.
        #expect(try run(["c", "abc"], ["xab", "c"]) == ("x", true))
    }

    @Test func unicodeText() throws {
        #expect(try run(["终止"], ["你好终", "止了"]) == ("你好", true))
        #expect(try run(["终止"], ["你好终", "了"]) == ("你好终了", false))
        #expect(try run(["👋🏽"], ["hi 👋", "🏽 there"]) == ("hi ", true))
        // Combining accent split across feeds: matching is by scalars.
        #expect(try run(["e\u{301}!"], ["cafe", "\u{301}", "!"]) == ("caf", true))
        var m = try StopMatcher(stops: ["ß"])
        #expect(m.feed("Straße") == ("Stra", true))
    }

    @Test func noStopsPassesEverythingThrough() throws {
        var m = try StopMatcher(stops: [])
        #expect(m.feed("abc") == ("abc", false))
        #expect(m.finish() == "")
    }

    @Test func randomizedAgainstReference() throws {
        var g = Xoshiro256StarStar(seed: 77)
        let alphabet: [Character] = ["a", "b", "c", "é"]
        func randomString(_ maxLength: Int) -> String {
            String((0..<(1 + Int(g.next() % UInt64(maxLength)))).map { _ in alphabet[Int(g.next() % 4)] })
        }
        for _ in 0..<500 {
            let stops = (0..<(1 + Int(g.next() % 4))).map { _ in randomString(3) }
            let text = Array(randomString(30).unicodeScalars)
            // Reference: earliest completion point, then earliest start.
            var expected = (String(String.UnicodeScalarView(text)), false)
            search: for end in 0..<text.count {
                var best: Int?
                for s in stops.map({ Array($0.unicodeScalars) }) {
                    let start = end + 1 - s.count
                    if start >= 0 && Array(text[start...end]) == s { best = min(best ?? start, start) }
                }
                if let best {
                    expected = (String(String.UnicodeScalarView(text[..<best])), true)
                    break search
                }
            }
            // Random split into chunks.
            var chunks: [String] = []
            var i = 0
            while i < text.count {
                let len = 1 + Int(g.next() % 4)
                let j = min(text.count, i + len)
                chunks.append(String(String.UnicodeScalarView(text[i..<j])))
                i = j
            }
            let got = try run(stops, chunks)
            #expect(got == expected, "stops \(stops), chunks \(chunks)")
        }
    }

    @Test func invalidStops() {
        #expect(throws: SamplingError.tooManyStopStrings(count: 5, maximum: 4)) {
            try StopMatcher(stops: ["a", "b", "c", "d", "e"])
        }
        #expect(throws: SamplingError.emptyStopString(index: 1)) {
            try StopMatcher(stops: ["a", ""])
        }
        #expect(throws: Never.self) { try StopMatcher(stops: ["a", "b", "c", "d"]) }
    }
}
