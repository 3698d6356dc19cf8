import DoodleCapture
import DoodlePreprocessing
import DoodleWire
import Foundation
import SwiftProtobuf

/// Writes a capture store's drawings as Quick, Draw! ndjson, one line per capture: `word` (the capture label),
/// `key_id` (the capture id), `timestamp` (UTC, as Google's files write it), `recognized` (whether the model's
/// top guess was the label) and `drawing`, plus `model` (the model that answered). Strokes are written as the
/// client sent them (`[[xs], [ys]]`, or `[[xs], [ys], [ts]]` with times); a captured picture is traced back into
/// strokes the way the server read it, and written simplified (0..255). `python -m training.prepare --source`
/// reads the file like any of Google's.
///
/// Reads without locking the store: a stopped daemon's, or a running one's (every capture acknowledged so far).
public struct CaptureExport {
    public let storeDirectory: String

    public init(storeDirectory: String) {
        self.storeDirectory = storeDirectory
    }

    /// What an export wrote.
    public struct Summary: Sendable, Equatable {
        public var drawings = 0
        /// Captured pictures in which no drawing could be found again (not written).
        public var skippedPictures = 0
        public var store = CaptureLogReader.Summary()
    }

    /// Writes every capture as one ndjson line to `output`.
    public func write(to output: URL) throws -> Summary {
        guard FileManager.default.fileExists(atPath: self.storeDirectory) else {
            throw EvaluationError("no capture store at \(self.storeDirectory)")
        }
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)  // FileHandle below reports failure
        let handle = try FileHandle(forWritingTo: output)
        defer { try? handle.close() }
        var summary = Summary()
        let tracer = CanvasTracer()
        let formatter = Self.timestampFormatter()
        var buffer = Data()
        summary.store = try CaptureLogReader(directory: self.storeDirectory).forEachRecord { payload in
            let record = try Doodle_Capture_V1_CapturedDrawing(serializedBytes: payload)
            guard let line = Self.line(record, tracer: tracer, formatter: formatter) else {
                summary.skippedPictures += 1
                return
            }
            buffer.append(contentsOf: line.utf8)
            buffer.append(0x0A)
            summary.drawings += 1
            if buffer.count > 1 << 20 {
                try handle.write(contentsOf: buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        try handle.write(contentsOf: buffer)
        try handle.synchronize()
        return summary
    }

    /// One capture as a line of Quick, Draw! ndjson (nil for a picture with no drawing found on it).
    static func line(_ record: Doodle_Capture_V1_CapturedDrawing, tracer: CanvasTracer, formatter: DateFormatter) -> String? {
        var drawing = "["
        switch record.input {
        case .strokes(let strokes):
            for (i, stroke) in strokes.strokes.enumerated() {
                if i > 0 { drawing += "," }
                drawing += "[" + Self.numbers(stroke.x) + "," + Self.numbers(stroke.y)
                if !stroke.t.isEmpty { drawing += "," + Self.numbers(stroke.t) }
                drawing += "]"
            }
        case .image(let image):
            guard let canvas = try? CanvasImage(wire: image), let traced = try? tracer.strokes(from: canvas) else { return nil }
            for (i, stroke) in StrokeNormalizer.normalize(traced).enumerated() {
                if i > 0 { drawing += "," }
                drawing += "[[" + stroke.x.map(String.init).joined(separator: ",") + "],["
                    + stroke.y.map(String.init).joined(separator: ",") + "]]"
            }
        case nil:
            return nil
        }
        drawing += "]"
        let recognized = record.guesses.first?.label == record.label
        let fields: [(String, String)] = [
            ("word", Self.quoted(record.label)),
            ("key_id", Self.quoted(record.id)),
            ("timestamp", Self.quoted(formatter.string(from: Date(timeIntervalSince1970: Double(record.timestampMs) / 1000)) + " UTC")),
            ("recognized", recognized ? "true" : "false"),
            ("model", Self.quoted("\(record.modelName) v\(record.modelVersion)")),
            ("drawing", drawing),
        ]
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }

    /// `[v,...]`, integers without a fraction, others as the shortest text that reads back as the same Float.
    static func numbers(_ values: [Float]) -> String {
        "[" + values.map { v in
            v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : "\(v)"
        }.joined(separator: ",") + "]"
    }

    /// Formats times "2017-03-28 16:00:32.595"-style (add " UTC"), as Google's ndjson files write them.
    static func timestampFormatter() -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS"
        return formatter
    }

    /// A JSON string.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
