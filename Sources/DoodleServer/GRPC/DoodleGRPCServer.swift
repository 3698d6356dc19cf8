import DoodleCore
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import NIOPosix

/// The gRPC listener (HTTP/2, plaintext): `doodle.v1.Classifier` and `grpc.health.v1.Health`.
public final class DoodleGRPCServer: Sendable {
    private let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let serving: Task<Void, any Error>
    /// The port actually bound (real when 0 was asked for).
    public let port: Int
    /// "host:port" as bound, for logs.
    public let address: String

    private init(server: GRPCServer<HTTP2ServerTransport.Posix>, serving: Task<Void, any Error>, port: Int,
                 address: String) {
        self.server = server
        self.serving = serving
        self.port = port
        self.address = address
    }

    /// Binds and starts serving; returns once the listener is bound.
    static func start(_ listener: Listener, group: MultiThreadedEventLoopGroup, maxMessageBytes: Int,
                      metrics: ServiceMetrics, services: [any RegistrableRPCService]) async throws -> DoodleGRPCServer {
        let config = HTTP2ServerTransport.Posix.Config.defaults { config in
            config.rpc.maxRequestPayloadSize = maxMessageBytes
            config.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in
                metrics.connectionOpened(.grpc)
                channel.closeFuture.whenComplete { _ in metrics.connectionClosed(.grpc) }
                return channel.eventLoop.makeSucceededVoidFuture()
            }
        }
        let transport: HTTP2ServerTransport.Posix = switch listener {
        case .address(let host, let port):
            .http2NIOPosix(address: host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port),
                           transportSecurity: .plaintext, config: config, eventLoopGroup: group)
        case .socket(let descriptor):
            .http2NIOPosix(listeningSocketDescriptor: Int(descriptor), transportSecurity: .plaintext, config: config,
                           eventLoopGroup: group)
        }
        let server = GRPCServer(transport: transport, services: services)
        let serving = Task { try await server.serve() }
        do {
            let address = try await transport.listeningAddress
            let port = address.ipv4?.port ?? address.ipv6?.port ?? 0
            let described = address.ipv4.map { "\($0.host):\($0.port)" } ?? address.ipv6.map { "[\($0.host)]:\($0.port)" }
                ?? "\(address)"
            return DoodleGRPCServer(server: server, serving: serving, port: port, address: described)
        } catch {
            server.beginGracefulShutdown()
            _ = try? await serving.value
            throw error
        }
    }

    /// Stops accepting new RPCs and waits for the running ones to finish; after `timeout` the rest are
    /// cancelled (a client may hold a stream open forever).
    public func shutdown(timeout: Duration = .seconds(10)) async {
        self.server.beginGracefulShutdown()
        let serving = self.serving
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = try? await serving.value }
            group.addTask {
                try? await Task.sleep(for: timeout)
                serving.cancel()
            }
            await group.next()
            group.cancelAll()
        }
        _ = try? await serving.value
    }
}
