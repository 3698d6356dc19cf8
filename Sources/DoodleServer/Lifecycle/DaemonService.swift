import Logging
import ServiceLifecycle

/// The daemon as a service: starts it (model, batcher, listeners) when the group runs, serves until the group
/// shuts down gracefully (SIGTERM, SIGINT), then drains it in `DoodleDaemon.shutdown`'s order. The other
/// services get the running daemon from `started`.
public struct DaemonService: Service {
    let configuration: DoodleDaemon.Configuration
    let logger: Logger
    let notifier: SystemdNotifier
    let started: StartedDaemon

    public init(configuration: DoodleDaemon.Configuration, logger: Logger, notifier: SystemdNotifier,
                started: StartedDaemon) {
        self.configuration = configuration
        self.logger = logger
        self.notifier = notifier
        self.started = started
    }

    public func run() async throws {
        self.notifier.status("loading model \(self.configuration.modelPath)")
        let daemon: DoodleDaemon
        do {
            daemon = try await DoodleDaemon.start(self.configuration, logger: self.logger)
        } catch {
            self.logger.critical("doodled could not start", metadata: ["error": "\(error)"])
            self.notifier.status("failed to start: \(error)")
            self.started.finish(nil)
            throw error
        }
        self.started.finish(daemon)
        self.notifier.ready(status: daemon.servingStatus)
        // Until SIGTERM/SIGINT (or the group is cancelled: then the drain below is cut short).
        try? await gracefulShutdown()
        self.logger.info("doodled shutting down")
        self.notifier.stopping(status: "draining")
        await daemon.shutdown()
    }
}
