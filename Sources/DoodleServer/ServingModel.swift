import DoodleCore
import DoodleEngine
import DoodleWire

/// The model being served, the validator built from its labels, and its pre-encoded queue-full answer; swapped
/// as one on reload.
public struct ServingModel: Sendable {
    public let predictor: Predictor
    public let validator: RequestValidator
    /// The RESOURCE_EXHAUSTED answers to a request shed unread (queue full; too much work queued), labelled with
    /// this model, encoded once.
    public let queueFullAnswer: PredictFrameWriter
    public let queueWaitAnswer: PredictFrameWriter

    public init(predictor: Predictor, limits: RequestLimits, queueFull: ServiceError, queueWait: ServiceError) throws {
        self.predictor = predictor
        self.validator = RequestValidator(limits: limits, labels: predictor.labels,
                                          bitmapBytes: predictor.engine.inputBytes)
        self.queueFullAnswer = try PredictFrameWriter(
            answering: Doodle_V1_PredictResponse(requestID: 0, result: .failure(queueFull), predictor: predictor))
        self.queueWaitAnswer = try PredictFrameWriter(
            answering: Doodle_V1_PredictResponse(requestID: 0, result: .failure(queueWait), predictor: predictor))
    }
}

/// Shared, swappable reference to the serving model.
public final class ModelSlot: Sendable {
    private let model: Locked<ServingModel>

    public init(_ model: ServingModel) {
        self.model = Locked(model)
    }

    public var current: ServingModel { self.model.withLock { $0 } }

    public func replace(with model: ServingModel) {
        self.model.withLock { $0 = model }
    }
}
