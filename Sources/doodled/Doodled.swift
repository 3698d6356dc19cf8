import ArgumentParser
import DoodleCore
import DoodleServer
import Dispatch
import Foundation
import Logging

/// The doodle prediction daemon.
@main
struct Doodled: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doodled",
        abstract: "Serve Quick, Draw! doodle predictions over a gRPC-style binary protocol on TCP, and gRPC.",
        discussion: """
            Every setting can also come from the environment (DOODLED_<NAME>, e.g. DOODLED_MAX_BATCH) or a config \
            file (--config or DOODLED_CONFIG; 'name = value' lines). Flags win over the environment, which wins \
            over the file. Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the model. Under systemd: \
            sd_notify (READY, STATUS, WATCHDOG, RELOADING, STOPPING) and socket activation (sockets named tcp, \
            grpc, http).
            """)

    @Option(help: "Config file of 'name = value' lines [env DOODLED_CONFIG].")
    var config: String?

    @Flag(help: "Print the settings in effect (with where each came from) and exit.")
    var printConfig = false

    @Option(help: Self.help("listen")) var listen: String?
    @Option(help: Self.help("grpc-listen")) var grpcListen: String?
    @Option(help: Self.help("http-listen")) var httpListen: String?
    @Option(help: Self.help("model")) var model: String?
    @Option(help: Self.help("workers")) var workers: String?
    @Option(help: Self.help("max-batch")) var maxBatch: String?
    @Option(help: Self.help("max-queue")) var maxQueue: String?
    @Option(help: Self.help("max-delay-us")) var maxDelayUs: String?
    @Option(help: Self.help("inline-after-idle-us")) var inlineAfterIdleUs: String?
    @Option(help: Self.help("max-frame-bytes")) var maxFrameBytes: String?
    @Option(help: Self.help("max-in-flight")) var maxInFlight: String?
    @Option(help: Self.help("max-strokes")) var maxStrokes: String?
    @Option(help: Self.help("max-points")) var maxPoints: String?
    @Option(help: Self.help("max-coordinate")) var maxCoordinate: String?
    @Option(help: Self.help("max-candidates")) var maxCandidates: String?
    @Option(help: Self.help("max-connections")) var maxConnections: String?
    @Option(help: Self.help("idle-timeout")) var idleTimeout: String?
    @Option(help: Self.help("frame-timeout")) var frameTimeout: String?
    @Option(help: Self.help("max-write-buffer")) var maxWriteBuffer: String?
    @Option(help: Self.help("shed-pause-ms")) var shedPauseMs: String?
    @Option(help: Self.help("kernels")) var kernels: String?
    @Option(help: Self.help("log-level")) var logLevel: String?
    @Option(help: Self.help("drain-timeout")) var drainTimeout: String?

    static func help(_ name: String) -> ArgumentHelp {
        let spec = DaemonSettings.spec(name)!
        return ArgumentHelp("\(spec.help) [env \(spec.environmentName); default \(spec.defaultValue)]")
    }

    /// The flags given on the command line, by setting name.
    var flags: [String: String] {
        let pairs: [(String, String?)] = [
            ("listen", self.listen), ("grpc-listen", self.grpcListen), ("http-listen", self.httpListen),
            ("model", self.model), ("workers", self.workers), ("max-batch", self.maxBatch),
            ("max-queue", self.maxQueue), ("max-delay-us", self.maxDelayUs),
            ("inline-after-idle-us", self.inlineAfterIdleUs), ("max-frame-bytes", self.maxFrameBytes),
            ("max-in-flight", self.maxInFlight), ("max-strokes", self.maxStrokes), ("max-points", self.maxPoints),
            ("max-coordinate", self.maxCoordinate), ("max-candidates", self.maxCandidates),
            ("max-connections", self.maxConnections), ("idle-timeout", self.idleTimeout),
            ("frame-timeout", self.frameTimeout), ("max-write-buffer", self.maxWriteBuffer),
            ("shed-pause-ms", self.shedPauseMs),
            ("kernels", self.kernels), ("log-level", self.logLevel), ("drain-timeout", self.drainTimeout),
        ]
        return Dictionary(uniqueKeysWithValues: pairs.compactMap { name, value in value.map { (name, $0) } })
    }

    mutating func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let resolved: ResolvedSettings
        let activation: SocketActivation?
        do {
            resolved = try SettingsResolver.resolve(flags: self.flags, configPath: self.config, environment: environment)
            activation = try SocketActivation.fromEnvironment(environment)
        } catch {
            throw ValidationError(error.description)
        }
        if self.printConfig {
            print(resolved.rendered, terminator: "")
            return
        }
        let settings = resolved.settings
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = settings.logLevel
            return handler
        }
        let logger = Logger(label: "doodled")
        var daemonConfig = settings.daemonConfiguration
        activation?.apply(to: &daemonConfig)
        let notifier = SystemdNotifier(environment: environment)
        // Signals are caught from the start, so a SIGTERM during start-up is not lost.
        let signals = SignalStream.start([SIGTERM, SIGINT, SIGHUP])
        notifier.status("loading model \(settings.model)")
        let daemon: DoodleDaemon
        do {
            daemon = try await DoodleDaemon.start(daemonConfig, logger: logger)
        } catch {
            logger.critical("doodled could not start", metadata: ["error": "\(error)"])
            notifier.status("failed to start: \(error)")
            throw ExitCode.failure
        }
        notifier.ready(status: Self.servingStatus(daemon))
        let watchdog = Watchdog.timeout(environment: environment).map { timeout in
            Task {
                await Watchdog.run(notifier: notifier, timeout: timeout) {
                    daemon.isMakingProgress(stallLimit: timeout / 2)
                }
            }
        }
        for await signal in signals {
            if signal == SIGHUP {
                notifier.reloading(status: "reloading model \(settings.model)")
                do {
                    try await daemon.reload()
                    notifier.ready(status: Self.servingStatus(daemon))
                } catch {
                    notifier.ready(status: Self.servingStatus(daemon) + "; last reload refused: \(error)")
                }
                continue
            }
            logger.info("doodled received \(signal == SIGTERM ? "SIGTERM" : "SIGINT")")
            break
        }
        notifier.stopping(status: "draining")
        watchdog?.cancel()
        await daemon.shutdown()
    }

    static func servingStatus(_ daemon: DoodleDaemon) -> String {
        let model = daemon.model.current.predictor
        return "serving \(model.name) v\(model.version) (\(model.labels.count) classes)"
    }
}

/// Delivers signals as an async sequence (dispatch sources; the default actions are turned off).
enum SignalStream {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []

    static func start(_ numbers: [Int32]) -> AsyncStream<Int32> {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        let queue = DispatchQueue(label: "doodled.signals")
        for number in numbers {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            self.sources.append(source)  // alive for the life of the process
        }
        return stream
    }
}
