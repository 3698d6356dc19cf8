import DoodleCapture
import DoodleCore
import DoodleWire
import Prometheus
import Synchronization

/// The transports a request can arrive on (a label of the request metrics).
public enum Transport: String, Sendable, CaseIterable {
    case tcp
    case grpc
    case http
}

/// doodled's Prometheus metrics, in one registry per daemon (so tests can run several daemons).
///
/// Names follow Prometheus conventions: a `doodled_` prefix, base units (seconds), `_total` for counters.
/// Request counts and end-to-end durations are recorded by the transports; queue wait, preprocessing,
/// inference and batch size by the batcher (`BatchObserver`); queue depth is read at scrape time.
public final class ServiceMetrics: BatchObserver, Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let requests: [Transport: [Counter]]  // indexed by StatusCode.allCases position
    private let requestDuration: [Transport: DurationHistogram]
    private let queueWait: DurationHistogram
    private let preprocess: DurationHistogram
    private let inference: DurationHistogram
    private let batchSize: ValueHistogram
    private let queueDepth: Gauge
    private let expectedWait: Gauge
    /// Refused at admission (queue_full, queue_wait, deadline) and dropped unrun (deadline, queue_wait), from
    /// the batcher's counts at scrape time.
    private let refused: [String: Counter]
    private let droppedUnrun: [String: Counter]
    private let lastBatcherCounts = Locked(DynamicBatcher.Statistics())
    private let openConnections: [Transport: Gauge]
    private let modelInfo = Locked<Gauge?>(nil)
    private let framesRead: Counter
    private let ranInline: Counter
    private let framesWritten: Counter
    private let reloads: [Counter]  // ok, failed
    private let closedByServer: [ConnectionCloseReason: Counter]
    private let captures: [String: Counter]
    private let captureBytes: Gauge
    private let captureMaxBytes: Gauge
    private let captureRecords: Gauge
    /// The capture store whose size is read at scrape time (nil: capture off).
    private let captureStore = Locked<CaptureStore?>(nil)
    /// Raw-TCP frames read and written so far (also exported); a drain is clean when they are equal.
    public let tcpFrames = TCPFrameCounts()

    /// Latency buckets from 10 µs to 1 s.
    static let latencyBuckets: [Duration] = [
        .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250),
        .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
    ]

    public init(maxBatch: Int) {
        let registry = self.registry
        func descriptor(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "doodled", metricName: name, unitName: unit, helpText: help)
        }
        var requests: [Transport: [Counter]] = [:]
        var durations: [Transport: DurationHistogram] = [:]
        var connections: [Transport: Gauge] = [:]
        for transport in Transport.allCases {
            requests[transport] = StatusCode.allCases.map { code in
                registry.makeCounter(descriptor: descriptor("requests", "total", "Prediction requests answered, by transport and status code."),
                                     labels: [("transport", transport.rawValue), ("code", code.description)])
            }
            durations[transport] = registry.makeDurationHistogram(
                descriptor: descriptor("request_duration", "seconds",
                                       "Time from a request being read to its response being ready."),
                labels: [("transport", transport.rawValue)], buckets: Self.latencyBuckets)
            connections[transport] = registry.makeGauge(
                descriptor: descriptor("open_connections", "", "Client connections open now."),
                labels: [("transport", transport.rawValue)])
        }
        self.requests = requests
        self.requestDuration = durations
        self.openConnections = connections
        self.queueWait = registry.makeDurationHistogram(
            descriptor: descriptor("queue_wait", "seconds", "Time a request waited for a worker."),
            buckets: Self.latencyBuckets)
        self.preprocess = registry.makeDurationHistogram(
            descriptor: descriptor("preprocess", "seconds", "Time to normalise and render (or copy) one request's input."),
            buckets: Self.latencyBuckets)
        self.inference = registry.makeDurationHistogram(
            descriptor: descriptor("inference", "seconds", "Time the model took for one batch."),
            buckets: Self.latencyBuckets)
        var sizes: [Double] = []
        var size = 1
        while size < maxBatch {
            sizes.append(Double(size))
            size *= 2
        }
        sizes.append(Double(maxBatch))
        self.batchSize = registry.makeValueHistogram(
            descriptor: descriptor("batch_size", "requests", "Requests per model run."), buckets: sizes)
        self.queueDepth = registry.makeGauge(
            descriptor: descriptor("queue_depth", "requests", "Requests waiting for a worker at scrape time."))
        self.expectedWait = registry.makeGauge(
            descriptor: descriptor("expected_queue_wait", "seconds",
                                   "How long a request queued at scrape time is expected to wait for a worker."))
        self.refused = Dictionary(uniqueKeysWithValues: ["queue_full", "queue_wait", "deadline"].map { reason in
            (reason, registry.makeCounter(
                descriptor: descriptor("requests_refused", "total",
                                       "Requests refused at admission (RESOURCE_EXHAUSTED; DEADLINE_EXCEEDED for deadline), by reason."),
                labels: [("reason", reason)]))
        })
        self.droppedUnrun = Dictionary(uniqueKeysWithValues: ["deadline", "queue_wait"].map { reason in
            (reason, registry.makeCounter(
                descriptor: descriptor("requests_dropped_unrun", "total",
                                       "Queued requests answered DEADLINE_EXCEEDED without running the model, by reason."),
                labels: [("reason", reason)]))
        })
        self.ranInline = registry.makeCounter(
            descriptor: descriptor("requests_inline", "total",
                                   "Requests run on the event loop because they arrived alone at an idle server (inline-after-idle-us)."))
        self.framesRead = registry.makeCounter(
            descriptor: descriptor("tcp_frames_read", "total", "Raw-TCP frames read (each gets exactly one answer)."))
        self.framesWritten = registry.makeCounter(
            descriptor: descriptor("tcp_frames_written", "total", "Raw-TCP answers written."))
        self.closedByServer = Dictionary(uniqueKeysWithValues: ConnectionCloseReason.allCases.map { reason in
            (reason, registry.makeCounter(
                descriptor: descriptor("connections_closed", "total", "Raw-TCP connections doodled closed itself, by reason."),
                labels: [("reason", reason.rawValue)]))
        })
        self.captures = Dictionary(uniqueKeysWithValues: Doodle_V1_CaptureStatus.outcomes.compactMap(\.name).map { result in
            (result, registry.makeCounter(
                descriptor: descriptor("captures", "total",
                                       "Requests with a capture label, by what became of the capture (captured, disabled, full, failed, unsupported_input)."),
                labels: [("result", result)]))
        })
        self.captureBytes = registry.makeGauge(
            descriptor: descriptor("capture_used", "bytes", "Bytes the capture store holds (capture-dir)."))
        self.captureMaxBytes = registry.makeGauge(
            descriptor: descriptor("capture_max", "bytes", "The capture store's bound (capture-max-bytes; 0 = capture off)."))
        self.captureRecords = registry.makeGauge(
            descriptor: descriptor("capture_records", "", "Drawings the capture store holds."))
        self.reloads = ["ok", "failed"].map { result in
            registry.makeCounter(descriptor: descriptor("model_reloads", "total", "Model reloads (SIGHUP), by result."),
                                 labels: [("result", result)])
        }
    }

    /// `count` raw-TCP frames were read.
    public func tcpFramesRead(_ count: Int) {
        self.framesRead.increment(by: Int64(count))
        self.tcpFrames.read.add(count, ordering: .relaxed)
    }

    /// A raw-TCP answer was handed to the connection.
    public func tcpFrameWritten() {
        self.framesWritten.increment()
        self.tcpFrames.written.add(1, ordering: .relaxed)
    }

    /// doodled closed a raw-TCP connection for `reason`.
    public func connectionClosedByServer(_ reason: ConnectionCloseReason) { self.closedByServer[reason]!.increment() }

    /// A request's capture ended as `result` (a `CaptureOutcome.name`).
    public func captureCompleted(_ result: String) { self.captures[result]?.increment() }

    /// Reports `store`'s size at every scrape.
    public func attachCapture(_ store: CaptureStore) { self.captureStore.withLock { $0 = store } }

    /// A model reload ended.
    public func reloadFinished(ok: Bool) { self.reloads[ok ? 0 : 1].increment() }

    /// Marks which model is serving and on which kernel path: `doodled_model_info{name,version,classes,kernels} 1`
    /// (a replaced one is removed).
    public func setModel(name: String, version: String, classes: Int, kernels: String) {
        let gauge = self.registry.makeGauge(
            descriptor: MetricNameDescriptor(namespace: "doodled", metricName: "model", unitName: "info",
                                             helpText: "The model being served (value 1)."),
            labels: [("name", name), ("version", version), ("classes", String(classes)), ("kernels", kernels)])
        gauge.set(to: 1)
        let old = self.modelInfo.withLock { slot in
            defer { slot = gauge }
            return slot
        }
        if let old, old !== gauge { self.registry.unregisterGauge(old) }
    }

    /// One request answered on `transport` with `code`, `nanos` after it was read.
    public func requestCompleted(_ transport: Transport, code: StatusCode, nanos: UInt64) {
        let index = StatusCode.allCases.firstIndex(of: code) ?? 0
        self.requests[transport]![index].increment()
        self.requestDuration[transport]!.record(.nanoseconds(Int64(clamping: nanos)))
    }

    /// `count` raw-TCP predictions refused unread because the queue was full, answered with RESOURCE_EXHAUSTED
    /// (recorded together, once per read, so that shedding stays cheap).
    public func tcpRequestsShed(_ count: Int) {
        guard count > 0 else { return }
        self.requests[.tcp]![Self.resourceExhaustedIndex].increment(by: Int64(count))
        let duration = self.requestDuration[.tcp]!
        for _ in 0..<count { duration.recordNanoseconds(0) }
        self.framesWritten.increment(by: Int64(count))
        self.tcpFrames.written.add(count, ordering: .relaxed)
    }

    private static let resourceExhaustedIndex = StatusCode.allCases.firstIndex(of: .resourceExhausted)!

    public func connectionOpened(_ transport: Transport) { self.openConnections[transport]!.increment(by: 1) }
    public func connectionClosed(_ transport: Transport) { self.openConnections[transport]!.increment(by: -1) }

    public func batchRan(_ timing: BatchTiming) {
        for wait in timing.queueWaitNanos { self.queueWait.record(.nanoseconds(Int64(clamping: wait))) }
        for nanos in timing.preprocessNanos { self.preprocess.record(.nanoseconds(Int64(clamping: nanos))) }
        if timing.size > 0 {
            self.inference.record(.nanoseconds(Int64(clamping: timing.inferenceNanos)))
            self.batchSize.record(Double(timing.size))
            if timing.ranInline { self.ranInline.increment(by: Int64(timing.size)) }
        }
    }

    /// The Prometheus text exposition (format 0.0.4); `queueDepth` is the batcher's queue now.
    /// The metrics text, with the batcher's queue read now.
    public func render(batcher: DynamicBatcher) -> String {
        self.queueDepth.set(to: Double(batcher.queueDepth))
        self.expectedWait.set(to: Double(batcher.expectedWaitNanos) / 1e9)
        if let store = self.captureStore.withLock({ $0 }) {
            let capture = store.statistics
            self.captureBytes.set(to: Double(capture.bytesUsed))
            self.captureMaxBytes.set(to: Double(capture.maxBytes))
            self.captureRecords.set(to: Double(capture.records))
        }
        let now = batcher.statistics
        let before = self.lastBatcherCounts.withLock { last in
            defer { last = now }
            return last
        }
        func add(_ counter: Counter?, _ new: Int, _ old: Int) { if new > old { counter?.increment(by: Int64(new - old)) } }
        add(self.refused["queue_full"], now.rejectedQueueFull, before.rejectedQueueFull)
        add(self.refused["queue_wait"], now.rejectedQueueWait, before.rejectedQueueWait)
        add(self.refused["deadline"], now.rejectedDeadline, before.rejectedDeadline)
        add(self.droppedUnrun["deadline"], now.deadlineExceeded, before.deadlineExceeded)
        add(self.droppedUnrun["queue_wait"], now.droppedQueueWait, before.droppedQueueWait)
        return self.registry.emitToString()
    }
}

/// Raw-TCP frame counts, readable in-process (Prometheus counters are write-only).
public final class TCPFrameCounts: Sendable {
    let read = Atomic<Int>(0)
    let written = Atomic<Int>(0)

    public var framesRead: Int { self.read.load(ordering: .relaxed) }
    public var framesWritten: Int { self.written.load(ordering: .relaxed) }
}
