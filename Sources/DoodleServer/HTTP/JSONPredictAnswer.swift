import DoodleCore

/// The JSON answer to `POST /v1/predict`: `{"predictions": [{"label", "index", "score"}], "model": {"name",
/// "version"}}` (with `"capture"` and `"capture_id"` when the request had a `capture_label`: `captured`,
/// `disabled`, `full`, `failed` or `unsupported_input`), or `{"error": {"code", "message"}, "model": ...}` (the
/// model that refused it).
struct JSONPredictAnswer: Encodable {
    struct Prediction: Encodable {
        var label: String
        var index: Int
        var score: Float
    }

    struct Model: Encodable {
        var name: String
        var version: String
    }

    struct Failure: Encodable {
        var code: String
        var message: String
    }

    var predictions: [Prediction]?
    var error: Failure?
    var model: Model
    var capture: String?
    var captureID: String?

    enum CodingKeys: String, CodingKey {
        case predictions, error, model, capture
        case captureID = "capture_id"
    }

    init(classes: [ScoredClass], predictor: Predictor, capture: CaptureOutcome = .none) {
        self.predictions = classes.map { c in
            Prediction(label: c.index < predictor.labels.count ? predictor.labels[c.index] : "", index: c.index, score: c.score)
        }
        self.model = Model(name: predictor.name, version: predictor.version)
        self.capture = capture.name
        self.captureID = capture.id.isEmpty ? nil : capture.id
    }

    init(error: ServiceError, predictor: Predictor) {
        self.error = Failure(code: "\(error.code)", message: error.message)
        self.model = Model(name: predictor.name, version: predictor.version)
    }
}
