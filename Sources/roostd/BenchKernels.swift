import ArgumentParser
import Foundation
import Tensors

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `roostd bench-kernels`: matvec throughput per weight type, in weight bytes per second,
/// next to a memory read-bandwidth probe measured in the same run with the same threads.
/// docs/PERFORMANCE.md describes the method and keeps the reference table.
struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-kernels",
        abstract: "Measure matvec throughput per weight type against memory read bandwidth.",
        discussion: """
            Each measurement cycles through distinct copies of a random weight matrix that \
            together exceed the last-level cache several times, so weights stream from memory \
            as they do in a model's decode step. The bandwidth probe reads a buffer of the same \
            size with the same threads, before and after the types; the higher of the two is \
            the reference. Times are medians of repeated rounds. See docs/PERFORMANCE.md.
            """)

    @Option(help: "Rows of the weight matrix.") var rows = 4096
    @Option(help: "Columns of the weight matrix (a multiple of 256 for the K-quants).") var cols = 4096
    @Option(help: "Comma-separated thread counts (default: 1 and the CPUs this process may use).")
    var threads: String?
    @Option(help: "Comma-separated weight types, e.g. q8_0,q4_K (default: every type).") var types: String?
    @Option(help: "Kernel path: ref, avx2, avx512 or neon (default: $ROOST_KERNELS, else the fastest).")
    var path: String?
    @Option(help: "MiB of weight copies cycled through (default: 4x the last-level cache, at least 256).")
    var workingSetMib: Int?
    @Option(help: "Seconds spent per measurement.") var seconds: Double = 0.5
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard rows > 0, cols > 0 else { throw ValidationError("--rows and --cols must be positive") }
        guard seconds > 0, seconds <= 60 else { throw ValidationError("--seconds must be in (0, 60]") }
        if let w = workingSetMib, w < 1 || w > 65_536 {
            throw ValidationError("--working-set-mib must be in 1...65536")
        }
    }

    func run() throws {
        let kernels = try selectKernels()
        let threadCounts = try parseThreads()
        let selected = try parseTypes(kernels: kernels)
        let llc = SystemCPU.lastLevelCacheBytes
        let workingSet = (workingSetMib ?? max(256, 4 * (llc ?? 0) >> 20)) << 20

        let bench = KernelBench(kernels: kernels, rows: rows, cols: cols, workingSet: workingSet,
                                seconds: seconds, progress: isatty(STDERR_FILENO) != 0)
        let header = "roostd bench-kernels: path \(kernels.path.name), cpu \(CPUFeatures.current)\n"
            + "matrix \(rows) x \(cols), working set \(workingSet >> 20) MiB"
            + (llc.map { " (last-level cache \($0 >> 20) MiB)" } ?? "")
        if bench.progress { FileHandle.standardError.write(Data("measuring...\n".utf8)) }
        var results: [KernelBench.Result] = []
        var probes: [KernelBench.Probe] = []
        for t in threadCounts {
            let pool = WorkerPool(threads: t)
            let before = try bench.bandwidth(pool: pool)
            var rowsForT: [KernelBench.Result] = []
            for type in selected {
                rowsForT.append(try bench.matvec(type: type, pool: pool))
            }
            let after = try bench.bandwidth(pool: pool)
            let probe = KernelBench.Probe(threads: pool.threads, bytesPerSecond: max(before, after),
                                          before: before, after: after)
            probes.append(probe)
            for var r in rowsForT {
                r.fraction = r.bytesPerSecond / probe.bytesPerSecond
                results.append(r)
            }
        }
        let out = json ? renderJSON(kernels: kernels, llc: llc, workingSet: workingSet, probes: probes, results: results)
                       : header + "\n" + renderText(probes: probes, results: results)
        FileHandle.standardOutput.write(Data((out + "\n").utf8))
    }

    private func selectKernels() throws -> Kernels {
        do {
            if let path {
                guard let p = KernelPath(name: path) else {
                    throw ValidationError("unknown kernel path '\(path)'; available here: "
                        + KernelPath.available.map(\.name).joined(separator: ", "))
                }
                return try Kernels(path: p)
            }
            return try Kernels.select(environment: ProcessInfo.processInfo.environment)
        } catch let e as KernelSelectionError {
            throw ValidationError(e.description)
        }
    }

    private func parseThreads() throws -> [Int] {
        guard let threads else {
            let n = SystemCPU.usableCount
            return n > 1 ? [1, n] : [1]
        }
        var out: [Int] = []
        for item in threads.split(separator: ",") {
            guard let n = Int(item.trimmingCharacters(in: .whitespaces)), n >= 1, n <= 1024 else {
                throw ValidationError("--threads: '\(item)' is not a thread count in 1...1024")
            }
            out.append(n)
        }
        guard !out.isEmpty else { throw ValidationError("--threads: no thread count given") }
        return out
    }

    private func parseTypes(kernels: Kernels) throws -> [QuantType] {
        let candidates: [QuantType]
        if let types {
            candidates = try types.split(separator: ",").map { item in
                let name = item.trimmingCharacters(in: .whitespaces)
                guard let t = QuantType(name: name) else {
                    throw ValidationError("--types: unknown type '\(name)'; known: "
                        + QuantType.allCases.map(\.name).joined(separator: ", "))
                }
                return t
            }
        } else {
            candidates = QuantType.allCases
        }
        var out: [QuantType] = []
        for t in candidates {
            guard cols % t.blockSize == 0 else {
                if types != nil {
                    throw ValidationError("--cols \(cols) is not a multiple of \(t.name)'s block size \(t.blockSize)")
                }
                continue
            }
            guard kernels.supports(t) else {
                if types != nil { throw ValidationError("the \(kernels.path.name) kernels cannot multiply \(t.name)") }
                continue
            }
            out.append(t)
        }
        guard !out.isEmpty else { throw ValidationError("no weight type to measure") }
        return out
    }

    // MARK: output

    private func renderText(probes: [KernelBench.Probe], results: [KernelBench.Result]) -> String {
        var lines: [String] = []
        lines.append("")
        lines.append("memory read bandwidth: " + probes.map {
            "\($0.threads) thread\($0.threads == 1 ? "" : "s") \(gb($0.bytesPerSecond)) GB/s"
        }.joined(separator: ", "))
        lines.append("")
        lines.append(pad("type", 7) + pad("threads", 9, right: true) + pad("MB/matrix", 11, right: true)
            + pad("us/matvec", 11, right: true) + pad("GB/s", 9, right: true) + pad("of bandwidth", 14, right: true)
            + "  kernel")
        for r in results {
            lines.append(pad(r.type.name, 7) + pad("\(r.threads)", 9, right: true)
                + pad(String(format: "%.1f", Double(r.matrixBytes) / 1e6), 11, right: true)
                + pad(String(format: "%.0f", r.secondsPerMatvec * 1e6), 11, right: true)
                + pad(gb(r.bytesPerSecond), 9, right: true)
                + pad(String(format: "%.0f%%", r.fraction * 100), 14, right: true)
                + "  " + (r.native ? "own" : "ref fallback"))
        }
        return lines.joined(separator: "\n")
    }

    private func gb(_ bytesPerSecond: Double) -> String { String(format: "%.1f", bytesPerSecond / 1e9) }

    private func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - s.count))
        return right ? fill + s : s + fill
    }

    private func renderJSON(kernels: Kernels, llc: Int?, workingSet: Int, probes: [KernelBench.Probe],
                            results: [KernelBench.Result]) -> String {
        JSONValue.object([
            ("path", .string(kernels.path.name)),
            ("cpu_features", .array(CPUFeatures.current.names.map { .string($0) })),
            ("rows", .int(rows)),
            ("cols", .int(cols)),
            ("last_level_cache_bytes", llc.map { .int($0) } ?? .null),
            ("working_set_bytes", .int(workingSet)),
            ("bandwidth", .array(probes.map { p in
                .object([
                    ("threads", .int(p.threads)),
                    ("bytes_per_second", .double(p.bytesPerSecond.rounded())),
                    ("before_bytes_per_second", .double(p.before.rounded())),
                    ("after_bytes_per_second", .double(p.after.rounded())),
                ])
            })),
            ("results", .array(results.map { r in
                .object([
                    ("type", .string(r.type.name)),
                    ("threads", .int(r.threads)),
                    ("native_kernel", .bool(r.native)),
                    ("matrix_bytes", .int(r.matrixBytes)),
                    ("seconds_per_matvec", .double(r.secondsPerMatvec)),
                    ("bytes_per_second", .double(r.bytesPerSecond.rounded())),
                    ("fraction_of_bandwidth", .double((r.fraction * 1000).rounded() / 1000)),
                ])
            })),
        ]).rendered()
    }
}

/// The measurements of `roostd bench-kernels`.
struct KernelBench {
    struct Result {
        var type: QuantType
        var threads: Int
        var native: Bool
        var matrixBytes: Int
        var secondsPerMatvec: Double
        var bytesPerSecond: Double
        var fraction = 0.0
    }

    struct Probe {
        var threads: Int
        var bytesPerSecond: Double
        var before: Double
        var after: Double
    }

    let kernels: Kernels
    let rows: Int
    let cols: Int
    let workingSet: Int
    let seconds: Double
    let progress: Bool

    /// Median read bandwidth of the pool over a buffer of `workingSet` bytes, bytes/s.
    func bandwidth(pool: WorkerPool) throws -> Double {
        do { return try MemoryBandwidth.probe(bytes: workingSet, pool: pool, minSeconds: seconds) } catch {
            throw ValidationError(error.description)
        }
    }

    /// Matvec throughput of `type` on the pool, cycling through copies of the matrix.
    func matvec(type: QuantType, pool: WorkerPool) throws -> Result {
        let matrixBytes = try type.rowBytes(cols) * rows
        let copies = max(2, (workingSet + matrixBytes - 1) / matrixBytes)
        guard let buffer = AlignedBuffer(byteCount: matrixBytes * copies) else {
            throw ValidationError("cannot allocate \((matrixBytes * copies) >> 20) MiB of \(type.name) weights")
        }
        if progress {
            FileHandle.standardError.write(Data("  \(type.name), \(pool.threads) thread(s)\n".utf8))
        }
        try RandomWeights.fill(type, rows: rows, cols: cols, into: buffer.pointer, seed: 0x6b65726e656c,
                               kernels: kernels)
        for c in 1..<copies {
            memcpy(buffer.pointer + c * matrixBytes, buffer.pointer, matrixBytes)
        }
        let matrices = try (0..<copies).map { c throws(TensorError) in
            try WeightMatrix(type: type, rows: rows, cols: cols, buffer: buffer, offset: c * matrixBytes)
        }
        let scratch = try MatScratch(maxCols: cols, threads: pool.threads)
        let x = UnsafeMutablePointer<Float>.allocate(capacity: cols)
        let y = UnsafeMutablePointer<Float>.allocate(capacity: rows)
        defer {
            x.deallocate()
            y.deallocate()
        }
        var rng = SplitMix64(seed: 7)
        for i in 0..<cols { x[i] = rng.nextSignedUnit() }
        let kernels = self.kernels
        let round = {
            for m in matrices { Tensors.matvec(m, x: x, y: y, scratch: scratch, pool: pool, kernels: kernels) }
        }
        round() // warm-up: pages touched, threads awake
        let times = measure(round)
        let perMatvec = median(times) / Double(copies)
        return Result(type: type, threads: pool.threads, native: kernels.hasNativeGemv(type),
                      matrixBytes: matrixBytes, secondsPerMatvec: perMatvec,
                      bytesPerSecond: Double(matrixBytes) / perMatvec)
    }

    /// Times rounds of `body` until `seconds` have passed (at least 5 rounds).
    private func measure(_ body: () -> Void) -> [Double] {
        var times: [Double] = []
        let start = monotonicSeconds()
        while times.count < 5 || monotonicSeconds() - start < seconds {
            let t0 = monotonicSeconds()
            body()
            times.append(monotonicSeconds() - t0)
            if times.count >= 10_000 { break }
        }
        return times
    }
}
