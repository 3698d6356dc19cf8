import DoodleWire
import NIOCore
import NIOPosix
import SwiftProtobuf

/// An error talking to doodled.
public struct ClientError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        /// The connection ended before the answer came. When doodled closes a connection itself (a drain) it
        /// has first answered every request it read, so an unanswered one was never read.
        case connectionClosed
        /// Anything else: an unreadable answer, a wrong message type, bad input files.
        case other
    }

    public var message: String
    public var kind: Kind
    public var description: String { self.message }

    public init(message: String, kind: Kind = .other) {
        self.message = message
        self.kind = kind
    }
}

/// One raw-TCP connection to doodled. Any number of calls may be in flight at once (pipelined); each gets
/// its own request_id, and responses are matched to calls as they arrive, in any order.
///
/// ```swift
/// let connection = try await DoodleConnection.connect(host: "127.0.0.1", port: 7431)
/// let response = try await connection.predict(.with { $0.bitmap = Data(pixels) })
/// ```
public final class DoodleConnection: Sendable {
    private let channel: any Channel
    private let handler: NIOLoopBound<ResponseRouter>

    private init(channel: any Channel, handler: NIOLoopBound<ResponseRouter>) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects, failing after `timeoutSeconds`.
    public static func connect(host: String, port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                               timeoutSeconds: Int64 = 5) async throws -> DoodleConnection {
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(.seconds(timeoutSeconds))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: 64 << 20)))
                    try channel.pipeline.syncOperations.addHandler(ResponseRouter())
                }
            }
            .connect(host: host, port: port)
            .get()
        let router = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: ResponseRouter.self), eventLoop: channel.eventLoop)
        }.get()
        return DoodleConnection(channel: channel, handler: router)
    }

    /// Sends a prediction request (its request_id is replaced by the connection's own) and waits for the answer.
    /// The response's status says whether it succeeded; transport failures throw.
    public func predict(_ request: Doodle_V1_PredictRequest) async throws -> Doodle_V1_PredictResponse {
        let message = try await self.call { id in
            var r = request
            r.requestID = id
            return .with { $0.predict = r }
        }
        guard case .predict(let response) = message.message else {
            throw ClientError(message: "the server answered a prediction with \(String(describing: message.message))")
        }
        return response
    }

    /// Fetches the model's name, version, labels and input shape.
    public func modelInfo() async throws -> Doodle_V1_ModelInfoResponse {
        let message = try await self.call { id in .with { $0.modelInfo = .with { $0.requestID = id } } }
        guard case .modelInfo(let info) = message.message else {
            throw ClientError(message: "the server answered model_info with \(String(describing: message.message))")
        }
        return info
    }

    /// Sends raw bytes (for tests of malformed input) without waiting for anything.
    public func sendRaw(_ bytes: [UInt8]) async throws {
        var buffer = self.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        try await self.channel.writeAndFlush(buffer)
    }

    /// Responses the server sent for frames it could not read (request_id 0), oldest first.
    public func unmatchedResponses() async throws -> [Doodle_V1_ServerMessage] {
        let handler = self.handler
        return try await self.channel.eventLoop.submit { handler.value.unmatched }.get()
    }

    public func close() async {
        try? await self.channel.close()
    }

    /// Whether the connection is still open.
    public var isActive: Bool { self.channel.isActive }

    private func call(_ make: @escaping @Sendable (UInt64) -> Doodle_V1_ClientMessage) async throws -> Doodle_V1_ServerMessage {
        let promise = self.channel.eventLoop.makePromise(of: Doodle_V1_ServerMessage.self)
        let handler = self.handler
        let channel = self.channel
        self.channel.eventLoop.execute {
            guard channel.isActive else {
                return promise.fail(ClientError(message: "the connection is closed", kind: .connectionClosed))
            }
            let id = handler.value.register(promise)
            do {
                let bytes: [UInt8] = try make(id).serializedBytes()
                var buffer = channel.allocator.buffer(capacity: bytes.count + 5)
                writeFrame(bytes, into: &buffer)
                handler.value.write(buffer, channel: channel)
            } catch {
                handler.value.fail(id: id, error: error)
            }
        }
        return try await promise.futureResult.get()
    }
}

/// Routes responses to the calls waiting for them, by request_id. Lives on the channel's event loop.
final class ResponseRouter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private var nextID: UInt64 = 1
    private var waiting: [UInt64: EventLoopPromise<Doodle_V1_ServerMessage>] = [:]
    private var flushPending = false
    var unmatched: [Doodle_V1_ServerMessage] = []

    func register(_ promise: EventLoopPromise<Doodle_V1_ServerMessage>) -> UInt64 {
        let id = self.nextID
        self.nextID += 1
        self.waiting[id] = promise
        return id
    }

    func fail(id: UInt64, error: any Error) {
        self.waiting.removeValue(forKey: id)?.fail(error)
    }

    /// Writes now, flushing once per event-loop tick (pipelined calls share system calls).
    func write(_ buffer: ByteBuffer, channel: any Channel) {
        channel.write(buffer, promise: nil)
        if !self.flushPending {
            self.flushPending = true
            let bound = NIOLoopBound(self, eventLoop: channel.eventLoop)
            channel.eventLoop.execute {
                bound.value.flushPending = false
                channel.flush()
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = InboundFrame(framed: Self.unwrapInboundIn(data))
        guard let message = try? Doodle_V1_ServerMessage(serializedBytes: Array(frame.payload.readableBytesView)) else {
            self.failAll(ClientError(message: "the server sent an unreadable frame"))
            context.close(promise: nil)
            return
        }
        let id: UInt64 = switch message.message {
        case .predict(let r): r.requestID
        case .modelInfo(let r): r.requestID
        case nil: 0
        }
        if let promise = self.waiting.removeValue(forKey: id) {
            promise.succeed(message)
        } else {
            self.unmatched.append(message)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.failAll(ClientError(message: "the connection closed", kind: .connectionClosed))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.failAll(error is IOError ? ClientError(message: "connection error: \(error)", kind: .connectionClosed) : error)
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        let all = self.waiting
        self.waiting = [:]
        for p in all.values { p.fail(error) }
    }
}
