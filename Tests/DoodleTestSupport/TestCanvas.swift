import CJPEG
import CPNG
import CZlib
import Foundation

/// A picture of a canvas for tests: grey + alpha pixels on which strokes are drawn with a round pen (each pixel
/// covered by the pen, sampled 4 x 4 for anti-aliasing), written out as PNG with libpng in any of the forms
/// clients send (grey, grey + alpha, RGB, RGBA, 16-bit, palette).
public struct TestCanvas: Sendable {
    public let width: Int
    public let height: Int
    /// Grey and alpha, 2 bytes a pixel.
    public var greyAlpha: [UInt8]

    /// A canvas of one colour.
    public init(width: Int, height: Int, grey: UInt8 = 255, alpha: UInt8 = 255) {
        self.width = width
        self.height = height
        self.greyAlpha = [UInt8](repeating: 0, count: width * height * 2)
        for i in 0..<(width * height) {
            self.greyAlpha[2 * i] = grey
            self.greyAlpha[2 * i + 1] = alpha
        }
    }

    /// Draws polylines (canvas pixels) with a round pen `pen` pixels wide in `ink` (grey, fully opaque).
    public mutating func draw(_ strokes: [[(x: Double, y: Double)]], pen: Double, ink: UInt8 = 0) {
        let radius = pen / 2
        var coverage = [UInt8](repeating: 0, count: self.width * self.height)  // samples of 16 inside the pen
        for stroke in strokes {
            let segments = stroke.count == 1 ? [(stroke[0], stroke[0])] : Array(zip(stroke, stroke.dropFirst()))
            for (a, b) in segments {
                let x0 = max(0, Int((min(a.x, b.x) - radius).rounded(.down)))
                let x1 = min(self.width - 1, Int((max(a.x, b.x) + radius).rounded(.up)))
                let y0 = max(0, Int((min(a.y, b.y) - radius).rounded(.down)))
                let y1 = min(self.height - 1, Int((max(a.y, b.y) + radius).rounded(.up)))
                guard x0 <= x1, y0 <= y1 else { continue }
                let (dx, dy) = (b.x - a.x, b.y - a.y)
                let length2 = dx * dx + dy * dy
                for y in y0...y1 {
                    for x in x0...x1 {
                        var inside: UInt8 = 0
                        for sy in 0..<4 {
                            for sx in 0..<4 {
                                let px = Double(x) + (Double(sx) + 0.5) / 4, py = Double(y) + (Double(sy) + 0.5) / 4
                                let t = length2 > 0 ? max(0, min(1, ((px - a.x) * dx + (py - a.y) * dy) / length2)) : 0
                                let (ex, ey) = (px - (a.x + t * dx), py - (a.y + t * dy))
                                if ex * ex + ey * ey <= radius * radius { inside += 1 }
                            }
                        }
                        let i = y * self.width + x
                        coverage[i] = max(coverage[i], inside)
                    }
                }
            }
        }
        for i in 0..<(self.width * self.height) where coverage[i] > 0 {
            let c = Int(coverage[i]), g = Int(self.greyAlpha[2 * i]), a = Int(self.greyAlpha[2 * i + 1])
            self.greyAlpha[2 * i] = UInt8((Int(ink) * c * 255 + g * a * (16 - c)) / max(1, c * 255 + a * (16 - c)))
            self.greyAlpha[2 * i + 1] = UInt8((255 * c + a * (16 - c)) / 16)
        }
    }

    /// Draws a Quick, Draw! drawing (`[[xs], [ys], ...]` per stroke) scaled and placed so that its ink spans
    /// `span` of the canvas's tighter side, its top-left corner of ink at `origin`.
    public mutating func draw(quickDraw drawing: [[[Double]]], pen: Double, span: Double, origin: (x: Double, y: Double),
                              ink: UInt8 = 0) {
        let xs = drawing.flatMap { $0.count > 0 ? $0[0] : [] }, ys = drawing.flatMap { $0.count > 1 ? $0[1] : [] }
        let (minX, minY) = (xs.min() ?? 0, ys.min() ?? 0)
        let extentX = max(1e-6, (xs.max() ?? 0) - minX), extentY = max(1e-6, (ys.max() ?? 0) - minY)
        let scale = min((span * Double(self.width) - pen) / extentX, (span * Double(self.height) - pen) / extentY)
        let strokes = drawing.map { s in
            zip(s[0], s[1]).map { (x: origin.x + pen / 2 + ($0 - minX) * scale, y: origin.y + pen / 2 + ($1 - minY) * scale) }
        }
        self.draw(strokes, pen: pen, ink: ink)
    }

    /// How a PNG stores the pixels.
    public enum PNGForm: Sendable, CaseIterable {
        case grey, greyAlpha, rgb, rgba, grey16, rgba16, palette
        /// Grey and alpha, Adam7-interlaced (libpng's full writer).
        case interlaced
    }

    /// The canvas as a PNG file's bytes (libpng's simplified writer).
    public func png(_ form: PNGForm = .rgba) -> [UInt8] {
        if form == .interlaced { return self.interlacedPNG() }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(self.width)
        image.height = UInt32(self.height)
        let n = self.width * self.height
        var pixels: [UInt8] = []
        var wide: [UInt16] = []
        // libpng's format flags (the composite PNG_FORMAT_* macros do not reach Swift).
        let (alpha, colour, linear, colormap): (UInt32, UInt32, UInt32, UInt32) = (1, 2, 4, 8)
        func repeated(_ channels: [(Int) -> UInt8]) -> [UInt8] {
            var out = [UInt8]()
            out.reserveCapacity(n * channels.count)
            for i in 0..<n { for c in channels { out.append(c(i)) } }
            return out
        }
        let grey: (Int) -> UInt8 = { self.greyAlpha[2 * $0] }
        let opacity: (Int) -> UInt8 = { self.greyAlpha[2 * $0 + 1] }
        switch form {
        case .grey:
            image.format = 0
            pixels = repeated([grey])
        case .greyAlpha:
            image.format = alpha
            pixels = self.greyAlpha
        case .rgb:
            image.format = colour
            pixels = repeated([grey, grey, grey])
        case .rgba, .palette:
            image.format = form == .palette ? colour | alpha | colormap : colour | alpha
            pixels = repeated([grey, grey, grey, opacity])
        case .grey16:
            image.format = linear
            wide = (0..<n).map { UInt16(self.greyAlpha[2 * $0]) * 257 }
        case .interlaced:
            preconditionFailure("written by interlacedPNG()")
        case .rgba16:
            image.format = linear | colour | alpha
            // Linear 16-bit with premultiplied alpha, as libpng's simplified API takes it.
            for i in 0..<n {
                let a = UInt32(self.greyAlpha[2 * i + 1]) * 257
                let g = UInt16(UInt32(self.greyAlpha[2 * i]) * 257 * a / 65535)
                wide += [g, g, g, UInt16(a)]
            }
        }
        if form == .palette {
            // Index the colours: a map of at most 256 entries (grey x alpha quantised to fit).
            var colours: [UInt32: UInt8] = [:]
            var map: [UInt8] = []
            var indices = [UInt8](repeating: 0, count: n)
            for i in 0..<n {
                let g = self.greyAlpha[2 * i] & 0xF0, a = self.greyAlpha[2 * i + 1] & 0xF0 | 0x0F
                let key = UInt32(g) << 8 | UInt32(a)
                if colours[key] == nil, colours.count < 256 {
                    colours[key] = UInt8(colours.count)
                    map.append(contentsOf: [g, g, g, a])
                }
                indices[i] = colours[key] ?? 0
            }
            image.colormap_entries = UInt32(colours.count)
            return Self.write(image) { image, bytes, size in
                indices.withUnsafeBytes { px in
                    map.withUnsafeBytes { cm in png_image_write_to_memory(image, bytes, size, 0, px.baseAddress, 0, cm.baseAddress) }
                }
            }
        }
        if !wide.isEmpty {
            return Self.write(image) { image, bytes, size in
                wide.withUnsafeBytes { png_image_write_to_memory(image, bytes, size, 0, $0.baseAddress, 0, nil) }
            }
        }
        return Self.write(image) { image, bytes, size in
            pixels.withUnsafeBytes { png_image_write_to_memory(image, bytes, size, 0, $0.baseAddress, 0, nil) }
        }
    }

    /// Grey + alpha, Adam7-interlaced, through libpng's full writer (the simplified one cannot interlace).
    private func interlacedPNG() -> [UInt8] {
        final class Sink {
            var bytes: [UInt8] = []
        }
        let sink = Sink()
        let png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nil, nil, nil)
        var info = png_create_info_struct(png)
        png_set_write_fn(png, Unmanaged.passUnretained(sink).toOpaque(), { png, data, count in
            let sink = Unmanaged<Sink>.fromOpaque(png_get_io_ptr(png)!).takeUnretainedValue()
            sink.bytes.append(contentsOf: UnsafeBufferPointer(start: data, count: count))
        }, nil)
        png_set_IHDR(png, info, png_uint_32(self.width), png_uint_32(self.height), 8, PNG_COLOR_TYPE_GRAY_ALPHA,
                     PNG_INTERLACE_ADAM7, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT)
        png_write_info(png, info)
        _ = png_set_interlace_handling(png)
        var pixels = self.greyAlpha
        pixels.withUnsafeMutableBufferPointer { buffer in
            var rows = (0..<self.height).map { Optional(buffer.baseAddress! + $0 * self.width * 2) }
            png_write_image(png, &rows)
        }
        png_write_end(png, nil)
        var writer: png_structp? = png
        png_destroy_write_struct(&writer, &info)
        return sink.bytes
    }

    private static func write(_ setup: png_image,
                              _ body: (UnsafeMutablePointer<png_image>, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>) -> Int32) -> [UInt8] {
        var image = setup
        var size = 0
        precondition(body(&image, nil, &size) != 0, "libpng could not size the PNG")
        var bytes = [UInt8](repeating: 0, count: size)
        precondition(bytes.withUnsafeMutableBytes { body(&image, $0.baseAddress, &size) } != 0, "libpng could not write the PNG")
        return Array(bytes.prefix(size))
    }

    /// Raw RGBA bytes, as `getImageData()` gives them.
    public var rgba: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(self.width * self.height * 4)
        for i in 0..<(self.width * self.height) {
            let (g, a) = (self.greyAlpha[2 * i], self.greyAlpha[2 * i + 1])
            out.append(contentsOf: [g, g, g, a])
        }
        return out
    }
}

extension TestCanvas {
    /// The canvas (composited on white) as a JPEG file's bytes, baseline or progressive (libjpeg).
    public func jpeg(quality: Int32 = 90, progressive: Bool = false) -> [UInt8] {
        var info = jpeg_compress_struct()
        var failure = jpeg_error_mgr()
        info.err = jpeg_std_error(&failure)
        jpeg_CreateCompress(&info, JPEG_LIB_VERSION, MemoryLayout<jpeg_compress_struct>.size)
        var buffer: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        jpeg_mem_dest(&info, &buffer, &size)
        info.image_width = JDIMENSION(self.width)
        info.image_height = JDIMENSION(self.height)
        info.input_components = 1
        info.in_color_space = JCS_GRAYSCALE
        jpeg_set_defaults(&info)
        jpeg_set_quality(&info, quality, 1)
        if progressive { jpeg_simple_progression(&info) }
        jpeg_start_compress(&info, 1)
        var row = [UInt8](repeating: 0, count: self.width)
        for y in 0..<self.height {
            for x in 0..<self.width {
                let g = Int(self.greyAlpha[2 * (y * self.width + x)]), a = Int(self.greyAlpha[2 * (y * self.width + x) + 1])
                row[x] = UInt8((g * a + 255 * (255 - a)) / 255)
            }
            row.withUnsafeMutableBufferPointer { r in
                var pointer: JSAMPROW? = r.baseAddress
                _ = jpeg_write_scanlines(&info, &pointer, 1)
            }
        }
        jpeg_finish_compress(&info)
        jpeg_destroy_compress(&info)
        defer { free(buffer) }
        return Array(UnsafeBufferPointer(start: buffer, count: Int(size)))
    }
}

/// Hand-made PNG files for what no encoder writes: a header alone, and a decompression bomb.
public enum CraftedPNG {
    /// A chunk: length, type, data, CRC.
    public static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        let crc = body.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, UInt32($0.count))) }
        return bigEndian(UInt32(data.count)) + body + bigEndian(crc)
    }

    /// The signature and an IHDR chunk of an 8-bit grey `width` x `height` PNG.
    public static func header(width: UInt32, height: UInt32) -> [UInt8] {
        [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + chunk("IHDR", bigEndian(width) + bigEndian(height) + [8, 0, 0, 0, 0])
    }

    /// A valid, all-black grey PNG of `width` x `height` pixels: a few kilobytes that inflate to width x height.
    public static func bomb(width: UInt32, height: UInt32) -> [UInt8] {
        let raw = [UInt8](repeating: 0, count: Int(height) * (Int(width) + 1))
        var size = compressBound(UInt(raw.count))
        var packed = [UInt8](repeating: 0, count: Int(size))
        precondition(compress2(&packed, &size, raw, UInt(raw.count), 9) == Z_OK)
        return header(width: width, height: height) + chunk("IDAT", Array(packed.prefix(Int(size)))) + chunk("IEND", [])
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)]
    }
}
