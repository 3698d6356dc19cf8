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
/// unless `maxDelay` asks a worker to hold a short batch that long for company.
///
/// The queue is bounded in time, not only in count. The batcher learns what a request costs (per kind of input:
/// a bitmap is a copy, strokes are normalised and rendered) from the batches it runs, and keeps the sum of what
/// is queued. A request whose expected wait (that sum over the workers) exceeds `maxQueueWaitMillis` is refused
/// at once with RESOURCE_EXHAUSTED, as is one beyond `maxQueue` (the memory cap); one whose own deadline cannot
/// be met is refused DEADLINE_EXCEEDED. A queued request whose deadline has passed, or that has waited twice
/// `maxQueueWaitMillis` (plus `maxDelayMicros`, the hold it was meant to have: the estimate was wrong), is answered
/// DEADLINE_EXCEEDED when a worker reaches it, without running the model: the model only runs work whose answer
/// someone still wants. Preprocessing (normalising and rendering strokes, decoding and tracing pictures) and
/// inference run on the workers; the one exception is `runIfIdle`, which a transport may call for a stroke or
/// bitmap request that arrived alone while the batcher has nothing to do. A picture that cannot be read (corrupt,
/// or nothing drawn on it) is answered INVALID_ARGUMENT by the worker that found out, without running the model.
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
        /// Longest expected wait for a worker a new request is admitted to, in milliseconds (0 = no time bound,
        /// only `maxQueue`). A queued request that has waited twice this long is dropped unrun.
        public var maxQueueWaitMillis: Int

        public init(workers: Int = ProcessInfo.processInfo.activeProcessorCount, maxBatch: Int = 64,
                    maxQueue: Int = 4096, maxDelayMicros: Int = 0, inlineAfterIdleMicros: Int = 50,
                    maxQueueWaitMillis: Int = 100) {
            self.workers = workers
            self.maxBatch = maxBatch
            self.maxQueue = maxQueue
            self.maxDelayMicros = maxDelayMicros
            self.inlineAfterIdleMicros = inlineAfterIdleMicros
            self.maxQueueWaitMillis = maxQueueWaitMillis
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
        /// Refused because their expected wait exceeded `maxQueueWaitMillis`.
        public var rejectedQueueWait = 0
        /// Refused at admission because their deadline could not be met.
        public var rejectedDeadline = 0
        /// Dropped unrun when a worker reached them: deadline passed (`deadlineExceeded`) or queue budget spent
        /// (`droppedQueueWait`).
        public var deadlineExceeded = 0
        public var droppedQueueWait = 0
        /// Requests `runIfIdle` ran on the caller's thread (also counted in `requests` and `batches`).
        public var ranInline = 0
        /// batchSizes[n] = batches of n requests.
        public var batchSizes: [Int] = []

        public init() {}
    }

    private struct Job {
        var request: PredictionRequest
        /// The model the request was validated against, and runs on.
        var predictor: Predictor
        var completion: Completion
        /// Monotonic nanoseconds when it was queued.
        var enqueuedAt: UInt64
        /// What it was expected to cost when queued (nanoseconds of one worker), counted in `queuedCost`.
        var cost: UInt64 = 0
    }

    /// The kinds of input whose cost the batcher learns apart.
    enum InputKind: Int, CaseIterable {
        case bitmap
        case strokes
        case image

        init(_ input: DoodleInput) {
            switch input {
            case .bitmap: self = .bitmap
            case .strokes: self = .strokes
            case .image: self = .image
            }
        }
    }

    public let configuration: Configuration
    /// What a full queue answers (built once: shedding at 10x overload must not format a message per request).
    public let queueFullError: ServiceError
    /// What a request whose expected wait is too long is answered (built once, as `queueFullError`).
    public let queueWaitError: ServiceError
    private let condition = NSCondition()
    // Guarded by `condition`:
    private var queue: [Job?]
    private var head = 0
    private var count = 0
    private var stopping = false
    private var stats = Statistics()
    /// Expected cost of one request per `InputKind` (nanoseconds of one worker; 0 until a batch has run one).
    private var costByKind = [UInt64](repeating: 0, count: InputKind.allCases.count)
    /// Sum of the expected costs of the queued requests.
    private var queuedCost: UInt64 = 0
    private let maxQueueWaitNanos: UInt64
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
        self.queueWaitError = ServiceError(.resourceExhausted,
            "the server is overloaded: more than \(configuration.maxQueueWaitMillis) ms of work is queued")
        self.maxQueueWaitNanos = UInt64(max(0, configuration.maxQueueWaitMillis)) * 1_000_000
        self.observer = observer
        self.queue = [Job?](repeating: nil, count: configuration.maxQueue)
        self.stats.batchSizes = [Int](repeating: 0, count: configuration.maxBatch + 1)
        self.busySince = [UInt64](repeating: 0, count: configuration.workers)
        self.inlineRunner = BatchRunner(maxBatch: 1, maxQueueWaitMillis: configuration.maxQueueWaitMillis,
                                        maxDelayMicros: configuration.maxDelayMicros, inline: true)
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
        if let refusal = self.refusalLocked() {
            self.condition.unlock()
            completion(.failure(refusal))
            return
        }
        let now = DispatchTime.now().uptimeNanoseconds
        if let deadline = request.deadlineNanos, now &+ self.expectedWaitLocked > deadline {
            self.stats.rejectedDeadline += 1
            let wait = self.expectedWaitLocked / 1_000_000
            self.condition.unlock()
            completion(.failure(ServiceError(.deadlineExceeded,
                "the deadline cannot be met: about \(wait) ms of work is queued ahead of the request")))
            return
        }
        let cost = self.costByKind[InputKind(request.input).rawValue]
        self.queue[(self.head + self.count) % self.queue.count] = Job(request: request, predictor: predictor,
                                                                        completion: completion, enqueuedAt: now,
                                                                        cost: cost)
        self.count += 1
        self.queuedCost &+= cost
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
        // (A max-delay asks lone requests to wait for company; running them at once would defeat it. A picture is
        // decoded on a worker, never on the caller's thread: that is an event loop.)
        guard self.mayRunInline else { return nil }
        if case .image = request.input { return nil }
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
        self.inlineRunner.run([job], on: predictor, observer: self.observer,
                              record: { self.record(batch: $0, expired: $1, dropped: $2, inline: true) },
                              learn: { self.learn(costSums: $0, costCounts: $1) })
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

    /// How long a request queued now is expected to wait for a worker: the expected cost of what is queued,
    /// shared by the workers.
    public var expectedWaitNanos: UInt64 {
        self.condition.lock()
        defer { self.condition.unlock() }
        return self.expectedWaitLocked
    }

    private var expectedWaitLocked: UInt64 { self.queuedCost / UInt64(self.configuration.workers) }

    /// Whether a request would be refused now, for a full queue or too long a wait (a cheap check before
    /// `rejectionIfOverloaded`).
    public var isOverloaded: Bool {
        self.condition.lock()
        defer { self.condition.unlock() }
        return self.count == self.queue.count
            || (self.maxQueueWaitNanos > 0 && self.expectedWaitLocked > self.maxQueueWaitNanos)
    }

    /// The error `submit` would answer right now for a full queue or too long a wait (counted as a rejection),
    /// or nil when there is room. Lets a transport shed a request before it pays for decoding and validating it.
    public func rejectionIfOverloaded() -> ServiceError? {
        self.condition.lock()
        defer { self.condition.unlock() }
        return self.refusalLocked()
    }

    /// The refusal for a new request, counted, or nil when it may be queued. Called with the lock held.
    private func refusalLocked() -> ServiceError? {
        if self.count == self.queue.count {
            self.stats.rejectedQueueFull += 1
            return self.queueFullError
        }
        if self.maxQueueWaitNanos > 0 && self.expectedWaitLocked > self.maxQueueWaitNanos {
            self.stats.rejectedQueueWait += 1
            return self.queueWaitError
        }
        return nil
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
        while jobs.count < maxBatch && self.count > 0, let job = self.queue[self.head], job.predictor === predictor {
            self.queuedCost &-= job.cost
            jobs.append(job)
            self.queue[self.head] = nil
            self.head = (self.head + 1) % self.queue.count
            self.count -= 1
        }
        self.busySince[worker] = DispatchTime.now().uptimeNanoseconds
        if self.count > 0 { self.condition.signal() }  // more work: wake another worker
        return true
    }

    private func record(batch: Int, expired: Int, dropped: Int, inline: Bool = false) {
        self.condition.lock()
        self.stats.droppedQueueWait += dropped
        self.stats.batches += batch > 0 ? 1 : 0
        self.stats.requests += batch
        self.stats.largestBatch = max(self.stats.largestBatch, batch)
        if batch > 0 { self.stats.batchSizes[batch] += 1 }
        self.stats.deadlineExceeded += expired
        if inline { self.stats.ranInline += batch }
        self.condition.unlock()
    }

    /// Folds a batch's measured costs into the per-kind estimates (an exponentially weighted mean over about
    /// the last 16 batches: it follows a change of load or CPU speed within a fraction of a second).
    private func learn(costSums: [UInt64], costCounts: [Int]) {
        self.condition.lock()
        for kind in costSums.indices where costCounts[kind] > 0 {
            let measured = costSums[kind] / UInt64(costCounts[kind])
            let old = self.costByKind[kind]
            self.costByKind[kind] = old == 0 ? measured : (old * 15 + measured) / 16
        }
        self.condition.unlock()
    }

    private func workerLoop(worker: Int) {
        let runner = BatchRunner(maxBatch: self.configuration.maxBatch,
                                 maxQueueWaitMillis: self.configuration.maxQueueWaitMillis,
                                 maxDelayMicros: self.configuration.maxDelayMicros)
        var jobs: [Job] = []
        jobs.reserveCapacity(self.configuration.maxBatch)
        while true {
            jobs.removeAll(keepingCapacity: true)
            guard self.takeBatch(into: &jobs, worker: worker) else { return }
            guard let predictor = jobs.first?.predictor else { continue }
            runner.run(jobs, on: predictor, observer: self.observer,
                       record: { self.record(batch: $0, expired: $1, dropped: $2) },
                       learn: { self.learn(costSums: $0, costCounts: $1) })
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
        /// Whether a batch has run on `scratch`. The first one touches fresh memory (page faults, cold caches) and
        /// took two to three times what the next ones did (one bitmap: 131 or 77 µs, then 43-48), so the
        /// expected-wait estimate does not learn from it.
        var scratchWarm = false
        var pixels: [UInt8] = []
        var scores: [Float] = []
        var live: [Job] = []
        var expired: [Job] = []
        var dropped: [Job] = []
        /// Requests whose input could not be prepared (a corrupt picture, one with no drawing), and why.
        var unusable: [(Job, ServiceError)] = []
        /// A queued request that has waited longer than this (twice max-queue-wait, plus max-delay, the hold it
        /// was meant to have) is dropped unrun; 0 = never.
        let queueBudgetNanos: UInt64
        let budgetError: ServiceError
        var timing = BatchTiming()
        /// What answering one request took in the last batch (top classes and completion), in nanoseconds.
        var answerNanosPerRequest: UInt64 = 0

        init(maxBatch: Int, maxQueueWaitMillis: Int, maxDelayMicros: Int, inline: Bool = false) {
            self.maxBatch = maxBatch
            let budget = maxQueueWaitMillis > 0 ? 2 * maxQueueWaitMillis * 1000 + max(0, maxDelayMicros) : 0
            self.queueBudgetNanos = UInt64(budget) * 1000
            self.budgetError = ServiceError(.deadlineExceeded,
                "the request waited more than \(budget / 1000) ms for a worker (twice max-queue-wait-ms, plus max-delay-us) and was dropped unrun")
            self.timing.ranInline = inline
            self.live.reserveCapacity(maxBatch)
            self.timing.queueWaitNanos.reserveCapacity(maxBatch)
            self.timing.preprocessNanos.reserveCapacity(maxBatch)
        }

        /// Preprocesses `jobs` (at most `maxBatch`, all validated against `predictor`), runs the model once over
        /// those whose deadline has not passed, and calls every completion. `record(ran, expired)` is called before the completions, so that
        /// anyone a completion wakes sees the statistics.
        func run(_ jobs: [Job], on predictor: Predictor, observer: (any BatchObserver)?,
                 record: (_ ran: Int, _ expired: Int, _ dropped: Int) -> Void,
                 learn: (_ costSums: [UInt64], _ costCounts: [Int]) -> Void) {
            let engine = predictor.engine
            if self.scratchModel !== predictor {
                self.scratch = engine.makeScratch(maxBatch: self.maxBatch)
                self.scratchModel = predictor
                self.scratchWarm = false
                self.pixels = [UInt8](repeating: 0, count: self.maxBatch * engine.inputBytes)
                self.scores = [Float](repeating: 0, count: self.maxBatch * engine.classCount)
            }
            let now = DispatchTime.now().uptimeNanoseconds
            self.live.removeAll(keepingCapacity: true)
            self.expired.removeAll(keepingCapacity: true)
            self.dropped.removeAll(keepingCapacity: true)
            self.unusable.removeAll(keepingCapacity: true)
            self.timing.queueWaitNanos.removeAll(keepingCapacity: true)
            self.timing.preprocessNanos.removeAll(keepingCapacity: true)
            var clock = now
            for job in jobs {
                self.timing.queueWaitNanos.append(now &- job.enqueuedAt)
                if let deadline = job.request.deadlineNanos, now >= deadline {
                    self.expired.append(job)
                    continue
                }
                if self.queueBudgetNanos > 0 && now &- job.enqueuedAt > self.queueBudgetNanos {
                    self.dropped.append(job)
                    continue
                }
                let offset = self.live.count * engine.inputBytes
                let prepared = self.pixels.withUnsafeMutableBufferPointer { buf in
                    Result { () throws(PreprocessingError) in
                        try self.preprocessor.prepare(job.request.input, into: buf.baseAddress! + offset)
                    }
                }
                if case .failure(let error) = prepared {
                    self.unusable.append((job, ServiceError.invalidArgument(error.message)))
                    clock = DispatchTime.now().uptimeNanoseconds
                    continue
                }
                self.live.append(job)
                let after = DispatchTime.now().uptimeNanoseconds
                self.timing.preprocessNanos.append(after &- clock)
                clock = after
            }
            record(self.live.count, self.expired.count, self.dropped.count)
            for job in self.expired {
                job.completion(.failure(ServiceError(.deadlineExceeded, "the deadline passed before the model ran")))
            }
            for job in self.dropped { job.completion(.failure(self.budgetError)) }
            for (job, error) in self.unusable { job.completion(.failure(error)) }
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
            // What each request cost one worker: its preprocessing, its share of the model run, and answering it (the
            // top classes and the transport's completion, which encodes the answer), as the last batch measured.
            // Leaving the answers out made the expected wait short of the real one by a tenth or more.
            var sums = [UInt64](repeating: 0, count: InputKind.allCases.count)
            var counts = [Int](repeating: 0, count: InputKind.allCases.count)
            let share = self.timing.inferenceNanos / UInt64(self.live.count) &+ self.answerNanosPerRequest
            for (i, job) in self.live.enumerated() {
                let kind = InputKind(job.request.input).rawValue
                sums[kind] &+= self.timing.preprocessNanos[i] &+ share
                counts[kind] += 1
            }
            if self.scratchWarm { learn(sums, counts) }
            self.scratchWarm = true
            let answering = DispatchTime.now().uptimeNanoseconds
            self.scores.withUnsafeBufferPointer { all in
                for (i, job) in self.live.enumerated() {
                    let row = UnsafeBufferPointer(rebasing: all[(i * engine.classCount)..<((i + 1) * engine.classCount)])
                    job.completion(.success(predictor.top(job.request.topK, of: row, candidates: job.request.candidates)))
                }
            }
            self.answerNanosPerRequest = (DispatchTime.now().uptimeNanoseconds &- answering) / UInt64(self.live.count)
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
