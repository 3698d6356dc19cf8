import Foundation

/// Durable, bounded storage of captured drawings with group commit: callers on any thread hand a record over
/// and are called back once it is on disk (or refused); one writer thread writes everything handed over
/// meanwhile as one group, with one `write` and one `fdatasync` (`CaptureLog.append`). A caller never waits
/// on a disk itself, and the cost of a sync is shared by every request that arrived during the previous one.
public final class CaptureStore: @unchecked Sendable {
    /// What became of one record.
    public enum Result: String, Sendable, Equatable, CaseIterable {
        /// On disk and synced: it survives a crash or a power cut.
        case captured
        /// Not stored: the store has reached its size bound, or the disk is full.
        case full
        /// Not stored: the log could not be written (see the logged error).
        case failed
    }

    /// Counts since start, plus the log's size.
    public struct Statistics: Sendable, Equatable {
        public var bytesUsed = 0
        public var maxBytes = 0
        public var records = 0
        /// Groups written (each one `fdatasync`).
        public var groups = 0
        public var largestGroup = 0
    }

    public typealias Completion = @Sendable (Result) -> Void

    private let log: CaptureLog
    private let condition = NSCondition()
    // Guarded by `condition`:
    private var pending: [(payload: [UInt8], completion: Completion)] = []
    private var stopping = false
    private var stats: Statistics
    private let finished = DispatchSemaphore(value: 0)
    private let onError: @Sendable (CaptureLogError) -> Void

    /// What opening the log found (torn tail dropped, records present).
    public var recovery: CaptureLog.Recovery { self.log.recovery }

    /// Opens the log and starts the writer thread; `onError` hears every write error (for the daemon's log).
    public init(configuration: CaptureLog.Configuration,
                onError: @escaping @Sendable (CaptureLogError) -> Void = { _ in }) throws(CaptureLogError) {
        self.log = try CaptureLog(configuration: configuration)
        self.onError = onError
        self.stats = Statistics(bytesUsed: self.log.bytesUsed, maxBytes: configuration.maxBytes,
                                records: self.log.recordCount)
        let thread = Thread { [self] in self.run() }
        thread.name = "doodled-capture"
        thread.start()
    }

    /// Hands `payload` to the writer; `completion` is called once, on the writer thread, when it is durable or
    /// refused. After `shutdown` it is refused (`.failed`) at once.
    public func append(_ payload: [UInt8], completion: @escaping Completion) {
        self.condition.lock()
        guard !self.stopping else {
            self.condition.unlock()
            completion(.failed)
            return
        }
        self.pending.append((payload, completion))
        self.condition.signal()
        self.condition.unlock()
    }

    public var statistics: Statistics {
        self.condition.lock()
        defer { self.condition.unlock() }
        return self.stats
    }

    /// Writes what was handed over already, then stops the writer and closes the log.
    public func shutdown() {
        self.condition.lock()
        let wasStopping = self.stopping
        self.stopping = true
        self.condition.signal()
        self.condition.unlock()
        if !wasStopping { self.finished.wait() }
    }

    private func run() {
        while true {
            self.condition.lock()
            while self.pending.isEmpty && !self.stopping { self.condition.wait() }
            let group = self.pending
            self.pending.removeAll(keepingCapacity: true)
            let done = self.stopping && group.isEmpty
            self.condition.unlock()
            if done { break }
            let results: [Result]
            do {
                results = try self.log.append(group.map(\.payload)).map { $0 == .written ? .captured : .full }
            } catch {
                self.onError(error)
                results = group.map { _ in .failed }
            }
            self.condition.lock()
            self.stats.bytesUsed = self.log.bytesUsed
            self.stats.records = self.log.recordCount
            self.stats.groups += 1
            self.stats.largestGroup = max(self.stats.largestGroup, group.count)
            self.condition.unlock()
            for (item, result) in zip(group, results) { item.completion(result) }
        }
        self.log.close()
        self.finished.signal()
    }
}
