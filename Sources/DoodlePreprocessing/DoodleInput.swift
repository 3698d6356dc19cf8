/// What the model is asked to classify.
public enum DoodleInput: Sendable, Equatable {
    /// Pen strokes, raw or simplified.
    case strokes([Stroke], StrokeFormat)
    /// A 28 x 28 bitmap, 784 bytes, 0 = background, 255 = ink.
    case bitmap([UInt8])
    /// A picture of a canvas, any size (within the server's limits): traced back into strokes.
    case image(CanvasImage)
}
