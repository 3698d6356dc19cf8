import DoodleCore
import DoodleWire
import Dispatch
import NIOCore
import NIOExtras
import SwiftProtobuf

/// Serves one raw-TCP connection: reads framed `ClientMessage`s, hands predictions to the batcher, and writes
/// `ServerMessage`s back as they complete (in any order; clients match them by request_id).
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = InboundFrame
    typealias OutboundOut = ByteBuffer

    private let batcher: DynamicBatcher
    private let model: ModelSlot
    private let limits: ConnectionLimits
    private let metrics: ServiceMetrics
    private let activity: ConnectionActivity
    private var flushPending = false
    /// Set by a drain: read nothing more, answer what was read, then close.
    private var draining = false
    private var context: ChannelHandlerContext?

    init(batcher: DynamicBatcher, model: ModelSlot, limits: ConnectionLimits, metrics: ServiceMetrics,
         activity: ConnectionActivity) {
        self.batcher = batcher
        self.model = model
        self.limits = limits
        self.metrics = metrics
        self.activity = activity
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.metrics.connectionOpened(.tcp)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.metrics.connectionClosed(.tcp)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // Drain: stop reading (what the client sends from now on was never accepted, so it may safely go to
        // another instance), answer everything already read, then close.
        self.draining = true
        try? context.channel.syncOptions?.setOption(.autoRead, value: false)
        self.closeIfDrained()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        self.metrics.tcpFrameRead()
        self.activity.bytesFramed += FrameDecoder.headerBytes + frame.payload.readableBytes
        self.activity.lastFrameAt = .now()
        if frame.flags & 1 != 0 {
            self.send(.predict(.error(.invalidArgument("compressed messages are not supported (flags bit 0 set)"))))
            return
        }
        if frame.flags != 0 {
            self.send(.predict(.error(.invalidArgument("unknown frame flags 0x\(String(frame.flags, radix: 16))"))))
            return
        }
        // Overloaded: shed a prediction before decoding and validating it, so that refusing costs next to nothing.
        // (Peeking only when full: every other frame pays one uncontended lock, not a scan of its bytes.)
        if self.batcher.isFull, let requestID = RequestPeek.predictRequestID(frame.payload),
           let full = self.batcher.rejectionIfFull() {
            self.metrics.requestCompleted(.tcp, code: .resourceExhausted, nanos: 0)
            self.send(.predict(.error(full, requestID: requestID)))
            return
        }
        let message: Doodle_V1_ClientMessage
        do {
            message = try Doodle_V1_ClientMessage(serializedBytes: Array(frame.payload.readableBytesView))
        } catch {
            self.send(.predict(.error(.invalidArgument("the frame is not a doodle.v1.ClientMessage: \(error)"))))
            return
        }
        switch message.message {
        case .predict(let request):
            self.predict(request, context: context)
        case .modelInfo(let request):
            self.send(.modelInfo(Doodle_V1_ModelInfoResponse(requestID: request.requestID,
                                                             predictor: self.model.current.predictor)))
        case nil:
            self.send(.predict(.error(.invalidArgument("the ClientMessage is empty: set predict or model_info"))))
        }
    }

    private func predict(_ wire: Doodle_V1_PredictRequest, context: ChannelHandlerContext) {
        let start = DispatchTime.now().uptimeNanoseconds
        let serving = self.model.current
        let metrics = self.metrics
        guard self.activity.inFlight < self.limits.maxInFlightPerConnection else {
            metrics.requestCompleted(.tcp, code: .resourceExhausted, nanos: 0)
            self.send(.predict(.error(ServiceError(.resourceExhausted,
                "\(self.activity.inFlight) requests in flight on this connection (limit \(self.limits.maxInFlightPerConnection))"),
                requestID: wire.requestID)))
            return
        }
        let request: PredictionRequest
        do {
            request = try serving.validator.request(from: wire, receivedAt: start)
        } catch {
            metrics.requestCompleted(.tcp, code: error.code, nanos: DispatchTime.now().uptimeNanoseconds &- start)
            self.send(.predict(.error(error, requestID: wire.requestID)))
            return
        }
        self.activity.inFlight += 1
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let requestID = wire.requestID
        let predictor = serving.predictor
        self.batcher.submit(request) { result in
            // On a worker thread: encode here, so the event loop only writes.
            let message = Doodle_V1_ServerMessage.with {
                $0.predict = Doodle_V1_PredictResponse(requestID: requestID, result: result, predictor: predictor)
            }
            let frame = Self.encode(message)
            metrics.requestCompleted(.tcp, code: StatusCode(result), nanos: DispatchTime.now().uptimeNanoseconds &- start)
            eventLoop.execute {
                bound.value.activity.inFlight -= 1
                bound.value.write(frame)
                bound.value.closeIfDrained()
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let framing = error as? FramingError, context.channel.isActive else {
            context.close(promise: nil)
            return
        }
        // Say why, then close once that (and every answer before it) has left. Not an answer to a frame (none
        // was read whole), so not counted as one.
        self.metrics.connectionClosedByServer(.framingError)
        try? context.channel.syncOptions?.setOption(.autoRead, value: false)
        let message = Self.encode(.with { $0.predict = .error(.invalidArgument("\(framing); closing the connection")) })
        let channel = context.channel
        context.writeAndFlush(Self.wrapOutboundOut(message)).whenComplete { _ in channel.close(promise: nil) }
    }

    // MARK: - Writing

    static func encode(_ message: Doodle_V1_ServerMessage) -> ByteBuffer {
        let bytes: [UInt8] = (try? message.serializedBytes()) ?? []
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count + FrameDecoder.headerBytes)
        writeFrame(bytes, into: &buffer)
        return buffer
    }

    private func send(_ message: Doodle_V1_ServerMessage.OneOf_Message) {
        self.write(Self.encode(Doodle_V1_ServerMessage.with { $0.message = message }))
    }

    /// While draining, closes once nothing is in flight, after the last response has left (writes complete in
    /// order, so an empty write completing means all before it have).
    private func closeIfDrained() {
        guard self.draining, self.activity.inFlight == 0, let context = self.context else { return }
        self.draining = false
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: done)
        let channel = context.channel
        done.futureResult.whenComplete { _ in channel.close(promise: nil) }
    }

    /// Writes now and flushes once the event loop has run what is already queued, so a batch's responses
    /// to one connection leave in one system call.
    private func write(_ frame: ByteBuffer, answersFrame: Bool = true) {
        guard let context = self.context else { return }
        if answersFrame { self.metrics.tcpFrameWritten() }
        context.write(Self.wrapOutboundOut(frame), promise: nil)
        if !self.flushPending {
            self.flushPending = true
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.execute {
                bound.value.flushPending = false
                bound.value.context?.flush()
            }
        }
    }
}
