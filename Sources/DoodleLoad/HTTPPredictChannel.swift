import DoodleCore
import DoodleWire
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// `POST /v1/predict` over HTTP/1.1 keep-alive connections, as a web client sends them. HTTP/1.1 has one request
/// in flight per connection, so each concurrent call takes an idle connection of this channel's pool (or opens
/// one): `--connections 4 --depth 16` keeps 64 connections busy. Bodies are the JSON form of the load's
/// requests, encoded once.
final class HTTPPredictChannel: PredictChannel {
    private let host: String
    private let port: Int
    private let bodies: [ByteBuffer]
    private let idle = Locked<[HTTPClientConnection]>([])

    init(host: String, port: Int, bodies: [ByteBuffer]) {
        self.host = host
        self.port = port
        self.bodies = bodies
    }

    /// The JSON bodies for `requests` (the fields `POST /v1/predict` takes).
    static func bodies(for requests: [Doodle_V1_PredictRequest]) -> [ByteBuffer] {
        requests.map { request in
            var object: [String: Any] = ["top_k": Int(request.topK)]
            switch request.input {
            case .strokes(let drawing):
                object["drawing"] = drawing.strokes.map { s in
                    s.t.isEmpty ? [s.x.map(Double.init), s.y.map(Double.init)]
                        : [s.x.map(Double.init), s.y.map(Double.init), s.t.map(Double.init)]
                }
            case .bitmap(let bytes):
                object["bitmap"] = bytes.base64EncodedString()
            case .image(let image):
                object["image"] = image.encoded.base64EncodedString()
            case nil:
                break
            }
            let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
            return ByteBuffer(bytes: data)
        }
    }

    func predict(_ request: Doodle_V1_PredictRequest) async -> String? {
        await self.predict(at: 0, of: [request])
    }

    func predict(at index: Int, of requests: [Doodle_V1_PredictRequest]) async -> String? {
        let connection: HTTPClientConnection
        if let free = self.idle.withLock({ $0.popLast() }) {
            connection = free
        } else {
            do {
                connection = try await HTTPClientConnection.connect(host: self.host, port: self.port)
            } catch {
                return "transport"
            }
        }
        guard let status = await connection.post(path: "/v1/predict", host: self.host, body: self.bodies[index % self.bodies.count]) else {
            connection.close()
            return "transport"
        }
        self.idle.withLock { $0.append(connection) }
        switch status {
        case 200: return nil
        case 400, 413: return StatusCode.invalidArgument.description
        case 429: return StatusCode.resourceExhausted.description
        case 503: return StatusCode.unavailable.description
        case 504: return StatusCode.deadlineExceeded.description
        default: return "HTTP \(status)"
        }
    }

    func close() async {
        for connection in self.idle.withLock({ $0 }) { connection.close() }
    }
}

/// One HTTP/1.1 client connection: one request at a time, the answer's status read, its body skipped.
final class HTTPClientConnection: Sendable {
    private let channel: any Channel
    private let collector: ResponseCollector

    private init(channel: any Channel, collector: ResponseCollector) {
        self.channel = channel
        self.collector = collector
    }

    static func connect(host: String, port: Int) async throws -> HTTPClientConnection {
        let collector = ResponseCollector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: host, port: port).get()
        return HTTPClientConnection(channel: channel, collector: collector)
    }

    /// The answer's status code, or nil when the connection failed.
    func post(path: String, host: String, body: ByteBuffer) async -> Int? {
        let promise = self.channel.eventLoop.makePromise(of: Int.self)
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: [
            "host": host, "content-type": "application/json", "content-length": String(body.readableBytes),
        ])
        let channel = self.channel
        let collector = self.collector
        channel.eventLoop.execute {
            collector.pending = promise
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { promise.fail($0) }
        }
        return try? await promise.futureResult.get()
    }

    func close() {
        self.channel.close(promise: nil)
    }
}

/// Completes the pending request's promise with the status of its answer, at the answer's end.
private final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    /// Touched only on the channel's event loop.
    var pending: EventLoopPromise<Int>?
    private var status = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head): self.status = Int(head.status.code)
        case .body: break
        case .end:
            let promise = self.pending
            self.pending = nil
            promise?.succeed(self.status)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.pending?.fail(ChannelError.ioOnClosedChannel)
        self.pending = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.pending?.fail(error)
        self.pending = nil
        context.close(promise: nil)
    }
}
