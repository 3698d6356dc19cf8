import Dispatch
import Foundation
import DoodleCore
import DoodleEngine
import DoodlePreprocessing
import SwiftProtobuf

extension Doodle_V1_StatusCode {
    public init(_ code: StatusCode) {
        self = Doodle_V1_StatusCode(rawValue: code.rawValue) ?? .internal
    }
}

extension RequestValidator {
    /// Turns a wire request into a validated `PredictionRequest`, or says why it cannot be served.
    /// - Parameter receivedAt: monotonic nanoseconds when the request was read (for its deadline).
    public func request(from wire: Doodle_V1_PredictRequest,
                        receivedAt: UInt64 = DispatchTime.now().uptimeNanoseconds) throws(ServiceError) -> PredictionRequest {
        let input: DoodleInput
        switch wire.input {
        case .bitmap(let data):
            try self.validateBitmap(data.count)
            input = .bitmap([UInt8](data))
        case .strokes(let drawing):
            let strokes = drawing.strokes.map { s in
                Stroke(x: s.x.map(Double.init), y: s.y.map(Double.init), hasTimes: !s.t.isEmpty)
            }
            try self.validateStrokes(strokes, timeCounts: drawing.strokes.map(\.t.count))
            for (i, stroke) in drawing.strokes.enumerated() where !stroke.t.isEmpty {
                try self.validateTimes(stroke.t, stroke: i)
            }
            let format: StrokeFormat = switch drawing.format {
            case .raw: .raw
            case .simplified: .simplified
            default: .auto
            }
            input = .strokes(strokes, format)
        case .image(let wireImage):
            let image = try CanvasImage(wire: wireImage)
            try self.validateImage(image)
            input = .image(image)
        case nil:
            throw .invalidArgument("the request has no input: set strokes, bitmap or image")
        }
        let candidates = try self.candidates(indices: wire.candidateIndices, labels: wire.candidateLabels)
        let topK = try self.topK(wire.topK, choices: candidates?.count ?? self.labels.count)
        return PredictionRequest(input: input, topK: topK, candidates: candidates,
                                 deadlineNanos: RequestValidator.deadline(ms: wire.deadlineMs, now: receivedAt),
                                 captureLabel: try self.captureLabel(wire.captureLabel))
    }
}

extension CanvasImage {
    /// The wire image as core input: an encoded file, or raw pixels with their size and format.
    public init(wire: Doodle_V1_Image) throws(ServiceError) {
        if !wire.encoded.isEmpty {
            guard wire.pixels.isEmpty, wire.width == 0, wire.height == 0, wire.pixelFormat == .unspecified else {
                throw .invalidArgument("image: set either encoded (a PNG or JPEG file) or pixels with width, height and pixel_format, not both")
            }
            self = .encoded([UInt8](wire.encoded))
            return
        }
        guard !wire.pixels.isEmpty else {
            throw .invalidArgument("image: set encoded (a PNG or JPEG file) or pixels with width, height and pixel_format")
        }
        let format: PixelFormat
        switch wire.pixelFormat {
        case .gray8: format = .grey8
        case .rgba8: format = .rgba8
        default: throw .invalidArgument("image: raw pixels need pixel_format (PIXEL_FORMAT_GRAY8 or PIXEL_FORMAT_RGBA8)")
        }
        self = .pixels([UInt8](wire.pixels), width: Int(wire.width), height: Int(wire.height), format: format)
    }
}

extension Doodle_V1_Image {
    /// An encoded PNG or JPEG file.
    public init(encoded bytes: some Sequence<UInt8>) {
        self.init()
        self.encoded = Data(bytes)
    }
}

extension Doodle_V1_PredictResponse {
    /// A response carrying predictions or an error status.
    public init(requestID: UInt64, result: Result<[ScoredClass], ServiceError>, predictor: Predictor) {
        self.init()
        self.requestID = requestID
        self.modelName = predictor.name
        self.modelVersion = predictor.version
        switch result {
        case .success(let classes):
            self.status = .with { $0.code = .ok }
            self.predictions = Doodle_V1_Prediction.list(classes, predictor: predictor)
        case .failure(let error):
            self.status = .with {
                $0.code = Doodle_V1_StatusCode(error.code)
                $0.message = error.message
            }
        }
    }

    /// An error response for a request that could not be read (request_id 0 unless known).
    public static func error(_ error: ServiceError, requestID: UInt64 = 0) -> Self {
        .with {
            $0.requestID = requestID
            $0.status = .with {
                $0.code = Doodle_V1_StatusCode(error.code)
                $0.message = error.message
            }
        }
    }
}

extension Doodle_V1_Prediction {
    /// `classes` on the wire, best first, each with its label from `predictor`.
    public static func list(_ classes: [ScoredClass], predictor: Predictor) -> [Doodle_V1_Prediction] {
        classes.map { c in
            Doodle_V1_Prediction.with {
                $0.classIndex = UInt32(c.index)
                $0.label = c.index < predictor.labels.count ? predictor.labels[c.index] : ""
                $0.score = c.score
            }
        }
    }
}

extension Doodle_V1_CaptureStatus {
    /// The status as the HTTP API, the metrics and `doodle eval --capture` name it: `captured`, `disabled`, `full`,
    /// `failed`, `unsupported_input` (nil when no capture was asked for).
    public var name: String? {
        switch self {
        case .captured: "captured"
        case .disabled: "disabled"
        case .full: "full"
        case .failed: "failed"
        case .unsupportedInput: "unsupported_input"
        default: nil
        }
    }

    /// Every status a capture can end with.
    public static let outcomes: [Doodle_V1_CaptureStatus] = [.captured, .disabled, .full, .failed, .unsupportedInput]
}

extension Doodle_V1_ModelInfoResponse {
    public init(requestID: UInt64, predictor: Predictor) {
        self.init()
        self.requestID = requestID
        self.modelName = predictor.name
        self.modelVersion = predictor.version
        self.labels = predictor.labels
        self.inputChannels = UInt32(predictor.engine.inputShape.channels)
        self.inputHeight = UInt32(predictor.engine.inputShape.height)
        self.inputWidth = UInt32(predictor.engine.inputShape.width)
        self.quantization = predictor.engine.metadata.quantization
        self.status = .with { $0.code = .ok }
    }
}
