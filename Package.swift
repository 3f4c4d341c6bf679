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
        .executable(name: "roost", targets: ["roost"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
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
        .target(
            name: "Systemd",
            dependencies: ["CSystemd", .product(name: "Logging", package: "swift-log")]
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
        .target(
            name: "Engine",
            dependencies: [
                "GGUF", "Models", "Sampling", "Tensors", "Tokenizers",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "Server",
            dependencies: [
                "APITypes", "Engine", "Models", "Sampling", "Tokenizers",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "roostd",
            dependencies: [
                "APITypes",
                "Engine",
                "GGUF",
                "Models",
                "Sampling",
                "Server",
                "Systemd",
                "Tensors",
                "Tokenizers",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        .executableTarget(
            name: "roost",
            dependencies: [
                "APITypes",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "CKernelsTests", dependencies: ["CKernels", "Tensors"]),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF"]),
        .testTarget(name: "SystemdTests", dependencies: ["Systemd", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "SamplingTests", dependencies: ["Sampling"]),
        .testTarget(name: "APITypesTests", dependencies: ["APITypes"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "CKernels", "GGUF", "Tensors", "Tokenizers"]),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "CKernels"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Models", "Sampling", "Tokenizers"]),
        .testTarget(name: "roostTests", dependencies: ["roost"]),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "Server", "Engine", "APITypes",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
