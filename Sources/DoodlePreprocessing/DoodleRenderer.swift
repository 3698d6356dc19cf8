import CDoodleRaster

/// Renders simplified strokes to the dataset's 28 x 28 bitmap, bit-exactly as Google made `numpy_bitmap`
/// (shared/reference/quickdraw-format.md), without calling cairo: `CDoodleRaster` is cairo 1.16's stroker and
/// scan converter specialised to this one drawing setup. `CairoRenderer` draws the same bytes with libcairo;
/// the parity tests and the FuzzPreprocess target hold the two to byte equality.
///
/// Holds scratch buffers: make one per thread.
public final class DoodleRenderer {
    public static let side = 28

    private let raster: OpaquePointer
    private var xs: [Int32] = []
    private var ys: [Int32] = []
    private var lengths: [Int32] = []

    public init() {
        guard let raster = doodle_raster_create() else { fatalError("DoodleRenderer: out of memory") }
        self.raster = raster
    }

    deinit {
        doodle_raster_destroy(self.raster)
    }

    /// Draws `strokes` (0...255 space) centred, and writes 784 bytes (0 = background, 255 = ink) to `output`.
    public func render(_ strokes: [SimplifiedStroke], into output: UnsafeMutablePointer<UInt8>) {
        self.xs.removeAll(keepingCapacity: true)
        self.ys.removeAll(keepingCapacity: true)
        self.lengths.removeAll(keepingCapacity: true)
        for s in strokes {
            let n = min(s.x.count, s.y.count)
            self.xs.append(contentsOf: s.x.prefix(n))
            self.ys.append(contentsOf: s.y.prefix(n))
            self.lengths.append(Int32(n))
        }
        let status = doodle_raster_render(self.raster, self.xs, self.ys, self.lengths, Int32(self.lengths.count), output)
        // Only a failed allocation fails, as a Swift allocation would trap.
        precondition(status == 0, "DoodleRenderer: out of memory")
    }

    /// Convenience: the 784 bytes as an array.
    public func render(_ strokes: [SimplifiedStroke]) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: Self.side * Self.side) { buf, count in
            self.render(strokes, into: buf.baseAddress!)
            count = Self.side * Self.side
        }
    }
}
