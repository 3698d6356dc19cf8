import Dispatch
import DoodleCore
import DoodleWire
import NIOCore
import SwiftProtobuf

/// Splits a raw-TCP connection's bytes into frames (`FrameDecoder`) and turns each into a `ClientRequest`: checks
/// the flags, decodes the `ClientMessage`, and names every frame it cannot use with the error to answer. Counts
/// every frame read; drops, uncounted, what arrives once the connection takes no more frames
/// (`ConnectionActivity.acceptsFrames`).
///
/// While the batcher is overloaded it refuses predictions unread, a run of frames at a time: each refused frame
/// costs a scan for its request_id, the batcher's check, and a copy of a pre-encoded answer, and a run's answers go
/// on as one `ClientRequest.shed`. At ten times capacity nine frames in ten are refused, on the same cores the
/// workers need, so this is the cost that decides how much of its capacity an overloaded server still delivers.
final class ClientFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ClientRequest

    private let framing: FrameDecoder
    private let service: PredictionService
    private let metrics: ServiceMetrics
    private let activity: ConnectionActivity

    init(maxFrameBytes: Int, service: PredictionService, metrics: ServiceMetrics, activity: ConnectionActivity) {
        self.framing = FrameDecoder(maxFrameBytes: maxFrameBytes)
        self.service = service
        self.metrics = metrics
        self.activity = activity
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        // Peeking only when overloaded: every other frame pays one uncontended lock, not a scan of its bytes.
        if self.activity.acceptsFrames, self.service.batcher.isOverloaded, let refused = self.shedRun(&buffer) {
            context.fireChannelRead(Self.wrapInboundOut(refused))
            return .continue
        }
        guard let framed = try self.framing.nextFramed(&buffer) else { return .needMoreData }
        self.pass(framed, context: context)
        return .continue
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while let framed = try self.framing.nextFramed(&buffer) {
            self.pass(framed, context: context)
        }
        try FrameDecoder.endOfStream(&buffer)
        return .needMoreData
    }

    /// Counts a whole frame (header included) and passes on what it asks for.
    private func pass(_ framed: ByteBuffer, context: ChannelHandlerContext) {
        guard self.activity.acceptsFrames else { return }
        self.metrics.tcpFramesRead(1)
        self.activity.bytesFramed += framed.readableBytes
        self.activity.lastFrameAt = .now()
        context.fireChannelRead(Self.wrapInboundOut(self.request(in: InboundFrame(framed: framed))))
    }

    /// Refuses the predictions at the head of `buffer` while the batcher refuses them, consuming their frames:
    /// their answers, or nil when the first frame is not a well-formed prediction the batcher refuses (it then
    /// takes the normal path: decoded, admitted, or refused in kind).
    private func shedRun(_ buffer: inout ByteBuffer) -> ClientRequest? {
        let batcher = self.service.batcher
        var serving: ServingModel?
        var answers = ByteBuffer()
        var count = 0
        let consumed = buffer.withUnsafeReadableBytes { bytes -> Int in
            var offset = 0
            while let frame = self.framing.wholeFrame(in: UnsafeRawBufferPointer(rebasing: bytes[offset...])),
                  frame.flags == 0,
                  let requestID = RequestPeek.predictRequestID(bytes: frame.payload),
                  let refusal = batcher.rejectionIfOverloaded() {
                if serving == nil {  // read once per run, not per refusal; room for a run of 64 answers
                    serving = self.service.model.current
                    answers.reserveCapacity(64 * serving!.queueWaitAnswer.maxFrameBytes)
                }
                let answer = refusal == batcher.queueFullError ? serving!.queueFullAnswer : serving!.queueWaitAnswer
                answer.write(requestID: requestID, into: &answers)
                count += 1
                offset += frame.framedBytes
            }
            return offset
        }
        guard count > 0 else { return nil }
        buffer.moveReaderIndex(forwardBy: consumed)
        self.metrics.tcpFramesRead(count)
        self.activity.bytesFramed += consumed
        self.activity.lastFrameAt = .now()
        return .shed(answers: answers, count: count)
    }

    /// What the frame asks for, or why it cannot be served.
    func request(in frame: InboundFrame) -> ClientRequest {
        if frame.flags & 1 != 0 {
            return Self.refused("compressed messages are not supported (flags bit 0 set)", frame.payload)
        }
        if frame.flags != 0 {
            return Self.refused("unknown frame flags 0x\(String(frame.flags, radix: 16))", frame.payload)
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
