/// Errors of the Sampling module. Each names the offending parameter and the
/// allowed range so that the HTTP layer can pass it on as a 400 message.
public enum SamplingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `name` is the parameter (as spelled in `SamplingParameters`), `value`
    /// the rejected value and `allowed` the allowed range in words.
    case invalidParameter(name: String, value: String, allowed: String)
    /// More stop strings than `StopMatcher.maximumStopCount` (OpenAI's limit).
    case tooManyStopStrings(count: Int, maximum: Int)
    /// The stop string at `index` is empty.
    case emptyStopString(index: Int)
    /// The vocabulary size given to a `Sampler` is not positive.
    case invalidVocabularySize(Int)

    public var description: String {
        switch self {
        case let .invalidParameter(name, value, allowed):
            return "\(name) = \(value) is out of range: allowed \(allowed)"
        case let .tooManyStopStrings(count, maximum):
            return "\(count) stop strings given; at most \(maximum) are allowed"
        case let .emptyStopString(index):
            return "stop string \(index) is empty; stop strings must be non-empty"
        case let .invalidVocabularySize(size):
            return "vocabulary size \(size) must be positive"
        }
    }
}

/// The per-request sampling settings (OpenAI / Ollama / llama.cpp names).
///
/// The neutral value of every filter switches it off: temperature 0 is
/// greedy decoding, topK 0, topP 1, minP 0, repeatPenalty 1 and the
/// presence/frequency penalties 0 do nothing.
public struct SamplingParameters: Sendable, Equatable {
    /// Softmax temperature, 0...2. 0 means greedy (argmax after penalties).
    public var temperature: Float
    /// Keep only the k most likely tokens; 0 = off.
    public var topK: Int
    /// Nucleus sampling: keep the smallest set of most likely tokens whose
    /// cumulative probability is >= topP; in (0, 1], 1 = off.
    public var topP: Float
    /// Drop tokens whose probability is below minP * (probability of the most
    /// likely token); in [0, 1], 0 = off.
    public var minP: Float
    /// llama.cpp repetition penalty (> 0, 1 = off): the logits of tokens seen
    /// in the last `repeatLastN` tokens (prompt and generated) are divided by
    /// it when positive and multiplied by it when negative.
    public var repeatPenalty: Float
    /// OpenAI presence penalty, -2...2: logit -= presencePenalty if the token
    /// was generated at least once.
    public var presencePenalty: Float
    /// OpenAI frequency penalty, -2...2: logit -= frequencyPenalty * count of
    /// the token among the generated tokens.
    public var frequencyPenalty: Float
    /// Window of the repetition penalty in tokens, 0...maximumRepeatLastN
    /// (0 switches the repetition penalty off).
    public var repeatLastN: Int
    /// Seed of the deterministic generator; nil = seeded from the system.
    public var seed: UInt64?
    /// Report the sampled token's log probability.
    public var logprobs: Bool
    /// Number of most likely alternatives to report, 0...20.
    public var topLogprobs: Int

    public static let maximumTopLogprobs = 20
    public static let maximumRepeatLastN = 1 << 20

    public init(
        temperature: Float = 1,
        topK: Int = 0,
        topP: Float = 1,
        minP: Float = 0,
        repeatPenalty: Float = 1,
        presencePenalty: Float = 0,
        frequencyPenalty: Float = 0,
        repeatLastN: Int = 64,
        seed: UInt64? = nil,
        logprobs: Bool = false,
        topLogprobs: Int = 0
    ) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repeatPenalty = repeatPenalty
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.repeatLastN = repeatLastN
        self.seed = seed
        self.logprobs = logprobs
        self.topLogprobs = topLogprobs
    }

    /// Greedy decoding: temperature 0, everything else off.
    public static let greedy = SamplingParameters(temperature: 0)

    /// Checks every parameter; NaN is rejected everywhere.
    public func validate() throws(SamplingError) {
        func fail(_ name: String, _ value: some CustomStringConvertible, _ allowed: String) -> SamplingError {
            .invalidParameter(name: name, value: value.description, allowed: allowed)
        }
        guard temperature >= 0, temperature <= 2 else {
            throw fail("temperature", temperature, "0...2 (0 = greedy)")
        }
        guard topK >= 0 else { throw fail("topK", topK, ">= 0 (0 = off)") }
        guard topP > 0, topP <= 1 else { throw fail("topP", topP, "(0, 1] (1 = off)") }
        guard minP >= 0, minP <= 1 else { throw fail("minP", minP, "[0, 1] (0 = off)") }
        guard repeatPenalty > 0, repeatPenalty.isFinite else {
            throw fail("repeatPenalty", repeatPenalty, "> 0 and finite (1 = off)")
        }
        guard presencePenalty >= -2, presencePenalty <= 2 else {
            throw fail("presencePenalty", presencePenalty, "-2...2 (0 = off)")
        }
        guard frequencyPenalty >= -2, frequencyPenalty <= 2 else {
            throw fail("frequencyPenalty", frequencyPenalty, "-2...2 (0 = off)")
        }
        guard repeatLastN >= 0, repeatLastN <= Self.maximumRepeatLastN else {
            throw fail("repeatLastN", repeatLastN, "0...\(Self.maximumRepeatLastN) (0 = off)")
        }
        guard topLogprobs >= 0, topLogprobs <= Self.maximumTopLogprobs else {
            throw fail("topLogprobs", topLogprobs, "0...\(Self.maximumTopLogprobs)")
        }
    }
}
