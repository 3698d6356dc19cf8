/// Turns any `DoodleInput` into the model's 784 bytes, exactly as training did: raw strokes are normalised,
/// simplified strokes rendered as they are, bitmaps copied, pictures traced back into raw strokes. Holds a
/// renderer and a tracer: one per thread.
public final class Preprocessor {
    private let renderer = DoodleRenderer()
    public let tracer = CanvasTracer()

    public init() {}

    /// Writes the 784 input bytes for `input` to `output`. Only a picture can fail (corrupt, or no drawing on it).
    public func prepare(_ input: DoodleInput, into output: UnsafeMutablePointer<UInt8>) throws(PreprocessingError) {
        switch input {
        case .bitmap(let bytes):
            bytes.withUnsafeBufferPointer { output.update(from: $0.baseAddress!, count: min($0.count, 784)) }
        case .strokes(let strokes, let format):
            self.renderer.render(Self.simplify(strokes, format: format), into: output)
        case .image(let image):
            self.renderer.render(StrokeNormalizer.normalize(try self.tracer.strokes(from: image)), into: output)
        }
    }

    /// Strokes in simplified form, normalising them unless they are (or are declared) simplified already.
    public static func simplify(_ strokes: [Stroke], format: StrokeFormat) -> [SimplifiedStroke] {
        switch format {
        case .simplified:
            return StrokeNormalizer.asSimplified(strokes.map { s in
                Stroke(x: s.x.map { min(255, max(0, $0.rounded(.toNearestOrEven))) },
                       y: s.y.map { min(255, max(0, $0.rounded(.toNearestOrEven))) })
            })
        case .raw:
            return StrokeNormalizer.normalize(strokes)
        case .auto:
            return StrokeNormalizer.looksSimplified(strokes)
                ? StrokeNormalizer.asSimplified(strokes) : StrokeNormalizer.normalize(strokes)
        }
    }
}
