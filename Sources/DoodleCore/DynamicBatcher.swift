import DoodleEngine
import DoodlePreprocessing
import Foundation

/// Gathers concurrent prediction requests into batches and runs them on dedicated worker threads.
///
/// Every request comes with the model it was validated against and runs on that model: a batch never mixes
/// models, so a reload (which only changes what new requests are validated against) can never score a request
/// with a model whose classes it was not checked for.
///
/// A free worker takes everything queued, up to `maxBatch`, at once: nothing waits when the queue is short,
/// unless `maxDelay` asks a worker to hold a short batch that long for company. The queue is bounded: a
/// request that finds it full is answered RESOURCE_EXHAUSTED at once, and one whose deadline has passed when a
/// worker takes it is answered DEADLINE_EXCEEDED without running the model. Preprocessing (normalising and
/// rendering strokes) and inference run on the workers; the one exception is `runIfIdle`, which a transport
/// may call for a request that arrived alone while the batcher has nothing to do.
public final class DynamicBatcher: @unchecked Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Worker threads, each with its own engine scratch and renderer.
        public var workers: Int
        /// Most requests in one batch.
        public var maxBatch: Int
        /// Most requests waiting for a worker.
        public var maxQueue: Int
        /// How long a worker may hold a batch smaller than `maxBatch` waiting for more (0 = never).
        public var maxDelayMicros: Int
        /// How long the batcher must have been idle (no request arrived or finished) before `runIfIdle` runs the
        /// next request of the same sender on the caller's thread, in microseconds; 0 = never (and never while
        /// `maxDelayMicros` is set). A client sending one request at a time saves the hand-offs to a worker and
        /// back; interleaved clients and steady load are batched.
        public var inlineAfterIdleMicros: Int

        public init(workers: Int = ProcessInfo.processInfo.activeProcessorCount, maxBatch: Int = 64,
                    maxQueue: Int = 4096, maxDelayMicros: Int = 0, inlineAfterIdleMicros: Int = 50) {
            self.workers = workers
            self.maxBatch = maxBatch
            self.maxQueue = maxQueue
            self.maxDelayMicros = maxDelayMicros
            self.inlineAfterIdleMicros = inlineAfterIdleMicros
        }
    }

    /// Answers a request: predictions, or the error that stopped them. Called on a worker thread (or, for
    /// immediate rejections, on the submitting thread).
    public typealias Completion = @Sendable (Result<[ScoredClass], ServiceError>) -> Void

    /// Counts since start, for tests, logs and metrics.
    public struct Statistics: Sendable, Equatable {
        public var batches = 0
        public var requests = 0
        public var largestBatch = 0
        public var rejectedQueueFull = 0
        public var deadlineExceeded = 0
        /// Requests `runIfIdle` ran on the caller's thread (also counted in `requests` and `batches`).
        public var ranInline = 0
        /// batchSizes[n] = batches of n requests.
        public var batchSizes: [Int] = []
    }

    private struct Job {
        var request: PredictionRequest
        /// The model the request was validated against, and runs on.
        var predictor: Predictor
        var completion: Completion
        /// Monotonic nanoseconds when it was queued.
        var enqueuedAt: UInt64
    }

    public let configuration: Configuration
    /// What a full queue answers (built once: shedding at 10x overload must not format a message per request).
    public let queueFullError: ServiceError
    private let condition = NSCondition()
    // Guarded by `condition`:
    private var queue: [Job?]
    private var head = 0
    private var count = 0
    private var stopping = false
    private var stats = Statistics()
    private var running = 0
    /// When each worker took the batch it is working on (monotonic ns), 0 while it waits for work.
    private var busySince: [UInt64]
    /// Set while a caller runs a request in `runIfIdle`, which then owns `inlineRunner`.
    private var inlineBusy = false
    /// When a request last arrived or a batch last finished (monotonic ns), and who sent the last request (nil:
    /// none yet, or one that did not say).
    private var lastActivity: UInt64 = 0
    private var lastCaller: Int?
    private var sawRequest = false
    private let inlineRunner: BatchRunner
    private let finished = DispatchGroup()
    private let observer: (any BatchObserver)?

    /// Starts the workers; `observer` (metrics) hears the timing of every batch.
    public init(configuration: Configuration, observer: (any BatchObserver)? = nil) {
        precondition(configuration.workers >= 1 && configuration.maxBatch >= 1 && configuration.maxQueue >= 1)
        self.configuration = configuration
        self.queueFullError = ServiceError(.resourceExhausted,
                                           "the request queue is full (\(configuration.maxQueue) waiting)")
        self.observer = observer
        self.queue = [Job?](repeating: nil, count: configuration.maxQueue)
        self.stats.batchSizes = [Int](repeating: 0, count: configuration.maxBatch + 1)
        self.busySince = [UInt64](repeating: 0, count: configuration.workers)
        self.inlineRunner = BatchRunner(maxBatch: 1, inline: true)
        for i in 0..<configuration.workers {
            self.finished.enter()
            let thread = Thread { [self] in
                self.workerLoop(worker: i)
                self.finished.leave()
            }
            thread.name = "doodled-worker-\(i)"
            thread.start()
        }
        self.running = configuration.workers
    }

    /// Queues a request to run on `predictor`, the model it was validated against; `completion` is called
    /// exactly once. `caller` names the sender (a connection) for `runIfIdle`.
    public func submit(_ request: PredictionRequest, on predictor: Predictor, caller: Int? = nil,
                       completion: @escaping Completion) {
        self.condition.lock()
        if self.stopping {
            self.condition.unlock()
            completion(.failure(ServiceError(.unavailable, "the server is shutting down")))
            return
        }
        if self.count == self.queue.count {
            self.stats.rejectedQueueFull += 1
            self.condition.unlock()
            completion(.failure(self.queueFullError))
            return
        }
        let now = DispatchTime.now().uptimeNanoseconds
        self.queue[(self.head + self.count) % self.queue.count] = Job(request: request, predictor: predictor,
                                                                        completion: completion, enqueuedAt: now)
        self.count += 1
        self.lastActivity = now
        self.lastCaller = caller
        self.sawRequest = true
        self.condition.unlock()
        self.condition.signal()
    }

    /// Whether `runIfIdle` can ever run a request (inline-after-idle set, no max-delay).
    public var mayRunInline: Bool {
        self.configuration.inlineAfterIdleMicros > 0 && self.configuration.maxDelayMicros == 0
    }

    /// Runs `request` on the calling thread and returns its answer, if the batcher has been idle for
    /// `inlineAfterIdleMicros` (nothing queued or running, no request arrived or finished) and the last request
    /// came from the same `caller`; otherwise returns nil at once (then `submit` it).
    ///
    /// For a client that sends one request at a time, this saves the hand-off to a worker and back: two wake-ups
    /// across threads, which on a VM are most of a request's latency. It never delays queued work (there is none)
    /// and never runs two at a time. With several clients (their requests interleave) or steady load (never quiet
    /// that long), requests are batched, and an event loop serving other connections is not tied up with
    /// inference.
    public func runIfIdle(_ request: PredictionRequest, on predictor: Predictor,
                          caller: Int) -> Result<[ScoredClass], ServiceError>? {
        // (A max-delay asks lone requests to wait for company; running them at once would defeat it.)
        guard self.mayRunInline else { return nil }
        let quiet = UInt64(self.configuration.inlineAfterIdleMicros) * 1000
        let now = DispatchTime.now().uptimeNanoseconds
        self.condition.lock()
        let sameCaller = !self.sawRequest || self.lastCaller == caller
        self.lastCaller = caller
        self.sawRequest = true
        guard !self.stopping, self.count == 0, !self.inlineBusy, sameCaller, now &- self.lastActivity >= quiet,
              self.busySince.allSatisfy({ $0 == 0 }) else {
            self.condition.unlock()
            return nil  // the caller submits it, which records the activity
        }
        self.inlineBusy = true
        self.condition.unlock()
        let answer = InlineAnswer()
        let job = Job(request: request, predictor: predictor, completion: { answer.value = $0 },
                      enqueuedAt: DispatchTime.now().uptimeNanoseconds)
        self.inlineRunner.run([job], on: predictor, observer: self.observer) { ran, expired in
            self.record(batch: ran, expired: expired, inline: true)
        }
        self.condition.lock()
        self.inlineBusy = false
        self.lastActivity = DispatchTime.now().uptimeNanoseconds
        self.condition.unlock()
        return answer.value
    }

    /// Where an inline run's completion leaves the answer: written and read on the one calling thread.
    private final class InlineAnswer: @unchecked Sendable {
        var value: Result<[ScoredClass], ServiceError>?
    }

    /// Whether the queue is full now (a cheap check before `rejectionIfFull`).
    public var isFull: Bool {
        self.condition.lock()
        defer { self.condition.unlock() }
        return self.count == self.queue.count
    }

    /// The error `submit` would answer right now because the queue is full (counted as a rejection), or nil
    /// when there is room. Lets a transport shed a request before it pays for decoding and validating it.
    public func rejectionIfFull() -> ServiceError? {
        self.condition.lock()
        defer { self.condition.unlock() }
        guard self.count == self.queue.count else { return nil }
        self.stats.rejectedQueueFull += 1
        return self.queueFullError
    }

    /// Requests waiting for a worker.
    public var queueDepth: Int {
        self.condition.lock()
        defer { self.condition.unlock() }
        return self.count
    }

    /// How long the longest-running batch has been running (0 when every worker waits for work). A worker stuck
    /// in one batch makes this grow without bound; the systemd watchdog stops pinging when it passes a limit.
    public var longestBatchNanos: UInt64 {
        let now = DispatchTime.now().uptimeNanoseconds
        self.condition.lock()
        defer { self.condition.unlock() }
        return self.busySince.reduce(0) { longest, since in since == 0 ? longest : max(longest, now &- since) }
    }

    public var statistics: Statistics {
        self.condition.lock()
        defer { self.condition.unlock() }
        return self.stats
    }

    /// Stops taking requests, answers everything already queued, and waits for the workers to finish.
    public func shutdown() {
        self.condition.lock()
        self.stopping = true
        self.condition.unlock()
        self.condition.broadcast()
        self.finished.wait()
    }

    // MARK: - Workers

    /// Waits for work and takes the next batch: queued requests in order, up to `maxBatch`, all for the same
    /// model (a request for another model ends the batch and heads the next). False when stopping; `jobs` may
    /// be left empty (another worker took what a delayed batch was waiting with).
    private func takeBatch(into jobs: inout [Job], worker: Int) -> Bool {
        self.condition.lock()
        defer { self.condition.unlock() }
        if self.busySince[worker] != 0 { self.lastActivity = DispatchTime.now().uptimeNanoseconds }
        self.busySince[worker] = 0
        while self.count == 0 {
            if self.stopping { return false }
            self.condition.wait()
        }
        let maxBatch = self.configuration.maxBatch
        if self.configuration.maxDelayMicros > 0 && self.count < maxBatch && !self.stopping {
            let until = Date(timeIntervalSinceNow: Double(self.configuration.maxDelayMicros) / 1e6)
            while self.count > 0 && self.count < maxBatch && !self.stopping {
                if !self.condition.wait(until: until) { break }
            }
            if self.count == 0 { return !self.stopping }
        }
        let predictor = self.queue[self.head]!.predictor
        while jobs.count < maxBatch && self.count > 0 && self.queue[self.head]!.predictor === predictor {
            jobs.append(self.queue[self.head]!)
            self.queue[self.head] = nil
            self.head = (self.head + 1) % self.queue.count
            self.count -= 1
        }
        self.busySince[worker] = DispatchTime.now().uptimeNanoseconds
        if self.count > 0 { self.condition.signal() }  // more work: wake another worker
        return true
    }

    private func record(batch: Int, expired: Int, inline: Bool = false) {
        self.condition.lock()
        self.stats.batches += batch > 0 ? 1 : 0
        self.stats.requests += batch
        self.stats.largestBatch = max(self.stats.largestBatch, batch)
        if batch > 0 { self.stats.batchSizes[batch] += 1 }
        self.stats.deadlineExceeded += expired
        if inline { self.stats.ranInline += batch }
        self.condition.unlock()
    }

    private func workerLoop(worker: Int) {
        let runner = BatchRunner(maxBatch: self.configuration.maxBatch)
        var jobs: [Job] = []
        jobs.reserveCapacity(self.configuration.maxBatch)
        while true {
            jobs.removeAll(keepingCapacity: true)
            guard self.takeBatch(into: &jobs, worker: worker) else { return }
            guard let predictor = jobs.first?.predictor else { continue }
            runner.run(jobs, on: predictor, observer: self.observer) { ran, expired in
                self.record(batch: ran, expired: expired)
            }
        }
    }

    /// What one thread needs to run batches: a preprocessor, and engine scratch and buffers for the predictor it
    /// last ran (made again when the model is replaced). Used by one thread at a time.
    private final class BatchRunner {
        let maxBatch: Int
        let preprocessor = Preprocessor()
        /// The model the scratch and buffers were made for (held, so that no later model can take its address).
        var scratchModel: Predictor?
        var scratch: InferenceScratch?
        var pixels: [UInt8] = []
        var scores: [Float] = []
        var live: [Job] = []
        var expired: [Job] = []
        var timing = BatchTiming()

        init(maxBatch: Int, inline: Bool = false) {
            self.maxBatch = maxBatch
            self.timing.ranInline = inline
            self.live.reserveCapacity(maxBatch)
            self.timing.queueWaitNanos.reserveCapacity(maxBatch)
            self.timing.preprocessNanos.reserveCapacity(maxBatch)
        }

        /// Preprocesses `jobs` (at most `maxBatch`, all validated against `predictor`), runs the model once over
        /// those whose deadline has not passed, and calls every completion. `record(ran, expired)` is called before the completions, so that
        /// anyone a completion wakes sees the statistics.
        func run(_ jobs: [Job], on predictor: Predictor, observer: (any BatchObserver)?, record: (Int, Int) -> Void) {
            let engine = predictor.engine
            if self.scratchModel !== predictor {
                self.scratch = engine.makeScratch(maxBatch: self.maxBatch)
                self.scratchModel = predictor
                self.pixels = [UInt8](repeating: 0, count: self.maxBatch * engine.inputBytes)
                self.scores = [Float](repeating: 0, count: self.maxBatch * engine.classCount)
            }
            let now = DispatchTime.now().uptimeNanoseconds
            self.live.removeAll(keepingCapacity: true)
            self.expired.removeAll(keepingCapacity: true)
            self.timing.queueWaitNanos.removeAll(keepingCapacity: true)
            self.timing.preprocessNanos.removeAll(keepingCapacity: true)
            var clock = now
            for job in jobs {
                self.timing.queueWaitNanos.append(now &- job.enqueuedAt)
                if let deadline = job.request.deadlineNanos, now >= deadline {
                    self.expired.append(job)
                    continue
                }
                let offset = self.live.count * engine.inputBytes
                self.pixels.withUnsafeMutableBufferPointer { buf in
                    self.preprocessor.prepare(job.request.input, into: buf.baseAddress! + offset)
                }
                self.live.append(job)
                let after = DispatchTime.now().uptimeNanoseconds
                self.timing.preprocessNanos.append(after &- clock)
                clock = after
            }
            record(self.live.count, self.expired.count)
            for job in self.expired {
                job.completion(.failure(ServiceError(.deadlineExceeded, "the deadline passed before the model ran")))
            }
            if self.live.isEmpty {
                self.timing.size = 0
                self.timing.inferenceNanos = 0
                observer?.batchRan(self.timing)
                return
            }
            do {
                let count = self.live.count
                try self.pixels.withUnsafeBytes { px in
                    try self.scores.withUnsafeMutableBufferPointer { s in
                        try engine.run(images: px, count: count, scratch: self.scratch!, scores: s)
                    }
                }
            } catch {
                for job in self.live { job.completion(.failure(ServiceError(.internal, "inference failed: \(error)"))) }
                return
            }
            self.timing.size = self.live.count
            self.timing.inferenceNanos = DispatchTime.now().uptimeNanoseconds &- clock
            observer?.batchRan(self.timing)
            self.scores.withUnsafeBufferPointer { all in
                for (i, job) in self.live.enumerated() {
                    let row = UnsafeBufferPointer(rebasing: all[(i * engine.classCount)..<((i + 1) * engine.classCount)])
                    job.completion(.success(predictor.top(job.request.topK, of: row, candidates: job.request.candidates)))
                }
            }
        }
    }
}

/// The timing of one batch, in monotonic nanoseconds.
public struct BatchTiming: Sendable {
    /// Requests that ran through the model.
    public var size = 0
    /// Queue wait of every request the worker took (including those whose deadline had passed).
    public var queueWaitNanos: [UInt64] = []
    /// Preprocessing (validation done, normalise and render, or copy a bitmap) of each request that ran.
    public var preprocessNanos: [UInt64] = []
    /// The model run for the whole batch.
    public var inferenceNanos: UInt64 = 0
    /// Whether it ran on the caller's thread (`DynamicBatcher.runIfIdle`) rather than on a worker.
    public var ranInline = false

    public init() {}
}

/// Hears the timing of every batch (metrics). Called on worker threads, before the batch's completions; keep
/// it cheap and don't keep the arrays.
public protocol BatchObserver: Sendable {
    func batchRan(_ timing: BatchTiming)
}
