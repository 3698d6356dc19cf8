import DoodleCore

/// Hands the daemon, once `DaemonService` has started it, to the services that act on it (reload, watchdog).
/// Each waits for it; nil means it failed to start.
public final class StartedDaemon: Sendable {
    private enum State {
        case starting([CheckedContinuation<DoodleDaemon?, Never>])
        case done(DoodleDaemon?)
    }

    private let state = Locked(State.starting([]))

    public init() {}

    /// The daemon once it serves, or nil if it could not start.
    public func daemon() async -> DoodleDaemon? {
        await withCheckedContinuation { continuation in
            let ready: DoodleDaemon?? = self.state.withLock { state in
                switch state {
                case .starting(let waiting):
                    state = .starting(waiting + [continuation])
                    return .none
                case .done(let daemon):
                    return .some(daemon)
                }
            }
            if case .some(let daemon) = ready { continuation.resume(returning: daemon) }
        }
    }

    /// Records the outcome of the start and wakes every waiter.
    func finish(_ daemon: DoodleDaemon?) {
        let waiting: [CheckedContinuation<DoodleDaemon?, Never>] = self.state.withLock { state in
            guard case .starting(let waiting) = state else { return [] }
            state = .done(daemon)
            return waiting
        }
        for continuation in waiting { continuation.resume(returning: daemon) }
    }
}
