// swift-tools-version: 6.1
import PackageDescription

// C kernels are always compiled optimized, also in debug builds, so that kernel
// tests run at a useful speed under `swift test`.
let kernelFlags: [CSetting] = [
    .unsafeFlags(["-O3", "-fno-math-errno", "-Wall", "-Wextra", "-Wno-unused-parameter"]),
]

let package = Package(
    name: "Roost",
    products: [
        .executable(name: "roostd", targets: ["roostd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .target(
            name: "CKernels",
            cSettings: kernelFlags
        ),
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        .target(name: "GGUF"),
        .target(name: "Tokenizers"),
        .target(
            name: "Tensors",
            dependencies: ["CKernels", "COpenBLAS"]
        ),
        .target(name: "Sampling"),
        .target(name: "APITypes"),
        .target(
            name: "Models",
            dependencies: ["CKernels", "GGUF", "Tensors", "Tokenizers"]
        ),
        .executableTarget(
            name: "roostd",
            dependencies: [
                "GGUF",
                "Models",
                "Tensors",
                "Tokenizers",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "CKernelsTests", dependencies: ["CKernels", "Tensors"]),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF"]),
        .testTarget(name: "SamplingTests", dependencies: ["Sampling"]),
        .testTarget(name: "APITypesTests", dependencies: ["APITypes"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "CKernels", "GGUF", "Tensors", "Tokenizers"]),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "CKernels"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers"]),
    ],
    swiftLanguageModes: [.v6]
)
