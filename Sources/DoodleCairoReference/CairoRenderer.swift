import CCairo
import DoodlePreprocessing

/// Renders simplified strokes to the dataset's 28 x 28 bitmap with libcairo itself, the way Google made
/// `numpy_bitmap` (shared/reference/quickdraw-format.md; mirrored by `training/render.py`).
///
/// This is the reference that `DoodleRenderer` (the serving path, which does not call cairo) is tested against
/// byte for byte. Holds a cairo surface: make one per thread.
public final class CairoRenderer {
    public static let side = DoodleRenderer.side
    static let lineWidth = 16.0
    static let scale = 28.0 / (256.0 + 3 * 16.0)

    private let surface: OpaquePointer
    private let context: OpaquePointer

    public init() {
        self.surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, Int32(Self.side), Int32(Self.side))
        self.context = cairo_create(self.surface)
        cairo_set_antialias(self.context, CAIRO_ANTIALIAS_BEST)
        cairo_set_line_cap(self.context, CAIRO_LINE_CAP_ROUND)
        cairo_set_line_join(self.context, CAIRO_LINE_JOIN_ROUND)
        cairo_set_line_width(self.context, Self.lineWidth)
        cairo_scale(self.context, Self.scale, Self.scale)
        cairo_translate(self.context, Self.lineWidth * 1.5, Self.lineWidth * 1.5)
    }

    deinit {
        cairo_destroy(self.context)
        cairo_surface_destroy(self.surface)
    }

    /// Draws `strokes` (0...255 space) centred, and writes 784 bytes (0 = background, 255 = ink) to `output`.
    public func render(_ strokes: [SimplifiedStroke], into output: UnsafeMutablePointer<UInt8>) {
        let cr = self.context
        cairo_set_source_rgb(cr, 0, 0, 0)
        cairo_paint(cr)
        var maxX: Int32 = 0
        var maxY: Int32 = 0
        var any = false
        for s in strokes where !s.x.isEmpty {
            maxX = any ? max(maxX, s.x.max()!) : s.x.max()!
            maxY = any ? max(maxY, s.y.max()!) : s.y.max()!
            any = true
        }
        let offX = (256.0 - Double(maxX)) / 2
        let offY = (256.0 - Double(maxY)) / 2
        cairo_set_source_rgb(cr, 1, 1, 1)
        for s in strokes where !s.x.isEmpty {
            cairo_move_to(cr, Double(s.x[0]) + offX, Double(s.y[0]) + offY)
            for i in 0..<s.x.count {
                cairo_line_to(cr, Double(s.x[i]) + offX, Double(s.y[i]) + offY)
            }
            cairo_stroke(cr)
        }
        cairo_surface_flush(self.surface)
        let data = cairo_image_surface_get_data(self.surface)!
        let stride = Int(cairo_image_surface_get_stride(self.surface))
        // ARGB32 is stored little-endian (B, G, R, A); the three colour channels are equal.
        for row in 0..<Self.side {
            for col in 0..<Self.side {
                output[row * Self.side + col] = data[row * stride + col * 4]
            }
        }
    }

    /// Convenience: the 784 bytes as an array.
    public func render(_ strokes: [SimplifiedStroke]) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: Self.side * Self.side) { buf, count in
            self.render(strokes, into: buf.baseAddress!)
            count = Self.side * Self.side
        }
    }
}
