import ArgumentParser
import GGUF

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a GGUF file's metadata and tensors.")
    @Argument(help: "The GGUF file.") var file: String
    @Flag(help: "Print JSON.") var json = false
    func run() throws {}
}
