import DoodleCore
import NIOCore
import NIOHTTP1
import NIOPosix

/// Plain HTTP for operators: `/metrics` (Prometheus text), `/healthz` (the process answers) and `/readyz`
/// (200 only while the model is warm and the daemon is not draining). GET and HEAD only.
public final class DoodleHTTPServer: Sendable {
    private let channel: any Channel

    /// The address actually bound.
    public var localAddress: SocketAddress? { self.channel.localAddress }

    private init(channel: any Channel) {
        self.channel = channel
    }

    static func start(_ listener: Listener, group: any EventLoopGroup, metrics: ServiceMetrics,
                      batcher: DynamicBatcher, state: ServingState) async throws -> DoodleHTTPServer {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 128)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(HTTPProbeHandler(metrics: metrics, batcher: batcher, state: state))
                }
            }
        let channel = switch listener {
        case .address(let host, let port): try await bootstrap.bind(host: host, port: port).get()
        case .socket(let descriptor): try await bootstrap.withBoundSocket(descriptor).get()
        }
        return DoodleHTTPServer(channel: channel)
    }

    public func close() async throws {
        try await self.channel.close()
    }
}

/// Answers one HTTP/1.1 connection's requests.
final class HTTPProbeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let metrics: ServiceMetrics
    private let batcher: DynamicBatcher
    private let state: ServingState
    private var head: HTTPRequestHead?

    init(metrics: ServiceMetrics, batcher: DynamicBatcher, state: ServingState) {
        self.metrics = metrics
        self.batcher = batcher
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head = self.head else { return }
            self.head = nil
            let (status, contentType, body, extra) = self.answer(head)
            var headers = HTTPHeaders([("content-type", contentType), ("content-length", String(body.utf8.count))])
            for (name, value) in extra { headers.add(name: name, value: value) }
            if !head.isKeepAlive { headers.add(name: "connection", value: "close") }
            context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status,
                                                                     headers: headers))), promise: nil)
            if head.method != .HEAD {
                context.write(Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            }
            let keepAlive = head.isKeepAlive
            let channel = context.channel
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { channel.close(promise: nil) }
            }
        }
    }

    private func answer(_ head: HTTPRequestHead) -> (HTTPResponseStatus, String, String, [(String, String)]) {
        let text = "text/plain; charset=utf-8"
        guard head.method == .GET || head.method == .HEAD else {
            return (.methodNotAllowed, text, "only GET and HEAD\n", [("allow", "GET, HEAD")])
        }
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        switch path {
        case "/metrics":
            return (.ok, "text/plain; version=0.0.4; charset=utf-8", self.metrics.render(batcher: self.batcher), [])
        case "/healthz":
            return (.ok, text, "ok\n", [])
        case "/readyz":
            return self.state.status == .serving
                ? (.ok, text, "ready\n", [])
                : (.serviceUnavailable, text, "not ready (starting, draining or without a model)\n", [])
        default:
            return (.notFound, text, "no such path: \(path) (try /metrics, /healthz, /readyz)\n", [])
        }
    }
}
