import DoodlePreprocessing
import Foundation

/// One line of a Quick, Draw! ndjson file (simplified or raw): `word`, `key_id` and `drawing`
/// (`[[xs], [ys](, [ts])]` per stroke). Decoded with `JSONDecoder`, whose number parsing is exact.
public struct DrawingRecord: Decodable, Sendable {
    public var word: String?
    public var keyID: String?
    public var drawing: [[[Double]]]
    /// Google's bitmap of the drawing, in render_pairs.ndjson.
    public var bitmap: [UInt8]?
    /// A picture of the drawing on a canvas (a file path, relative to the ndjson file), in the manifests that
    /// bench/image makes.
    public var image: String?

    enum CodingKeys: String, CodingKey {
        case word
        case keyID = "key_id"
        case drawing
        case bitmap
        case image
    }

    /// The strokes (a stroke with a third, non-empty array has times).
    public var strokes: [Stroke] {
        self.drawing.map { s in
            Stroke(x: s.count > 0 ? s[0] : [], y: s.count > 1 ? s[1] : [], hasTimes: s.count > 2 && !s[2].isEmpty)
        }
    }

    /// Time-array lengths per stroke (0 where absent), for validation.
    public var timeCounts: [Int] { self.drawing.map { $0.count > 2 ? $0[2].count : 0 } }

    /// Every record of an ndjson file, gzip-compressed or not, or its first `limit` records.
    public static func read(_ path: String, limit: Int? = nil) throws -> [DrawingRecord] {
        let decoder = JSONDecoder()
        return try GzipLineReader.lines(of: path, limit: limit).map { try decoder.decode(DrawingRecord.self, from: Data($0.utf8)) }
    }
}
