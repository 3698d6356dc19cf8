import NIOCore

/// Why doodled closed a raw-TCP connection on its own (a label of `doodled_connections_closed_total`).
public enum ConnectionCloseReason: String, Sendable, CaseIterable {
    /// More than `maxConnections` were open.
    case tooManyConnections = "too_many_connections"
    /// Nothing in flight and no frame for `idleTimeout`.
    case idle
    /// A frame was not completed within `frameTimeout` (a slow or stalled sender).
    case frameTimeout = "frame_timeout"
    /// More than `maxWriteBufferBytes` of answers waited for a client that does not read.
    case slowReader = "slow_reader"
    /// The byte stream broke the framing (a length over the limit).
    case framingError = "framing_error"
}

/// What the guard and the connection handler share about one connection (both run on its event loop).
final class ConnectionActivity {
    /// Bytes the client sent, and bytes of it that made whole frames.
    var bytesRead = 0
    var bytesFramed = 0
    /// Requests read and not yet answered.
    var inFlight = 0
    /// When the connection last read a whole frame (or opened), and when the frame now arriving began.
    var lastFrameAt: NIODeadline = .now()
    var partialFrameSince: NIODeadline?
    /// False once the connection takes no more frames (drained and lingering, or its input ended): what still
    /// arrives is dropped unread and uncounted.
    var acceptsFrames = true
}

/// First handler of a raw-TCP pipeline: sees the bytes before framing and closes connections that are idle too
/// long, that take too long to send a frame (slowloris), or whose unread answers pile up (a client that stops
/// reading). Checks once a second.
final class ConnectionGuard: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let activity: ConnectionActivity
    private let limits: ConnectionLimits
    private let metrics: ServiceMetrics
    private var timer: RepeatedTask?

    init(activity: ConnectionActivity, limits: ConnectionLimits, metrics: ServiceMetrics) {
        self.activity = activity
        self.limits = limits
        self.metrics = metrics
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.timer = context.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            let (guardHandler, context) = bound.value
            guardHandler.check(context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.activity.bytesRead += Self.unwrapInboundIn(data).readableBytes
        context.fireChannelRead(data)  // the frame decoder runs (and counts whole frames) before this returns
        if self.activity.bytesRead > self.activity.bytesFramed {
            if self.activity.partialFrameSince == nil { self.activity.partialFrameSince = .now() }
        } else {
            self.activity.partialFrameSince = nil
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Unwritable = more than maxWriteBufferBytes of answers wait in our buffer (the high water mark).
        if !context.channel.isWritable { self.close(context, .slowReader) }
        context.fireChannelWritabilityChanged()
    }

    private func check(context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        if let since = self.activity.partialFrameSince, now - since > TimeAmount(self.limits.frameTimeout) {
            self.close(context, .frameTimeout)
        } else if self.activity.inFlight == 0, self.activity.partialFrameSince == nil,
                  now - self.activity.lastFrameAt > TimeAmount(self.limits.idleTimeout) {
            self.close(context, .idle)
        }
    }

    private func close(_ context: ChannelHandlerContext, _ reason: ConnectionCloseReason) {
        guard context.channel.isActive else { return }
        self.metrics.connectionClosedByServer(reason)
        context.close(promise: nil)
    }
}
