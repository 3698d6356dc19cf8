/// One pen stroke as received: coordinates in any range, optionally with times.
public struct Stroke: Sendable, Equatable {
    public var x: [Double]
    public var y: [Double]
    /// Whether the stroke came with per-point times (a sign of raw input).
    public var hasTimes: Bool

    public init(x: [Double], y: [Double], hasTimes: Bool = false) {
        self.x = x
        self.y = y
        self.hasTimes = hasTimes
    }
}

/// How a drawing's coordinates are to be read.
public enum StrokeFormat: Sendable {
    /// Decide from the data (`StrokeNormalizer.looksSimplified`).
    case auto
    /// Canvas coordinates, any range: normalise first.
    case raw
    /// Already in Google's simplified form (integers 0...255): render as is.
    case simplified
}

/// A stroke in simplified form: integer coordinates in 0...255.
public struct SimplifiedStroke: Sendable, Equatable {
    public var x: [Int32]
    public var y: [Int32]

    public init(x: [Int32], y: [Int32]) {
        self.x = x
        self.y = y
    }
}
