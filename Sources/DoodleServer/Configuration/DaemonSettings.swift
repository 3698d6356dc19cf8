import DoodleCore
import DoodleEngine
import DoodleWire
import Foundation
import Logging
import NIOCore

/// Everything an operator can set on `doodled`, typed and validated.
///
/// Each setting has one name used everywhere: the flag `--max-batch`, the environment variable
/// `DOODLED_MAX_BATCH` and the config-file key `max-batch`. `SettingsResolver` picks flags over the environment
/// over the file over the default.
public struct DaemonSettings: Sendable, Equatable {
    public var listen = HostPort("127.0.0.1:7431")!
    /// nil = gRPC off.
    public var grpcListen: HostPort? = HostPort("127.0.0.1:7432")!
    /// nil = HTTP (metrics, probes) off.
    public var httpListen: HostPort? = HostPort("127.0.0.1:7433")!
    public var model = "models/quickdraw-345"
    /// Default: one per core.
    public var workers = System.coreCount
    public var maxBatch = 64
    public var maxQueue = 4096
    public var maxDelayMicros = 0
    public var inlineAfterIdleMicros = 50
    public var maxFrameBytes = 1 << 20
    public var maxInFlight = 1024
    public var maxStrokes = 1024
    public var maxPoints = 20_000
    public var maxCoordinate = 1_000_000.0
    public var maxCandidates = 345
    public var maxConnections = 10_000
    public var idleTimeoutSeconds = 300.0
    public var frameTimeoutSeconds = 10.0
    public var maxWriteBuffer = 4 << 20
    public var shedPauseMillis = 250
    /// nil = the fastest kernels the CPU supports.
    public var kernels: KernelISA?
    public var logLevel = Logger.Level.info
    /// Longest a SIGTERM waits for queued and in-flight requests before closing what is left.
    public var drainTimeoutSeconds = 20.0

    public init() {}

    /// The daemon configuration these settings describe (listeners as addresses; socket activation may
    /// replace them).
    public var daemonConfiguration: DoodleDaemon.Configuration {
        var config = DoodleDaemon.Configuration()
        config.tcp = .address(host: self.listen.host, port: self.listen.port)
        config.grpc = self.grpcListen.map { .address(host: $0.host, port: $0.port) }
        config.http = self.httpListen.map { .address(host: $0.host, port: $0.port) }
        config.modelPath = self.model
        config.batcher = .init(workers: self.workers, maxBatch: self.maxBatch, maxQueue: self.maxQueue,
                               maxDelayMicros: self.maxDelayMicros, inlineAfterIdleMicros: self.inlineAfterIdleMicros)
        config.connectionLimits.maxFrameBytes = self.maxFrameBytes
        config.connectionLimits.maxInFlightPerConnection = self.maxInFlight
        config.requestLimits.maxStrokes = self.maxStrokes
        config.requestLimits.maxPoints = self.maxPoints
        config.requestLimits.maxCoordinate = self.maxCoordinate
        config.requestLimits.maxCandidates = self.maxCandidates
        config.connectionLimits.maxConnections = self.maxConnections
        config.connectionLimits.idleTimeout = .seconds(self.idleTimeoutSeconds)
        config.connectionLimits.frameTimeout = .seconds(self.frameTimeoutSeconds)
        config.connectionLimits.maxWriteBufferBytes = self.maxWriteBuffer
        config.connectionLimits.shedPause = .milliseconds(self.shedPauseMillis)
        config.isa = self.kernels
        config.drainTimeout = .seconds(self.drainTimeoutSeconds)
        return config
    }
}

/// One setting: its name, what it means, how to read a value into `DaemonSettings` and how to print it back.
public struct SettingSpec: Sendable {
    public let name: String
    public let help: String
    let parse: @Sendable (String, inout DaemonSettings) throws(SettingValueError) -> Void
    let render: @Sendable (DaemonSettings) -> String

    /// The default value, spelled as in a config file.
    public var defaultValue: String { self.render(DaemonSettings()) }

    /// The environment variable for this setting: `DOODLED_` + the name in capitals with `_` for `-`.
    public var environmentName: String {
        "DOODLED_" + self.name.uppercased().replacingOccurrences(of: "-", with: "_")
    }
}

/// Why one value was refused (the resolver adds which setting and where the value came from).
public struct SettingValueError: Error, Sendable {
    public let expected: String
}

extension DaemonSettings {
    /// Every setting, in the order `--print-config` shows them.
    public static let specs: [SettingSpec] = [
        .address("listen", "Raw-TCP listen address, host:port.", \.listen),
        .optionalAddress("grpc-listen", "gRPC (HTTP/2) listen address, host:port, or 'off'.", \.grpcListen),
        .optionalAddress("http-listen", "HTTP listen address for /metrics, /healthz and /readyz, host:port, or 'off'.",
                         \.httpListen),
        .text("model", "Model directory (model.onnx + labels.txt) or .onnx file; SIGHUP reloads it.", \.model),
        .integer("workers", "Inference worker threads.", \.workers, minimum: 1),
        .integer("max-batch", "Most requests in one batch.", \.maxBatch, minimum: 1),
        .integer("max-queue", "Most requests waiting for a worker; more are answered RESOURCE_EXHAUSTED.",
                 \.maxQueue, minimum: 1),
        .integer("max-delay-us", "Microseconds a worker may hold a short batch waiting for more (0 = never).",
                 \.maxDelayMicros, minimum: 0),
        .integer("inline-after-idle-us", "A raw-TCP request that arrives alone after the server has been idle this many microseconds runs on the event loop, without the hand-off to a worker and back (0 = never).",
                 \.inlineAfterIdleMicros, minimum: 0),
        .integer("max-frame-bytes", "Largest frame payload in bytes; a larger declared length closes the connection.",
                 \.maxFrameBytes, minimum: 16),
        .integer("max-in-flight", "Requests one connection (or gRPC stream) may have in flight.", \.maxInFlight,
                 minimum: 1),
        .integer("max-strokes", "Most strokes in a drawing.", \.maxStrokes, minimum: 1),
        .integer("max-points", "Most points in a drawing.", \.maxPoints, minimum: 1),
        .seconds("max-coordinate", "Largest absolute stroke coordinate accepted.", \.maxCoordinate, maximum: 1e30,
                 expected: "a number, more than 0"),
        .integer("max-candidates", "Most candidate classes in one request.", \.maxCandidates, minimum: 1),
        .integer("max-connections", "Open raw-TCP connections; more are answered RESOURCE_EXHAUSTED and closed.",
                 \.maxConnections, minimum: 1),
        .seconds("idle-timeout", "Seconds a raw-TCP connection with nothing in flight may send nothing.",
                 \.idleTimeoutSeconds, maximum: 86_400),
        .seconds("frame-timeout", "Seconds a raw-TCP frame may take to arrive whole (slow senders are cut off).",
                 \.frameTimeoutSeconds, maximum: 3600),
        .integer("max-write-buffer", "Bytes of answers a client that does not read may leave waiting; then it is cut off.",
                 \.maxWriteBuffer, minimum: 65_536),
        .integer("shed-pause-ms", "Milliseconds a raw-TCP connection reads nothing after some of its requests were refused for a full queue (0 = never).",
                 \.shedPauseMillis, minimum: 0),
        SettingSpec(name: "kernels", help: "Kernel path: \(KernelISA.allNames) or auto (the fastest this CPU has).",
                    parse: { text, settings throws(SettingValueError) in
                        if text == "auto" { settings.kernels = nil; return }
                        guard let isa = KernelISA(name: text) else {
                            throw SettingValueError(expected: "\(KernelISA.allNames) or auto")
                        }
                        settings.kernels = isa
                    },
                    render: { $0.kernels.map { "\($0)" } ?? "auto" }),
        SettingSpec(name: "log-level", help: "Log level: trace, debug, info, notice, warning, error, critical.",
                    parse: { text, settings throws(SettingValueError) in
                        guard let level = Logger.Level(rawValue: text) else {
                            throw SettingValueError(expected: "trace, debug, info, notice, warning, error or critical")
                        }
                        settings.logLevel = level
                    },
                    render: { $0.logLevel.rawValue }),
        .seconds("drain-timeout", "Seconds a SIGTERM waits for queued and in-flight requests.", \.drainTimeoutSeconds,
                 maximum: 3600),
    ]

    /// The spec named `name`, if there is one.
    public static func spec(_ name: String) -> SettingSpec? { self.specs.first { $0.name == name } }
}

extension SettingSpec {
    static func address(_ name: String, _ help: String, _ field: any WritableKeyPath<DaemonSettings, HostPort> & Sendable) -> SettingSpec {
        SettingSpec(name: name, help: help, parse: { text, settings throws(SettingValueError) in
            guard let address = HostPort(text) else { throw SettingValueError(expected: "host:port") }
            settings[keyPath: field] = address
        }, render: { $0[keyPath: field].description })
    }

    static func optionalAddress(_ name: String, _ help: String,
                                _ field: any WritableKeyPath<DaemonSettings, HostPort?> & Sendable) -> SettingSpec {
        SettingSpec(name: name, help: help, parse: { text, settings throws(SettingValueError) in
            if text == "off" { settings[keyPath: field] = nil; return }
            guard let address = HostPort(text) else { throw SettingValueError(expected: "host:port or 'off'") }
            settings[keyPath: field] = address
        }, render: { $0[keyPath: field]?.description ?? "off" })
    }

    static func text(_ name: String, _ help: String, _ field: any WritableKeyPath<DaemonSettings, String> & Sendable) -> SettingSpec {
        SettingSpec(name: name, help: help, parse: { text, settings throws(SettingValueError) in
            guard !text.isEmpty else { throw SettingValueError(expected: "a non-empty value") }
            settings[keyPath: field] = text
        }, render: { $0[keyPath: field] })
    }

    static func seconds(_ name: String, _ help: String, _ field: any WritableKeyPath<DaemonSettings, Double> & Sendable,
                        maximum: Double, expected: String? = nil) -> SettingSpec {
        SettingSpec(name: name, help: help, parse: { text, settings throws(SettingValueError) in
            guard let value = Double(text), value > 0, value <= maximum else {
                throw SettingValueError(expected: expected ?? "seconds, more than 0 and at most \(Int(maximum))")
            }
            settings[keyPath: field] = value
        }, render: { String($0[keyPath: field]) })
    }

    static func integer(_ name: String, _ help: String, _ field: any WritableKeyPath<DaemonSettings, Int> & Sendable,
                        minimum: Int) -> SettingSpec {
        SettingSpec(name: name, help: help, parse: { text, settings throws(SettingValueError) in
            guard let value = Int(text), value >= minimum else {
                throw SettingValueError(expected: "an integer >= \(minimum)")
            }
            settings[keyPath: field] = value
        }, render: { String($0[keyPath: field]) })
    }
}
