import CDoodleImage

/// Reads PNG (libpng) and JPEG (libjpeg) files into grey + alpha pixels. `probe` reads only the header, so that a
/// request's limits are checked before anything is decoded or allocated; `decode` then decodes exactly that size.
public enum ImageDecoder {
    /// An encoded image's format and size, from its header.
    public struct Header: Sendable, Equatable {
        public enum Format: Sendable, Equatable {
            case png
            case jpeg
        }

        public var format: Format
        public var width: Int
        public var height: Int

        public init(format: Format, width: Int, height: Int) {
            self.format = format
            self.width = width
            self.height = height
        }

        public var pixels: Int { self.width * self.height }
    }

    /// Most bytes of one decompressed ancillary PNG chunk (text, ICC profile): a chunk that inflates beyond it is
    /// an error, not an allocation.
    public static let maxChunkBytes = 1 << 20
    /// Most working memory libjpeg may take for one image (progressive JPEGs buffer their coefficients).
    public static let maxDecoderBytes = 96 << 20

    /// The format and size in an encoded image's header (no decoding, no allocation).
    public static func probe(_ bytes: [UInt8]) throws(PreprocessingError) -> Header {
        var format = DOODLE_IMAGE_UNKNOWN
        var width: UInt32 = 0
        var height: UInt32 = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = bytes.withUnsafeBufferPointer { data in
            doodle_image_probe(data.baseAddress, data.count, &format, &width, &height, &message, message.count)
        }
        guard status == 0 else { throw PreprocessingError(Self.text(message)) }
        return Header(format: format == DOODLE_IMAGE_PNG ? .png : .jpeg, width: Int(width), height: Int(height))
    }

    /// Which way a PNG is decoded (see `CDoodleImage`): `automatic` is what serving does; the others are forced,
    /// for benches and tests that compare them.
    public enum PNGRoute: Sendable {
        /// The chunk reader for 8-bit non-interlaced files (libdeflate when the system has it, else zlib), libpng
        /// for the rest.
        case automatic
        /// libpng for every file.
        case libpng
        /// The chunk reader with zlib.
        case chunkReaderWithZlib
    }

    /// The inflater PNGs go through here: "libdeflate" or "zlib".
    public static var inflater: String { String(cString: doodle_image_inflater()) }

    /// Decodes an image whose header `probe` read into `pixels` (resized to width x height x 2: grey, alpha).
    public static func decode(_ bytes: [UInt8], header: Header, into pixels: inout [UInt8],
                              pngRoute: PNGRoute = .automatic) throws(PreprocessingError) {
        guard header.width > 0, header.height > 0 else {
            throw PreprocessingError("the image has no pixels (\(header.width) x \(header.height))")
        }
        let count = header.pixels * 2
        if pixels.count != count { pixels = [UInt8](repeating: 0, count: count) }
        var message = [CChar](repeating: 0, count: 256)
        let format = header.format == .png ? DOODLE_IMAGE_PNG : DOODLE_IMAGE_JPEG
        let route = switch pngRoute {
        case .automatic: DOODLE_PNG_AUTO
        case .libpng: DOODLE_PNG_LIBPNG
        case .chunkReaderWithZlib: DOODLE_PNG_OWN_ZLIB
        }
        let status = bytes.withUnsafeBufferPointer { data in
            pixels.withUnsafeMutableBufferPointer { out in
                header.format == .png && pngRoute != .automatic
                    ? doodle_image_decode_png_by(data.baseAddress, data.count, UInt32(header.width), UInt32(header.height),
                                                 out.baseAddress, Self.maxChunkBytes, route, &message, message.count)
                    : doodle_image_decode(data.baseAddress, data.count, format, UInt32(header.width), UInt32(header.height),
                                          out.baseAddress, Self.maxChunkBytes, Self.maxDecoderBytes, &message, message.count)
            }
        }
        guard status == 0 else { throw PreprocessingError(Self.text(message)) }
    }

    /// Raw pixels as grey + alpha, into `pixels` (resized).
    public static func greyAlpha(_ raw: [UInt8], count: Int, format: CanvasImage.PixelFormat, into pixels: inout [UInt8]) {
        if pixels.count != count * 2 { pixels = [UInt8](repeating: 0, count: count * 2) }
        raw.withUnsafeBufferPointer { src in
            pixels.withUnsafeMutableBufferPointer { out in
                doodle_image_pixels_to_grey_alpha(src.baseAddress, count, Int32(format.channels), out.baseAddress)
            }
        }
    }

    private static func text(_ message: [CChar]) -> String {
        let bytes = message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
