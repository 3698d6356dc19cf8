import Foundation

/// Runs blocking work (raw sockets, waits with timeouts) on a thread of its own. On Swift's cooperative pool,
/// which has one thread per core, it would starve everything else the tests run there: other tests' waits, and
/// the daemon's own async work in the server tests.
public func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}

/// Runs CPU-bound work (thousands of images through the engine or the renderer) on a thread of its own, one such
/// job at a time across the whole test process: off the cooperative pool (see `offPool`), and never more than one
/// core's worth, so that the daemons, load generators and proxies the other tests run keep their share of the CPU.
public func computeOffPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await offPool {
        computeSlot.wait()
        defer { computeSlot.signal() }
        return try work()
    }
}

private let computeSlot = DispatchSemaphore(value: 1)
