import CCairo

/// Reads a PNG into the model's 28 x 28 bitmap: composited on white, scaled to 28 x 28 with cairo, converted to
/// grey, and inverted when the picture is mostly light (dark ink on paper), so that ink is high as in the dataset.
public enum PNGBitmap {
    public static func read(path: String) throws(ServiceError) -> [UInt8] {
        let source = cairo_image_surface_create_from_png(path)
        defer { cairo_surface_destroy(source) }
        guard cairo_surface_status(source) == CAIRO_STATUS_SUCCESS else {
            throw .invalidArgument("\(path) is not a readable PNG file")
        }
        let w = Double(cairo_image_surface_get_width(source))
        let h = Double(cairo_image_surface_get_height(source))
        guard w > 0, h > 0 else { throw .invalidArgument("\(path) has no pixels") }
        let side = DoodleRenderer.side
        let target = cairo_image_surface_create(CAIRO_FORMAT_RGB24, Int32(side), Int32(side))
        defer { cairo_surface_destroy(target) }
        let cr = cairo_create(target)
        cairo_set_source_rgb(cr, 1, 1, 1)
        cairo_paint(cr)
        cairo_scale(cr, Double(side) / w, Double(side) / h)
        cairo_set_source_surface(cr, source, 0, 0)
        cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_GOOD)
        cairo_paint(cr)
        cairo_destroy(cr)
        cairo_surface_flush(target)
        let data = cairo_image_surface_get_data(target)!
        let stride = Int(cairo_image_surface_get_stride(target))
        var grey = [UInt8](repeating: 0, count: side * side)
        for y in 0..<side {
            for x in 0..<side {
                let p = data + y * stride + x * 4
                grey[y * side + x] = UInt8((Int(p[0]) + Int(p[1]) + Int(p[2])) / 3)
            }
        }
        let mean = grey.reduce(0) { $0 + Int($1) } / grey.count
        return mean > 127 ? grey.map { 255 - $0 } : grey
    }
}
