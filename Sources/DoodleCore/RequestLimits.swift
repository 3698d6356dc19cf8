/// Explicit limits on one request's content. Every limit is configurable (`doodled --help`).
public struct RequestLimits: Sendable, Equatable {
    /// Most strokes in one drawing (real Quick, Draw! drawings reach 366).
    public var maxStrokes = 1024
    /// Most points in one drawing, all strokes together.
    public var maxPoints = 20_000
    /// Largest absolute coordinate accepted (raw canvas units).
    public var maxCoordinate = 1_000_000.0
    /// Most candidate classes in one request.
    public var maxCandidates = 345
    /// Most bytes of one image input (the encoded file, or the raw pixels), checked before it is decoded.
    public var maxImageBytes = 1 << 20
    /// Most pixels (width x height) of one image input, read from its header before anything is decoded: this
    /// bounds the decoder's memory (2 bytes a pixel) whatever the file's size (a decompression bomb is refused).
    public var maxImagePixels = 4_194_304
    /// Most bytes (UTF-8) of a capture label.
    public var maxCaptureLabelBytes = 256

    public init() {}
}
