import DoodleTestSupport
import Foundation
import Testing

@testable import DoodleEngine

/// Runs `executable` with `arguments` to completion; returns its exit status and its output (stdout then stderr).
private func runTool(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [executable] + arguments
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kernel-program-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let out = directory.appendingPathComponent("out"), err = directory.appendingPathComponent("err")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    try process.run()
    process.waitUntilExit()
    let text = (try String(contentsOf: out, encoding: .utf8)) + (try String(contentsOf: err, encoding: .utf8))
    return (process.terminationStatus, text)
}

/// Whether `tool` is on PATH.
private func hasTool(_ tool: String) -> Bool {
    (try? runTool("sh", ["-c", "command -v \(tool)"]).status == 0) ?? false
}

/// The cross toolchain and emulator for the ARM64 run: present, or required by `scripts/test`
/// (`DOODLE_REQUIRE_ARM64_CHECK=1`), in which case their absence fails the test rather than skipping it.
private let arm64Tools = ["aarch64-linux-gnu-gcc", "qemu-aarch64"]
private let arm64CheckEnabled = ProcessInfo.processInfo.environment["DOODLE_REQUIRE_ARM64_CHECK"] == "1"
    || arm64Tools.allSatisfy(hasTool)

@Suite("The whole model as a kernel program, replayed on every kernel path")
struct KernelProgramTests {
    static let golden = GoldenSet.fixture("quickdraw-345")
    static let kernels = GoldenSet.repoRoot.appendingPathComponent("Sources/CDoodleKernels")
    static let replayer = GoldenSet.repoRoot.appendingPathComponent("Tests/KernelCheck/plan_replay.c")

    /// The shipped model's kernel program, in a new temporary directory.
    static func writeProgram() throws -> URL {
        let engine = try InferenceEngine(contentsOf: InferenceEngineTests.shippedModel)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kernel-program-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let program = directory.appendingPathComponent("model.dkp")
        try engine.kernelProgram().write(to: program)
        return program
    }

    /// Compiles the replayer with the kernels by `compiler` into `output`.
    static func build(_ compiler: String, _ output: URL) throws {
        let sources = try FileManager.default.contentsOfDirectory(atPath: Self.kernels.path)
            .filter { $0.hasSuffix(".c") }.map { Self.kernels.appendingPathComponent($0).path }
        let built = try runTool(compiler, ["-O2", "-std=gnu11", "-I", Self.kernels.appendingPathComponent("include").path,
                                           Self.replayer.path] + sources + ["-lm", "-o", output.path])
        #expect(built.status == 0, "\(compiler) failed: \(built.output)")
    }

    /// Checks a replay's report: every path it ran matched the goldens on every image at every batch size.
    static func expectAllMatch(_ run: (status: Int32, output: String), paths: [String]) {
        #expect(run.status == 0, "\(run.output)")
        for path in paths {
            for batch in [1, 37, 64] {
                #expect(run.output.contains("\(path) batch \(batch): 0 of 2000 images differ"),
                        "\(path) at batch \(batch) did not match: \(run.output)")
            }
        }
    }

    @Test("the replayer, built natively, gives the goldens' bits on every SIMD path of this CPU (or the reference)")
    func nativeReplayMatchesGoldens() async throws {
        try await computeOffPool {
            let program = try Self.writeProgram()
            defer { try? FileManager.default.removeItem(at: program.deletingLastPathComponent()) }
            let binary = program.deletingLastPathComponent().appendingPathComponent("plan_replay")
            try Self.build("cc", binary)
            let run = try runTool(binary.path, [program.path, Self.golden.appendingPathComponent("images.u8").path,
                                                Self.golden.appendingPathComponent("logits.u8").path])
            let simd = KernelISA.supported.filter { $0 != .reference }
            Self.expectAllMatch(run, paths: (simd.isEmpty ? [.reference] : simd).map(\.description))
        }
    }

    @Test("NEON dotprod and i8mm give the goldens' bits on the whole model (ARM64 build under qemu-aarch64)",
          .enabled(if: arm64CheckEnabled))
    func neonReplayMatchesGoldens() async throws {
        try await computeOffPool {
            for tool in arm64Tools {
                #expect(hasTool(tool), "\(tool) is needed for the ARM64 check (scripts/install-deps installs it)")
            }
            let program = try Self.writeProgram()
            defer { try? FileManager.default.removeItem(at: program.deletingLastPathComponent()) }
            let binary = program.deletingLastPathComponent().appendingPathComponent("plan_replay-arm64")
            try Self.build("aarch64-linux-gnu-gcc", binary)
            let files = [program.path, Self.golden.appendingPathComponent("images.u8").path,
                         Self.golden.appendingPathComponent("logits.u8").path]
            // -cpu max has both dot-product extensions; cortex-a76 has dotprod only (i8mm must not be chosen there).
            let max = try runTool("qemu-aarch64", ["-cpu", "max", "-L", "/usr/aarch64-linux-gnu", binary.path] + files)
            Self.expectAllMatch(max, paths: ["neon-dotprod", "neon-i8mm"])
            let a76 = try runTool("qemu-aarch64", ["-cpu", "cortex-a76", "-L", "/usr/aarch64-linux-gnu", binary.path] + files)
            Self.expectAllMatch(a76, paths: ["neon-dotprod"])
            #expect(!a76.output.contains("neon-i8mm"), "cortex-a76 has no i8mm: \(a76.output)")
        }
    }
}
