import SwiftProtobuf

extension Doodle_V1_Drawing {
    /// The wire form of a drawing in Quick, Draw!'s ndjson shape: `[[xs], [ys](, [ts])]` per stroke (times kept
    /// when present).
    public init(quickDraw drawing: [[[Double]]], format: Doodle_V1_StrokeFormat = .auto) {
        self.init()
        self.format = format
        self.strokes = drawing.map { s in
            Doodle_V1_Stroke.with {
                $0.x = s.count > 0 ? s[0].map { Float($0) } : []
                $0.y = s.count > 1 ? s[1].map { Float($0) } : []
                $0.t = s.count > 2 ? s[2].map { Float($0) } : []
            }
        }
    }
}
