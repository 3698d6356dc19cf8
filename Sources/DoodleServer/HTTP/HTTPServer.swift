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
    /// Dropped once used: its deinit touches an event loop, which must still be running then.
    private let quiescing: Locked<ServerQuiescingHelper?>
    private let connections: ConnectionTasks

    /// The address actually bound.
    public var localAddress: SocketAddress? { self.channel.localAddress }

    private init(channel: any Channel, quiescing: ServerQuiescingHelper, connections: ConnectionTasks) {
        self.channel = channel
        self.quiescing = Locked(quiescing)
        self.connections = connections
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
        let tasks = ConnectionTasks()
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
                    tasks.start { await connection.handle(value: value, logger: logger) }
                }
            }
        let channel = switch listener {
        case .address(let host, let port): try await bootstrap.bind(host: host, port: port).get()
        case .socket(let descriptor): try await bootstrap.withBoundSocket(descriptor).get()
        }
        return DoodleHTTPServer(channel: channel, quiescing: quiescing, connections: tasks)
    }

    /// Stops accepting, lets every connection finish the request it is on, closes them, and waits for their
    /// tasks to end (so that none touches an event loop after the daemon has shut its group down).
    public func close() async throws {
        if let quiescing = self.quiescing.withLock({ helper in defer { helper = nil }; return helper }) {
            let closed = self.channel.eventLoop.makePromise(of: Void.self)
            quiescing.initiateShutdown(promise: closed)
            try await closed.futureResult.get()
        }
        await self.connections.waitForAll()
    }
}

/// The tasks serving HTTP connections, so that closing can wait for the last one.
final class ConnectionTasks: Sendable {
    private let tasks = Locked((next: 0, running: [Int: Task<Void, Never>]()))

    func start(_ body: @escaping @Sendable () async -> Void) {
        self.tasks.withLock { state in
            let id = state.next
            state.next += 1
            state.running[id] = Task {
                await body()
                self.tasks.withLock { _ = $0.running.removeValue(forKey: id) }
            }
        }
    }

    /// Returns when no connection task is left (each removes itself as it ends, under the lock its start holds
    /// while storing it, so none can end unrecorded).
    func waitForAll() async {
        while let task = self.tasks.withLock({ $0.running.values.first }) {
            await task.value
        }
    }
}
