import DoodleCore
import DoodleWire
import NIOCore
import NIOExtras
import NIOPosix
import SwiftProtobuf
import Synchronization

/// The raw-TCP listener: accepts connections and gives each a frame decoder and a `ConnectionHandler`.
public final class DoodleTCPServer: Sendable {
    private let channel: any Channel
    /// Dropped once a drain has run: its deinit completes a promise on our event loop, which must still be
    /// running then (not at process exit, after the loops stopped).
    private let quiescing: Locked<ServerQuiescingHelper?>

    /// The address actually bound (the port is real when 0 was asked for).
    public var localAddress: SocketAddress? { self.channel.localAddress }

    private init(channel: any Channel, quiescing: ServerQuiescingHelper) {
        self.channel = channel
        self.quiescing = Locked(quiescing)
    }

    /// Binds (or adopts) the listener and starts serving.
    public static func start(_ listener: Listener, group: any EventLoopGroup, service: PredictionService,
                             limits: ConnectionLimits,
                             metrics: ServiceMetrics) async throws -> DoodleTCPServer {
        let quiescing = ServerQuiescingHelper(group: group)
        let open = OpenConnections()
        let watermark = ChannelOptions.Types.WriteBufferWaterMark(low: limits.maxWriteBufferBytes / 2,
                                                                  high: limits.maxWriteBufferBytes)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // A client that closes its sending side ("no more requests") still gets every answer.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.writeBufferWaterMark, value: watermark)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let count = open.count.wrappingAdd(1, ordering: .relaxed).newValue
                    channel.closeFuture.whenComplete { _ in open.count.subtract(1, ordering: .relaxed) }
                    if count > limits.maxConnections {
                        metrics.connectionClosedByServer(.tooManyConnections)
                        try channel.pipeline.syncOperations.addHandler(RefuseConnection(
                            "\(limits.maxConnections) connections are open (the limit); try again later"))
                        return
                    }
                    let activity = ConnectionActivity()
                    try channel.pipeline.syncOperations.addHandler(
                        ConnectionGuard(activity: activity, limits: limits, metrics: metrics))
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ClientFrameDecoder(
                        maxFrameBytes: limits.maxFrameBytes, service: service, metrics: metrics, activity: activity)))
                    try channel.pipeline.syncOperations.addHandler(
                        ConnectionHandler(service: service,
                                          limits: limits, metrics: metrics, activity: activity))
                }
            }
        let channel = switch listener {
        case .address(let host, let port): try await bootstrap.bind(host: host, port: port).get()
        case .socket(let descriptor): try await bootstrap.withBoundSocket(descriptor).get()
        }
        return DoodleTCPServer(channel: channel, quiescing: quiescing)
    }

    /// Stops accepting, then lets every connection finish: each stops reading, answers every request it has
    /// read, and closes. Returns true when all connections closed within `timeout` (the rest are closed when
    /// the event loops stop).
    public func drain(timeout: Duration) async -> Bool {
        let loop = self.channel.eventLoop
        let done = loop.makePromise(of: Void.self)
        let timer = loop.scheduleTask(in: TimeAmount(timeout)) {
            done.fail(DrainTimeout())
        }
        let all = loop.makePromise(of: Void.self)
        all.futureResult.cascade(to: done)
        let helper = self.quiescing.withLock { helper in
            defer { helper = nil }
            return helper
        }
        guard let helper else { return true }  // drained already
        helper.initiateShutdown(promise: all)
        do {
            try await done.futureResult.get()
            timer.cancel()
            return true
        } catch {
            return false
        }
    }

    /// Stops accepting at once (for a start-up that failed half-way).
    func close() async throws {
        try await self.channel.close()
    }

    private struct DrainTimeout: Error {}
}

/// Raw-TCP connections open now (for `maxConnections`).
final class OpenConnections: Sendable {
    let count = Atomic<Int>(0)
}

/// Answers a connection over the limit with RESOURCE_EXHAUSTED (request_id 0) and closes it.
final class RefuseConnection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let message: String

    init(_ message: String) {
        self.message = message
    }

    func channelActive(context: ChannelHandlerContext) {
        let answer = ConnectionHandler.encode(.with { $0.predict = .error(ServiceError(.resourceExhausted, self.message)) })
        let channel = context.channel
        context.writeAndFlush(Self.wrapOutboundOut(answer)).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}  // nothing it sends is read
}
