/// Stop strings over streamed text.
///
/// Text is fed as it is decoded; `feed` returns what can safely be shown.
/// Text that could be the beginning of a stop string is held back until it
/// either completes a stop (then it is never emitted and `stopped` is true)
/// or can no longer match (then it is emitted with the next feed). Matching
/// is on Unicode scalars, so it does not depend on how text is split into
/// feeds or on grapheme clustering. When several stops match, the one that
/// completes first wins (at the same time: the one starting earliest), and
/// everything before its start is emitted.
public struct StopMatcher: Sendable {
    /// OpenAI's limit on the number of stop strings.
    public static let maximumStopCount = 4

    public let stops: [String]
    private let stopScalars: [[Unicode.Scalar]]
    private var pending: [Unicode.Scalar] = []
    public private(set) var stopped = false
    /// Index into `stops` of the stop that matched, once stopped.
    public private(set) var matchedStopIndex: Int?

    public init(stops: [String]) throws(SamplingError) {
        guard stops.count <= Self.maximumStopCount else {
            throw .tooManyStopStrings(count: stops.count, maximum: Self.maximumStopCount)
        }
        for (i, s) in stops.enumerated() where s.unicodeScalars.isEmpty {
            throw .emptyStopString(index: i)
        }
        self.stops = stops
        self.stopScalars = stops.map { Array($0.unicodeScalars) }
    }

    /// Text held back because it could start a stop string.
    public var heldBack: String { Self.string(pending[...]) }

    /// Feeds newly decoded text. Returns the text that can be emitted and
    /// whether a stop string was matched (after which nothing more is
    /// emitted: further feeds return ("", true)).
    public mutating func feed(_ text: String) -> (emit: String, stopped: Bool) {
        if stopped { return ("", true) }
        let start = pending.count
        pending.append(contentsOf: text.unicodeScalars)
        let buffer = pending

        // A stop can only complete inside the new text: scan end positions
        // in time order, so the stop that completes first wins.
        var end = start
        while end < buffer.count {
            var best: (start: Int, index: Int)?
            for (index, stop) in stopScalars.enumerated() {
                let length = stop.count
                let s = end + 1 - length
                guard s >= 0 else { continue }
                if buffer[s...end].elementsEqual(stop) {
                    if best == nil || s < best!.start { best = (s, index) }
                }
            }
            if let best {
                stopped = true
                matchedStopIndex = best.index
                pending = []
                return (Self.string(buffer[..<best.start]), true)
            }
            end += 1
        }

        // Hold back the longest suffix that is a proper prefix of a stop.
        var hold = 0
        for stop in stopScalars {
            let maxLength = min(stop.count - 1, buffer.count)
            var length = maxLength
            while length > hold {
                if buffer[(buffer.count - length)...].elementsEqual(stop[..<length]) {
                    hold = length
                    break
                }
                length -= 1
            }
        }
        let emitEnd = buffer.count - hold
        let emit = Self.string(buffer[..<emitEnd])
        pending = Array(buffer[emitEnd...])
        return (emit, false)
    }

    /// Ends the stream: returns the held-back text (empty after a stop).
    public mutating func finish() -> String {
        let rest = Self.string(pending[...])
        pending = []
        return rest
    }

    private static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}
