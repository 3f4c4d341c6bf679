import Foundation
import Logging
import Models
import Testing

@testable import Engine

private func engine(files: [String]) throws -> InferenceEngine {
    try InferenceEngine(configuration: EngineConfiguration(modelFiles: files, threads: 2),
                        logger: { var l = Logger(label: "test"); l.logLevel = .critical; return l }())
}

private func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
}

@Suite struct ModelFileTests {
    @Test func aTruncatedOrReplacedModelFileFailsTheRequestAndTheNextLoadsTheFileAsItIs() async throws {
        guard fixturePresent() else { return }
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/m.gguf"
        let original = try Data(contentsOf: URL(fileURLWithPath: tinyModel))
        try original.write(to: URL(fileURLWithPath: path))
        let e = try engine(files: [path])
        defer { e.shutdown() }
        func request() -> GenerationRequest {
            GenerationRequest(model: "m", prompt: .text("The sky"), sampling: .greedy, maxTokens: 8, principal: me)
        }
        let (first, reason, _) = try await run(e, request())
        #expect(reason == .length && !first.isEmpty)

        // Truncated in place: the request fails naming the file and the change; the model is unloaded.
        let fh = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try fh.truncate(atOffset: 4096)
        try fh.close()
        #expect(throws: EngineError.self) { _ = try e.generate(request()) }
        do {
            _ = try e.generate(request())
            Issue.record("a truncated model file loaded")
        } catch {
            // Now the file itself is what fails to load.
            guard case .modelUnavailable = error else { Issue.record("\(error)"); return }
        }
        #expect(e.listModels().first { $0.name == "m" }?.loaded == false)

        // A valid file put back (a new inode, by rename): loads and answers as before.
        try original.write(to: URL(fileURLWithPath: dir + "/new.gguf"))
        #expect(rename(dir + "/new.gguf", path) == 0)
        let (again, _, _) = try await run(e, request())
        #expect(again == first)

        // Replaced while loaded by another valid file: the first request reports the change.
        try original.write(to: URL(fileURLWithPath: dir + "/new.gguf"))
        #expect(rename(dir + "/new.gguf", path) == 0)
        do {
            _ = try e.generate(request())
            Issue.record("a replaced model file was not noticed")
        } catch {
            guard case let .modelFileChanged(name, p, change) = error else { Issue.record("\(error)"); return }
            #expect(name == "m" && p == path && change.contains("replaced"))
            #expect(error.description.contains(path))
        }
        let (third, _, _) = try await run(e, request())
        #expect(third == first)
    }

    @Test func aTruncatedFileIsReportedWithItsSizes() throws {
        guard fixturePresent() else { return }
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/m.gguf"
        try Data(contentsOf: URL(fileURLWithPath: tinyModel)).write(to: URL(fileURLWithPath: path))
        let size = fileSize(path)
        let e = try engine(files: [path])
        defer { e.shutdown() }
        _ = try e.tokenize(model: "m", text: "hello")  // loads it
        truncate(path, 1000)
        do {
            _ = try e.tokenize(model: "m", text: "hello")
            Issue.record("a truncated model file was not noticed")
        } catch {
            guard case let .modelFileChanged(_, _, change) = error else { Issue.record("\(error)"); return }
            #expect(change.contains("size \(size) -> 1000 bytes"))
        }
    }
}
