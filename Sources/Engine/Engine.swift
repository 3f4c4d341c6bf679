import Foundation
import GGUF
import Logging
import Models
import Sampling
import Synchronization
import Tensors
import Tokenizers

/// What the engine is configured with (from `roostd serve` flags and the config file).
public struct EngineConfiguration: Sendable {
    /// Directory scanned for `*.gguf` (each a model named by its file stem).
    public var modelsDirectory: String?
    /// Single model files (named by their stem), besides the directory.
    public var modelFiles: [String]
    /// Threads per model.
    public var threads: Int
    public var limits: SchedulerLimits
    /// Where sessions persist; nil keeps them in memory only.
    public var stateDirectory: String?
    /// Total bytes the loaded models may take (mapped weight bytes + states).
    public var memoryBudgetBytes: Int
    /// Seconds a model stays loaded after its last request.
    public var keepAliveSeconds: Double
    /// Tokens generated when a request names no limit.
    public var defaultMaxTokens: Int
    /// Longest prompt accepted, in tokens.
    public var maxPromptTokens: Int
    /// Whole-request timeout in seconds (nil: none).
    public var requestTimeoutSeconds: Double?
    /// How attention models keep keys and values (recurrent models have no KV cache).
    public var kvCache: KVCacheType

    public init(modelsDirectory: String? = nil, modelFiles: [String] = [], threads: Int = 1,
                limits: SchedulerLimits = SchedulerLimits(), stateDirectory: String? = nil,
                memoryBudgetBytes: Int = Int.max, keepAliveSeconds: Double = 300, defaultMaxTokens: Int = 2048,
                maxPromptTokens: Int = 65536, requestTimeoutSeconds: Double? = 600, kvCache: KVCacheType = .f16) {
        self.modelsDirectory = modelsDirectory
        self.modelFiles = modelFiles
        self.threads = threads
        self.limits = limits
        self.stateDirectory = stateDirectory
        self.memoryBudgetBytes = memoryBudgetBytes
        self.keepAliveSeconds = keepAliveSeconds
        self.defaultMaxTokens = defaultMaxTokens
        self.maxPromptTokens = maxPromptTokens
        self.requestTimeoutSeconds = requestTimeoutSeconds
        self.kvCache = kvCache
    }
}

/// A model the engine knows of (loaded or not).
public struct ModelDescription: Sendable, Equatable {
    public var name: String
    public var path: String
    public var sizeBytes: Int
    public var modified: Double
    public var architecture: String?
    public var quantization: String?
    public var parameterCount: Int
    /// Bytes of the routed experts (`*_exps` tensors) of an MoE model; 0 for others. Such a
    /// model loads within a memory budget smaller than its file: the experts then live in
    /// an expert store sized to what is left.
    public var routedExpertBytes: Int = 0
    /// Why the file cannot be used, when it cannot.
    public var error: String?
    public var loaded: Bool
    /// When a loaded model will be unloaded if still idle (seconds since the epoch).
    public var expiresAt: Double?
    public var stats: SchedulerStats?
    /// The counters of a loaded MoE model's expert store, when its experts live in a
    /// buffer pool of a memory budget (nil otherwise).
    public var experts: ExpertStoreStats?
}

/// What identifies the bytes of a model file: checked before each request, so a file
/// replaced or truncated under a loaded model is noticed before its mapping is read (a
/// truncated mapping faults with SIGBUS).
struct FileIdentity: Sendable, Equatable {
    var device: UInt64
    var inode: UInt64
    var size: Int
    var modifiedSeconds: Int
    var modifiedNanoseconds: Int

    /// The identity of the file at `path` (following symlinks), or the errno of a failed stat.
    static func of(_ path: String) -> Result<FileIdentity, FileIdentityError> {
        var st = stat()
        guard stat(path, &st) == 0 else { return .failure(FileIdentityError(errno: errno)) }
        return .success(FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int(st.st_size),
                                     modifiedSeconds: Int(st.st_mtim.tv_sec), modifiedNanoseconds: Int(st.st_mtim.tv_nsec)))
    }

    /// The modification time in seconds since the epoch (as `ModelDescription.modified`).
    var modified: Double { Double(modifiedSeconds) + Double(modifiedNanoseconds) / 1e9 }

    /// What differs from `old`, in words ("size 871392 -> 4096 bytes"), or nil when nothing does.
    func change(from old: FileIdentity) -> String? {
        var what: [String] = []
        if size != old.size { what.append("size \(old.size) -> \(size) bytes") }
        if device != old.device || inode != old.inode { what.append("replaced by another file (inode \(old.inode) -> \(inode))") }
        if modifiedSeconds != old.modifiedSeconds || modifiedNanoseconds != old.modifiedNanoseconds {
            what.append("modification time changed")
        }
        return what.isEmpty ? nil : what.joined(separator: ", ")
    }
}

struct FileIdentityError: Error {
    var errno: Int32
    var description: String { String(cString: strerror(errno)) }
}

/// A session as the API shows it.
public struct SessionInfo: Sendable, Equatable {
    public var id: String
    public var model: String
    public var owner: UInt32
    public var created: Double
    public var updated: Double
    public var tokens: Int
    public var turns: Int
    public var stateBytes: Int
}

/// A running request: its events and how to cancel it.
public struct GenerationHandle: Sendable {
    public let events: AsyncStream<GenerationEvent>
    public let cancellation: CancellationFlag
    /// Prompt tokens of the request (after templating).
    public let promptTokenCount: Int
    /// The rendered prompt ends inside an open `<think>` block (some chat templates open it), so
    /// the answer starts with reasoning.
    public let startsInReasoning: Bool

    public func cancel() { cancellation.cancel() }
}

/// The model registry, sessions and schedulers. Thread-safe; nothing here runs on an event loop
/// for long: model compute runs on each model's own thread.
public final class InferenceEngine: @unchecked Sendable {
    public let configuration: EngineConfiguration
    let logger: Logger
    let kernels: Kernels

    final class LoadedModel: @unchecked Sendable {
        let name: String
        let model: any LanguageModel
        let tokenizer: AnyTokenizer
        let worker: ModelWorker
        let format: ChatFormat
        var lastUse: Double
        var keepAlive: Double
        /// The file as it was when the model loaded.
        let identity: FileIdentity
        /// Working memory counted beside the dense weights when the experts live in a store.
        let allowance: Int
        /// Memory the model counts against the budget: its file, or with an expert store
        /// of a budget, the rest of the file plus the store's pool and the working memory.
        var costBytes: Int {
            guard let store = model.expertStore, let pool = store.budgetBytes else { return model.file.fileSize }
            let experts = store.layers.joined().reduce(0) { $0 + $1.byteCount }
            return model.file.fileSize - experts + pool + allowance
        }
        private let vocabularyLock = Mutex<GrammarVocabulary?>(nil)
        init(name: String, model: any LanguageModel, tokenizer: AnyTokenizer, worker: ModelWorker, format: ChatFormat,
             keepAlive: Double, identity: FileIdentity, allowance: Int) {
            self.identity = identity
            self.allowance = allowance
            self.name = name
            self.model = model
            self.tokenizer = tokenizer
            self.worker = worker
            self.format = format
            self.lastUse = monotonicSeconds()
            self.keepAlive = keepAlive
        }

        /// The vocabulary as the grammar matcher sees it (built on first use: the bytes each
        /// token decodes to, none for control tokens; EOS ends a document).
        func grammarVocabulary() throws(GrammarError) -> GrammarVocabulary {
            if let v = vocabularyLock.withLock({ $0 }) { return v }
            var tokens: [[UInt8]] = []
            tokens.reserveCapacity(model.vocabulary)
            for id in 0..<model.vocabulary {
                var bytes: [UInt8] = []
                do { try tokenizer.appendDecoded(Int32(id), to: &bytes) } catch { bytes = [] }
                tokens.append(bytes)
            }
            let v = try GrammarVocabulary(tokens: tokens, eosTokens: worker.endTokens)
            vocabularyLock.withLock { $0 = v }
            return v
        }
    }

    final class Session: @unchecked Sendable {
        var record: SessionRecord
        /// The live state once the model is loaded; before that, `stateBytes`.
        var state: (any SequenceState)?
        var stateBytes: [UInt8]?
        var busy = false
        var dirty = false
        init(record: SessionRecord, state: (any SequenceState)?, stateBytes: [UInt8]?) {
            self.record = record
            self.state = state
            self.stateBytes = stateBytes
        }
    }

    struct Shared {
        var catalog: [String: ModelDescription] = [:]
        var loaded: [String: LoadedModel] = [:]
        var sessions: [String: Session] = [:]
        var shuttingDown = false
        var loading: Set<String> = []
    }

    private let shared = Mutex(Shared())
    private let loadMonitor = Monitor()

    public init(configuration: EngineConfiguration, logger: Logger, kernels: Kernels = .best) throws(EngineError) {
        self.configuration = configuration
        self.logger = logger
        self.kernels = kernels
        rescanModels()
        try loadSessions()
    }

    // MARK: - models

    /// Rescans the models directory and files (at start and on SIGHUP). Loaded models stay.
    public func rescanModels() {
        var found: [String: String] = [:]
        if let dir = configuration.modelsDirectory,
           let names = try? FileManager.default.contentsOfDirectory(atPath: dir) {
            for n in names.sorted() where n.hasSuffix(".gguf") {
                found[String(n.dropLast(5))] = dir + "/" + n
            }
        }
        for f in configuration.modelFiles {
            let stem = ((f as NSString).lastPathComponent as NSString).deletingPathExtension
            found[stem] = f
        }
        var descriptions: [String: ModelDescription] = [:]
        for (name, path) in found { descriptions[name] = Self.describe(name: name, path: path) }
        shared.withLock { s in
            for (name, var d) in descriptions {
                if s.loaded[name] != nil { d.loaded = true }
                s.catalog[name] = d
            }
            for name in s.catalog.keys where descriptions[name] == nil && s.loaded[name] == nil {
                s.catalog[name] = nil
            }
        }
        logger.info("models: \(descriptions.count) found", metadata: ["names": "\(descriptions.keys.sorted())"])
    }

    static func describe(name: String, path: String) -> ModelDescription {
        var d = ModelDescription(name: name, path: path, sizeBytes: 0, modified: 0, architecture: nil,
                                 quantization: nil, parameterCount: 0, error: nil, loaded: false)
        if case .success(let file) = FileIdentity.of(path) {  // follows symlinks
            d.sizeBytes = file.size
            d.modified = file.modified
        }
        do {
            let file = try GGUFFile(path: path)
            d.architecture = file.architecture
            var bytesByType: [String: Int] = [:]
            for t in file.tensors {
                d.parameterCount += t.elementCount
                if t.dims.count >= 2 { bytesByType[t.type.name.lowercased(), default: 0] += t.byteCount }
                if t.name.hasSuffix("_exps.weight") { d.routedExpertBytes += t.byteCount }
            }
            d.quantization = bytesByType.max { $0.value < $1.value }?.key
            if let arch = file.architecture, Architecture(rawValue: arch) == nil {
                d.error = "architecture '\(arch)' is not supported"
            }
        } catch {
            d.error = error.description
        }
        return d
    }

    public func listModels() -> [ModelDescription] {
        shared.withLock { s in
            s.catalog.values.map { d -> ModelDescription in
                var d = d
                if let m = s.loaded[d.name] {
                    d.loaded = true
                    d.expiresAt = wallClockNow() + max(0, m.keepAlive - (monotonicSeconds() - m.lastUse))
                    d.stats = m.worker.stats
                    if let store = m.model.expertStore, store.isBudgeted { d.experts = store.stats }
                }
                return d
            }.sorted { $0.name < $1.name }
        }
    }

    /// The loaded model of that name, loading it first (and unloading idle ones to fit the budget).
    func acquire(_ name: String, keepAlive: Double?) throws(EngineError) -> LoadedModel {
        enum Decision { case ready(LoadedModel), mustLoad, fail(EngineError), stale(LoadedModel, String) }
        // One load at a time per name; other requests for it wait.
        let decision: Decision = loadMonitor.withLock {
            while true {
                let (m, d, busy, closing) = shared.withLock { s in
                    (s.loaded[name], s.catalog[name], s.loading.contains(name), s.shuttingDown)
                }
                if closing { return .fail(.shuttingDown) }
                if let m {
                    // One stat per request: a replaced or truncated file must not be read
                    // through the old mapping.
                    switch FileIdentity.of(m.model.file.path) {
                    case .failure(let e): return .stale(m, "it can no longer be read (\(e.description))")
                    case .success(let now):
                        if let what = now.change(from: m.identity) { return .stale(m, what) }
                    }
                    m.lastUse = monotonicSeconds()
                    if let k = keepAlive { m.keepAlive = k }
                    return .ready(m)
                }
                guard var d else { return .fail(.unknownModel(name)) }
                if !busy, Self.fileDiffers(d) {
                    // Changed since it was described (or last failed to load): describe it again.
                    d = Self.describe(name: name, path: d.path)
                    let fresh = d
                    shared.withLock { $0.catalog[name] = fresh }
                }
                if let e = d.error { return .fail(.modelUnavailable(name: name, reason: e)) }
                if busy { loadMonitor.wait(seconds: 0.1); continue }
                shared.withLock { _ = $0.loading.insert(name) }
                return .mustLoad
            }
        }
        switch decision {
        case .ready(let m): return m
        case .fail(let e): throw e
        case let .stale(m, what):
            logger.error("model file changed under a loaded model", metadata: [
                "model": "\(name)", "file": "\(m.model.file.path)", "change": "\(what)"])
            unload(name, reason: "its file changed (\(what))")
            var fresh = Self.describe(name: name, path: m.model.file.path)
            fresh.loaded = false
            shared.withLock { s in
                if s.loaded[name] == nil, s.catalog[name]?.path == fresh.path { s.catalog[name] = fresh }
            }
            throw .modelFileChanged(name: name, path: m.model.file.path, change: what)
        case .mustLoad:
            defer {
                shared.withLock { _ = $0.loading.remove(name) }
                loadMonitor.withLock { loadMonitor.broadcast() }
            }
            return try load(name, keepAlive: keepAlive ?? configuration.keepAliveSeconds)
        }
    }

    /// True when the file no longer matches what `describe` saw (size or modification time).
    static func fileDiffers(_ d: ModelDescription) -> Bool {
        guard case .success(let now) = FileIdentity.of(d.path) else { return d.error == nil }
        return now.size != d.sizeBytes || now.modified != d.modified
    }

    /// Working memory counted beside an MoE model's dense weights when its experts live in
    /// an expert store: the runner's scratch (activations, logits, matrix scratch) and one
    /// state holding the whole context, at most 64 MiB (more states than that are not
    /// counted, as for models without a store).
    static func workingAllowance(_ model: any LanguageModel, limits: SchedulerLimits, threads: Int) -> Int {
        let scratch = model.workingBytes(maxTokens: max(1, limits.prefillChunk), maxBatch: max(1, limits.maxActive),
                                         threads: max(1, threads))
        let state = model.stateBytes(tokens: model.contextLength ?? 0)
        return min(64 << 20, scratch + state)
    }

    /// What loading an MoE model with its experts in a store needs: the dense weights, the
    /// working memory and a pool of one layer's experts (the least the store accepts).
    struct StorePlan {
        var allowance: Int
        var dense: Int
        var needed: Int
    }

    /// Loads `d` with the configured KV-cache type, or with F16 when the model's heads
    /// cannot be kept in it (a Q8_0 cache with head sizes that are not multiples of 32):
    /// one setting for all models should not make some of them unusable.
    private func loadModel(_ d: ModelDescription, expertBudget: Int?, quiet: Bool) throws(ModelError) -> any LanguageModel {
        do {
            return try loadLanguageModel(path: d.path, kernels: kernels, expertBudgetBytes: expertBudget,
                                         kvCache: configuration.kvCache)
        } catch .kvCacheUnsupported(let type, let headSize) {
            if !quiet {
                logger.warning("KV cache type not usable for this model; using f16", metadata: [
                    "model": "\(d.name)", "kv_cache": "\(type)", "head_size": "\(headSize)"])
            }
            return try loadLanguageModel(path: d.path, kernels: kernels, expertBudgetBytes: expertBudget, kvCache: .f16)
        }
    }

    /// Maps the model without a store to read its shapes (nothing is read from the experts).
    private func storePlan(_ d: ModelDescription) throws(EngineError) -> StorePlan {
        let probe: any LanguageModel
        do { probe = try loadModel(d, expertBudget: nil, quiet: true) } catch {
            throw .modelUnavailable(name: d.name, reason: error.description)
        }
        let allowance = Self.workingAllowance(probe, limits: configuration.limits, threads: configuration.threads)
        let dense = d.sizeBytes - d.routedExpertBytes + allowance
        var minimumPool = 0
        if let stats = probe.expertStore?.stats { minimumPool = (stats.expertsPerLayer.max() ?? 0) * stats.slotBytes }
        return StorePlan(allowance: allowance, dense: dense, needed: dense + minimumPool)
    }

    private func load(_ name: String, keepAlive: Double) throws(EngineError) -> LoadedModel {
        guard let d = shared.withLock({ $0.catalog[name] }) else { throw .unknownModel(name) }
        let budget = configuration.memoryBudgetBytes
        let identity: FileIdentity
        switch FileIdentity.of(d.path) {
        case .success(let i): identity = i
        case .failure(let e): throw .modelUnavailable(name: name, reason: "\(d.path): \(e.description)")
        }
        // An MoE model that does not fit beside the loaded ones needs its dense part, its
        // working memory and an expert pool of at least one layer's experts; others need the
        // whole file.
        let inUse = shared.withLock { s in s.loaded.values.reduce(0) { $0 + $1.costBytes } }
        let plan: StorePlan? = d.routedExpertBytes > 0 && inUse + d.sizeBytes > budget ? try storePlan(d) : nil
        let needed = plan.map { min($0.needed, d.sizeBytes) } ?? d.sizeBytes
        guard needed <= budget else { throw .overBudget(name: name, neededBytes: needed, budgetBytes: budget) }
        // Unload idle models (least recently used first) until the new one fits.
        var used = 0
        while true {
            let (inUse, victim) = shared.withLock { s -> (Int, LoadedModel?) in
                let used = s.loaded.values.reduce(0) { $0 + $1.costBytes }
                let idle = s.loaded.values.filter { $0.worker.isIdle }.min { $0.lastUse < $1.lastUse }
                return (used, idle)
            }
            used = inUse
            if used + d.sizeBytes <= budget || (needed < d.sizeBytes && used + needed <= budget) { break }
            guard let victim else { throw .overBudget(name: name, neededBytes: used + needed, budgetBytes: budget) }
            unload(victim.name, reason: "to make room for \(name)")
        }
        let expertBudget: Int? = used + d.sizeBytes <= budget ? nil : budget - used - (plan?.dense ?? 0)
        let start = monotonicSeconds()
        let model: any LanguageModel
        let tokenizer: AnyTokenizer
        do {
            model = try loadModel(d, expertBudget: expertBudget, quiet: false)
            tokenizer = AnyTokenizer(try loadTokenizer(model.file))
        } catch {
            throw .modelUnavailable(name: name, reason: error.description)
        }
        let format = ChatFormat(file: model.file, tokenizer: tokenizer, logger: logger)
        let worker = try ModelWorker(model: model, tokenizer: tokenizer, threads: configuration.threads,
                                     limits: configuration.limits, logger: logger) { [weak self] seq, worker in
            self?.sequenceFinished(seq, worker: worker)
        }
        let loaded = LoadedModel(name: name, model: model, tokenizer: tokenizer, worker: worker, format: format,
                                 keepAlive: keepAlive, identity: identity,
                                 allowance: expertBudget == nil ? 0 : plan?.allowance ?? 0)
        shared.withLock { s in
            s.loaded[name] = loaded
            s.catalog[name]?.loaded = true
        }
        logger.info("model loaded", metadata: [
            "model": "\(name)", "seconds": "\(String(format: "%.2f", monotonicSeconds() - start))",
            "arch": "\(model.architecture.rawValue)",
        ])
        return loaded
    }

    /// Unloads a model now (its worker finishes what runs first; sessions keep their states as bytes).
    public func unload(_ name: String, reason: String) {
        guard let m = shared.withLock({ s -> LoadedModel? in
            let m = s.loaded.removeValue(forKey: name)
            s.catalog[name]?.loaded = false
            return m
        }) else { return }
        m.worker.shutdown()
        shared.withLock { s in
            for session in s.sessions.values where session.record.model == name {
                if let st = session.state {
                    session.stateBytes = st.serialized()
                    session.state = nil
                }
            }
        }
        logger.info("model unloaded", metadata: ["model": "\(name)", "reason": "\(reason)"])
    }

    /// Unloads models idle for longer than their keep-alive; call periodically.
    public func unloadExpired() {
        let now = monotonicSeconds()
        let expired = shared.withLock { s in
            s.loaded.values.filter { $0.worker.isIdle && now - $0.lastUse > $0.keepAlive }.map(\.name)
        }
        for name in expired { unload(name, reason: "keep-alive expired") }
    }

    // MARK: - generation

    /// Starts a request: renders and tokenizes the prompt, restores the session or the longest
    /// cached prefix, and queues it on the model's thread.
    public func generate(_ request: GenerationRequest) throws(EngineError) -> GenerationHandle {
        if shared.withLock({ $0.shuttingDown }) { throw .shuttingDown }
        let m = try acquire(request.model, keepAlive: request.keepAliveSeconds)
        m.lastUse = monotonicSeconds()

        var session: Session?
        if let id = request.session {
            session = try claimSession(id, principal: request.principal, model: m)
        }
        do {
            var matcher: GrammarMatcher?
            if let spec = request.grammar {
                do throws(GrammarError) {
                    let grammar: Grammar
                    switch spec {
                    case .jsonObject: grammar = .jsonObject()
                    case .jsonSchema(let bytes): grammar = try .jsonSchema(bytes)
                    }
                    let vocabulary = try m.grammarVocabulary()
                    try vocabulary.check(grammar)
                    matcher = GrammarMatcher(grammar: grammar, vocabulary: vocabulary)
                } catch {
                    throw EngineError.invalidRequest(param: "response_format", message: error.description)
                }
            }
            let (tokens, stops, opensThink) = try renderPrompt(request.prompt, model: m, continuing: session != nil)
            guard !tokens.isEmpty else { throw EngineError.invalidRequest(param: "messages", message: "the prompt is empty") }
            guard tokens.count <= configuration.maxPromptTokens else {
                throw EngineError.invalidRequest(
                    param: "messages",
                    message: "the prompt has \(tokens.count) tokens; this server accepts at most \(configuration.maxPromptTokens)")
            }
            let state: any SequenceState
            var cached = 0
            var cachedLogits: [Float]?
            if let session, let st = session.state {
                state = st
            } else if let hit = m.worker.lookupPrefix(tokens) {
                state = hit.state
                cached = hit.tokens
                cachedLogits = hit.logits
                if cachedLogits == nil && cached == tokens.count { cached = 0; state.reset() }
            } else {
                state = m.model.makeSequenceState()
            }
            if let context = m.model.contextLength {
                let earlier = state.tokenCount - cached
                let fresh = tokens.count - cached
                guard earlier + fresh < context else {
                    let what = earlier > 0 ? "the session holds \(earlier) tokens and the new messages \(fresh)"
                        : "the prompt has \(tokens.count) tokens"
                    throw EngineError.invalidRequest(
                        param: "messages",
                        message: "\(what); the model's context holds \(context), and at least one must be left to answer")
                }
            }
            let (stream, continuation) = AsyncStream<GenerationEvent>.makeStream(bufferingPolicy: .unbounded)
            let flag = CancellationFlag()
            let worker = m.worker
            continuation.onTermination = { @Sendable _ in
                flag.cancel()
                worker.wake()
            }
            let seq = try GenerationSequence(
                request: request, state: state, prompt: tokens, cachedTokens: cached, tokenizer: m.tokenizer,
                vocabulary: m.model.vocabulary, maxTokens: request.maxTokens ?? configuration.defaultMaxTokens,
                stops: Array(Set(request.stop + stops)).sorted(), emit: { event in
                    continuation.yield(event)
                    if case .finished = event { continuation.finish() }
                }, cancel: flag, defaultTimeout: configuration.requestTimeoutSeconds)
            seq.cachedLogits = cachedLogits
            seq.grammar = matcher
            seq.turnClose = m.format.turnClose
            try m.worker.submit(seq)
            return GenerationHandle(events: stream, cancellation: flag, promptTokenCount: tokens.count,
                                    startsInReasoning: opensThink)
        } catch let error as EngineError {
            if let session { releaseSession(session) }
            throw error
        } catch {
            if let session { releaseSession(session) }
            throw .internalFailure("\(error)")
        }
    }

    /// Prompt tokens, the default stop strings of the model's chat format, and whether the
    /// rendered chat prompt leaves a `<think>` block open.
    func renderPrompt(_ prompt: PromptInput, model m: LoadedModel, continuing: Bool) throws(EngineError)
        -> ([Int32], [String], Bool) {
        switch prompt {
        case .tokens(let t):
            for id in t where id < 0 || Int(id) >= m.model.vocabulary {
                throw .invalidRequest(param: "prompt", message: "token \(id) is outside the vocabulary 0..<\(m.model.vocabulary)")
            }
            return (t, [], false)
        case .text(let s):
            let options = continuing ? EncodeOptions(parseSpecial: true) : EncodeOptions.prompt
            do { return (try m.tokenizer.encode(s, options: options), [], false) } catch {
                throw .invalidRequest(param: "prompt", message: error.description)
            }
        case .chat(let messages):
            let text = try m.format.render(messages, addGenerationPrompt: true, continuing: continuing)
            let tail = text.suffix(16).trimmingCharacters(in: .whitespacesAndNewlines)
            let opens = tail.hasSuffix("<think>")
            // Control tokens the template writes (<|im_start|>, BOS) are parsed; BOS is added
            // only when the model wants one and the template did not write it.
            let writesBOS = !m.format.bosToken.isEmpty && text.hasPrefix(m.format.bosToken)
            let options = EncodeOptions(addSpecial: !continuing && !writesBOS, parseSpecial: true)
            do { return (try m.tokenizer.encode(text, options: options), m.format.stops, opens) } catch {
                throw .invalidRequest(param: "messages", message: error.description)
            }
        }
    }

    /// The chat prompt a request would run, as text (for `roostd template` and tests).
    public func renderChat(model: String, messages: [PromptMessage]) throws(EngineError) -> String {
        let m = try acquire(model, keepAlive: nil)
        return try m.format.render(messages, addGenerationPrompt: true, continuing: false)
    }

    /// Tokenizes text with a model's tokenizer.
    public func tokenize(model: String, text: String) throws(EngineError) -> [Int32] {
        let m = try acquire(model, keepAlive: nil)
        do { return try m.tokenizer.encode(text) } catch { throw .invalidRequest(param: "text", message: error.description) }
    }

    private func sequenceFinished(_ seq: GenerationSequence, worker: ModelWorker) {
        guard let id = seq.request.session else { return }
        let session = shared.withLock { $0.sessions[id] }
        guard let session else { return }
        if seq.started {
            // Run the last sampled token and the turn separator so the state holds the whole turn.
            var tail: [Int32] = []
            if let p = seq.pending { tail.append(p); seq.pending = nil }
            let close = seq.turnClose
            if !close.isEmpty && !seq.generatedBytes.reversed().starts(with: Array(close.utf8).reversed()) {
                tail += (try? worker.tokenizer.encode(close, options: EncodeOptions(parseSpecial: true))) ?? []
            }
            worker.feed(tail, into: seq.state)
        }
        shared.withLock { _ in
            session.state = seq.state
            session.stateBytes = nil
            session.record.tokens = seq.state.tokenCount
            session.record.turns += seq.started ? 1 : 0
            session.record.updated = wallClockNow()
            session.busy = false
            session.dirty = true
        }
        persist(session)
    }


    // MARK: - sessions

    private var sessionDirectory: String? { configuration.stateDirectory.map { $0 + "/sessions" } }

    private func loadSessions() throws(EngineError) {
        guard let dir = sessionDirectory else { return }
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw .internalFailure("cannot create the state directory \(dir): \(error.localizedDescription)")
        }
        chmod(configuration.stateDirectory ?? dir, 0o700)
        chmod(dir, 0o700)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        var loaded = 0
        for name in names where name.hasSuffix(".session") && !name.hasPrefix(".") {
            let path = dir + "/" + name
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            do {
                let (record, state) = try SessionFile.decode(Array(data))
                guard record.id + ".session" == name else { throw EngineError.badSession("file name and id differ") }
                let s = Session(record: record, state: nil, stateBytes: state)
                shared.withLock { $0.sessions[record.id] = s }
                loaded += 1
            } catch {
                // Never deleted: reported and left for the operator.
                logger.warning("session file not loaded", metadata: ["file": "\(path)", "error": "\(error)"])
            }
        }
        if loaded > 0 { logger.info("sessions restored", metadata: ["count": "\(loaded)"]) }
    }

    private func claimSession(_ id: String, principal: Principal, model m: LoadedModel) throws(EngineError) -> Session {
        let result: Result<Session, EngineError> = shared.withLock { s in
            guard let session = s.sessions[id], session.record.owner == principal.uid || principal.uid == 0 else {
                return .failure(.unknownSession(id))
            }
            guard session.record.model == m.name else {
                return .failure(.invalidRequest(param: "model",
                                                message: "session '\(id)' belongs to model '\(session.record.model)'"))
            }
            if session.busy { return .failure(.sessionBusy(id)) }
            session.busy = true
            return .success(session)
        }
        let session = try result.get()
        do {
            try materialize(session, model: m)
        } catch {
            releaseSession(session)
            throw error
        }
        return session
    }

    private func materialize(_ session: Session, model m: LoadedModel) throws(EngineError) {
        if session.state != nil { return }
        let state = m.model.makeSequenceState()
        if let bytes = session.stateBytes {
            do { try state.restore(from: bytes) } catch {
                throw .badSession("session '\(session.record.id)': \(error.description)")
            }
        }
        shared.withLock { _ in
            session.state = state
            session.stateBytes = nil
        }
    }

    private func releaseSession(_ session: Session) {
        shared.withLock { _ in session.busy = false }
    }

    private func info(_ s: Session) -> SessionInfo {
        SessionInfo(id: s.record.id, model: s.record.model, owner: s.record.owner, created: s.record.created,
                    updated: s.record.updated, tokens: s.record.tokens, turns: s.record.turns,
                    stateBytes: s.state?.byteCount ?? s.stateBytes?.count ?? 0)
    }

    public func createSession(model: String, principal: Principal) throws(EngineError) -> SessionInfo {
        let m = try acquire(model, keepAlive: nil)
        let now = wallClockNow()
        let record = SessionRecord(id: SessionID.make(), model: model, modelFingerprint: SessionID.hex(m.model.fingerprint),
                                   owner: principal.uid, created: now, updated: now, tokens: 0, turns: 0)
        let s = Session(record: record, state: m.model.makeSequenceState(), stateBytes: nil)
        s.dirty = true
        shared.withLock { $0.sessions[record.id] = s }
        persist(s)
        return info(s)
    }

    public func listSessions(principal: Principal) -> [SessionInfo] {
        shared.withLock { s in
            s.sessions.values.filter { principal.uid == 0 || $0.record.owner == principal.uid }.map(info)
        }.sorted { $0.updated > $1.updated }
    }

    public func session(_ id: String, principal: Principal) throws(EngineError) -> SessionInfo {
        let found = shared.withLock { s in s.sessions[id] }
        guard let found, principal.uid == 0 || found.record.owner == principal.uid else { throw .unknownSession(id) }
        return info(found)
    }

    public func deleteSession(_ id: String, principal: Principal) throws(EngineError) {
        let result: Result<Session, EngineError> = shared.withLock { s in
            guard let found = s.sessions[id], principal.uid == 0 || found.record.owner == principal.uid else {
                return .failure(.unknownSession(id))
            }
            if found.busy { return .failure(.sessionBusy(id)) }
            s.sessions[id] = nil
            return .success(found)
        }
        _ = try result.get()
        if let dir = sessionDirectory { unlink(dir + "/" + id + ".session") }
    }

    /// The session file's bytes (its export blob).
    public func exportSession(_ id: String, principal: Principal) throws(EngineError) -> [UInt8] {
        let result: Result<(SessionRecord, [UInt8]), EngineError> = shared.withLock { s in
            guard let found = s.sessions[id], principal.uid == 0 || found.record.owner == principal.uid else {
                return .failure(.unknownSession(id))
            }
            if found.busy { return .failure(.sessionBusy(id)) }
            return .success((found.record, found.state?.serialized() ?? found.stateBytes ?? []))
        }
        let (record, state) = try result.get()
        return SessionFile.encode(record, state: state)
    }

    /// Imports an exported blob as a new session of `principal` (a new id when the old one is taken).
    public func importSession(_ blob: [UInt8], principal: Principal) throws(EngineError) -> SessionInfo {
        var (record, state) = try SessionFile.decode(blob)
        let m = try acquire(record.model, keepAlive: nil)
        let live = m.model.makeSequenceState()
        do { try live.restore(from: state) } catch { throw .badSession(error.description) }
        state = []
        record.owner = principal.uid
        record.updated = wallClockNow()
        let s: Session = shared.withLock { sh in
            if sh.sessions[record.id] != nil { record.id = SessionID.make() }
            let s = Session(record: record, state: live, stateBytes: nil)
            s.dirty = true
            sh.sessions[record.id] = s
            return s
        }
        persist(s)
        return info(s)
    }

    private func persist(_ session: Session) {
        guard let dir = sessionDirectory else { return }
        let snapshot: (SessionRecord, [UInt8])? = shared.withLock { _ in
            guard session.dirty else { return nil }
            session.dirty = false
            return (session.record, session.state?.serialized() ?? session.stateBytes ?? [])
        }
        guard let (record, state) = snapshot else { return }
        do {
            try SessionFile.write(SessionFile.encode(record, state: state), to: dir + "/" + record.id + ".session")
        } catch {
            shared.withLock { _ in session.dirty = true }
            logger.error("session not saved", metadata: ["session": "\(record.id)", "error": "\(error)"])
        }
    }

    // MARK: - stats and shutdown

    public struct Stats: Sendable {
        public var models: [ModelDescription]
        public var sessions: Int
        public var queued: Int
        public var active: Int
    }

    public func stats() -> Stats {
        let models = listModels()
        let sessions = shared.withLock { $0.sessions.count }
        let queued = models.reduce(0) { $0 + ($1.stats?.queued ?? 0) }
        let active = models.reduce(0) { $0 + ($1.stats?.active ?? 0) }
        return Stats(models: models, sessions: sessions, queued: queued, active: active)
    }

    /// Stops accepting new requests (they get `shuttingDown`); running ones go on.
    public func beginShutdown() {
        shared.withLock { $0.shuttingDown = true }
    }

    /// Stops accepting, cancels what runs, unloads every model and saves every session.
    public func shutdown() {
        let names = shared.withLock { s -> [String] in
            s.shuttingDown = true
            return Array(s.loaded.keys)
        }
        for n in names { unload(n, reason: "shutdown") }
        let all = shared.withLock { Array($0.sessions.values) }
        for s in all { persist(s) }
    }
}
