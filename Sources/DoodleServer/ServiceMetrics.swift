import DoodleCore
import Prometheus
import Synchronization

/// The transports a request can arrive on (a label of the request metrics).
public enum Transport: String, Sendable, CaseIterable {
    case tcp
    case grpc
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
    private let openConnections: [Transport: Gauge]
    private let modelInfo = Mutex<Gauge?>(nil)

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
    }

    /// Marks which model is serving: `doodled_model_info{name,version,classes} 1` (a replaced one is removed).
    public func setModel(name: String, version: String, classes: Int) {
        let gauge = self.registry.makeGauge(
            descriptor: MetricNameDescriptor(namespace: "doodled", metricName: "model", unitName: "info",
                                             helpText: "The model being served (value 1)."),
            labels: [("name", name), ("version", version), ("classes", String(classes))])
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

    public func connectionOpened(_ transport: Transport) { self.openConnections[transport]!.increment(by: 1) }
    public func connectionClosed(_ transport: Transport) { self.openConnections[transport]!.increment(by: -1) }

    public func batchRan(_ timing: BatchTiming) {
        for wait in timing.queueWaitNanos { self.queueWait.record(.nanoseconds(Int64(clamping: wait))) }
        for nanos in timing.preprocessNanos { self.preprocess.record(.nanoseconds(Int64(clamping: nanos))) }
        if timing.size > 0 {
            self.inference.record(.nanoseconds(Int64(clamping: timing.inferenceNanos)))
            self.batchSize.record(Double(timing.size))
        }
    }

    /// The Prometheus text exposition (format 0.0.4); `queueDepth` is the batcher's queue now.
    public func render(queueDepth: Int) -> String {
        self.queueDepth.set(to: Double(queueDepth))
        return self.registry.emitToString()
    }
}
