import DoodleClient
@testable import DoodleEngine
import DoodleServer
import DoodleWire
import Foundation
import SwiftProtobuf
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A `doodled` process on free loopback ports.
struct DoodledProcess {
    let child: ChildProcess
    let tcpPort: Int
    let grpcPort: Int
    let httpPort: Int

    static func start(_ arguments: [String] = [], environment extra: [String: String] = [:]) throws -> DoodledProcess {
        let (tcp, grpc, http) = (freePort(), freePort(), freePort())
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("DOODLED_") }
        environment.merge(extra) { _, new in new }
        let child = try ChildProcess(Products.path("doodled"), [
            "--listen", "127.0.0.1:\(tcp)", "--grpc-listen", "127.0.0.1:\(grpc)", "--http-listen", "127.0.0.1:\(http)",
            "--model", Paths.model, "--workers", "2",
            // Debug builds run several times slower than release: the default 100 ms bound on queued work would
            // refuse part of these tests' load, which is not what they test.
            "--max-queue-wait-ms", "2000",
        ] + arguments, environment: environment)
        return DoodledProcess(child: child, tcpPort: tcp, grpcPort: grpc, httpPort: http)
    }

    /// Waits until /readyz says SERVING (no raw-TCP frame is spent, so the tests can count them).
    func waitUntilServing() async throws {
        let up = await self.becomesReady()
        #expect(up, "doodled did not start: \(self.child.standardError)")
    }

    /// True once /readyz says SERVING; false when the process exits first or the wait times out.
    private func becomesReady() async -> Bool {
        let up = await eventually {
            if self.child.hasExited { return true }
            return (try? await httpGet(port: self.httpPort, path: "/readyz"))?.0 == 200
        }
        return up && !self.child.hasExited
    }

    /// Starts doodled and waits until it serves. A port picked by `freePort()` lies outside the range outgoing
    /// connections draw from, but another process on the machine may still bind it before doodled does; a daemon
    /// that exits during start-up is started again on new ports (up to `attempts` times), so tests that restart a
    /// daemon many times do not fail on that race.
    static func startServing(_ arguments: [String] = [], environment: [String: String] = [:],
                             attempts: Int = 3) async throws -> DoodledProcess {
        var last: DoodledProcess?
        for _ in 0..<attempts {
            let daemon = try Self.start(arguments, environment: environment)
            if await daemon.becomesReady() { return daemon }
            await daemon.child.stop()
            last = daemon
        }
        Issue.record("doodled did not start in \(attempts) attempts: \(last?.child.standardError ?? "")")
        throw CancellationError()
    }
}

/// Runs `doodle-load` (closed loop, no warm-up) and returns its JSON report.
func runLoad(port: Int, seconds: Double, connections: Int = 8, depth: Int = 8) throws -> ChildProcess {
    try ChildProcess(Products.path("doodle-load"), [
        "--server", "127.0.0.1:\(port)", "--connections", "\(connections)", "--depth", "\(depth)",
        "--warmup", "0", "--duration", "\(seconds)", "--json", "--data", Paths.shared.path,
    ])
}

struct LoadReport: Decodable {
    let seconds: Double
    let ok: Int
    let requests: Int
    let errors: [String: Int]
    let lastErrorSeconds: Double?
    let okAfterLastError: Int
    /// OK answers that arrived after the measured window (counted for latency, not throughput).
    let okLate: Int
}

func report(_ load: ChildProcess) throws -> LoadReport {
    let text = load.standardOutput
    return try JSONDecoder().decode(LoadReport.self, from: Data(text.utf8))
}

/// Sends `calls` grpc.health.v1.Health/Check calls (an empty message: a 5-byte frame) with h2load; whether all
/// succeeded, and h2load's report.
func grpcHealthChecks(port: Int, calls: Int, connections: Int) async throws -> (Bool, String) {
    let body = FileManager.default.temporaryDirectory.appendingPathComponent("health-\(UUID().uuidString)")
    try Data([0, 0, 0, 0, 0]).write(to: body)
    let h2load = try ChildProcess("h2load", ["-n", "\(calls)", "-c", "\(connections)", "-H", "content-type: application/grpc",
                                             "-H", "te: trailers", "-d", body.path,
                                             "http://127.0.0.1:\(port)/grpc.health.v1.Health/Check"])
    let status = await h2load.waitForExit()
    return (status == 0 && h2load.standardOutput.contains("\(calls) succeeded"), h2load.standardOutput)
}

/// Waits until the daemons behind `httpPorts` have read `frames` raw-TCP frames between them (the load client
/// has started for real: it may take a while to load its inputs on a slow or busy machine).
func waitForTraffic(httpPorts: [Int], frames: Double = 500) async -> Bool {
    await eventually {
        var total = 0.0
        for port in httpPorts {
            total += (try? await httpGet(port: port, path: "/metrics")).map { metric($0.1, "doodled_tcp_frames_read_total") } ?? 0
        }
        return total >= frames
    }
}

/// A `key=value` field of doodled's log lines.
func logField(_ log: String, _ key: String) -> Int? {
    guard let range = log.range(of: "\(key)=") else { return nil }
    return Int(log[range.upperBound...].prefix { $0.isNumber })
}

@Suite("doodled's lifecycle: sd_notify, signals, reload, socket activation, settings", .serialized)
struct LifecycleTests {
    @Test("sd_notify: READY after warm-up, STATUS, WATCHDOG pings, RELOADING with MONOTONIC_USEC, STOPPING, exit 0")
    func notifyProtocol() async throws {
        let notify = try NotifySocket()
        defer { notify.close() }
        let daemon = try DoodledProcess.start(environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"])
        defer { Task { await daemon.child.stop() } }

        let ready = try #require(await notify.first { $0.fields["READY"] == "1" },
                                 "no READY=1; received \(notify.messages.map(\.text)), socket \(notify.health); \(daemon.child.standardError)")
        let readyMillis = Double(ready.message.at - daemon.child.startedAt) / 1e6
        print("READY=1 \(String(format: "%.0f", readyMillis)) ms after exec (debug build)")
        #expect(ready.message.fields["STATUS"]?.hasPrefix("serving quickdraw-345") == true)
        #expect(notify.messages[..<ready.index].contains { $0.fields["STATUS"]?.hasPrefix("loading model") == true })
        // READY means serving: the model answers at once.
        let connection = try await DoodleConnection.connect(host: "127.0.0.1", port: daemon.tcpPort)
        #expect(try await connection.modelInfo().modelName == "quickdraw-345")
        await connection.close()

        // Pings (every 200 ms, half of WATCHDOG_USEC) while the workers are fine.
        let pinged = await eventually { notify.messages[ready.index...].filter { $0.text == "WATCHDOG=1" }.count >= 3 }
        #expect(pinged)

        daemon.child.signal(SIGHUP)
        let reloading = try #require(await notify.first(after: ready.index) { $0.fields["RELOADING"] == "1" })
        let stamp = try #require(reloading.message.fields["MONOTONIC_USEC"].flatMap(UInt64.init))
        let now = SystemdNotifier.monotonicMicros()
        #expect(stamp <= now && now - stamp < 10_000_000, "MONOTONIC_USEC=\(stamp) now \(now)")
        let readyAgain = await notify.first(after: reloading.index) { $0.fields["READY"] == "1" }
        #expect(readyAgain != nil)

        daemon.child.signal(SIGTERM)
        let stopping = await notify.first(after: reloading.index) { $0.fields["STOPPING"] == "1" }
        #expect(stopping != nil)
        #expect(await daemon.child.waitForExit() == 0)
    }

    @Test("SIGTERM under load: every request doodled read is answered, then it exits 0")
    func drainOnSigterm() async throws {
        let daemon = try DoodledProcess.start()
        defer { Task { await daemon.child.stop() } }
        try await daemon.waitUntilServing()
        let load = try runLoad(port: daemon.tcpPort, seconds: 6)
        #expect(await waitForTraffic(httpPorts: [daemon.httpPort]))
        daemon.child.signal(SIGTERM)
        #expect(await daemon.child.waitForExit() == 0)
        #expect(await load.waitForExit() == 0)
        let log = daemon.child.standardError
        let read = try #require(logField(log, "tcp_frames_read"), "\(log)")
        let answered = try #require(logField(log, "tcp_frames_answered"), "\(log)")
        let result = try report(load)
        print("drain: doodled read \(read) requests and answered \(answered); the client got \(result.ok) OK "
              + "(+\(result.okLate) after its window), errors \(result.errors)")
        #expect(read > 100)
        #expect(read == answered)
        #expect(log.contains("drain=complete"))
        // Everything the client got an answer for is OK (the workers ran to the end); its other requests were
        // never read (the connection closed under them, or no connection could be made afterwards).
        #expect(result.ok + result.okLate == answered)
        #expect(Set(result.errors.keys).isSubset(of: ["connection_lost", "connect_failed"]), "\(result.errors)")
    }

    @Test("SIGHUP under load fails no request; a broken model file is refused; a new model is served")
    func reloadOnSighup() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("reload-\(UUID().uuidString)")
        try FileManager.default.copyItem(atPath: Paths.model, toPath: directory.path)
        let modelFile = directory.appendingPathComponent("model.onnx")
        let daemon = try DoodledProcess.start(["--model", directory.path])
        defer { Task { await daemon.child.stop() } }
        try await daemon.waitUntilServing()

        let load = try runLoad(port: daemon.tcpPort, seconds: 3)
        #expect(await waitForTraffic(httpPorts: [daemon.httpPort]))
        for round in 1...3 {
            try await Task.sleep(for: .milliseconds(400))
            daemon.child.signal(SIGHUP)
            #expect(await daemon.child.waitForLog("model reloaded", count: round), "\(daemon.child.standardError)")
        }
        #expect(await load.waitForExit() == 0)
        let result = try report(load)
        print("reload under load: \(result.ok) OK, errors \(result.errors)")
        #expect(result.ok > 100)
        #expect(result.errors.isEmpty)

        // A broken file: refused with a clear log line, the old model keeps serving.
        let connection = try await DoodleConnection.connect(host: "127.0.0.1", port: daemon.tcpPort)
        let shipped = try await connection.modelInfo().modelVersion
        let original = try Data(contentsOf: modelFile)
        try Data(original.prefix(1000)).write(to: modelFile)
        daemon.child.signal(SIGHUP)
        #expect(await daemon.child.waitForLog("model reload refused"))
        #expect(try await connection.modelInfo().modelVersion == shipped)
        let bitmap = Data(repeating: 0, count: 784)
        #expect(try await connection.predict(.with { $0.bitmap = bitmap }).status.code == .ok)

        // A changed model (same weights, another version): new requests get it.
        var proto = try Onnx_ModelProto(serializedBytes: original)
        for i in proto.metadataProps.indices where proto.metadataProps[i].key == "doodle.model_version" {
            proto.metadataProps[i].value = "reload-test"
        }
        try Data(proto.serializedBytes() as [UInt8]).write(to: modelFile)
        daemon.child.signal(SIGHUP)
        #expect(await daemon.child.waitForLog("model reloaded", count: 4))
        #expect(try await connection.modelInfo().modelVersion == "reload-test")
        #expect(try await connection.predict(.with { $0.bitmap = bitmap }).modelVersion == "reload-test")
        let (_, metrics) = try await httpGet(port: daemon.httpPort, path: "/metrics")
        #expect(metric(metrics, #"doodled_model_reloads_total{result="ok"}"#) == 4)
        #expect(metric(metrics, #"doodled_model_reloads_total{result="failed"}"#) == 1)
        await connection.close()
        daemon.child.signal(SIGTERM)
        #expect(await daemon.child.waitForExit() == 0)
    }

    @Test("Socket activation: systemd-socket-activate hands over the three listeners by name")
    func socketActivation() async throws {
        let (tcp, grpc, http) = (freePort(), freePort(), freePort())
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("DOODLED_") }
        environment["DOODLED_MODEL"] = Paths.model
        // Names in another order than the defaults, so only the names can place them; the --listen flags point
        // elsewhere and must be overridden.
        let child = try ChildProcess("systemd-socket-activate", [
            "--listen=127.0.0.1:\(http)", "--listen=127.0.0.1:\(tcp)", "--listen=127.0.0.1:\(grpc)",
            "--fdname=http:tcp:grpc", "-E", "DOODLED_MODEL",
            Products.path("doodled"), "--listen", "127.0.0.1:1", "--grpc-listen", "127.0.0.1:1", "--http-listen", "127.0.0.1:1",
        ], environment: environment)
        defer { Task { await child.stop() } }
        let daemon = DoodledProcess(child: child, tcpPort: tcp, grpcPort: grpc, httpPort: http)
        try await daemon.waitUntilServing()
        let connection = try await DoodleConnection.connect(host: "127.0.0.1", port: tcp)
        let answer = try await connection.predict(.with { $0.bitmap = Data(repeating: 0, count: 784) })
        #expect(answer.status.code == .ok && answer.predictions.count == 5)
        await connection.close()
        #expect(try await httpGet(port: http, path: "/readyz").0 == 200)
        // gRPC on the socket named grpc.
        let (succeeded, output) = try await grpcHealthChecks(port: grpc, calls: 10, connections: 1)
        #expect(succeeded, "\(output)")
        child.signal(SIGTERM)
        #expect(await child.waitForExit() == 0)
    }

    @Test("Settings: flags > environment > file, --print-config, and bad values named at start")
    func settingsPrecedence() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("doodled-\(UUID().uuidString).conf")
        try "max-batch = 16\nmax-queue = 100\nworkers = 1\n".write(to: file, atomically: true, encoding: .utf8)
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("DOODLED_") }
        environment["DOODLED_CONFIG"] = file.path
        environment["DOODLED_MAX_QUEUE"] = "200"
        let printed = try ChildProcess(Products.path("doodled"), ["--print-config", "--workers", "3"], environment: environment)
        #expect(await printed.waitForExit() == 0)
        let lines = printed.standardOutput
        #expect(lines.contains("max-batch = 16") && lines.contains("# \(file.path):1"))
        #expect(lines.contains("max-queue = 200") && lines.contains("# environment DOODLED_MAX_QUEUE"))
        #expect(lines.contains("workers = 3"))
        #expect(lines.contains("max-delay-us = 0"))

        environment["DOODLED_MAX_QUEUE"] = "lots"
        let refused = try ChildProcess(Products.path("doodled"), [], environment: environment)
        #expect(await refused.waitForExit() == 64)
        #expect(refused.standardError.contains("invalid max-queue 'lots' (from environment DOODLED_MAX_QUEUE)"))
    }
}
