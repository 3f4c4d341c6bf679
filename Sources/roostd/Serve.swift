import APITypes
import ArgumentParser
import Engine
import Foundation
import Logging
import Models
import Server
import ServiceLifecycle
import Systemd
import Tensors

/// `roostd serve`: the daemon.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the models over HTTP on a Unix socket (OpenAI- and Ollama-compatible API).",
        discussion: """
            Settings come from the config file (/etc/roost/roostd.toml when it exists, or --config), then \
            from flags; every flag has a key of the same name without the dashes. --print-config shows the \
            effective settings. Sizes take B, KiB/MiB/GiB, KB/MB/GB or N% (of RAM or the cgroup limit); \
            durations take s, m, h (or -1: forever). SIGTERM/SIGINT stop it gracefully: running requests get \
            --shutdown-grace to finish, then sessions are saved. SIGHUP rescans the models directory.
            """)

    @Option(help: "Config file (TOML). Default: /etc/roost/roostd.toml when it exists.") var config: String?
    @Option(help: "Unix socket path (default: $ROOST_SOCKET, $XDG_RUNTIME_DIR/roost/roost.sock, /run/roost/roost.sock).")
    var socket: String?
    @Option(name: .customLong("socket-mode"), help: "Socket file mode, octal (default 0660).") var socketMode: String?
    @Option(name: .customLong("socket-group"), help: "Group owning the socket file.") var socketGroup: String?
    @Option(name: .customLong("allow-uid"), help: "Also allow this uid (repeatable; root and the daemon's uid always may).")
    var allowUID: [Int] = []
    @Option(name: .customLong("allow-group"), help: "Also allow members of this group (repeatable; default: roost, if it exists).")
    var allowGroup: [String] = []
    @Option(help: "Also listen on loopback TCP, e.g. 127.0.0.1:11434 (off by default; no peer credentials there).")
    var tcp: String?
    @Option(help: "Models directory: each .gguf is a model named by its file stem.") var models: String?
    @Option(help: "A model file (repeatable), named by its file stem.") var model: [String] = []
    @Option(name: .customLong("state-dir"), help: "Where sessions are saved.") var stateDir: String?
    @Option(help: "Compute threads per model (default: the CPUs this process may use).") var threads: Int?
    @Option(name: .customLong("memory-budget"), help: "Memory for loaded models (default 80%). An MoE model larger than what is left keeps its routed experts in an expert store of the rest.") var memoryBudget: String?
    @Option(name: .customLong("keep-alive"), help: "Unload a model this long after its last request (default 5m).")
    var keepAlive: String?
    @Option(name: .customLong("max-sessions"), help: "Sequences generating at once per model (default 8).")
    var maxSessions: Int?
    @Option(name: .customLong("prefill-chunk"), help: "Prompt tokens a sequence runs per scheduler round (default 64). Smaller takes less working memory and lets other sequences in sooner; larger reads long prompts faster.")
    var prefillChunk: Int?
    @Option(name: .customLong("kv-cache"), help: "How transformer models keep keys and values: f16 (default), q8_0 (about half of f16's memory) or f32 (exact).")
    var kvCache: String?
    @Option(name: .customLong("max-queue"), help: "Requests waiting per model before 429 (default 64).") var maxQueue: Int?
    @Option(name: .customLong("max-body"), help: "Largest request body (default 8MiB).") var maxBody: String?
    @Option(name: .customLong("max-prompt-tokens"), help: "Longest prompt in tokens (default 65536).") var maxPromptTokens: Int?
    @Option(name: .customLong("default-max-tokens"), help: "Tokens generated when a request sets no limit (default 2048).")
    var defaultMaxTokens: Int?
    @Option(name: .customLong("request-timeout"), help: "Whole-request timeout (default 10m).") var requestTimeout: String?
    @Option(name: .customLong("shutdown-grace"), help: "Time running requests get at shutdown (default 10s).")
    var shutdownGrace: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.") var logLevel: String?
    @Flag(name: .customLong("print-config"), help: "Print the effective settings as TOML and exit.") var printConfig = false

    func settings() throws -> ServeSettings {
        let env = ProcessInfo.processInfo.environment
        var s = ServeSettings.defaults(environment: env, threads: SystemCPU.usableCount)
        let file = config ?? (FileManager.default.fileExists(atPath: "/etc/roost/roostd.toml") ? "/etc/roost/roostd.toml" : nil)
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else { throw CommandFailure("\(file): cannot read") }
            try s.apply(toml: String(decoding: data, as: UTF8.self), file: file)
        }
        if let socket { s.socket = socket }
        if let socketMode { s.socketMode = socketMode }
        if let socketGroup { s.socketGroup = socketGroup }
        if !allowUID.isEmpty { s.allowUID = allowUID }
        if !allowGroup.isEmpty { s.allowGroup = allowGroup }
        if let tcp { s.tcp = tcp }
        if let models { s.models = models }
        if !model.isEmpty { s.model = model }
        if let stateDir { s.stateDir = stateDir }
        if let threads { s.threads = threads }
        if let memoryBudget { s.memoryBudget = memoryBudget }
        if let keepAlive { s.keepAlive = keepAlive }
        if let maxSessions { s.maxSessions = maxSessions }
        if let prefillChunk { s.prefillChunk = prefillChunk }
        if let kvCache { s.kvCache = kvCache }
        if let maxQueue { s.maxQueue = maxQueue }
        if let maxBody { s.maxBody = maxBody }
        if let maxPromptTokens { s.maxPromptTokens = maxPromptTokens }
        if let defaultMaxTokens { s.defaultMaxTokens = defaultMaxTokens }
        if let requestTimeout { s.requestTimeout = requestTimeout }
        if let shutdownGrace { s.shutdownGrace = shutdownGrace }
        if let logLevel { s.logLevel = logLevel }
        return s
    }

    func run() async throws {
        let s = try settings()
        if printConfig {
            print(s.toml(), terminator: "")
            return
        }
        guard (1...1024).contains(s.threads) else { throw CommandFailure("threads must be in 1...1024") }
        guard (1...256).contains(s.maxSessions) else { throw CommandFailure("max-sessions must be in 1...256") }
        guard (1...4096).contains(s.prefillChunk) else { throw CommandFailure("prefill-chunk must be in 1...4096") }
        guard let kvCache = KVCacheType(name: s.kvCache) else {
            throw CommandFailure("kv-cache: '\(s.kvCache)' is not one of f16, q8_0, f32")
        }
        guard (0...100_000).contains(s.maxQueue) else { throw CommandFailure("max-queue must be in 0...100000") }
        guard let mode = mode_t(s.socketMode, radix: 8), mode <= 0o777 else {
            throw CommandFailure("socket-mode: '\(s.socketMode)' is not an octal mode like 0660")
        }
        guard let level = Logger.Level(rawValue: s.logLevel) else { throw CommandFailure("log-level: '\(s.logLevel)' is unknown") }
        var tcp: (host: String, port: Int)?
        if let t = s.tcp {
            guard let colon = t.lastIndex(of: ":"), let port = Int(t[t.index(after: colon)...]), (1...65535).contains(port) else {
                throw CommandFailure("tcp: '\(t)' is not HOST:PORT")
            }
            var host = String(t[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard ["127.0.0.1", "::1", "localhost"].contains(host) else {
                throw CommandFailure("tcp: only loopback addresses (127.0.0.1, ::1) are allowed; found '\(host)'")
            }
            tcp = (host, port)
        }
        var groups = Set<UInt32>()
        for g in s.allowGroup {
            do { groups.insert(try SocketPath.groupID(g)) } catch { throw CommandFailure("allow-group: \(error.description)") }
        }
        if s.allowGroup.isEmpty, let g = getgrnam("roost") { groups.insert(g.pointee.gr_gid) }
        let access = AccessPolicy(uids: Set(s.allowUID.map { UInt32($0) }), groups: groups, allowNetwork: true)
        let keepAlive = try SizeParser.seconds(s.keepAlive, what: "keep-alive") ?? Double.greatestFiniteMagnitude
        let engineConfig = EngineConfiguration(
            modelsDirectory: s.models, modelFiles: s.model, threads: s.threads,
            limits: SchedulerLimits(maxActive: s.maxSessions, maxQueue: s.maxQueue, prefillChunk: s.prefillChunk),
            stateDirectory: s.stateDir,
            memoryBudgetBytes: try SizeParser.bytes(s.memoryBudget, what: "memory-budget"),
            keepAliveSeconds: keepAlive, defaultMaxTokens: s.defaultMaxTokens, maxPromptTokens: s.maxPromptTokens,
            requestTimeoutSeconds: try SizeParser.seconds(s.requestTimeout, what: "request-timeout"), kvCache: kvCache)

        // Structured fields to the journal when stderr is connected to it, plain stderr otherwise.
        let journal = SystemdLogging.stderrIsJournal()
        LoggingSystem.bootstrap { label in
            if journal {
                var h = JournalLogHandler(label: label)
                h.logLevel = level
                return h
            }
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        var logger = Logger(label: "roostd")
        logger.logLevel = level
        // Socket activation: a listening socket from the service manager replaces binding --socket.
        let activated: ActivatedSocket?
        do { activated = try SocketActivation.inheritedUnixSocket() } catch { throw CommandFailure(error.description) }
        let kernels: Kernels
        do { kernels = try Kernels.select(environment: ProcessInfo.processInfo.environment) } catch {
            throw CommandFailure(error.description)
        }
        // Scanning models and reading saved sessions may take a while on a slow disk: ask the
        // service manager for more start-up time every 10 s until it is done.
        let extendStart = DispatchSource.makeTimerSource(queue: .global())
        extendStart.schedule(deadline: .now(), repeating: 10)
        extendStart.setEventHandler { SystemdNotifier.notify(.extendTimeout(microseconds: 30_000_000)) }
        extendStart.resume()  // does nothing without $NOTIFY_SOCKET
        let engine: InferenceEngine
        do {
            defer { extendStart.cancel() }
            SystemdNotifier.notify(.status("scanning models and saved sessions"))
            engine = try InferenceEngine(configuration: engineConfig, logger: logger, kernels: kernels)
        } catch {
            throw CommandFailure(error.description)
        }
        // SIGHUP rescans the models directory (new files appear, removed ones go when unloaded).
        signal(SIGHUP, SIG_IGN)
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hup.setEventHandler { [logger] in
            logger.info("SIGHUP: rescanning models")
            engine.rescanModels()
        }
        hup.resume()
        defer { hup.cancel() }
        let limits = APILimits(maxBodyBytes: try SizeParser.bytes(s.maxBody, what: "max-body"))
        let api = RoostAPI(engine: engine, limits: limits, version: RoostVersion.string)
        let grace = try SizeParser.seconds(s.shutdownGrace, what: "shutdown-grace") ?? 10
        let listen = ListenConfiguration(
            socketPath: activated.map { $0.path ?? "fd \($0.fd)" } ?? s.socket, socketMode: mode,
            socketGroup: s.socketGroup, tcp: tcp, access: access, shutdownGraceSeconds: grace,
            inheritedSocket: activated?.fd)
        var services: [any Service] = []
        if SystemdNotifier.isEnabled {
            services.append(SystemdService(engine: engine, watchdog: SystemdNotifier.watchdogInterval(),
                                           stopSeconds: grace + 30, logger: logger))
        }
        do {
            try await RoostServer.run(api: api, listen: listen, logger: logger, services: services) {
                // READY=1 once the socket is bound (or taken over) and the models directory scanned.
                SystemdNotifier.notify(.ready, .status(SystemdService.statusLine(engine.stats())))
            }
        } catch let e as ListenerError {
            throw CommandFailure(e.description)
        }
    }
}
