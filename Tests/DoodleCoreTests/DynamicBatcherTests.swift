import DoodleCore
import DoodleDataset
import DoodleEngine
import DoodlePreprocessing
import DoodleTestSupport
import Foundation
import Testing

/// Collects completions from worker threads.
final class Outcomes: Sendable {
    private let results = Locked<[Int: Result<[ScoredClass], ServiceError>]>([:])
    private let done = DispatchSemaphore(value: 0)

    func completion(_ id: Int) -> DynamicBatcher.Completion {
        { result in
            self.results.withLock { $0[id] = result }
            self.done.signal()
        }
    }

    /// Waits for `n` completions (at most 30 s), returning them by id.
    func wait(for n: Int) -> [Int: Result<[ScoredClass], ServiceError>] {
        for _ in 0..<n { _ = self.done.wait(timeout: .now() + 30) }
        return self.results.withLock { $0 }
    }
}

@Suite("Dynamic batcher")
struct DynamicBatcherTests {
    /// `maxQueueWaitMillis` for tests of what is answered rather than of the time bound: on a loaded test machine
    /// a worker can be descheduled for longer than any budget, and the queued requests would be dropped unrun.
    static let untimed = 0

    static let predictor = try! Predictor(path: TestData.model.path)

    static func bitmaps(_ n: Int) throws -> [[UInt8]] {
        let pairs = try TestData.sharedFile("render_pairs.ndjson.gz")
        return (0..<n).map { pairs[$0 % pairs.count].bitmap! }
    }

    @Test("answers equal the engine run directly on the same input")
    func matchesEngine() throws {
        let batcher = DynamicBatcher(configuration: .init(workers: 2, maxBatch: 16, maxQueueWaitMillis: Self.untimed))
        defer { batcher.shutdown() }
        let images = try Self.bitmaps(40)
        let outcomes = Outcomes()
        for (i, img) in images.enumerated() {
            batcher.submit(PredictionRequest(input: .bitmap(img), topK: 3), on: Self.predictor, completion: outcomes.completion(i))
        }
        let results = outcomes.wait(for: images.count)
        let engine = Self.predictor.engine
        let scratch = engine.makeScratch(maxBatch: 1)
        var scores = [Float](repeating: 0, count: engine.classCount)
        for (i, img) in images.enumerated() {
            try img.withUnsafeBytes { px in
                try scores.withUnsafeMutableBufferPointer { try engine.run(images: px, count: 1, scratch: scratch, scores: $0) }
            }
            let expected = scores.withUnsafeBufferPointer { Self.predictor.top(3, of: $0, candidates: nil) }
            #expect(try results[i]?.get() == expected)
        }
    }

    @Test("requests for different models run on their own model, never in one batch")
    func batchesNeverMixModels() throws {
        let tiny = try Predictor(path: TestData.repoRoot.appendingPathComponent("Tests/DoodleEngineTests/Fixtures/tiny/tiny.onnx").path)
        let batcher = DynamicBatcher(configuration: .init(workers: 1, maxBatch: 64, maxQueueWaitMillis: Self.untimed))
        defer { batcher.shutdown() }
        let images = try Self.bitmaps(240)
        // Runs of three requests per model, alternating: a batch that mixed them would be larger than three.
        let model = { (i: Int) in (i / 3) % 2 == 0 ? Self.predictor : tiny }
        let outcomes = Outcomes()
        for (i, img) in images.enumerated() {
            batcher.submit(PredictionRequest(input: .bitmap(img), topK: 3), on: model(i), completion: outcomes.completion(i))
        }
        let results = outcomes.wait(for: images.count)
        #expect(batcher.statistics.largestBatch <= 3)
        for (i, img) in images.enumerated() {
            let predictor = model(i)
            var scores = [Float](repeating: 0, count: predictor.engine.classCount)
            try img.withUnsafeBytes { px in
                try scores.withUnsafeMutableBufferPointer {
                    try predictor.engine.run(images: px, count: 1, scratch: predictor.engine.makeScratch(maxBatch: 1), scores: $0)
                }
            }
            let expected = scores.withUnsafeBufferPointer { predictor.top(3, of: $0, candidates: nil) }
            #expect(try results[i]?.get() == expected, "request \(i)")
        }
    }

    @Test("the queue is bounded in time: past max-queue-wait of expected work a request is refused at once, a deadline that cannot be met is refused, and what waited twice that long is dropped unrun")
    func timeBoundedQueue() throws {
        let gate = StuckObserver()
        let batcher = DynamicBatcher(configuration: .init(workers: 1, maxBatch: 8, maxQueue: 100_000, maxQueueWaitMillis: 20),
                                     observer: gate)
        defer { gate.release(); batcher.shutdown() }
        let images = try Self.bitmaps(32)
        let warm = Outcomes()  // the batcher learns what a bitmap costs
        for (i, img) in images.enumerated() {
            batcher.submit(PredictionRequest(input: .bitmap(img)), on: Self.predictor, completion: warm.completion(i))
        }
        #expect(warm.wait(for: images.count).values.allSatisfy { (try? $0.get()) != nil })
        #expect(batcher.expectedWaitNanos == 0)

        // The worker sticks in its next batch; requests queue behind it until their expected wait passes 20 ms.
        gate.hold()
        let stuck = Outcomes()
        batcher.submit(PredictionRequest(input: .bitmap(images[0])), on: Self.predictor, completion: stuck.completion(0))
        while batcher.queueDepth > 0 || batcher.longestBatchNanos == 0 { usleep(100) }  // the worker holds it
        let queued = Outcomes()
        var admitted = 0
        var refusal: ServiceError?
        var lateCode: StatusCode?
        while refusal == nil && admitted < 100_000 {
            if lateCode == nil && batcher.expectedWaitNanos > 5_000_000 {
                // Several milliseconds of work queued: a request due in one is refused at once.
                let late = Outcomes()
                let deadline = DispatchTime.now().uptimeNanoseconds + 1_000_000
                batcher.submit(PredictionRequest(input: .bitmap(images[0]), deadlineNanos: deadline), on: Self.predictor,
                               completion: late.completion(0))
                lateCode = late.wait(for: 1)[0].map { StatusCode($0) }
            }
            let answered = Locked<ServiceError?>(nil)
            let record = queued.completion(admitted)
            batcher.submit(PredictionRequest(input: .bitmap(images[admitted % images.count])), on: Self.predictor) { result in
                if case .failure(let error) = result { answered.withLock { $0 = error } }
                record(result)
            }
            refusal = answered.withLock { $0 }
            if refusal == nil { admitted += 1 }
        }
        #expect(refusal == batcher.queueWaitError)
        #expect(admitted > 10 && batcher.expectedWaitNanos > 20_000_000, "\(admitted) admitted, expected wait \(batcher.expectedWaitNanos) ns")
        #expect(batcher.isOverloaded && batcher.rejectionIfOverloaded() == batcher.queueWaitError)
        #expect(lateCode == .deadlineExceeded)

        // Held past twice the bound: everything queued is dropped unrun when the worker gets to it.
        usleep(60_000)
        gate.release()
        let results = queued.wait(for: admitted + 1)
        #expect(try stuck.wait(for: 1)[0]?.get() != nil)
        let dropped = (0..<admitted).filter { i in results[i].map { StatusCode($0) } == .deadlineExceeded }
        #expect(dropped.count == admitted, "not dropped: \((0..<admitted).filter { !dropped.contains($0) }.map { "\($0): \(String(describing: results[$0]))" }.prefix(8))")
        let stats = batcher.statistics
        #expect(stats.droppedQueueWait == admitted && stats.rejectedQueueWait == 2 && stats.rejectedDeadline == 1,
                "\(stats.droppedQueueWait) dropped of \(admitted), \(stats.rejectedQueueWait) refused for the wait, \(stats.rejectedDeadline) for the deadline")
    }

    @Test("a lone request is not held back when max-delay is 0, and is held when it is set")
    func noWaitWhenIdle() throws {
        let image = try Self.bitmaps(1)[0]
        func latency(delayMicros: Int) -> Double {
            let batcher = DynamicBatcher(configuration: .init(workers: 1, maxBatch: 64, maxDelayMicros: delayMicros))
            defer { batcher.shutdown() }
            let outcomes = Outcomes()
            batcher.submit(PredictionRequest(input: .bitmap(image)), on: Self.predictor, completion: outcomes.completion(0))  // warm-up
            _ = outcomes.wait(for: 1)
            let start = DispatchTime.now().uptimeNanoseconds
            batcher.submit(PredictionRequest(input: .bitmap(image)), on: Self.predictor, completion: outcomes.completion(1))
            _ = outcomes.wait(for: 1)
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        #expect(latency(delayMicros: 0) < 0.1)
        #expect(latency(delayMicros: 300_000) >= 0.29)
    }

    @Test("runIfIdle: a lone request at a quiet batcher runs on the caller's thread with the workers' answer")
    func runsInlineWhenQuiet() throws {
        let image = try Self.bitmaps(1)[0]
        let batcher = DynamicBatcher(configuration: .init(workers: 1, maxBatch: 8, inlineAfterIdleMicros: 1))
        defer { batcher.shutdown() }
        let outcomes = Outcomes()
        batcher.submit(PredictionRequest(input: .bitmap(image), topK: 3), on: Self.predictor, caller: 1, completion: outcomes.completion(0))
        let viaWorker = try #require(outcomes.wait(for: 1)[0]).get()
        Thread.sleep(forTimeInterval: 0.005)  // quiet for longer than 1 us
        let inline = try #require(batcher.runIfIdle(PredictionRequest(input: .bitmap(image), topK: 3), on: Self.predictor, caller: 1))
        #expect(try inline.get() == viaWorker)
        let stats = batcher.statistics
        #expect(stats.ranInline == 1 && stats.requests == 2 && stats.batchSizes[1] == 2)
        // Another caller's request after this one's: requests interleave, so it is not run inline (and neither is
        // the first caller's next, which now follows another's).
        Thread.sleep(forTimeInterval: 0.005)
        #expect(batcher.runIfIdle(PredictionRequest(input: .bitmap(image)), on: Self.predictor, caller: 2) == nil)
        Thread.sleep(forTimeInterval: 0.005)
        #expect(batcher.runIfIdle(PredictionRequest(input: .bitmap(image)), on: Self.predictor, caller: 1) == nil)
        // Its deadline is checked like a worker's.
        let late = PredictionRequest(input: .bitmap(image), deadlineNanos: DispatchTime.now().uptimeNanoseconds - 1)
        Thread.sleep(forTimeInterval: 0.005)
        let answer = try #require(batcher.runIfIdle(late, on: Self.predictor, caller: 1))
        #expect(throws: ServiceError(.deadlineExceeded, "the deadline passed before the model ran")) { try answer.get() }
    }

    @Test("runIfIdle declines when turned off, right after activity, while work is queued, and with a max-delay")
    func declinesUnlessQuiet() throws {
        let image = try Self.bitmaps(1)[0]
        let off = DynamicBatcher(configuration: .init(workers: 1, inlineAfterIdleMicros: 0))
        #expect(off.runIfIdle(PredictionRequest(input: .bitmap(image)), on: Self.predictor, caller: 1) == nil)
        off.shutdown()

        // Quiet means a minute without a request: never, in a test, once one has been submitted.
        let slow = DynamicBatcher(configuration: .init(workers: 1, inlineAfterIdleMicros: 60_000_000))
        let outcomes = Outcomes()
        slow.submit(PredictionRequest(input: .bitmap(image)), on: Self.predictor, completion: outcomes.completion(0))
        _ = outcomes.wait(for: 1)
        #expect(slow.runIfIdle(PredictionRequest(input: .bitmap(image)), on: Self.predictor, caller: 1) == nil)
        slow.shutdown()

        // Work queued and running (2,000 requests, tens of milliseconds for one worker): not idle.
        let busy = DynamicBatcher(configuration: .init(workers: 1, inlineAfterIdleMicros: 1))
        let queued = Outcomes()
        for i in 0..<2000 { busy.submit(PredictionRequest(input: .bitmap(image)), on: Self.predictor, completion: queued.completion(i)) }
        #expect(busy.runIfIdle(PredictionRequest(input: .bitmap(image)), on: Self.predictor, caller: 1) == nil)
        #expect(queued.wait(for: 2000).count == 2000)
        busy.shutdown()

        // A max-delay (lone requests wait for company) turns it off.
        let delaying = DynamicBatcher(configuration: .init(workers: 1, maxDelayMicros: 1000, inlineAfterIdleMicros: 1))
        #expect(!delaying.mayRunInline && delaying.runIfIdle(PredictionRequest(input: .bitmap(image)), on: Self.predictor, caller: 1) == nil)
        delaying.shutdown()
        #expect(busy.statistics.ranInline == 0 && delaying.statistics.ranInline == 0)
    }

    @Test("a full queue rejects at once with RESOURCE_EXHAUSTED; every request is answered exactly once")
    func boundedQueue() throws {
        let batcher = DynamicBatcher(configuration: .init(workers: 1, maxBatch: 1, maxQueue: 4))
        defer { batcher.shutdown() }
        let images = try Self.bitmaps(300)
        let outcomes = Outcomes()
        for (i, img) in images.enumerated() {
            batcher.submit(PredictionRequest(input: .strokes([Stroke(x: [0, Double(i % 200)], y: [0, 100])], .raw)),
                           on: Self.predictor, completion: outcomes.completion(i))
            _ = img
        }
        let results = outcomes.wait(for: images.count)
        #expect(results.count == images.count)
        let rejected = results.values.filter { if case .failure(let e) = $0 { e.code == .resourceExhausted } else { false } }
        let ok = results.values.filter { if case .success = $0 { true } else { false } }
        #expect(rejected.count > 0)
        #expect(ok.count > 0)
        #expect(rejected.count + ok.count == images.count)
        #expect(batcher.statistics.rejectedQueueFull == rejected.count)
    }

    @Test("a request past its deadline is answered DEADLINE_EXCEEDED without running the model: at admission, or when a worker reaches it")
    func deadlines() throws {
        let gate = StuckObserver()
        let batcher = DynamicBatcher(configuration: .init(workers: 1), observer: gate)
        defer { gate.release(); batcher.shutdown() }
        let image = try Self.bitmaps(1)[0]
        let refused = Outcomes()
        let past = DispatchTime.now().uptimeNanoseconds - 1
        batcher.submit(PredictionRequest(input: .bitmap(image), deadlineNanos: past), on: Self.predictor,
                       completion: refused.completion(0))
        #expect(throws: ServiceError(.deadlineExceeded, "the deadline cannot be met: about 0 ms of work is queued ahead of the request")) {
            try refused.wait(for: 1)[0]?.get()
        }
        #expect(batcher.statistics.requests == 0 && batcher.statistics.rejectedDeadline == 1)

        // Admitted in time, but the worker is stuck until the deadline has passed.
        gate.hold()
        let stuck = Outcomes()
        batcher.submit(PredictionRequest(input: .bitmap(image)), on: Self.predictor, completion: stuck.completion(0))
        while batcher.queueDepth > 0 || batcher.longestBatchNanos == 0 { usleep(100) }  // the worker holds it
        let late = Outcomes()
        batcher.submit(PredictionRequest(input: .bitmap(image), deadlineNanos: DispatchTime.now().uptimeNanoseconds + 5_000_000),
                       on: Self.predictor, completion: late.completion(0))
        usleep(20_000)
        gate.release()
        #expect(throws: ServiceError(.deadlineExceeded, "the deadline passed before the model ran")) { try late.wait(for: 1)[0]?.get() }
        #expect(batcher.statistics.deadlineExceeded == 1)
    }

    @Test("concurrent requests form batches larger than 1")
    func batchesForm() throws {
        let batcher = DynamicBatcher(configuration: .init(workers: 1, maxBatch: 32, maxQueueWaitMillis: Self.untimed))
        defer { batcher.shutdown() }
        let images = try Self.bitmaps(256)
        let outcomes = Outcomes()
        for (i, img) in images.enumerated() {
            batcher.submit(PredictionRequest(input: .bitmap(img)), on: Self.predictor, completion: outcomes.completion(i))
        }
        let results = outcomes.wait(for: images.count)
        #expect(results.values.allSatisfy { (try? $0.get()) != nil })
        #expect(batcher.statistics.largestBatch > 1)
        #expect(batcher.statistics.requests == 256)
    }

    @Test("shutdown answers everything already queued")
    func shutdownDrains() throws {
        let batcher = DynamicBatcher(configuration: .init(workers: 1, maxBatch: 8, maxQueueWaitMillis: Self.untimed))
        let images = try Self.bitmaps(200)
        let outcomes = Outcomes()
        for (i, img) in images.enumerated() {
            batcher.submit(PredictionRequest(input: .bitmap(img)), on: Self.predictor, completion: outcomes.completion(i))
        }
        batcher.shutdown()
        let results = outcomes.wait(for: images.count)
        #expect(results.count == 200)
        #expect(results.values.allSatisfy { (try? $0.get()) != nil })
        let late = Outcomes()
        batcher.submit(PredictionRequest(input: .bitmap(images[0])), on: Self.predictor, completion: late.completion(0))
        #expect(throws: ServiceError.self) { try late.wait(for: 1)[0]?.get() }
    }

    @Test("candidates restrict and renormalise the scores")
    func candidates() throws {
        let scores: [Float] = [0.5, 0.2, 0.2, 0.1]
        let top = scores.withUnsafeBufferPointer { Self.predictor.top(2, of: $0, candidates: [1, 3]) }
        #expect(top.map(\.index) == [1, 3])
        #expect(abs(top[0].score - 0.2 / 0.3) < 1e-6 && abs(top[1].score - 0.1 / 0.3) < 1e-6)
        let all = scores.withUnsafeBufferPointer { Self.predictor.top(3, of: $0, candidates: nil) }
        #expect(all.map(\.index) == [0, 1, 2])
    }
}
