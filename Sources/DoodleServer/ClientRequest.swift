import Dispatch
import DoodleCore
import DoodleWire
import NIOCore

/// One raw-TCP frame, decoded as far as the server needs to act on it (`ClientFrameDecoder` makes these,
/// `ConnectionHandler` answers them).
enum ClientRequest {
    /// A prediction, read (not yet validated) at `readAt` (monotonic nanoseconds).
    case predict(Doodle_V1_PredictRequest, readAt: UInt64)
    case modelInfo(requestID: UInt64)
    /// Refused before it was decoded (flags, not a ClientMessage, empty): answered with `error`, in kind and
    /// under its request_id when the payload let them be read.
    case refused(ServiceError, kind: RequestPeek.Kind, requestID: UInt64)
    /// Predictions refused unread because the batcher is overloaded (its queue is full, or holds more than
    /// max-queue-wait of work; already counted as rejections by the batcher): `count` frames, whose answers are
    /// `answers`, ready to write.
    case shed(answers: ByteBuffer, count: Int)
}
