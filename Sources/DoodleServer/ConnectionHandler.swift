import DoodleCore
import DoodleWire
import Dispatch
import NIOCore
import NIOExtras
import SwiftProtobuf

/// Serves one raw-TCP connection: reads framed `ClientMessage`s, hands predictions to the batcher, and writes
/// `ServerMessage`s back as they complete (in any order; clients match them by request_id).
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
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
    /// Refusals of the current read (queue full), written together when the read completes.
    private var sheds: ByteBuffer
    private var shedCount = 0
    /// The queue-full answer, encoded once per server without its request_id.
    private let queueFullAnswer: PredictFrameWriter
    /// Not reading for `limits.shedPause` after refusing requests.
    private var pausedAfterShedding = false
    /// Drained and half-closed: what the client still sends is dropped unanswered until it closes.
    private var lingering = false
    /// The one prediction of the current read so far, with nothing else in flight on this connection: answered
    /// when the read completes, on the event loop if the batcher is idle (`DynamicBatcher.runIfIdle`).
    private var held: Prediction?
    /// Who this connection is, to the batcher (`runIfIdle` runs a request inline only for the last sender).
    private var callerID: Int { Int(bitPattern: UInt(bitPattern: ObjectIdentifier(self))) }

    init(batcher: DynamicBatcher, queueFullAnswer: PredictFrameWriter, model: ModelSlot, limits: ConnectionLimits,
         metrics: ServiceMetrics, activity: ConnectionActivity) {
        self.batcher = batcher
        self.queueFullAnswer = queueFullAnswer
        self.model = model
        self.limits = limits
        self.metrics = metrics
        self.activity = activity
        self.sheds = ByteBufferAllocator().buffer(capacity: 0)
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
        guard !self.lingering else { return }
        let frame = InboundFrame(framed: Self.unwrapInboundIn(data))
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
           self.batcher.rejectionIfFull() != nil {
            self.shed(requestID)
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
        let prediction = Prediction(request: request, requestID: wire.requestID, predictor: serving.predictor,
                                    start: start)
        if let held = self.held {
            // A second request in the same read: neither is alone, both go to the batcher.
            self.held = nil
            self.submit(held, context: context)
            self.submit(prediction, context: context)
        } else if self.activity.inFlight == 1 && self.batcher.mayRunInline {
            self.held = prediction  // alone so far: decided when the read completes
        } else {
            self.submit(prediction, context: context)
        }
    }

    /// A validated request waiting for an answer.
    private struct Prediction {
        var request: PredictionRequest
        var requestID: UInt64
        var predictor: Predictor
        /// Monotonic nanoseconds when it was read.
        var start: UInt64
    }

    /// Hands `prediction` to the batcher; its answer is encoded on the worker and written on the event loop.
    private func submit(_ prediction: Prediction, context: ChannelHandlerContext) {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let metrics = self.metrics
        self.batcher.submit(prediction.request, caller: self.callerID) { result in
            // On a worker thread: encode here, so the event loop only writes.
            let frame = Self.answer(prediction, result)
            metrics.requestCompleted(.tcp, code: StatusCode(result),
                                     nanos: DispatchTime.now().uptimeNanoseconds &- prediction.start)
            eventLoop.execute {
                bound.value.activity.inFlight -= 1
                bound.value.write(frame)
                bound.value.closeIfDrained()
            }
        }
    }

    /// Answers a request that came alone in its read: on this thread if the batcher is idle (no hand-off to a
    /// worker and back), else through the batcher like any other.
    private func answerLoneRequest(_ prediction: Prediction, context: ChannelHandlerContext) {
        guard let result = self.batcher.runIfIdle(prediction.request, caller: self.callerID) else {
            self.submit(prediction, context: context)
            return
        }
        let frame = Self.answer(prediction, result)
        self.metrics.requestCompleted(.tcp, code: StatusCode(result),
                                      nanos: DispatchTime.now().uptimeNanoseconds &- prediction.start)
        self.activity.inFlight -= 1
        self.write(frame)
        self.closeIfDrained()
    }

    private static func answer(_ prediction: Prediction, _ result: Result<[ScoredClass], ServiceError>) -> ByteBuffer {
        Self.encode(Doodle_V1_ServerMessage.with {
            $0.predict = Doodle_V1_PredictResponse(requestID: prediction.requestID, result: result,
                                                   predictor: prediction.predictor)
        })
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let held = self.held {
            self.held = nil
            self.answerLoneRequest(held, context: context)
        }
        if self.shedCount > 0 {
            self.writeSheds()
            self.pauseReadingAfterShedding(context: context)
        }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let held = self.held {  // (a read is always completed first; kept for safety)
            self.held = nil
            self.submit(held, context: context)
        }
        self.writeSheds()  // too late to send, but counted
        context.fireChannelInactive()
    }

    /// Refuses a prediction the full queue cannot take, before decoding it. Refusals of one read go out in one
    /// write with one metrics update when the read completes: at 10x overload most frames are refused, and
    /// every cycle they take is one the workers do not get.
    private func shed(_ requestID: UInt64) {
        self.queueFullAnswer.write(requestID: requestID, into: &self.sheds)
        self.shedCount += 1
    }

    private func writeSheds() {
        guard self.shedCount > 0 else { return }
        self.metrics.tcpRequestsShed(self.shedCount)
        self.shedCount = 0
        let frames = self.sheds
        self.sheds = ByteBufferAllocator().buffer(capacity: 0)
        self.write(frames, answersFrame: false)
    }

    /// Overload backpressure: a connection whose requests were just refused reads nothing for
    /// `limits.shedPause`. What it sends meanwhile waits in TCP's buffers, and is then taken (if the queue has
    /// room) or refused many frames per read, so that refusing costs few system calls and leaves the CPU to the
    /// workers. Every frame read is still answered; a connection that was not refused is never paused.
    private func pauseReadingAfterShedding(context: ChannelHandlerContext) {
        guard self.limits.shedPause > .zero, !self.pausedAfterShedding, !self.draining else { return }
        self.pausedAfterShedding = true
        try? context.channel.syncOptions?.setOption(.autoRead, value: false)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: TimeAmount(self.limits.shedPause)) {
            let handler = bound.value
            handler.pausedAfterShedding = false
            guard !handler.draining, let context = handler.context else { return }
            try? context.channel.syncOptions?.setOption(.autoRead, value: true)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.writeSheds()
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
    /// order, so an empty write completing means all before it have). The close is a lingering one: first a
    /// FIN, then whatever the client still sends is read and dropped until it closes (or `lingerTimeout`).
    /// Closing outright with unread requests in the socket sends a RST at once: answers still in the send
    /// buffer are discarded, and a client may act on the reset before reading those that arrived.
    private func closeIfDrained() {
        guard self.draining, self.activity.inFlight == 0, let context = self.context else { return }
        self.draining = false
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: done)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let channel = context.channel
        done.futureResult.whenComplete { _ in
            bound.value.lingering = true
            channel.close(mode: .output, promise: nil)
            try? channel.syncOptions?.setOption(.autoRead, value: true)
            channel.eventLoop.scheduleTask(in: Self.lingerTimeout) { channel.close(promise: nil) }
        }
    }

    /// Longest a drained connection waits for its client to close after the server's FIN.
    static let lingerTimeout = TimeAmount.seconds(2)

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
