#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The systemd watchdog: `WATCHDOG=1` every half of `WATCHDOG_USEC`, but only while the daemon makes progress,
/// so that a stuck worker lets systemd's timer run out and restart the service.
public enum Watchdog {
    /// The watchdog timeout systemd set for this process, or nil when there is none.
    public static func timeout(environment: [String: String], pid: Int32 = getpid()) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let micros = Int64(text), micros > 0 else { return nil }
        if let owner = environment["WATCHDOG_PID"], Int32(owner) != pid { return nil }
        return .microseconds(micros)
    }

    /// Pings every `timeout / 2` while `isMakingProgress()` says so; ends when the task is cancelled.
    public static func run(notifier: SystemdNotifier, timeout: Duration,
                           isMakingProgress: @escaping @Sendable () async -> Bool) async {
        let interval = timeout / 2
        while !Task.isCancelled {
            if await isMakingProgress() { notifier.watchdog() }
            try? await Task.sleep(for: interval)
        }
    }
}
