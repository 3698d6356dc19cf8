import DoodleCore
import DoodleWire
import NIOCore
import NIOPosix

/// The raw-TCP listener: accepts connections and gives each a frame decoder and a `ConnectionHandler`.
public final class DoodleTCPServer: Sendable {
    private let channel: any Channel

    /// The address actually bound (the port is real when 0 was asked for).
    public var localAddress: SocketAddress? { self.channel.localAddress }

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Binds (or adopts) the listener and starts serving.
    public static func start(_ listener: Listener, group: any EventLoopGroup, batcher: DynamicBatcher,
                             model: ModelSlot, limits: ConnectionLimits,
                             metrics: ServiceMetrics) async throws -> DoodleTCPServer {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(FrameDecoder(maxFrameBytes: limits.maxFrameBytes)))
                    try channel.pipeline.syncOperations.addHandler(
                        ConnectionHandler(batcher: batcher, model: model, limits: limits, metrics: metrics))
                }
            }
        let channel = switch listener {
        case .address(let host, let port): try await bootstrap.bind(host: host, port: port).get()
        case .socket(let descriptor): try await bootstrap.withBoundSocket(descriptor).get()
        }
        return DoodleTCPServer(channel: channel)
    }

    /// Stops accepting connections.
    public func close() async throws {
        try await self.channel.close()
    }
}
