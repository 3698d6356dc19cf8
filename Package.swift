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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // Int8 SIMD kernels (portable C, AVX2, AVX-512 VNNI), chosen at run time.
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
        // Single-thread engine throughput; bench/engine/run compares it with onnxruntime.
        .executableTarget(
            name: "doodle-engine-bench",
            dependencies: ["DoodleEngine"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DoodleEngineTests",
            dependencies: ["DoodleEngine", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
    ]
)
