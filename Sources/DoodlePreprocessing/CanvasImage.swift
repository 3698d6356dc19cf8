/// A picture of a canvas, as a web page (a PNG of its canvas, `getImageData()`) or a game (a texture) has it.
public enum CanvasImage: Sendable, Equatable {
    /// The bytes of a PNG or JPEG file.
    case encoded([UInt8])
    /// Raw pixels, row-major, top row first, no padding: `width * height * format.channels` bytes.
    case pixels([UInt8], width: Int, height: Int, format: PixelFormat)

    /// How raw pixels are laid out.
    public enum PixelFormat: Sendable, Equatable {
        /// One byte a pixel, 0 = black; opaque.
        case grey8
        /// Four bytes a pixel: red, green, blue, straight (not premultiplied) alpha, as `getImageData()` gives.
        case rgba8

        public var channels: Int {
            switch self {
            case .grey8: 1
            case .rgba8: 4
            }
        }
    }

    /// Bytes the client sent.
    public var byteCount: Int {
        switch self {
        case .encoded(let bytes): bytes.count
        case .pixels(let bytes, _, _, _): bytes.count
        }
    }
}
