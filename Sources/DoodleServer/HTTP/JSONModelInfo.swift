import DoodleCore
import DoodleEngine

/// The JSON answer to `GET /v1/model`: what is served, what it takes, and the request limits.
struct JSONModelInfo: Encodable {
    struct Input: Encodable {
        var channels: Int
        var height: Int
        var width: Int
    }

    struct Limits: Encodable {
        var maxStrokes: Int
        var maxPoints: Int
        var maxCandidates: Int
        var maxImageBytes: Int
        var maxImagePixels: Int

        enum CodingKeys: String, CodingKey {
            case maxStrokes = "max_strokes"
            case maxPoints = "max_points"
            case maxCandidates = "max_candidates"
            case maxImageBytes = "max_image_bytes"
            case maxImagePixels = "max_image_pixels"
        }
    }

    var name: String
    var version: String
    var labels: [String]
    var input: Input
    var quantization: String
    /// The request fields that carry a drawing.
    var inputs = ["drawing", "bitmap", "image"]
    var limits: Limits

    init(_ predictor: Predictor, limits: RequestLimits) {
        self.name = predictor.name
        self.version = predictor.version
        self.labels = predictor.labels
        let shape = predictor.engine.inputShape
        self.input = Input(channels: shape.channels, height: shape.height, width: shape.width)
        self.quantization = predictor.engine.metadata.quantization
        self.limits = Limits(maxStrokes: limits.maxStrokes, maxPoints: limits.maxPoints, maxCandidates: limits.maxCandidates,
                             maxImageBytes: limits.maxImageBytes, maxImagePixels: limits.maxImagePixels)
    }
}
