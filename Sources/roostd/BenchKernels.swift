import ArgumentParser
import Tensors

struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-kernels", abstract: "Measure matvec throughput against memory bandwidth.")
    @Flag(help: "Print JSON.") var json = false
    func run() throws {}
}
