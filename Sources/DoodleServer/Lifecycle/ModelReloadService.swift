import ServiceLifecycle
import UnixSignals

/// Reloads the model on SIGHUP (`DoodleDaemon.reload`), telling systemd (RELOADING, then READY with the
/// outcome). SIGHUP is trapped from the moment the group runs, so one sent during start-up is not lost: it
/// reloads once the daemon serves. Ends at graceful shutdown.
public struct ModelReloadService: Service {
    let started: StartedDaemon
    let notifier: SystemdNotifier

    public init(started: StartedDaemon, notifier: SystemdNotifier) {
        self.started = started
        self.notifier = notifier
    }

    public func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        guard let daemon = await self.started.daemon() else { return }
        for await _ in hangups.cancelOnGracefulShutdown() {
            self.notifier.reloading(status: "reloading model \(daemon.configuration.modelPath)")
            do {
                try await daemon.reload()
                self.notifier.ready(status: daemon.servingStatus)
            } catch {
                self.notifier.ready(status: daemon.servingStatus + "; last reload refused: \(error)")
            }
        }
    }
}
