import ServiceLifecycle

/// The systemd watchdog as a service: pings while the daemon makes progress (`Watchdog.run`), from the moment
/// it serves until graceful shutdown.
public struct WatchdogService: Service {
    let started: StartedDaemon
    let notifier: SystemdNotifier
    let timeout: Duration

    public init(started: StartedDaemon, notifier: SystemdNotifier, timeout: Duration) {
        self.started = started
        self.notifier = notifier
        self.timeout = timeout
    }

    public func run() async throws {
        guard let daemon = await self.started.daemon() else { return }
        let (notifier, timeout) = (self.notifier, self.timeout)
        await cancelWhenGracefulShutdown {
            await Watchdog.run(notifier: notifier, timeout: timeout) {
                daemon.isMakingProgress(stallLimit: timeout / 2)
            }
        }
    }
}
