
#if canImport(Glibc)
import DoodleClient
import DoodleCore
import DoodleDataset
import DoodleEngine
import DoodleServer
import DoodleWire
import Foundation
import Glibc
import NIOCore
import SwiftProtobuf
import Testing
#endif

/// The value of one Prometheus sample line (`name{labels} value`), 0 when absent.
func metric(_ text: String, _ sample: String) -> Double {
    for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
        return Double(line.dropFirst(sample.count + 1)) ?? .nan
    }
    return 0
}

/// Runs a program to completion on a dispatch thread (never blocking Swift's cooperative pool, on which the
/// gRPC server's handlers run): (exit status, stdout + stderr).
func run(_ executable: String, _ arguments: [String]) async throws -> (Int32, String) {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try runBlocking(executable, arguments) })
        }
    }
}

private func runBlocking(_ executable: String, _ arguments: [String]) throws -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [executable] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

@Suite("gRPC, health and metrics")
struct GRPCAndMetricsTests {
    @Test("Python grpcio calls Predict, PredictStream, GetModelInfo and Health; the metrics count its requests")
    func pythonGRPCClient() async throws {
        try await withDaemon { daemon, _ in
            let script = Paths.repoRoot.appendingPathComponent("clients/python/grpc_interop_check.py").path
            let drawings = Paths.shared.appendingPathComponent("simplified.ndjson.gz").path
            let (status, output) = try await run("python3", [script, "--target", "127.0.0.1:\(daemon.grpcPort!)",
                                                       "--drawings", drawings, "--stream", "300",
                                                       "--timeout", "\(TestTime.scaled(seconds: 10))"])
            #expect(status == 0, "\(output)")
            #expect(output.contains("\"stream_answers\": 300"), "\(output)")
            let (code, text) = try await httpGet(port: daemon.httpAddress!.port!, path: "/metrics")
            #expect(code == 200)
            // 300 streamed + 1 strokes + 1 bitmap + 1 GetModelInfo = 303 OK; one bad bitmap.
            #expect(metric(text, #"doodled_requests_total{transport="grpc",code="OK"}"#) == 303)
            #expect(metric(text, #"doodled_requests_total{transport="grpc",code="INVALID_ARGUMENT"}"#) == 1)
            #expect(metric(text, #"doodled_requests_total{transport="tcp",code="OK"}"#) == 0)
        }
    }

    @Test("h2load drives Predict with a prebuilt request: every response is gRPC status 0")
    func h2load() async throws {
        try await withDaemon { daemon, _ in
            let pairs = try DrawingRecord.read(Paths.shared.appendingPathComponent("render_pairs.ndjson.gz").path)
            let request = Doodle_V1_PredictRequest.with { $0.bitmap = Data(pairs[0].bitmap!); $0.topK = 3 }
            let payload: [UInt8] = try request.serializedBytes()
            var body: [UInt8] = [0] + withUnsafeBytes(of: UInt32(payload.count).bigEndian, Array.init)
            body += payload
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("h2load-\(UUID()).bin")
            try Data(body).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            let n = 3000
            let (status, output) = try await run("h2load", [
                "-n", "\(n)", "-c", "4", "-m", "16", "-d", file.path,
                "-H", "content-type: application/grpc", "-H", "te: trailers",
                "http://127.0.0.1:\(daemon.grpcPort!)/doodle.v1.Classifier/Predict",
            ])
            #expect(status == 0, "\(output)")
            #expect(output.contains("\(n) succeeded, 0 failed, 0 errored"), "\(output)")
            // h2load sees HTTP status only; the server's own count shows every call ended with gRPC status 0.
            let (_, text) = try await httpGet(port: daemon.httpAddress!.port!, path: "/metrics")
            #expect(metric(text, #"doodled_requests_total{transport="grpc",code="OK"}"#) == Double(n))
            for code in StatusCode.allCases where code != .ok {
                #expect(metric(text, "doodled_requests_total{transport=\"grpc\",code=\"\(code)\"}") == 0)
            }
        }
    }

    @Test("/metrics counts raw-TCP traffic; /healthz, /readyz and unknown paths answer")
    func metricsAfterTCPTraffic() async throws {
        try await withDaemon { daemon, port in
            let pairs = try DrawingRecord.read(Paths.shared.appendingPathComponent("render_pairs.ndjson.gz").path)
            let c = try await DoodleConnection.connect(host: "127.0.0.1", port: port)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for pair in pairs.prefix(100) {
                    group.addTask { _ = try await c.predict(.with { $0.bitmap = Data(pair.bitmap!) }) }
                }
                try await group.waitForAll()
            }
            _ = try await c.predict(.with { $0.bitmap = Data([1, 2, 3]) })
            let httpPort = daemon.httpAddress!.port!
            let (_, text) = try await httpGet(port: httpPort, path: "/metrics")
            #expect(metric(text, #"doodled_requests_total{transport="tcp",code="OK"}"#) == 100)
            #expect(metric(text, #"doodled_requests_total{transport="tcp",code="INVALID_ARGUMENT"}"#) == 1)
            #expect(metric(text, #"doodled_open_connections{transport="tcp"}"#) == 1)
            #expect(metric(text, "doodled_batch_size_requests_sum") == 100)
            #expect(metric(text, "doodled_queue_wait_seconds_count") == 100)
            #expect(metric(text, "doodled_preprocess_seconds_count") == 100)
            #expect(metric(text, #"doodled_request_duration_seconds_count{transport="tcp"}"#) == 101)
            #expect(metric(text, "doodled_inference_seconds_count") >= 1)
            #expect(text.contains(#"doodled_model_info{name="quickdraw-345""#))
            #expect(text.contains(#"kernels="\#(KernelISA.best)""#))
            await c.close()
            #expect(try await httpGet(port: httpPort, path: "/healthz").0 == 200)
            #expect(try await httpGet(port: httpPort, path: "/readyz").0 == 200)
            #expect(try await httpGet(port: httpPort, path: "/nope").0 == 404)
            daemon.state.set(.notServing)
            #expect(try await httpGet(port: httpPort, path: "/readyz").0 == 503)
        }
    }
}
