import DoodleCore
import Foundation

/// A batch observer that can hold the worker that calls it (a stuck worker, made on purpose).
public final class StuckObserver: BatchObserver, Sendable {
    private let held = Locked(false)
    private let condition = NSCondition()

    public init() {}

    public func hold() { self.held.withLock { $0 = true } }

    public func release() {
        self.condition.lock()
        self.held.withLock { $0 = false }
        self.condition.broadcast()
        self.condition.unlock()
    }

    public func batchRan(_ timing: BatchTiming) {
        self.condition.lock()
        while self.held.withLock({ $0 }) { self.condition.wait() }
        self.condition.unlock()
    }
}
