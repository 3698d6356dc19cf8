import DoodleClient
import DoodleCore
import DoodleDataset
import DoodleWire
import Foundation
import Histogram
import Synchronization

/// Drives doodled with real drawings and measures what clients see.
///
/// - Closed loop: `connections` x `depth` workers, each sending its next request when the last is answered.
/// - Open loop: requests are due at a fixed rate (evenly spaced, or Poisson arrivals); each one's latency runs
///   from when it was *due*, not when it was sent, so a stalled server cannot hide its stall by slowing the
///   client down (no coordinated omission).
public struct LoadGenerator: Sendable {
    public enum Mode: Sendable, Equatable {
        case closed(depth: Int)
        case open(rate: Double, poisson: Bool)
    }

    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        public var port = 7431
        public var transport = LoadProtocol.tcp
        public var connections = 8
        public var mode = Mode.closed(depth: 8)
        public var warmupSeconds = 1.0
        public var durationSeconds = 5.0
        /// Print a progress line to standard error every second.
        public var progress = false
        /// Requests allowed in flight in open-loop mode before further due requests count as client overload.
        public var maxOutstanding = 100_000
        /// An answer's budget, in milliseconds: OK answers that took at most this long are counted apart
        /// (`Report.okWithinBudget`); nil = not counted.
        public var budgetMillis: Double?
        public var seed: UInt64 = 42

        public init() {}
    }

    /// What a run measured (after warm-up).
    public struct Report: Sendable, Codable {
        public var mode: String
        public var connections: Int
        public var seconds: Double
        public var requests: Int
        public var ok: Int
        public var throughputPerSecond: Double
        /// Latency in microseconds of OK responses.
        public var p50Micros: Double
        public var p90Micros: Double
        public var p99Micros: Double
        public var p999Micros: Double
        public var maxMicros: Double
        public var meanMicros: Double
        /// Non-OK responses by status, plus "transport" for failed calls and "client_overload" for due requests
        /// the client could not send.
        public var errors: [String: Int]
        public var offeredRatePerSecond: Double?
        /// Seconds into the measured run of the first and the last failed request (nil when none failed), and
        /// how many requests succeeded after the last failure: a run that recovers from an incident ends with a
        /// long error-free tail.
        public var firstErrorSeconds: Double?
        public var lastErrorSeconds: Double?
        public var okAfterLastError: Int
        /// OK answers that came after the measured window: their latency is in the percentiles, but they are not
        /// in `ok` or the throughput.
        public var okLate: Int
        /// The budget (`Configuration.budgetMillis`) and the OK answers (in the window or late) that came within
        /// it. Each OK answer cost the model one image and refusals cost it none, so `okWithinBudget / (ok +
        /// okLate)` is the share of the model's work spent on answers delivered in time.
        public var budgetMillis: Double?
        public var okWithinBudget: Int?
    }

    public var configuration: Configuration
    public var inputs: LoadInputs

    public init(configuration: Configuration, inputs: LoadInputs) {
        self.configuration = configuration
        self.inputs = inputs
    }

    /// Shared counters of one run. An answer counts in the measured window when it *arrives* in it, whenever its
    /// request was sent (a request sent in the warm-up and answered in the window is work the server delivered
    /// then). Counting by send time instead would leave out the first `latency` of every window's answers, which
    /// under an open-loop overload (queues 100+ ms long) under-counts the throughput by latency / duration, 2 %
    /// of a 6 s window, against a fraction of that for a closed loop.
    final class Recorder: Sendable {
        struct State {
            var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            var ok = 0
            var errors: [String: Int] = [:]
            var windowOK = 0
            var firstError: UInt64?
            var lastError: UInt64?
            var okAfterLastError = 0
            /// OK answers that arrived after the measured window ended (in the latency histogram, not in throughput).
            var okLate = 0
            /// OK answers (in the window or late) within the budget.
            var okWithinBudget = 0
        }

        let state = Locked(State())
        let measureFrom: UInt64
        /// When the measured window ends: answers after it count for latency, not for throughput.
        let measureUntil: UInt64

        /// An answer's budget in nanoseconds (0 = none).
        let budgetNanos: UInt64

        init(measureFrom: UInt64, measureUntil: UInt64 = .max, budgetNanos: UInt64 = 0) {
            self.measureFrom = measureFrom
            self.measureUntil = measureUntil
            self.budgetNanos = budgetNanos
        }

        func record(start: UInt64, end: UInt64, status: String?) {
            guard end >= self.measureFrom else { return }  // answered in the warm-up
            self.state.withLock { s in
                if let status {
                    s.errors[status, default: 0] += 1
                    s.firstError = s.firstError ?? end
                    s.lastError = max(s.lastError ?? 0, end)
                    s.okAfterLastError = 0
                } else if end > self.measureUntil {
                    s.okLate += 1
                    if end &- start <= self.budgetNanos { s.okWithinBudget += 1 }
                    _ = s.histogram.record(max(1, (end - start) / 1000))
                } else {
                    s.ok += 1
                    s.okAfterLastError += 1
                    s.windowOK += 1
                    if end &- start <= self.budgetNanos { s.okWithinBudget += 1 }
                    _ = s.histogram.record(max(1, (end - start) / 1000))
                }
            }
        }
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    public func run() async throws -> Report {
        let c = self.configuration
        // gRPC channels connect before the clock starts; the raw-TCP driver connects inside the warm-up.
        let channels: [any PredictChannel] = c.transport == .tcp ? [] : try await self.connectChannels()
        let measureFrom = Self.now() + UInt64(c.warmupSeconds * 1e9)
        let end = measureFrom + UInt64(c.durationSeconds * 1e9)
        let recorder = Recorder(measureFrom: measureFrom, measureUntil: end,
                                budgetNanos: c.budgetMillis.map { UInt64($0 * 1e6) } ?? 0)
        let progress = c.progress ? Task { await Self.progressLoop(recorder: recorder, until: end) } : nil
        switch (c.transport, c.mode) {
        case (.tcp, _):
            // Raw TCP: every request is sent and timed on its connection's event loop.
            let plan = TCPLoadDriver.Plan(host: c.host, port: c.port, mode: c.mode, connections: max(1, c.connections),
                                          end: end, maxOutstandingPerConnection: max(1, c.maxOutstanding / max(1, c.connections)),
                                          seed: c.seed)
            try await TCPLoadDriver(plan: plan, inputs: self.inputs, recorder: recorder).run()
        case (_, .closed(let depth)):
            try await self.closedLoop(channels, depth: depth, end: end, recorder: recorder)
        case (_, .open(let rate, let poisson)):
            try await self.openLoop(channels, rate: rate, poisson: poisson, end: end, recorder: recorder)
        }
        progress?.cancel()
        for channel in channels { await channel.close() }
        return self.report(recorder: recorder, measureFrom: measureFrom, end: end)
    }

    private func connectChannels() async throws -> [any PredictChannel] {
        let c = self.configuration
        if c.transport == .http {
            let bodies = HTTPPredictChannel.bodies(for: self.inputs.requests)
            return (0..<max(1, c.connections)).map { _ in HTTPPredictChannel(host: c.host, port: c.port, bodies: bodies) }
        }
        return try await withThrowingTaskGroup(of: (any PredictChannel).self) { group in
            for _ in 0..<max(1, c.connections) {
                group.addTask {
                    if c.transport == .grpcStream { return try GRPCStreamPredictChannel(host: c.host, port: c.port) }
                    return try GRPCPredictChannel(host: c.host, port: c.port)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }

    private func report(recorder: Recorder, measureFrom: UInt64, end: UInt64) -> Report {
        let c = self.configuration
        let seconds = Double(min(Self.now(), end) - measureFrom) / 1e9
        return recorder.state.withLock { s in
            let h = s.histogram
            let total = s.ok + s.okLate + s.errors.values.reduce(0, +)
            let modeName: String
            var offered: Double?
            switch c.mode {
            case .closed(let depth): modeName = "\(c.transport.rawValue) closed(\(c.connections)x\(depth))"
            case .open(let rate, let poisson):
                modeName = "\(c.transport.rawValue) open(\(Int(rate))/s \(poisson ? "poisson" : "uniform"))"
                offered = rate
            }
            func us(_ p: Double) -> Double { Double(h.valueAtPercentile(p)) }
            return Report(mode: modeName, connections: c.connections, seconds: seconds, requests: total, ok: s.ok,
                          throughputPerSecond: Double(s.ok) / max(seconds, 1e-9), p50Micros: us(50),
                          p90Micros: us(90), p99Micros: us(99), p999Micros: us(99.9), maxMicros: Double(h.max),
                          meanMicros: h.mean, errors: s.errors, offeredRatePerSecond: offered,
                          firstErrorSeconds: s.firstError.map { Double($0 &- measureFrom) / 1e9 },
                          lastErrorSeconds: s.lastError.map { Double($0 &- measureFrom) / 1e9 },
                          okAfterLastError: s.okAfterLastError, okLate: s.okLate, budgetMillis: c.budgetMillis,
                          okWithinBudget: c.budgetMillis == nil ? nil : s.okWithinBudget)
        }
    }

    private func send(_ conn: any PredictChannel, _ index: Int) async -> String? {
        await conn.predict(at: index, of: self.inputs.requests)
    }

    private func closedLoop(_ connections: [any PredictChannel], depth: Int, end: UInt64, recorder: Recorder) async throws {
        let workers = connections.count * max(1, depth)
        await withTaskGroup(of: Void.self) { group in
            for w in 0..<workers {
                let conn = connections[w % connections.count]
                group.addTask {
                    var i = w * 7919
                    while Self.now() < end {
                        let t0 = Self.now()
                        let status = await self.send(conn, i)
                        recorder.record(start: t0, end: Self.now(), status: status)
                        i += 1
                    }
                }
            }
        }
    }

    private func openLoop(_ connections: [any PredictChannel], rate: Double, poisson: Bool, end: UInt64,
                          recorder: Recorder) async throws {
        let outstanding = InFlight()
        var rng = SplitMix64(seed: self.configuration.seed)
        let limit = self.configuration.maxOutstanding
        // Discarding: a long run starts millions of requests, and a plain task group would keep every finished
        // one until the end.
        await withDiscardingTaskGroup { group in
            var due = Double(Self.now())
            var k = 0
            while UInt64(due) < end {
                // Exponential gaps for Poisson arrivals, constant ones otherwise; same mean rate.
                let gap = poisson ? -log(1 - rng.nextUnit()) / rate : 1 / rate
                due += gap * 1e9
                let dueAt = UInt64(due)
                let now = Self.now()
                if dueAt > now + 50_000 {
                    try? await Task.sleep(nanoseconds: dueAt - now - 20_000)
                }
                while Self.now() < dueAt {}  // the last few microseconds: spin for precision
                if outstanding.count.load(ordering: .relaxed) >= limit {
                    recorder.record(start: dueAt, end: dueAt, status: "client_overload")
                    continue
                }
                outstanding.count.add(1, ordering: .relaxed)
                let conn = connections[k % connections.count]
                let index = k
                k += 1
                group.addTask {
                    let status = await self.send(conn, index)
                    recorder.record(start: dueAt, end: Self.now(), status: status)
                    outstanding.count.subtract(1, ordering: .relaxed)
                }
            }
        }
    }

    static func progressLoop(recorder: Recorder, until end: UInt64) async {
        let start = Self.now()
        while Self.now() < end && !Task.isCancelled {
            try? await Task.sleep(nanoseconds: 1_000_000_000)
            let line = recorder.state.withLock { s -> String in
                defer { s.windowOK = 0 }
                let errors = s.errors.values.reduce(0, +)
                return String(format: "\r%5.1fs  %8d ok/s  p50 %6d us  p99 %6d us  errors %d   ",
                              Double(Self.now() - start) / 1e9, s.windowOK, s.histogram.valueAtPercentile(50),
                              s.histogram.valueAtPercentile(99), errors)
            }
            FileHandle.standardError.write(Data(line.utf8))
        }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}

/// Requests in flight in an open-loop run.
final class InFlight: Sendable {
    let count = Atomic<Int>(0)
}

