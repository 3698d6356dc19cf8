import ArgumentParser
import DoodleCore
import DoodleServer
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

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

            SETTINGS:
            \(Doodled.settingsHelp)
            """)

    @Option(help: "Config file of 'name = value' lines [env DOODLED_CONFIG].")
    var config: String?

    @Flag(help: "Print the settings in effect (with where each came from) and exit.")
    var printConfig = false

    /// Every setting as `--name value` or `--name=value` (`DaemonSettings.specs`; listed in the help's
    /// discussion), gathered here and parsed from the one table.
    @Argument(parsing: .allUnrecognized, help: .hidden)
    var settingFlags: [String] = []

    /// The settings' part of `--help`: one line per setting with its environment variable and default.
    static var settingsHelp: String {
        DaemonSettings.specs.map { spec in
            "--\(spec.name) <value>\n    \(spec.help) [env \(spec.environmentName); default \(spec.defaultValue)]"
        }.joined(separator: "\n")
    }

    /// The settings given as flags, by name.
    func flags() throws -> [String: String] {
        var flags: [String: String] = [:]
        var rest = self.settingFlags[...]
        while let token = rest.popFirst() {
            guard token.hasPrefix("--") else { throw ValidationError("unexpected argument '\(token)'") }
            var name = String(token.dropFirst(2))
            var value: String?
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard DaemonSettings.spec(name) != nil else {
                throw ValidationError("unknown option '--\(name)' (settings: \(DaemonSettings.specs.map(\.name).joined(separator: ", ")))")
            }
            guard let given = value ?? rest.popFirst() else { throw ValidationError("--\(name) needs a value") }
            flags[name] = given
        }
        return flags
    }

    mutating func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let resolved: ResolvedSettings
        let activation: SocketActivation?
        do {
            resolved = try SettingsResolver.resolve(flags: try self.flags(), configPath: self.config, environment: environment)
            activation = try SocketActivation.fromEnvironment(environment)
        } catch let error as ValidationError {
            throw error
        } catch let error as SettingsError {
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
        var daemonConfig = settings.daemon
        activation?.apply(to: &daemonConfig)
        let notifier = SystemdNotifier(environment: environment)
        // One group: the daemon (started when the group runs, drained at its end), model reloads on SIGHUP and
        // the systemd watchdog. SIGTERM and SIGINT shut it down gracefully, in reverse order: the watchdog and
        // reloads stop, then the daemon drains. Signals are trapped before anything starts, so none is lost.
        let started = StartedDaemon()
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: DaemonService(configuration: daemonConfig, logger: logger, notifier: notifier, started: started)),
            .init(service: ModelReloadService(started: started, notifier: notifier), successTerminationBehavior: .ignore),
        ]
        if let timeout = Watchdog.timeout(environment: environment) {
            services.append(.init(service: WatchdogService(started: started, notifier: notifier, timeout: timeout),
                                  successTerminationBehavior: .ignore))
        }
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            throw ExitCode.failure  // the reason is logged (DaemonService)
        }
    }
}
