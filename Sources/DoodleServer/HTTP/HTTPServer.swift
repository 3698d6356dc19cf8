import DoodleCore
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOExtras
import NIOPosix

/// doodled's HTTP/1.1 listener, on Hummingbird: the JSON API (`POST /v1/predict`, `GET /v1/model`), the drawing
/// page (`/`), and for operators `/metrics` (Prometheus text), `/healthz` and `/readyz` (see `HTTPRoutes`).
///
/// The listening socket is bound here (or inherited from systemd), and each connection is served by Hummingbird's
/// `HTTP1Channel`; closing quiesces the connections (each finishes the request it is answering) and stops
/// accepting.
public final class DoodleHTTPServer: Sendable {
    private let channel: any Channel
    private let quiescing: ServerQuiescingHelper
    private let closed: EventLoopPromise<Void>

    /// The address actually bound.
    public var localAddress: SocketAddress? { self.channel.localAddress }

    private init(channel: any Channel, quiescing: ServerQuiescingHelper, closed: EventLoopPromise<Void>) {
        self.channel = channel
        self.quiescing = quiescing
        self.closed = closed
    }

    static func start(_ listener: Listener, group: any EventLoopGroup, routes: HTTPRoutes,
                      logger: Logger) async throws -> DoodleHTTPServer {
        let responder = routes.router().buildResponder()
        let connection = HTTP1Channel(responder: { request, writer, channel in
            let context = BasicRequestContext(source: .init(channel: channel, logger: logger))
            let response: Response
            do {
                response = try await responder.respond(to: request, context: context)
            } catch {
                logger.debug("HTTP handler failed", metadata: ["error": "\(error)"])
                response = Response(status: .internalServerError)
            }
            try await writer.write(response: response.head, body: response.body)
            // A handler that will not read the rest of the request says so: the connection cannot go on.
            if response.headers[.connection] == "close" { channel.close(promise: nil) }
        }, configuration: .init(idleTimeout: .seconds(300)))
        let quiescing = ServerQuiescingHelper(group: group)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 128)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelInitializer { channel in
                connection.setup(channel: channel, logger: logger).map { value in
                    Task { await connection.handle(value: value, logger: logger) }
                    return ()
                }
            }
        let channel = switch listener {
        case .address(let host, let port): try await bootstrap.bind(host: host, port: port).get()
        case .socket(let descriptor): try await bootstrap.withBoundSocket(descriptor).get()
        }
        return DoodleHTTPServer(channel: channel, quiescing: quiescing, closed: group.next().makePromise())
    }

    /// Stops accepting, lets every connection finish the request it is on, and closes them.
    public func close() async throws {
        self.quiescing.initiateShutdown(promise: self.closed)
        try await self.closed.futureResult.get()
    }
}
