import DoodlePreprocessing

/// A validated prediction request (see `RequestValidator`).
public struct PredictionRequest: Sendable, Equatable {
    public var input: DoodleInput
    /// Classes to return, best first (1...number of classes or candidates).
    public var topK: Int
    /// Class indices to restrict scoring to, or nil for all classes.
    public var candidates: [Int]?
    /// Monotonic time (`DispatchTime.uptimeNanoseconds`) after which the request is answered DEADLINE_EXCEEDED.
    public var deadlineNanos: UInt64?
    /// What the player was asked to draw, when the client asks for the drawing to be captured for retraining
    /// (nil: not captured).
    public var captureLabel: String?

    public init(input: DoodleInput, topK: Int = 5, candidates: [Int]? = nil, deadlineNanos: UInt64? = nil,
                captureLabel: String? = nil) {
        self.input = input
        self.topK = topK
        self.candidates = candidates
        self.deadlineNanos = deadlineNanos
        self.captureLabel = captureLabel
    }
}

/// One class in an answer.
public struct ScoredClass: Sendable, Equatable {
    public var index: Int
    /// Softmax probability (renormalised over the candidates, if any).
    public var score: Float

    public init(index: Int, score: Float) {
        self.index = index
        self.score = score
    }
}
