import CDoodleImage

/// Turns a picture of a canvas back into pen strokes, so that it goes on through the same normalisation and
/// bit-exact rendering as strokes sent as such (train/serve parity whatever the canvas size, pen width, colours
/// or placement): the image is decoded, the ink told from the background, cropped, brought to a grid on which
/// the pen is a few pixels wide, thinned to its skeleton and traced into polylines (`CDoodleImage`).
///
/// Holds decoding and tracing scratch that grows to the largest picture seen: make one per thread.
public final class CanvasTracer {
    /// What the last successful trace found (for benches, tests and logs).
    public struct Findings: Sendable, Equatable {
        /// The ink's bounding box on the canvas, inclusive.
        public var minX, minY, maxX, maxY: Int
        /// The pen width the drawing was made with (estimated, canvas pixels).
        public var penWidth: Double
        public var inkMode: InkMode
        /// Canvas pixels to grid pixels.
        public var scale: Double
        public var gridWidth, gridHeight: Int
    }

    /// How the ink was told from the background.
    public enum InkMode: Sendable, Equatable {
        /// Opaque on transparent: ink is alpha.
        case transparency
        /// Darker than the background (ink on paper).
        case dark
        /// Lighter than the background (chalk on a board).
        case light
    }

    /// Most separate strokes a picture may turn into (noise rather than a drawing beyond it).
    public static let maxStrokes = 1024
    /// How wide the pen is made on the working grid, in pixels.
    public static let gridPen: Float = 3

    private let canvas: OpaquePointer
    private var greyAlpha: [UInt8] = []
    /// The last trace's ink map (owned by `canvas`), its size and its strongest value.
    private var ink: (map: UnsafePointer<UInt8>, width: Int, height: Int, peak: Int)?
    public private(set) var findings: Findings?

    public init() {
        guard let canvas = doodle_canvas_create() else { fatalError("CanvasTracer: out of memory") }
        self.canvas = canvas
    }

    deinit {
        doodle_canvas_destroy(self.canvas)
    }

    /// Decodes `image` to grey + alpha and returns its width and height (the pixels stay in this tracer).
    public func decode(_ image: CanvasImage) throws(PreprocessingError) -> (width: Int, height: Int) {
        switch image {
        case .encoded(let bytes):
            let header = try ImageDecoder.probe(bytes)
            try ImageDecoder.decode(bytes, header: header, into: &self.greyAlpha)
            return (header.width, header.height)
        case .pixels(let bytes, let width, let height, let format):
            guard width > 0, height > 0 else {
                throw PreprocessingError("the image has no pixels (\(width) x \(height))")
            }
            guard bytes.count == width * height * format.channels else {
                throw PreprocessingError("\(bytes.count) bytes of pixels for \(width) x \(height) x \(format.channels)")
            }
            ImageDecoder.greyAlpha(bytes, count: width * height, format: format, into: &self.greyAlpha)
            return (width, height)
        }
    }

    /// The drawing on `image` as strokes in grid pixels (y down): raw strokes for `StrokeNormalizer.normalize`.
    public func strokes(from image: CanvasImage) throws(PreprocessingError) -> [Stroke] {
        self.findings = nil
        self.ink = nil
        let (width, height) = try self.decode(image)
        var trace = doodle_canvas_trace()
        let status = self.greyAlpha.withUnsafeBufferPointer { pixels in
            doodle_canvas_find_strokes(self.canvas, pixels.baseAddress, Int32(width), Int32(height), Self.gridPen, &trace)
        }
        switch status {
        case 0: break
        case 1: throw PreprocessingError("the image has no drawing on it: it is one colour, or its ink is too faint to tell from the background")
        default: fatalError("CanvasTracer: out of memory")
        }
        self.ink = (trace.ink, width, height, Int(trace.peak))
        self.findings = Findings(
            minX: Int(trace.min_x), minY: Int(trace.min_y), maxX: Int(trace.max_x), maxY: Int(trace.max_y),
            penWidth: Double(trace.pen_width),
            inkMode: trace.ink_mode == 0 ? .transparency : trace.ink_mode == 1 ? .dark : .light,
            scale: Double(trace.scale), gridWidth: Int(trace.grid_width), gridHeight: Int(trace.grid_height))
        let count = Int(trace.stroke_count)
        guard count <= Self.maxStrokes else {
            throw PreprocessingError("the image's ink falls into \(count) separate marks (the limit is \(Self.maxStrokes)): it looks like noise, not a drawing")
        }
        var strokes: [Stroke] = []
        strokes.reserveCapacity(count)
        var offset = 0
        for s in 0..<count {
            let n = Int(trace.lengths[s])
            var xs = [Double](repeating: 0, count: n)
            var ys = [Double](repeating: 0, count: n)
            for k in 0..<n {
                xs[k] = Double(trace.xs[offset + k])
                ys[k] = Double(trace.ys[offset + k])
            }
            offset += n
            strokes.append(Stroke(x: xs, y: ys))
        }
        return strokes
    }

    /// Calls `body` with the ink map of the last trace that found a drawing (canvas size, row-major, 0 =
    /// background, up to `peak`), for benches that compare other uses of it; nil when there is none.
    public func withInk<R>(_ body: (_ map: UnsafeBufferPointer<UInt8>, _ width: Int, _ height: Int, _ peak: Int) -> R) -> R? {
        guard let ink = self.ink else { return nil }
        return body(UnsafeBufferPointer(start: ink.map, count: ink.width * ink.height), ink.width, ink.height, ink.peak)
    }
}
