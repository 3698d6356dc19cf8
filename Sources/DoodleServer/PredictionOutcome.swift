import DoodleCore
import DoodleWire
import SwiftProtobuf

/// How a prediction request ended: its classes or the error, and the model that validated (and ran) it.
public struct PredictionOutcome: Sendable {
    public let requestID: UInt64
    public let result: Result<[ScoredClass], ServiceError>
    public let predictor: Predictor
    /// What became of the request's capture label.
    public var capture: CaptureOutcome

    public init(requestID: UInt64, result: Result<[ScoredClass], ServiceError>, predictor: Predictor,
                capture: CaptureOutcome = .none) {
        self.requestID = requestID
        self.result = result
        self.predictor = predictor
        self.capture = capture
    }

    /// The answer on the wire, labelled with the model.
    public var response: Doodle_V1_PredictResponse {
        var response = Doodle_V1_PredictResponse(requestID: self.requestID, result: self.result, predictor: self.predictor)
        response.capture = self.capture.status
        response.captureID = self.capture.id
        return response
    }

    /// A refusal answered as a model-info response (for a model-info request refused before it was decoded).
    public var modelInfoResponse: Doodle_V1_ModelInfoResponse {
        let response = self.response
        return .with {
            $0.requestID = response.requestID
            $0.modelName = response.modelName
            $0.modelVersion = response.modelVersion
            $0.status = response.status
        }
    }
}
