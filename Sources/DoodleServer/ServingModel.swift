import DoodleCore
import DoodleEngine

/// The model being served and the validator built from its labels; swapped as one on reload.
public struct ServingModel: Sendable {
    public let predictor: Predictor
    public let validator: RequestValidator

    public init(predictor: Predictor, limits: RequestLimits) {
        self.predictor = predictor
        self.validator = RequestValidator(limits: limits, labels: predictor.labels,
                                          bitmapBytes: predictor.engine.inputBytes)
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
