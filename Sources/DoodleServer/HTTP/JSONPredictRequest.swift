import DoodleCore
import DoodleWire
import Foundation
import NIOCore

/// The body of `POST /v1/predict`: one of `drawing` (Quick, Draw!'s own form, `[[xs], [ys]]` or `[[xs], [ys],
/// [ts]]` per stroke, so a line of the dataset's ndjson is a valid body: its other fields are ignored), `bitmap`
/// (base64 of 784 bytes) or `image` (base64 of a PNG or JPEG file, or a `data:image/...;base64,` URL as a
/// canvas's `toDataURL()` gives it); and optionally `format` (`auto`, `raw`, `simplified`), `top_k`,
/// `candidates` (labels), `candidate_indices`, `deadline_ms`, `request_id`, `capture_label`.
struct JSONPredictRequest: Decodable {
    var drawing: [[[Double]]]?
    var format: String?
    var bitmap: String?
    var image: String?
    var topK: Int?
    var candidates: [String]?
    var candidateIndices: [Int]?
    var deadlineMs: Int?
    var requestID: UInt64?
    var captureLabel: String?

    enum CodingKeys: String, CodingKey {
        case drawing, format, bitmap, image, candidates
        case topK = "top_k"
        case candidateIndices = "candidate_indices"
        case deadlineMs = "deadline_ms"
        case requestID = "request_id"
        case captureLabel = "capture_label"
    }

    /// Parses a body, or says (INVALID_ARGUMENT) what in it is not what it should be.
    static func decode(_ body: ByteBuffer) throws(ServiceError) -> JSONPredictRequest {
        guard body.readableBytes > 0 else {
            throw .invalidArgument("the body is empty: send a JSON object with drawing, bitmap or image")
        }
        do {
            return try JSONDecoder().decode(JSONPredictRequest.self, from: Data(body.readableBytesView))
        } catch let error as DecodingError {
            throw .invalidArgument(Self.describe(error))
        } catch {
            throw .invalidArgument("the body is not valid JSON")
        }
    }

    /// The request in the protocol's form, for `PredictionService` (which validates everything else).
    func wire() throws(ServiceError) -> Doodle_V1_PredictRequest {
        var wire = Doodle_V1_PredictRequest()
        let inputs = [self.drawing != nil, self.bitmap != nil, self.image != nil].filter { $0 }.count
        guard inputs <= 1 else { throw .invalidArgument("set one of drawing, bitmap and image, not several") }
        guard inputs == 1 else { throw .invalidArgument("the request has no input: set drawing, bitmap or image") }
        if let drawing = self.drawing {
            for (i, stroke) in drawing.enumerated() where stroke.count != 2 && stroke.count != 3 {
                throw .invalidArgument("drawing[\(i)] has \(stroke.count) arrays; a stroke is [xs, ys] or [xs, ys, ts]")
            }
            let format: Doodle_V1_StrokeFormat
            switch self.format ?? "auto" {
            case "auto": format = .auto
            case "raw": format = .raw
            case "simplified": format = .simplified
            case let other: throw .invalidArgument("format \"\(other)\" is not one of auto, raw, simplified")
            }
            wire.strokes = Doodle_V1_Drawing(quickDraw: drawing, format: format)
        } else if let bitmap = self.bitmap {
            wire.bitmap = try Self.base64(bitmap, field: "bitmap")
        } else if let image = self.image {
            var text = Substring(image)
            if text.hasPrefix("data:"), let comma = text.firstIndex(of: ",") {
                guard text[..<comma].hasSuffix(";base64") else {
                    throw .invalidArgument("image: a data URL must be base64 (data:image/png;base64,...)")
                }
                text = text[text.index(after: comma)...]
            }
            wire.image = Doodle_V1_Image(encoded: try Self.base64(String(text), field: "image"))
        }
        if let topK = self.topK {
            guard let value = UInt32(exactly: topK) else { throw .invalidArgument("top_k \(topK) is not a count (0 or more)") }
            wire.topK = value
        }
        wire.candidateLabels = self.candidates ?? []
        for index in self.candidateIndices ?? [] {
            guard let value = UInt32(exactly: index) else {
                throw .invalidArgument("candidate index \(index) is out of range (the model's class indices start at 0)")
            }
            wire.candidateIndices.append(value)
        }
        if let deadline = self.deadlineMs {
            guard let value = UInt32(exactly: deadline) else { throw .invalidArgument("deadline_ms \(deadline) is not 0 or more milliseconds") }
            wire.deadlineMs = value
        }
        wire.requestID = self.requestID ?? 0
        wire.captureLabel = self.captureLabel ?? ""
        return wire
    }

    private static func base64(_ text: String, field: String) throws(ServiceError) -> Data {
        guard let data = Data(base64Encoded: text, options: .ignoreUnknownCharacters) else {
            throw .invalidArgument("\(field) is not base64")
        }
        return data
    }

    /// "drawing[0][1][3]: expected a number, found a string", and the like.
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            let text = keys.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }.joined()
            return text.hasPrefix(".") ? String(text.dropFirst()) : (text.isEmpty ? "the body" : text)
        }
        func expected(_ type: Any.Type) -> String {
            switch type {
            case is Double.Type, is Int.Type, is UInt64.Type: "a number"
            case is String.Type: "a string"
            case is [String].Type: "an array of strings"
            case is [Int].Type: "an array of integers"
            default: type == [[[Double]]].self || type == [[Double]].self || type == [Double].self ? "an array" : "\(type)"
            }
        }
        switch error {
        case .typeMismatch(let type, let context):
            if context.codingPath.isEmpty { return "the body must be a JSON object" }
            return "\(path(context.codingPath)): expected \(expected(type))"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)): expected \(expected(type)), found null"
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])) is missing"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty
                ? "the body is not valid JSON" : "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "the body is not the JSON expected"
        }
    }
}
