import DoodleClient
import DoodleCore
import DoodleDataset
import DoodleWire
import Foundation
import SwiftProtobuf

/// Real drawings to send: bitmaps (Google's, from render_pairs) and strokes (simplified and raw), pre-encoded.
public struct LoadInputs: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case bitmaps, strokes, mix
    }

    public let requests: [Doodle_V1_PredictRequest]

    /// Loads inputs of `kind` from a Quick, Draw! data directory (shared/data/quickdraw); with `capture`, each
    /// drawing carries its word as its capture label (bitmaps are not captured).
    public init(kind: Kind, dataDirectory: String, topK: UInt32 = 5, capture: Bool = false) throws {
        func path(_ name: String) -> String { (dataDirectory as NSString).appendingPathComponent(name) }
        var bitmaps: [Doodle_V1_PredictRequest] = []
        var strokes: [Doodle_V1_PredictRequest] = []
        if kind != .strokes {
            bitmaps = try DrawingRecord.read(path("render_pairs.ndjson.gz")).compactMap { r in
                r.bitmap.map { b in .with { $0.bitmap = Data(b); $0.topK = topK } }
            }
        }
        if kind != .bitmaps {
            let simplified = try DrawingRecord.read(path("simplified.ndjson.gz"), limit: 1500)
            let raw = try DrawingRecord.read(path("raw.ndjson.gz"), limit: 500)
            strokes = (Array(simplified) + Array(raw)).map { r in
                .with {
                    $0.strokes = Doodle_V1_Drawing(quickDraw: r.drawing)
                    $0.topK = topK
                    if capture { $0.captureLabel = r.word ?? "" }
                }
            }
        }
        switch kind {
        case .bitmaps: self.requests = bitmaps
        case .strokes: self.requests = strokes
        case .mix:
            // Alternate, so any window of the run sees both.
            var out: [Doodle_V1_PredictRequest] = []
            for i in 0..<max(bitmaps.count, strokes.count) {
                if i < bitmaps.count { out.append(bitmaps[i]) }
                if i < strokes.count { out.append(strokes[i]) }
            }
            self.requests = out
        }
        guard !self.requests.isEmpty else { throw ClientError(message: "no inputs found in \(dataDirectory)") }
    }
}
