import ArgumentParser

@main
struct Roostd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roostd",
        abstract: "Roost: an on-device inference daemon for RWKV and small Mixture-of-Experts models.",
        version: RoostVersion.string,
        subcommands: [Serve.self, Inspect.self, Logits.self, Perplexity.self, Bench.self, BenchKernels.self, Template.self, GrammarSample.self, Tokenize.self],
        defaultSubcommand: Serve.self
    )
}
