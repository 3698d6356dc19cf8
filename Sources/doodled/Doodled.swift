import ArgumentParser
import DoodleCore
import DoodleEngine
import DoodleServer
import DoodleWire
import Dispatch
import Foundation
import Logging

/// The doodle prediction daemon.
@main
struct Doodled: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doodled",
        abstract: "Serve Quick, Draw! doodle predictions over a gRPC-style binary protocol on TCP.")

    @Option(help: "Raw-TCP listen address, host:port.")
    var listen = "127.0.0.1:7431"

    @Option(help: "gRPC (HTTP/2) listen address, host:port, or 'off'.")
    var grpcListen = "127.0.0.1:7432"

    @Option(help: "HTTP listen address for /metrics, /healthz and /readyz, host:port, or 'off'.")
    var httpListen = "127.0.0.1:7433"

    @Option(help: "Model directory (model.onnx + labels.txt) or .onnx file.")
    var model = "models/quickdraw-345"

    @Option(help: "Inference worker threads (default: the number of cores).")
    var workers = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Most requests in one batch.")
    var maxBatch = 64

    @Option(help: "Most requests waiting for a worker; more are answered RESOURCE_EXHAUSTED.")
    var maxQueue = 4096

    @Option(help: "Microseconds a worker may hold a short batch waiting for more (0 = never).")
    var maxDelayUs = 0

    @Option(help: "Largest frame payload in bytes; a larger declared length closes the connection.")
    var maxFrameBytes = 1 << 20

    @Option(help: "Requests one connection may have in flight.")
    var maxInFlight = 1024

    @Option(help: "Most strokes in a drawing.")
    var maxStrokes = 1024

    @Option(help: "Most points in a drawing.")
    var maxPoints = 20_000

    @Option(help: "Kernel path: reference, avx2 or avx512vnni (default: the fastest supported).")
    var kernels: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    mutating func run() async throws {
        var config = DoodleDaemon.Configuration()
        guard let listen = HostPort(self.listen) else {
            throw ValidationError("--listen: expected host:port, got '\(self.listen)'")
        }
        config.tcp = .address(host: listen.host, port: listen.port)
        config.grpc = try Self.optionalListener(self.grpcListen, option: "--grpc-listen")
        config.http = try Self.optionalListener(self.httpListen, option: "--http-listen")
        config.modelPath = self.model
        guard self.workers >= 1, self.maxBatch >= 1, self.maxQueue >= 1, self.maxDelayUs >= 0, self.maxFrameBytes >= 16,
              self.maxInFlight >= 1, self.maxStrokes >= 1, self.maxPoints >= 1 else {
            throw ValidationError("--workers, --max-batch, --max-queue, --max-frame-bytes, --max-in-flight, "
                                  + "--max-strokes and --max-points must be positive; --max-delay-us >= 0")
        }
        config.batcher = .init(workers: self.workers, maxBatch: self.maxBatch, maxQueue: self.maxQueue,
                               maxDelayMicros: self.maxDelayUs)
        config.connectionLimits.maxFrameBytes = self.maxFrameBytes
        config.connectionLimits.maxInFlightPerConnection = self.maxInFlight
        config.requestLimits.maxStrokes = self.maxStrokes
        config.requestLimits.maxPoints = self.maxPoints
        if let name = self.kernels {
            guard let isa = KernelISA(name: name) else { throw ValidationError("--kernels: unknown path '\(name)'") }
            config.isa = isa
        }
        guard let level = Logger.Level(rawValue: self.logLevel) else {
            throw ValidationError("--log-level: unknown level '\(self.logLevel)'")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let daemon = try await DoodleDaemon.start(config)
        await Self.waitForTerminationSignal()
        await daemon.shutdown()
    }

    static func optionalListener(_ text: String, option: String) throws -> Listener? {
        if text == "off" { return nil }
        guard let address = HostPort(text) else { throw ValidationError("\(option): expected host:port or 'off', got '\(text)'") }
        return .address(host: address.host, port: address.port)
    }

    /// Suspends until SIGTERM or SIGINT.
    static func waitForTerminationSignal() async {
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let queue = DispatchQueue(label: "doodled.signals")
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let once = OnceFlag()
            let sources = [SIGTERM, SIGINT].map { DispatchSource.makeSignalSource(signal: $0, queue: queue) }
            for source in sources {
                source.setEventHandler {
                    if once.set() { continuation.resume() }
                }
                source.resume()
            }
            // Keep the sources alive for the life of the process.
            SignalSources.keep(sources)
        }
    }
}

/// A flag that can be set once (thread-safe).
final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false

    /// True the first time only.
    func set() -> Bool {
        self.lock.lock()
        defer { self.lock.unlock() }
        if self.done { return false }
        self.done = true
        return true
    }
}

enum SignalSources {
    nonisolated(unsafe) static var all: [any DispatchSourceSignal] = []
    static func keep(_ sources: [any DispatchSourceSignal]) { self.all = sources }
}
