import ArgumentParser

@main
struct Roostd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roostd",
        abstract: "Roost: an on-device inference daemon for RWKV and small Mixture-of-Experts models.",
        version: RoostVersion.string,
        subcommands: [Inspect.self, Logits.self, Perplexity.self, Bench.self, BenchKernels.self, GrammarSample.self]
    )
}
