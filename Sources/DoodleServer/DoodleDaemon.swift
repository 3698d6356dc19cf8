import DoodleCapture
import DoodleCore
import DoodleEngine
import DoodlePreprocessing
import GRPCCore
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Everything `doodled` runs: the model, the batcher and the listeners, started and stopped as one.
public final class DoodleDaemon: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Raw-TCP listener.
        public var tcp = Listener.address(host: "127.0.0.1", port: 7431)
        /// gRPC (HTTP/2) listener; nil = no gRPC.
        public var grpc: Listener? = .address(host: "127.0.0.1", port: 7432)
        /// HTTP listener (the JSON API, the drawing page, /metrics, /healthz, /readyz); nil = none.
        public var http: Listener? = .address(host: "127.0.0.1", port: 7433)
        /// The HTTP API's body limit and CORS origins.
        public var httpAPI = HTTPAPIConfiguration()
        /// A model directory (holding model.onnx and labels.txt) or an .onnx file.
        public var modelPath = "models/quickdraw-345"
        public var batcher = DynamicBatcher.Configuration()
        public var requestLimits = RequestLimits()
        public var connectionLimits = ConnectionLimits()
        /// Event-loop threads for network I/O (inference never runs on them).
        public var eventLoopThreads = 1
        /// Kernel path; nil = the fastest the CPU supports.
        public var isa: KernelISA?
        /// Longest a drain waits for queued and in-flight requests before closing what is left.
        public var drainTimeout = Duration.seconds(20)
        /// Where labelled drawings are captured (nil = capture off), and the store's bound in bytes.
        public var captureDirectory: String?
        public var captureMaxBytes = 1 << 30

        public init() {}
    }

    public let configuration: Configuration
    public let batcher: DynamicBatcher
    public let model: ModelSlot
    public let metrics: ServiceMetrics
    /// SERVING once warm; NOT_SERVING from the start of a shutdown (gRPC health, /readyz).
    public let state: ServingState
    private let group: MultiThreadedEventLoopGroup
    private let tcp: DoodleTCPServer
    private let grpcServer: DoodleGRPCServer?
    private let httpServer: DoodleHTTPServer?
    private let logger: Logger
    private let reloading = Locked(false)
    private let loopProbes: [EventLoopProbe]
    /// The capture store (nil = capture off).
    public let capture: DrawingCapture?

    /// The raw-TCP address actually bound.
    public var tcpAddress: SocketAddress? { self.tcp.localAddress }
    /// The gRPC port actually bound (nil without gRPC).
    public var grpcPort: Int? { self.grpcServer?.port }
    /// The HTTP address actually bound (nil without HTTP).
    public var httpAddress: SocketAddress? { self.httpServer?.localAddress }

    private init(configuration: Configuration, batcher: DynamicBatcher, model: ModelSlot, metrics: ServiceMetrics,
                 state: ServingState, group: MultiThreadedEventLoopGroup, tcp: DoodleTCPServer,
                 grpcServer: DoodleGRPCServer?, httpServer: DoodleHTTPServer?, capture: DrawingCapture?, logger: Logger) {
        self.configuration = configuration
        self.batcher = batcher
        self.model = model
        self.metrics = metrics
        self.state = state
        self.group = group
        self.tcp = tcp
        self.grpcServer = grpcServer
        self.httpServer = httpServer
        self.capture = capture
        self.logger = logger
        self.loopProbes = group.makeIterator().map { EventLoopProbe(loop: $0) }
    }

    /// Loads the model, warms it up, starts the workers and binds the listeners.
    public static func start(_ configuration: Configuration,
                             logger: Logger = Logger(label: "doodled")) async throws -> DoodleDaemon {
        let predictor = try Predictor(path: configuration.modelPath, isa: configuration.isa ?? .best)
        try warmUp(predictor, batch: configuration.batcher.maxBatch)
        let metrics = ServiceMetrics(maxBatch: configuration.batcher.maxBatch)
        metrics.setModel(name: predictor.name, version: predictor.version, classes: predictor.labels.count,
                         kernels: "\(predictor.engine.isa)")
        let batcher = DynamicBatcher(configuration: configuration.batcher, observer: metrics)
        let model: ModelSlot
        do {
            model = ModelSlot(try ServingModel(predictor: predictor, limits: configuration.requestLimits,
                                               queueFull: batcher.queueFullError, queueWait: batcher.queueWaitError))
        } catch {
            batcher.shutdown()
            throw error
        }
        var capture: DrawingCapture?
        if let directory = configuration.captureDirectory {
            do {
                capture = try DrawingCapture(configuration: CaptureLog.Configuration(directory: directory,
                                                                                     maxBytes: configuration.captureMaxBytes),
                                             logger: logger)
                metrics.attachCapture(capture!.store)
            } catch {
                batcher.shutdown()
                throw error
            }
        }
        let service = PredictionService(batcher: batcher, model: model, metrics: metrics, capture: capture)
        let state = ServingState(.notServing)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.eventLoopThreads))
        var tcp: DoodleTCPServer?
        var grpc: DoodleGRPCServer?
        var http: DoodleHTTPServer?
        do {
            tcp = try await DoodleTCPServer.start(configuration.tcp, group: group, service: service,
                                                  limits: configuration.connectionLimits, metrics: metrics)
            if let listener = configuration.grpc {
                let services: [any RegistrableRPCService] = [
                    ClassifierService(service: service,
                                      maxInFlightPerStream: configuration.connectionLimits.maxInFlightPerConnection),
                    HealthService(state: state),
                ]
                // gRPC runs on NIO's process-wide group: its transport may still enqueue work on its loops after
                // the server stops, which a group we shut down would refuse.
                grpc = try await DoodleGRPCServer.start(listener, group: .singletonMultiThreadedEventLoopGroup,
                                                        maxMessageBytes: configuration.connectionLimits.maxFrameBytes,
                                                        metrics: metrics,
                                                        services: services)
            }
            if let listener = configuration.http {
                let routes = HTTPRoutes(service: service, metrics: metrics, state: state, configuration: configuration.httpAPI)
                http = try await DoodleHTTPServer.start(listener, group: group, routes: routes, logger: logger)
            }
        } catch {
            try? await tcp?.close()
            await grpc?.shutdown()
            try? await http?.close()
            batcher.shutdown()
            capture?.shutdown()
            try? await group.shutdownGracefully()
            throw error
        }
        state.set(.serving)
        logger.info("doodled serving", metadata: [
            "tcp": "\(tcp!.localAddress.map(Self.describe) ?? "?")",
            "grpc": "\(grpc?.address ?? "off")",
            "http": "\(http?.localAddress.map(Self.describe) ?? "off")",
            "model": "\(predictor.name) v\(predictor.version) (\(predictor.path))",
            "classes": "\(predictor.labels.count)",
            "kernels": "\(predictor.engine.isa)",
            "cpu": "\(KernelISA.cpuModel)",
            "workers": "\(configuration.batcher.workers)",
            "max_batch": "\(configuration.batcher.maxBatch)",
            "png_inflater": "\(ImageDecoder.inflater)",
            "capture": "\(configuration.captureDirectory ?? "off")",
        ])
        return DoodleDaemon(configuration: configuration, batcher: batcher, model: model, metrics: metrics,
                            state: state, group: group, tcp: tcp!, grpcServer: grpc, httpServer: http,
                            capture: capture, logger: logger)
    }

    /// "host:port" for logs.
    static func describe(_ address: SocketAddress) -> String {
        let host = address.ipAddress ?? "?"
        return address.protocol == .inet6 ? "[\(host)]:\(address.port ?? 0)" : "\(host):\(address.port ?? 0)"
    }

    /// Runs one full batch through the model so the first real request pays no first-touch costs.
    static func warmUp(_ predictor: Predictor, batch: Int) throws {
        let engine = predictor.engine
        let scratch = engine.makeScratch(maxBatch: batch)
        let pixels = [UInt8](repeating: 0, count: batch * engine.inputBytes)
        var scores = [Float](repeating: 0, count: batch * engine.classCount)
        try pixels.withUnsafeBytes { px in
            try scores.withUnsafeMutableBufferPointer { try engine.run(images: px, count: batch, scratch: scratch, scores: $0) }
        }
    }

    /// Drains and stops: NOT_SERVING first (health, /readyz); the listeners stop accepting; every raw-TCP
    /// connection stops reading, answers each request it has read and closes; gRPC calls finish; then the
    /// workers and event loops stop. Whatever is still open after `drainTimeout` is closed.
    public func shutdown() async {
        let timeout = self.configuration.drainTimeout
        self.logger.info("doodled draining", metadata: ["timeout": "\(timeout)"])
        self.state.set(.notServing)
        self.state.close()
        async let tcpDrained = self.tcp.drain(timeout: timeout)
        async let grpcDrained: Void? = self.grpcServer?.shutdown(timeout: timeout)
        let drained = await tcpDrained
        _ = await grpcDrained
        self.batcher.shutdown()  // (its last answers' captures are handed over before it returns)
        self.capture?.shutdown()
        try? await self.httpServer?.close()
        try? await self.group.shutdownGracefully()
        let frames = self.metrics.tcpFrames
        self.logger.info("doodled stopped", metadata: [
            "requests": "\(self.batcher.statistics.requests)",
            "tcp_frames_read": "\(frames.framesRead)",
            "tcp_frames_answered": "\(frames.framesWritten)",
            "drain": "\(drained ? "complete" : "timed out")",
        ])
    }

    /// Loads the model file again (or the one at `path`), checks it, runs a warm-up batch, and switches new
    /// requests to it; requests already admitted finish on the model they were validated against. On any failure the old model keeps
    /// serving and the error is thrown.
    @discardableResult
    public func reload(path: String? = nil) async throws -> Predictor {
        guard self.reloading.withLock({ busy in defer { busy = true }; return !busy }) else {
            throw ReloadError(message: "a reload is already running")
        }
        defer { self.reloading.withLock { $0 = false } }
        let path = path ?? self.configuration.modelPath
        let current = self.model.current.predictor
        do {
            let predictor = try Predictor(path: path, isa: self.configuration.isa ?? .best)
            guard predictor.engine.inputBytes == current.engine.inputBytes else {
                throw ReloadError(message: "the new model takes \(predictor.engine.inputBytes)-byte images, "
                                  + "the serving one \(current.engine.inputBytes)")
            }
            guard predictor.labels.count == predictor.engine.classCount else {
                throw ReloadError(message: "the new model has \(predictor.engine.classCount) outputs but "
                                  + "\(predictor.labels.count) labels")
            }
            try Self.warmUp(predictor, batch: self.configuration.batcher.maxBatch)
            // The one switch: new requests are validated against (and run on) the new model; those already
            // admitted finish on the one they were validated against.
            self.model.replace(with: try ServingModel(predictor: predictor, limits: self.configuration.requestLimits,
                                                      queueFull: self.batcher.queueFullError, queueWait: self.batcher.queueWaitError))
            self.metrics.setModel(name: predictor.name, version: predictor.version, classes: predictor.labels.count,
                         kernels: "\(predictor.engine.isa)")
            self.metrics.reloadFinished(ok: true)
            self.logger.info("model reloaded", metadata: [
                "model": "\(predictor.name) v\(predictor.version) (\(predictor.path))",
                "previous": "\(current.name) v\(current.version)",
            ])
            return predictor
        } catch {
            self.metrics.reloadFinished(ok: false)
            self.logger.error("model reload refused; still serving the previous model", metadata: [
                "path": "\(path)", "error": "\(error)", "serving": "\(current.name) v\(current.version)",
            ])
            throw error
        }
    }

    /// What systemd's STATUS says while serving: the model and its classes.
    public var servingStatus: String {
        let model = self.model.current.predictor
        return "serving \(model.name) v\(model.version) (\(model.labels.count) classes)"
    }

    /// True while no worker has spent longer than `stallLimit` on one batch and every network event loop ran
    /// the probe it was given at the previous check (the systemd watchdog asks this every half period).
    public func isMakingProgress(stallLimit: Duration) -> Bool {
        let workersOK = self.batcher.longestBatchNanos < UInt64(max(0, TimeAmount(stallLimit).nanoseconds))
        let loopsOK = self.loopProbes.allSatisfy { $0.answeredAndRearm() }
        return workersOK && loopsOK
    }
}

/// Why a model reload was refused.
public struct ReloadError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { self.message }
}

/// Checks that an event loop still runs tasks: each check looks at the answer to the previous probe and sends
/// a new one.
final class EventLoopProbe: Sendable {
    private let loop: any EventLoop
    private let answered = Atomic<Bool>(true)

    init(loop: any EventLoop) {
        self.loop = loop
    }

    /// Whether the last probe ran; sends the next.
    func answeredAndRearm() -> Bool {
        guard self.answered.exchange(false, ordering: .acquiringAndReleasing) else { return false }
        self.loop.execute { [self] in self.answered.store(true, ordering: .releasing) }
        return true
    }
}
