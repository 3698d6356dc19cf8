// swift-tools-version:6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "doodled",
    products: [
        .library(name: "DoodleEngine", targets: ["DoodleEngine"]),
        .library(name: "DoodlePreprocessing", targets: ["DoodlePreprocessing"]),
        .library(name: "DoodleCore", targets: ["DoodleCore"]),
        .library(name: "DoodleWire", targets: ["DoodleWire"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        // Int8 SIMD kernels (portable C, AVX2, AVX-512 VNNI), chosen at run time. Debug builds compile them
        // optimised too: `swift test` runs thousands of images through every kernel path, and intrinsics at -O0
        // are two orders of magnitude slower. (Release builds use SwiftPM's own optimisation.)
        .target(
            name: "CDoodleKernels",
            cSettings: [.unsafeFlags(["-O3"], .when(configuration: .debug))]
        ),
        // Loads onnxruntime-quantised ONNX models and runs them on the kernels.
        .target(
            name: "DoodleEngine",
            dependencies: [
                "CDoodleKernels",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        // The dataset's stroke rendering (cairo's stroker and scan converter, specialised), bit-exact and without
        // cairo. Exact double arithmetic matters: no fused multiply-adds.
        .target(
            name: "CDoodleRaster",
            cSettings: [
                .unsafeFlags(["-ffp-contract=off"]),
                .unsafeFlags(["-O2"], .when(configuration: .debug)),
            ]
        ),
        // Image decoding (libpng, libjpeg: on every machine of this kind) and tracing a canvas's ink back into
        // strokes. Optimised in debug builds too: tests decode and trace real canvases.
        .target(
            name: "CDoodleImage",
            cSettings: [.unsafeFlags(["-O2"], .when(configuration: .debug))],
            linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("jpeg"), .linkedLibrary("z"), .linkedLibrary("dl")]
        ),
        // Input types and preprocessing with train/serve parity: stroke normalisation and bit-exact rendering,
        // canvas pictures traced back into strokes.
        .target(
            name: "DoodlePreprocessing",
            dependencies: ["CDoodleRaster", "CDoodleImage"],
            swiftSettings: swiftSettings
        ),
        // The serving core: requests, validation, errors, the predictor and the dynamic batcher. No NIO, and
        // nothing a fresh machine lacks.
        .target(
            name: "DoodleCore",
            dependencies: ["DoodleEngine", "DoodlePreprocessing"],
            swiftSettings: swiftSettings
        ),
        // Dataset tools for the CLI, the load tester, benches and tests (never the daemon): Quick, Draw! ndjson
        // (gzip or not), a seedable generator. zlib is on every machine of this kind.
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // libpng's and libjpeg's own APIs for the tests, which write pictures of every kind clients send.
        .systemLibrary(name: "CPNG", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", providers: [.apt(["libjpeg62-turbo-dev"])]),
        // Durable, bounded storage of captured drawings: an append-only log of checksummed records with group
        // commit (one fdatasync for everything that arrived during the previous one). Foundation only.
        .target(
            name: "DoodleCapture",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "DoodleDataset",
            dependencies: ["DoodleCore", "DoodlePreprocessing", "CZlib"],
            swiftSettings: swiftSettings
        ),
        // libcairo itself, the reference the renderer is held to byte for byte; only tests, fuzzers and the
        // preprocessing bench use it (`scripts/install-deps` installs its headers).
        .systemLibrary(name: "CCairo", pkgConfig: "cairo", providers: [.apt(["libcairo2-dev"])]),
        .target(
            name: "DoodleCairoReference",
            dependencies: ["CCairo", "DoodlePreprocessing"],
            swiftSettings: swiftSettings
        ),
        // The protocol: generated messages, framing, wire <-> core conversion. NIOCore only.
        .target(
            name: "DoodleWire",
            dependencies: [
                "DoodleCore",
                "DoodlePreprocessing",
                "DoodleEngine",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        // gRPC stubs generated from proto/ (scripts/generate-protos.sh): doodle.v1.Classifier and grpc.health.v1.
        .target(
            name: "DoodleGRPC",
            dependencies: [
                "DoodleWire",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        // Network services over SwiftNIO: the raw-TCP server, gRPC (HTTP/2), and HTTP on Hummingbird (the JSON API,
        // the drawing page, metrics and probes).
        .target(
            name: "DoodleServer",
            dependencies: [
                "DoodleCapture",
                "DoodleCore",
                "DoodlePreprocessing",
                "DoodleEngine",
                "DoodleWire",
                "DoodleGRPC",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // A pipelined raw-TCP client (the CLI, the load tester and the tests use it).
        .target(
            name: "DoodleClient",
            dependencies: [
                "DoodleCapture",
                "DoodlePreprocessing",
                "DoodleWire",
                "DoodleCore",
                "DoodleDataset",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "doodled",
            dependencies: [
                "DoodleServer",
                "DoodleWire",
                "DoodleCore",
                "DoodleEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "doodle",
            dependencies: [
                "DoodleCapture",
                "DoodleClient",
                "DoodleCore",
                "DoodleDataset",
                "DoodleWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        // Load generation (closed and open loop) with HdrHistogram percentiles.
        .target(
            name: "DoodleLoad",
            dependencies: [
                "DoodleClient",
                "DoodleCore",
                "DoodleDataset",
                "DoodlePreprocessing",
                "DoodleWire",
                "DoodleGRPC",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "doodle-load",
            dependencies: ["DoodleLoad", "DoodleWire", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "doodle-preprocess-bench",
            dependencies: ["DoodleCore", "DoodlePreprocessing", "DoodleCairoReference", "DoodleDataset", "DoodleWire", "DoodleLoad"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "doodle-image-bench",
            dependencies: ["DoodleCore", "DoodleDataset", "DoodleEngine", "DoodlePreprocessing"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "doodle-engine-bench",
            dependencies: ["DoodleEngine"],
            swiftSettings: swiftSettings
        ),
        // What the test targets share: running CPU-bound or blocking work off Swift's cooperative pool.
        .target(name: "DoodleTestSupport", dependencies: ["DoodleCore", "CPNG", "CJPEG", "CZlib"], path: "Tests/DoodleTestSupport",
                swiftSettings: swiftSettings),
        .testTarget(
            name: "DoodlePreprocessingTests",
            dependencies: ["DoodlePreprocessing", "DoodleCairoReference", "DoodleDataset", "DoodleTestSupport"],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DoodleCaptureTests",
            dependencies: ["DoodleCapture"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DoodleDatasetTests",
            dependencies: ["DoodleDataset", "DoodleCore", "DoodlePreprocessing"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DoodleCoreTests",
            dependencies: ["DoodleCore", "DoodleEngine", "DoodlePreprocessing", "DoodleDataset", "DoodleTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DoodleWireTests",
            dependencies: [
                "DoodleWire",
                "DoodleCore",
                "DoodlePreprocessing",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DoodleServerTests",
            dependencies: [
                "DoodleServer",
                "DoodleTestSupport",
                "DoodleGRPC",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                "DoodleClient",
                "DoodleCore",
                "DoodleDataset",
                "DoodlePreprocessing",
                "DoodleEngine",
                "DoodleWire",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DoodleEngineTests",
            dependencies: ["DoodleEngine", "DoodleTestSupport", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
    ]
)

// libFuzzer targets, only when asked for (they have no main of their own): fuzz/run builds them with
// DOODLE_FUZZ=1 swift build --sanitize=fuzzer.
if Context.environment["DOODLE_FUZZ"] != nil {
    package.targets += [
        .executableTarget(
            name: "FuzzFrames",
            dependencies: [
                "DoodleWire", "DoodleCore", "DoodlePreprocessing",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "fuzz/FuzzFrames",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FuzzImage",
            dependencies: ["DoodleCore", "DoodlePreprocessing"],
            path: "fuzz/FuzzImage",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FuzzPreprocess",
            dependencies: ["DoodleCore", "DoodlePreprocessing", "DoodleCairoReference"],
            path: "fuzz/FuzzPreprocess",
            swiftSettings: swiftSettings
        ),
    ]
}
