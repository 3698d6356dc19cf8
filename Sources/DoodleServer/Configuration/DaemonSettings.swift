import DoodleCore
import DoodleEngine
import DoodleWire
import Foundation
import Logging
import NIOCore

/// Everything an operator can set on `doodled`, typed and validated: the daemon's configuration (whose types
/// hold every default) and the log level.
///
/// Each setting has one name used everywhere: the flag `--max-batch`, the environment variable
/// `DOODLED_MAX_BATCH` and the config-file key `max-batch`. `SettingsResolver` picks flags over the environment
/// over the file over the default. A new setting is a field with its default where it is used, and one line in
/// `specs` (the README's table is checked against `specs` by the tests).
public struct DaemonSettings: Sendable, Equatable {
    public var daemon = DoodleDaemon.Configuration()
    public var logLevel = Logger.Level.info

    public init() {}
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
        .listener("listen", "Raw-TCP listen address, host:port.", \.daemon.tcp),
        .optionalListener("grpc-listen", "gRPC (HTTP/2) listen address, host:port, or 'off'.", \.daemon.grpc),
        .optionalListener("http-listen", "HTTP listen address (JSON API, drawing page, /metrics, /healthz, /readyz), host:port, or 'off'.",
                          \.daemon.http),
        .integer("http-max-body-bytes", "Largest HTTP request body; a larger one is answered 413.",
                 \.daemon.httpAPI.maxBodyBytes, minimum: 1024),
        SettingSpec(name: "http-cors-origins",
                    help: "Comma-separated origins whose pages may call the HTTP API from a browser (CORS), '*' for any, or 'none'.",
                    parse: { text, settings throws(SettingValueError) in
                        let origins = text == "none" ? [] : text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                        guard origins.allSatisfy({ $0 == "*" || $0.hasPrefix("http://") || $0.hasPrefix("https://") }) else {
                            throw SettingValueError(expected: "origins such as https://game.example.com, separated by commas, '*' or 'none'")
                        }
                        settings.daemon.httpAPI.corsOrigins = origins
                    },
                    render: { $0.daemon.httpAPI.corsOrigins.isEmpty ? "none" : $0.daemon.httpAPI.corsOrigins.joined(separator: ",") }),
        .text("model", "Model directory (model.onnx + labels.txt) or .onnx file; SIGHUP reloads it.", \.daemon.modelPath),
        .integer("workers", "Inference worker threads.", \.daemon.batcher.workers, minimum: 1),
        .integer("max-batch", "Most requests in one batch.", \.daemon.batcher.maxBatch, minimum: 1),
        .integer("max-queue", "Most requests waiting for a worker; more are answered RESOURCE_EXHAUSTED.",
                 \.daemon.batcher.maxQueue, minimum: 1),
        .integer("max-queue-wait-ms", "Longest expected wait for a worker a new request is admitted to, in milliseconds; beyond it requests are answered RESOURCE_EXHAUSTED, and a queued one that waited twice this long is dropped unrun (0 = no time bound).",
                 \.daemon.batcher.maxQueueWaitMillis, minimum: 0),
        .integer("max-delay-us", "Microseconds a worker may hold a short batch waiting for more (0 = never).",
                 \.daemon.batcher.maxDelayMicros, minimum: 0),
        .integer("inline-after-idle-us", "A raw-TCP request that arrives alone after the server has been idle this many microseconds runs on the event loop, without the hand-off to a worker and back (0 = never).",
                 \.daemon.batcher.inlineAfterIdleMicros, minimum: 0),
        .integer("max-frame-bytes", "Largest frame payload in bytes (the 5-byte header not counted); a larger declared length closes the connection.",
                 \.daemon.connectionLimits.maxFrameBytes, minimum: 16),
        .integer("max-in-flight", "Requests one connection (or gRPC stream) may have in flight.",
                 \.daemon.connectionLimits.maxInFlightPerConnection, minimum: 1),
        .integer("max-strokes", "Most strokes in a drawing.", \.daemon.requestLimits.maxStrokes, minimum: 1),
        .integer("max-points", "Most points in a drawing.", \.daemon.requestLimits.maxPoints, minimum: 1),
        .number("max-coordinate", "Largest absolute stroke coordinate accepted.", \.daemon.requestLimits.maxCoordinate,
                maximum: 1e30),
        .integer("max-candidates", "Most candidate classes in one request (entries as sent, duplicates included).",
                 \.daemon.requestLimits.maxCandidates, minimum: 1),
        .integer("max-image-bytes", "Most bytes of an image input (the PNG or JPEG file, or the raw pixels).",
                 \.daemon.requestLimits.maxImageBytes, minimum: 1),
        .integer("max-image-pixels", "Most pixels (width x height) of an image input, read from its header before it is decoded.",
                 \.daemon.requestLimits.maxImagePixels, minimum: 1),
        .integer("max-capture-label-bytes", "Most bytes of a request's capture_label.",
                 \.daemon.requestLimits.maxCaptureLabelBytes, minimum: 1),
        SettingSpec(name: "capture-dir",
                    help: "Directory where drawings sent with a capture_label are stored for retraining, or 'off' (nothing is captured).",
                    parse: { text, settings throws(SettingValueError) in
                        guard !text.isEmpty else { throw SettingValueError(expected: "a directory or 'off'") }
                        settings.daemon.captureDirectory = text == "off" ? nil : text
                    },
                    render: { $0.daemon.captureDirectory ?? "off" }),
        .integer("capture-max-bytes", "Most bytes the capture store may hold; then captures are refused (answers say so) and predictions go on.",
                 \.daemon.captureMaxBytes, minimum: 4096),
        .integer("max-connections", "Open raw-TCP connections; more are answered RESOURCE_EXHAUSTED and closed.",
                 \.daemon.connectionLimits.maxConnections, minimum: 1),
        .seconds("idle-timeout", "Seconds a raw-TCP connection with nothing in flight may send nothing.",
                 \.daemon.connectionLimits.idleTimeout, maximum: 86_400),
        .seconds("frame-timeout", "Seconds a raw-TCP frame may take to arrive whole (slow senders are cut off).",
                 \.daemon.connectionLimits.frameTimeout, maximum: 3600),
        .integer("max-write-buffer", "Bytes of answers a client that does not read may leave waiting; then it is cut off.",
                 \.daemon.connectionLimits.maxWriteBufferBytes, minimum: 65_536),
        .milliseconds("shed-pause-ms", "Milliseconds a raw-TCP connection reads nothing after some of its requests were refused for overload (0 = never).",
                      \.daemon.connectionLimits.shedPause),
        SettingSpec(name: "kernels", help: "Kernel path: \(KernelISA.allNames) or auto (the fastest this CPU has).",
                    parse: { text, settings throws(SettingValueError) in
                        if text == "auto" { settings.daemon.isa = nil; return }
                        guard let isa = KernelISA(name: text) else {
                            throw SettingValueError(expected: "\(KernelISA.allNames) or auto")
                        }
                        settings.daemon.isa = isa
                    },
                    render: { $0.daemon.isa.map { "\($0)" } ?? "auto" }),
        SettingSpec(name: "log-level", help: "Log level: trace, debug, info, notice, warning, error, critical.",
                    parse: { text, settings throws(SettingValueError) in
                        guard let level = Logger.Level(rawValue: text) else {
                            throw SettingValueError(expected: "trace, debug, info, notice, warning, error or critical")
                        }
                        settings.logLevel = level
                    },
                    render: { $0.logLevel.rawValue }),
        .seconds("drain-timeout", "Seconds a SIGTERM waits for queued and in-flight requests.", \.daemon.drainTimeout,
                 maximum: 3600),
    ]

    /// The spec named `name`, if there is one.
    public static func spec(_ name: String) -> SettingSpec? { self.specs.first { $0.name == name } }
}

extension SettingSpec {
    static func listener(_ name: String, _ help: String,
                         _ field: any WritableKeyPath<DaemonSettings, Listener> & Sendable) -> SettingSpec {
        SettingSpec(name: name, help: help, parse: { text, settings throws(SettingValueError) in
            guard let address = HostPort(text) else { throw SettingValueError(expected: "host:port") }
            settings[keyPath: field] = .address(host: address.host, port: address.port)
        }, render: { $0[keyPath: field].description })
    }

    static func optionalListener(_ name: String, _ help: String,
                                 _ field: any WritableKeyPath<DaemonSettings, Listener?> & Sendable) -> SettingSpec {
        SettingSpec(name: name, help: help, parse: { text, settings throws(SettingValueError) in
            if text == "off" { settings[keyPath: field] = nil; return }
            guard let address = HostPort(text) else { throw SettingValueError(expected: "host:port or 'off'") }
            settings[keyPath: field] = .address(host: address.host, port: address.port)
        }, render: { $0[keyPath: field]?.description ?? "off" })
    }

    static func text(_ name: String, _ help: String, _ field: any WritableKeyPath<DaemonSettings, String> & Sendable) -> SettingSpec {
        SettingSpec(name: name, help: help, parse: { text, settings throws(SettingValueError) in
            guard !text.isEmpty else { throw SettingValueError(expected: "a non-empty value") }
            settings[keyPath: field] = text
        }, render: { $0[keyPath: field] })
    }

    static func number(_ name: String, _ help: String, _ field: any WritableKeyPath<DaemonSettings, Double> & Sendable,
                       maximum: Double) -> SettingSpec {
        SettingSpec(name: name, help: help, parse: { text, settings throws(SettingValueError) in
            guard let value = Double(text), value > 0, value <= maximum else {
                throw SettingValueError(expected: "a number, more than 0")
            }
            settings[keyPath: field] = value
        }, render: { String($0[keyPath: field]) })
    }

    static func seconds(_ name: String, _ help: String, _ field: any WritableKeyPath<DaemonSettings, Duration> & Sendable,
                        maximum: Double) -> SettingSpec {
        SettingSpec(name: name, help: help, parse: { text, settings throws(SettingValueError) in
            guard let value = Double(text), value > 0, value <= maximum else {
                throw SettingValueError(expected: "seconds, more than 0 and at most \(Int(maximum))")
            }
            settings[keyPath: field] = .seconds(value)
        }, render: { String(Self.seconds(of: $0[keyPath: field])) })
    }

    static func milliseconds(_ name: String, _ help: String,
                             _ field: any WritableKeyPath<DaemonSettings, Duration> & Sendable) -> SettingSpec {
        SettingSpec(name: name, help: help, parse: { text, settings throws(SettingValueError) in
            guard let value = Int(text), value >= 0 else { throw SettingValueError(expected: "an integer >= 0") }
            settings[keyPath: field] = .milliseconds(value)
        }, render: { String(Int((Self.seconds(of: $0[keyPath: field]) * 1000).rounded())) })
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

    static func seconds(of duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
