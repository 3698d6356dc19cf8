import Foundation

/// A value behind a lock, for state shared between threads.
///
/// Used instead of `Synchronization.Mutex` because on Linux that is built on raw futexes, which ThreadSanitizer
/// cannot see: with swiftc 6.3.1 every access made under a `Mutex` from two threads is reported as a race (a
/// four-thread program that only inserts under one is reported; the same program under this lock is not).
/// This lock is a pthread mutex, which ThreadSanitizer understands, so the sanitizer runs stay meaningful.
public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    public init(_ value: Value) {
        self.value = value
    }

    /// Runs `body` with the value while holding the lock.
    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        self.lock.lock()
        defer { self.lock.unlock() }
        return try body(&self.value)
    }
}
