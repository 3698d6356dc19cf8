import DoodleCore

/// Whether the daemon takes work: `serving` once the model is loaded and warm, `notServing` while draining.
/// The gRPC health service and `/readyz` report it; watchers hear every change.
public final class ServingState: Sendable {
    public enum Status: Sendable, Equatable {
        case serving
        case notServing
    }

    private struct State {
        var status: Status
        var closed = false
        var nextID = 0
        var watchers: [Int: AsyncStream<Status>.Continuation] = [:]
    }

    private let state: Locked<State>

    public init(_ status: Status = .notServing) {
        self.state = Locked(State(status: status))
    }

    public var status: Status { self.state.withLock { $0.status } }

    /// Sets the status and tells every watcher if it changed.
    public func set(_ status: Status) {
        let watchers: [AsyncStream<Status>.Continuation] = self.state.withLock { state in
            guard state.status != status else { return [] }
            state.status = status
            return Array(state.watchers.values)
        }
        for watcher in watchers { watcher.yield(status) }
    }

    /// The current status, then every change, until `close()` (or the consumer stops listening).
    public func watch() -> AsyncStream<Status> {
        let (stream, continuation) = AsyncStream.makeStream(of: Status.self, bufferingPolicy: .bufferingNewest(1))
        let registered: Bool = self.state.withLock { state in
            guard !state.closed else { return false }
            let id = state.nextID
            state.nextID += 1
            state.watchers[id] = continuation
            continuation.yield(state.status)
            continuation.onTermination = { [weak self] _ in
                _ = self?.state.withLock { $0.watchers.removeValue(forKey: id) }
            }
            return true
        }
        if !registered {
            continuation.yield(self.status)
            continuation.finish()
        }
        return stream
    }

    /// Ends every watch (so long-lived health streams don't hold up a graceful shutdown).
    public func close() {
        let watchers: [AsyncStream<Status>.Continuation] = self.state.withLock { state in
            state.closed = true
            defer { state.watchers.removeAll() }
            return Array(state.watchers.values)
        }
        for watcher in watchers { watcher.finish() }
    }
}
