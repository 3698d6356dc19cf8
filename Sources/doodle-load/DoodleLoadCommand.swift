import ArgumentParser
import DoodleLoad
import DoodleWire
import Foundation

/// Load-test client for doodled: closed- or open-loop, real drawings, HdrHistogram percentiles.
@main
struct DoodleLoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doodle-load",
        abstract: "Load-test doodled with real drawings and report throughput and latency percentiles.")

    @Option(help: "Server address, host:port (default: doodled's raw-TCP port 7431, 7432 with --protocol grpc, 7433 with --protocol http).")
    var server: String?

    @Option(name: .customLong("protocol"), help: "tcp (doodled's framed protocol), grpc (unary Predict calls), grpc-stream (PredictStream) or http (the JSON API; one connection per request in flight).")
    var transport = "tcp"

    @Option(help: "Connections.")
    var connections = 8

    @Option(help: "Closed loop: requests in flight per connection.")
    var depth = 8

    @Option(help: "Open loop: requests per second (omit for closed loop).")
    var rate: Double?

    @Flag(help: "Open loop with Poisson arrivals (default: evenly spaced).")
    var poisson = false

    @Option(help: "Inputs: bitmaps, strokes or mix.")
    var inputs = "bitmaps"

    @Option(help: "Quick, Draw! data directory.")
    var data = "../shared/data/quickdraw"

    @Option(help: "Warm-up seconds (not measured).")
    var warmup = 1.0

    @Option(help: "Measured seconds.")
    var duration = 5.0

    @Option(name: .customLong("budget-ms"), help: "Count the OK answers that came within this many milliseconds (the share of the model's work delivered in time).")
    var budgetMillis: Double?

    @Flag(help: "Send each drawing's word as its capture label (a doodled with capture-dir stores every one).")
    var capture = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Flag(help: "No live progress line.")
    var quiet = false

    mutating func run() async throws {
        guard let transport = LoadProtocol(rawValue: self.transport) else {
            throw ValidationError("--protocol: tcp, grpc, grpc-stream or http")
        }
        let server = self.server ?? (transport == .tcp ? "127.0.0.1:7431" : transport == .http ? "127.0.0.1:7433" : "127.0.0.1:7432")
        guard let address = HostPort(server) else {
            throw ValidationError("--server: expected host:port, got '\(server)'")
        }
        guard let kind = LoadInputs.Kind(rawValue: self.inputs) else {
            throw ValidationError("--inputs: bitmaps, strokes or mix")
        }
        guard self.connections >= 1, self.depth >= 1, self.duration > 0, self.warmup >= 0, (self.rate ?? 1) > 0 else {
            throw ValidationError("--connections, --depth, --duration and --rate must be positive")
        }
        var c = LoadGenerator.Configuration()
        c.host = address.host
        c.port = address.port
        c.transport = transport
        c.connections = self.connections
        c.mode = self.rate.map { .open(rate: $0, poisson: self.poisson) } ?? .closed(depth: self.depth)
        c.warmupSeconds = self.warmup
        c.durationSeconds = self.duration
        c.progress = !self.quiet && !self.json
        c.budgetMillis = self.budgetMillis
        let report = try await LoadGenerator(configuration: c, inputs: LoadInputs(kind: kind, dataDirectory: self.data, capture: self.capture)).run()
        if self.json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print("mode         \(report.mode), inputs \(self.inputs)")
        print(String(format: "throughput   %.0f ok/s over %.1f s (%d requests)", report.throughputPerSecond, report.seconds,
                     report.requests))
        print(String(format: "latency us   p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f  mean %.1f", report.p50Micros,
                     report.p90Micros, report.p99Micros, report.p999Micros, report.maxMicros, report.meanMicros))
        if let budget = report.budgetMillis, let within = report.okWithinBudget {
            let answered = max(1, report.ok + report.okLate)
            print(String(format: "in budget    %d of %d OK answers within %.0f ms (%.2f of the model's work)", within, answered, budget,
                         Double(within) / Double(answered)))
        }
        if report.okLate > 0 {
            print("late         \(report.okLate) OK answers came after the window (in the latency, not the throughput)")
        }
        print("errors       \(report.errors.isEmpty ? "none" : report.errors.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " "))")
    }
}
