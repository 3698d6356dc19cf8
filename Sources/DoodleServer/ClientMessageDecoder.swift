import Dispatch
import DoodleCore
import DoodleWire
import NIOCore
import SwiftProtobuf

/// Turns whole frames (from `FrameDecoder`) into `ClientRequest`s: checks the flags, sheds predictions unread
/// while the batcher is overloaded (so that refusing costs next to nothing), decodes the `ClientMessage`, and names
/// every frame it cannot use with the error to answer. Counts every frame read; drops, uncounted, what arrives
/// once the connection takes no more frames (`ConnectionActivity.acceptsFrames`).
final class ClientMessageDecoder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ClientRequest

    private let batcher: DynamicBatcher
    private let metrics: ServiceMetrics
    private let activity: ConnectionActivity

    init(batcher: DynamicBatcher, metrics: ServiceMetrics, activity: ConnectionActivity) {
        self.batcher = batcher
        self.metrics = metrics
        self.activity = activity
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard self.activity.acceptsFrames else { return }
        let frame = InboundFrame(framed: Self.unwrapInboundIn(data))
        self.metrics.tcpFrameRead()
        self.activity.bytesFramed += FrameDecoder.headerBytes + frame.payload.readableBytes
        self.activity.lastFrameAt = .now()
        context.fireChannelRead(Self.wrapInboundOut(self.decode(frame)))
    }

    /// What the frame asks for, or why it cannot be served.
    func decode(_ frame: InboundFrame) -> ClientRequest {
        if frame.flags & 1 != 0 {
            return Self.refused("compressed messages are not supported (flags bit 0 set)", frame.payload)
        }
        if frame.flags != 0 {
            return Self.refused("unknown frame flags 0x\(String(frame.flags, radix: 16))", frame.payload)
        }
        // Peeking only when overloaded: every other frame pays one uncontended lock, not a scan of its bytes.
        if self.batcher.isOverloaded, let requestID = RequestPeek.predictRequestID(frame.payload),
           let refusal = self.batcher.rejectionIfOverloaded() {
            return .shed(requestID: requestID, queueFull: refusal == self.batcher.queueFullError)
        }
        let message: Doodle_V1_ClientMessage
        do {
            message = try Doodle_V1_ClientMessage(serializedBytes: Array(frame.payload.readableBytesView))
        } catch {
            return Self.refused("the frame is not a doodle.v1.ClientMessage: \(error)", frame.payload)
        }
        switch message.message {
        case .predict(let request): return .predict(request, readAt: DispatchTime.now().uptimeNanoseconds)
        case .modelInfo(let request): return .modelInfo(requestID: request.requestID)
        case nil: return .refused(.invalidArgument("the ClientMessage is empty: set predict or model_info"),
                                  kind: .predict, requestID: 0)
        }
    }

    /// A refusal in kind and under the request_id the payload holds, when they can be read.
    private static func refused(_ message: String, _ payload: ByteBuffer) -> ClientRequest {
        let request = RequestPeek.request(payload) ?? (kind: .predict, requestID: 0)
        return .refused(.invalidArgument(message), kind: request.kind, requestID: request.requestID)
    }
}
