import DoodleCore

/// The JSON answer to `POST /v1/predict`: `{"predictions": [{"label", "index", "score"}], "model": {"name",
/// "version"}}`, or `{"error": {"code", "message"}, "model": ...}` (the model that refused it).
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

    init(classes: [ScoredClass], predictor: Predictor) {
        self.predictions = classes.map { c in
            Prediction(label: c.index < predictor.labels.count ? predictor.labels[c.index] : "", index: c.index, score: c.score)
        }
        self.model = Model(name: predictor.name, version: predictor.version)
    }

    init(error: ServiceError, predictor: Predictor) {
        self.error = Failure(code: "\(error.code)", message: error.message)
        self.model = Model(name: predictor.name, version: predictor.version)
    }
}
