import Models
import Tensors
import Sampling
import Synchronization
import Tokenizers

/// A cancellation flag shared by the API layer (client gone, timeout) and the model thread.
public final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    private let done = Atomic<Bool>(false)
    public init() {}
    public func cancel() { flag.store(true, ordering: .relaxed) }
    public var isCancelled: Bool { flag.load(ordering: .relaxed) }
    /// Set once the request has ended (for whatever reason); cancelling it then does nothing.
    public var isFinished: Bool { done.load(ordering: .acquiring) }
    func markFinished() { done.store(true, ordering: .releasing) }

    private let failureMessage = Mutex<String?>(nil)
    /// Why the generation failed (a model error such as a failed expert read), when it
    /// ended as `.cancelled` for that reason rather than by a cancel.
    public var failure: String? { failureMessage.withLock { $0 } }
    func fail(_ message: String) { failureMessage.withLock { $0 = message } }
}

/// One request in flight on a model's thread: its state, sampler, decoder and stop matcher.
/// Touched only by that thread once submitted.
final class GenerationSequence {
    let request: GenerationRequest
    let state: any SequenceState
    let sampler: Sampler
    var decoder: StreamingDecoder<AnyTokenizer>
    var stops: StopMatcher
    let emit: @Sendable (GenerationEvent) -> Void
    let cancel: CancellationFlag
    let submitted: Double
    let deadline: Double?
    let maxTokens: Int
    let wantLogprobs: Bool

    /// Prompt tokens still to run through the model.
    var prompt: [Int32]
    var promptPosition = 0
    /// Every token of this request's prompt (for the prefix cache).
    let promptTokens: [Int32]
    var cachedTokens: Int
    /// The JSON grammar the output must follow, if any.
    var grammar: GrammarMatcher?
    /// The text that closes an answer in a session's state (`ChatFormat.turnClose`).
    var turnClose = ""
    /// Logits after the whole prompt when it all came from the prefix cache.
    var cachedLogits: [Float]?
    /// A sampled token not yet run through the model.
    var pending: Int32?
    var generated: [Int32] = []
    /// All text generated so far, including what the stop matcher holds back.
    var generatedBytes: [UInt8] = []
    var started = false
    var startTime = 0.0
    var firstTokenTime = 0.0
    var finished = false
    /// Logprob details of tokens whose text is not yet emitted.
    var heldInfos: [TokenInfo] = []
    /// Filled when the model finishes; the engine reads it for sessions.
    var finishReason: FinishReason = .stop

    init(request: GenerationRequest, state: any SequenceState, prompt: [Int32], cachedTokens: Int, tokenizer: AnyTokenizer,
         vocabulary: Int, maxTokens: Int, stops: [String], emit: @escaping @Sendable (GenerationEvent) -> Void,
         cancel: CancellationFlag, defaultTimeout: Double?) throws(EngineError) {
        self.request = request
        self.state = state
        do {
            sampler = try Sampler(parameters: request.sampling, vocabularySize: vocabulary)
            self.stops = try StopMatcher(stops: stops)
        } catch {
            throw .invalidRequest(param: "stop", message: error.description)
        }
        decoder = StreamingDecoder(tokenizer: tokenizer)
        self.emit = emit
        self.cancel = cancel
        let now = monotonicSeconds()
        submitted = now
        let timeout = request.timeoutSeconds ?? defaultTimeout
        deadline = timeout.map { now + $0 }
        self.maxTokens = maxTokens
        wantLogprobs = request.sampling.logprobs || request.sampling.topLogprobs > 0
        self.promptTokens = prompt
        self.prompt = Array(prompt[cachedTokens...])
        self.cachedTokens = cachedTokens
        sampler.acceptPrompt(prompt)
    }

    var inPrefill: Bool { promptPosition < prompt.count }
}
