import DoodleCore
import DoodleWire
import Dispatch
import NIOCore
import NIOExtras
import SwiftProtobuf

/// Answers one raw-TCP connection's requests (from `ClientFrameDecoder`): admits predictions through the
/// `PredictionService` and writes the `ServerMessage`s back as they complete (in any order; clients match them
/// by request_id), one flush per event-loop tick. Owns the connection's end: a drain, a half-close or a broken
/// framing answers everything read, then closes.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ClientRequest
    typealias OutboundOut = ByteBuffer

    private let service: PredictionService
    private var batcher: DynamicBatcher { self.service.batcher }
    private let limits: ConnectionLimits
    private let metrics: ServiceMetrics
    private let activity: ConnectionActivity
    private var flushPending = false
    /// Set by a drain: read nothing more, answer what was read, then close.
    private var draining = false
    private var context: ChannelHandlerContext?
    /// Refusals of the current read (overload), written together when the read completes.
    private var sheds: ByteBuffer
    private var shedCount = 0
    /// Not reading for `limits.shedPause` after refusing requests.
    private var pausedAfterShedding = false
    /// Drained and half-closed: what the client still sends is dropped unanswered until it closes.
    private var lingering = false {
        didSet { self.activity.acceptsFrames = !self.lingering && !self.inputClosed }
    }
    /// No more requests will be read (the client closed its side, or the stream broke the framing): answer every
    /// frame read, then close.
    private var inputClosed = false {
        didSet { self.activity.acceptsFrames = !self.lingering && !self.inputClosed }
    }
    /// The final close has been started.
    private var closing = false
    /// The one prediction of the current read so far, with nothing else in flight on this connection: answered
    /// when the read completes, on the event loop if the batcher is idle (`DynamicBatcher.runIfIdle`).
    private var held: PredictionService.Admitted?
    /// Who this connection is, to the batcher (`runIfIdle` runs a request inline only for the last sender).
    private var callerID: Int { Int(bitPattern: UInt(bitPattern: ObjectIdentifier(self))) }

    init(service: PredictionService, limits: ConnectionLimits, metrics: ServiceMetrics, activity: ConnectionActivity) {
        self.service = service
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
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The client half-closed ("no more requests"; the frame decoder has passed on every whole frame
            // before this): answer what was read, then close.
            self.inputClosed = true
            if let held = self.held {
                self.held = nil
                self.answerLoneRequest(held, context: context)
            }
            self.writeSheds()
            self.closeIfDrained()
            return
        }
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
        switch Self.unwrapInboundIn(data) {
        case .predict(let request, let readAt):
            self.predict(request, readAt: readAt, context: context)
        case .modelInfo(let requestID):
            self.send(.modelInfo(self.service.modelInfo(requestID: requestID, transport: .tcp)))
        case .refused(let error, let kind, let requestID):
            let refusal = self.service.refuse(error, requestID: requestID, transport: .tcp)
            switch kind {
            case .predict: self.send(.predict(refusal.response))
            case .modelInfo: self.send(.modelInfo(refusal.modelInfoResponse))
            }
        case .shed(let answers, let count):
            self.shed(answers, count: count)
        }
    }

    private func predict(_ wire: Doodle_V1_PredictRequest, readAt start: UInt64, context: ChannelHandlerContext) {
        guard self.activity.inFlight < self.limits.maxInFlightPerConnection else {
            let error = ServiceError(.resourceExhausted,
                "\(self.activity.inFlight) requests in flight on this connection (limit \(self.limits.maxInFlightPerConnection))")
            self.send(.predict(self.service.refuse(error, requestID: wire.requestID, transport: .tcp, receivedAt: start).response))
            return
        }
        let prediction: PredictionService.Admitted
        switch self.service.admit(wire, transport: .tcp, receivedAt: start) {
        case .answered(let refusal):
            self.send(.predict(refusal.response))
            return
        case .admitted(let admitted):
            prediction = admitted
        }
        self.activity.inFlight += 1
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

    /// Hands `prediction` to the batcher; its answer is encoded on the worker and written on the event loop.
    private func submit(_ prediction: PredictionService.Admitted, context: ChannelHandlerContext) {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        self.service.submit(prediction, caller: self.callerID) { outcome in
            // On a worker thread: encode here, so the event loop only writes.
            let frame = Self.answer(outcome)
            eventLoop.execute {
                bound.value.activity.inFlight -= 1
                bound.value.write(frame)
                bound.value.closeIfDrained()
            }
        }
    }

    /// Answers a request that came alone in its read: on this thread if the batcher is idle (no hand-off to a
    /// worker and back), else through the batcher like any other.
    private func answerLoneRequest(_ prediction: PredictionService.Admitted, context: ChannelHandlerContext) {
        guard let outcome = self.service.runIfIdle(prediction, caller: self.callerID) else {
            self.submit(prediction, context: context)
            return
        }
        self.activity.inFlight -= 1
        self.write(Self.answer(outcome))
        self.closeIfDrained()
    }

    private static func answer(_ outcome: PredictionOutcome) -> ByteBuffer {
        Self.encode(Doodle_V1_ServerMessage.with { $0.predict = outcome.response })
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

    /// Keeps the answers to predictions refused unread (the overloaded batcher cannot take them). Refusals of one
    /// read go out in one write with one metrics update when the read completes: at 10x overload most frames are
    /// refused, and every cycle they take is one the workers do not get.
    private func shed(_ answers: ByteBuffer, count: Int) {
        if self.shedCount == 0 {
            self.sheds = answers
        } else {
            var answers = answers
            self.sheds.writeBuffer(&answers)
        }
        self.shedCount += count
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
        // Say why, read nothing more, answer every whole frame already read, then close. The message is not an
        // answer to a frame (none was read whole), so it is not counted as one.
        self.metrics.connectionClosedByServer(.framingError)
        try? context.channel.syncOptions?.setOption(.autoRead, value: false)
        let notice = PredictionOutcome(requestID: 0, result: .failure(.invalidArgument("\(framing); closing the connection")),
                                       predictor: self.service.model.current.predictor)
        let message = Self.encode(.with { $0.predict = notice.response })
        self.write(message, answersFrame: false)
        self.inputClosed = true
        self.closeIfDrained()
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

    /// Closes once nothing is in flight, after the last response has left (writes complete in order, so an
    /// empty write completing means all before it have), when no more requests will come (`inputClosed`) or
    /// while draining.
    ///
    /// A drain's close is a lingering one: first a FIN, then whatever the client still sends is read and dropped
    /// until it closes (or `lingerTimeout`). Closing outright with unread requests in the socket sends a RST at
    /// once: answers still in the send buffer are discarded, and a client may act on the reset before reading
    /// those that arrived.
    private func closeIfDrained() {
        guard self.activity.inFlight == 0, self.held == nil, let context = self.context else { return }
        if self.inputClosed {
            guard !self.closing else { return }
            self.closing = true
            self.draining = false
            let channel = context.channel
            context.writeAndFlush(Self.wrapOutboundOut(channel.allocator.buffer(capacity: 0))).whenComplete { _ in
                channel.close(promise: nil)
            }
            return
        }
        guard self.draining else { return }
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
