import APITypes
import ArgumentParser
import Foundation

/// One model as `roost models --json` prints it: /v1/models joined with /api/tags details.
struct ModelEntry: Codable {
    var id: String
    var created: Int
    var sizeBytes: Int64?
    var modifiedAt: String?
    var digest: String?
    var details: OllamaModelDetails?

    enum CodingKeys: String, CodingKey {
        case id, created
        case sizeBytes = "size_bytes"
        case modifiedAt = "modified_at"
        case digest, details
    }
}

/// A model file the daemon found but cannot load (from /roost/v1/stats).
struct BrokenModel: Codable {
    var name: String
    var error: String
}

struct ModelsOutput: Codable {
    var models: [ModelEntry]
    var unusable: [BrokenModel]
}

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the models roostd serves (GET /v1/models and /api/tags).")

    @OptionGroup var options: ClientOptions

    func run() throws {
        let daemon = options.daemon
        let list = try daemon.get("/v1/models", as: ModelList.self)
        let tags = (try? daemon.get("/api/tags", as: OllamaTags.self))?.models ?? []
        let byName = Dictionary(tags.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let entries = list.data.map { m in
            let tag = byName[m.id]
            return ModelEntry(id: m.id, created: m.created, sizeBytes: tag?.size, modifiedAt: tag?.modifiedAt,
                              digest: tag?.digest, details: tag?.details)
        }
        let stats = try? daemon.get("/roost/v1/stats", as: RoostStats.self)
        let broken = (stats?.models ?? []).compactMap { m in m.error.map { BrokenModel(name: m.name, error: $0) } }
        if options.json {
            Console.out(try Format.json(ModelsOutput(models: entries, unusable: broken)))
            return
        }
        if entries.isEmpty {
            Console.out("No models. Put .gguf files into roostd's models directory (see roostd serve --print-config).\n")
        } else {
            let rows = entries.map { e in
                [e.id, e.sizeBytes.map { Format.bytes($0) } ?? "-", e.details?.family ?? "-",
                 nonEmpty(e.details?.parameterSize), nonEmpty(e.details?.quantizationLevel),
                 e.modifiedAt.map { Format.time(rfc3339: $0) } ?? "-"]
            }
            Console.out(Format.table(["NAME", "SIZE", "FAMILY", "PARAMS", "QUANT", "MODIFIED"], rows))
        }
        for b in broken { Console.out("unusable: \(b.name): \(b.error)\n") }
    }
}

struct PS: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps", abstract: "List the loaded models (GET /api/ps).")

    @OptionGroup var options: ClientOptions

    func run() throws {
        let ps = try options.daemon.get("/api/ps", as: OllamaPS.self)
        if options.json {
            Console.out(try Format.json(ps))
            return
        }
        if ps.models.isEmpty {
            Console.out("No model is loaded; a model loads with its first request.\n")
            return
        }
        let rows = ps.models.map { m in
            [m.name, Format.bytes(m.size), nonEmpty(m.details.quantizationLevel),
             m.contextLength.map(String.init) ?? "-", Format.time(rfc3339: m.expiresAt)]
        }
        Console.out(Format.table(["NAME", "SIZE", "QUANT", "CONTEXT", "UNTIL"], rows))
    }
}

func nonEmpty(_ s: String?) -> String {
    guard let s, !s.isEmpty else { return "-" }
    return s
}
