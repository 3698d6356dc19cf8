import DoodleCore
import DoodleEngine
import Logging
import NIOCore
import NIOPosix

/// Everything `doodled` runs: the model, the batcher and the listeners, started and stopped as one.
public final class DoodleDaemon: Sendable {
    public struct Configuration: Sendable {
        /// Raw-TCP listen address.
        public var host = "127.0.0.1"
        public var port = 7431
        /// A model directory (holding model.onnx and labels.txt) or an .onnx file.
        public var modelPath = "models/quickdraw-345"
        public var batcher = DynamicBatcher.Configuration()
        public var requestLimits = RequestLimits()
        public var connectionLimits = ConnectionLimits()
        /// Event-loop threads for network I/O (inference never runs on them).
        public var eventLoopThreads = 1
        /// Kernel path; nil = the fastest the CPU supports.
        public var isa: KernelISA?

        public init() {}
    }

    public let configuration: Configuration
    public let batcher: DynamicBatcher
    public let model: ModelSlot
    private let group: MultiThreadedEventLoopGroup
    private let tcp: DoodleTCPServer
    private let logger: Logger

    /// The raw-TCP address actually bound.
    public var tcpAddress: SocketAddress? { self.tcp.localAddress }

    private init(configuration: Configuration, batcher: DynamicBatcher, model: ModelSlot,
                 group: MultiThreadedEventLoopGroup, tcp: DoodleTCPServer, logger: Logger) {
        self.configuration = configuration
        self.batcher = batcher
        self.model = model
        self.group = group
        self.tcp = tcp
        self.logger = logger
    }

    /// Loads the model, warms it up, starts the workers and binds the listeners.
    public static func start(_ configuration: Configuration,
                             logger: Logger = Logger(label: "doodled")) async throws -> DoodleDaemon {
        let predictor = try Predictor(path: configuration.modelPath, isa: configuration.isa ?? .best)
        try warmUp(predictor, batch: configuration.batcher.maxBatch)
        let model = ModelSlot(ServingModel(predictor: predictor, limits: configuration.requestLimits))
        let batcher = DynamicBatcher(predictor: predictor, configuration: configuration.batcher)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.eventLoopThreads))
        do {
            let tcp = try await DoodleTCPServer.start(host: configuration.host, port: configuration.port, group: group,
                                                      batcher: batcher, model: model,
                                                      limits: configuration.connectionLimits)
            logger.info("doodled serving", metadata: [
                "tcp": "\(tcp.localAddress.map(Self.describe) ?? "?")",
                "model": "\(predictor.name) v\(predictor.version) (\(predictor.path))",
                "classes": "\(predictor.labels.count)",
                "kernels": "\(predictor.engine.isa)",
                "workers": "\(configuration.batcher.workers)",
                "max_batch": "\(configuration.batcher.maxBatch)",
            ])
            return DoodleDaemon(configuration: configuration, batcher: batcher, model: model, group: group, tcp: tcp,
                                logger: logger)
        } catch {
            batcher.shutdown()
            try? await group.shutdownGracefully()
            throw error
        }
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

    /// Stops accepting connections, answers every queued request, then stops the event loops.
    public func shutdown() async {
        self.logger.info("doodled shutting down")
        try? await self.tcp.close()
        self.batcher.shutdown()
        // Let the event loops write the last responses before closing everything.
        try? await self.group.next().scheduleTask(in: .milliseconds(50)) {}.futureResult.get()
        try? await self.group.shutdownGracefully()
        self.logger.info("doodled stopped", metadata: ["requests": "\(self.batcher.statistics.requests)"])
    }
}
