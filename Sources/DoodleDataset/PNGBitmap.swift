import CPNG
import DoodlePreprocessing
import DoodleCore

/// Reads a PNG into the model's 28 x 28 bitmap with libpng: composited on white, converted to grey, the whole
/// picture averaged down to 28 x 28, and inverted when it is mostly light (dark ink on paper), so that ink is high
/// as in the dataset. A plain stretch: it neither crops to the drawing nor keeps the aspect ratio.
public enum PNGBitmap {
    public static func read(path: String) throws(ServiceError) -> [UInt8] {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_file(&image, path) != 0 else {
            throw .invalidArgument("\(path) is not a readable PNG file")
        }
        let width = Int(image.width), height = Int(image.height)
        guard width > 0, height > 0, width * height <= 64 << 20 else {
            png_image_free(&image)
            throw .invalidArgument("\(path) has \(width) x \(height) pixels (1 to 64 Mi allowed)")
        }
        image.format = UInt32(PNG_FORMAT_GRAY)
        var white = png_color(red: 255, green: 255, blue: 255)
        var pixels = [UInt8](repeating: 0, count: width * height)
        guard png_image_finish_read(&image, &white, &pixels, 0, nil) != 0 else {
            png_image_free(&image)
            throw .invalidArgument("\(path) is not a readable PNG file")
        }
        let side = DoodleRenderer.side
        var sums = [Int](repeating: 0, count: side * side)
        var counts = [Int](repeating: 0, count: side * side)
        for y in 0..<height {
            let row = y * side / height
            for x in 0..<width {
                let cell = row * side + x * side / width
                sums[cell] += Int(pixels[y * width + x])
                counts[cell] += 1
            }
        }
        // A picture smaller than 28 x 28 leaves cells empty: they take the nearest pixel.
        var grey = [UInt8](repeating: 0, count: side * side)
        for cell in 0..<(side * side) {
            if counts[cell] > 0 {
                grey[cell] = UInt8(sums[cell] / counts[cell])
            } else {
                let y = (cell / side) * height / side, x = (cell % side) * width / side
                grey[cell] = pixels[y * width + x]
            }
        }
        let mean = grey.reduce(0) { $0 + Int($1) } / grey.count
        return mean > 127 ? grey.map { 255 - $0 } : grey
    }
}
