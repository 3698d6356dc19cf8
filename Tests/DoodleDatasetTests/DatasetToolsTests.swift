import CPNG
import DoodleCore
import DoodleDataset
import DoodlePreprocessing
import Foundation
import Testing

@Suite("Dataset tools: PNG files and ndjson")
struct DatasetToolsTests {
    static func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("\(UUID().uuidString)-\(name)").path
    }

    /// Writes `pixels` (width x height, `channels` per pixel: 1 grey, 4 RGBA) as a PNG with libpng.
    static func writePNG(_ pixels: [UInt8], width: Int, height: Int, channels: Int) -> String {
        let path = Self.temporary("drawing.png")
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = channels == 4 ? UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA) : UInt32(PNG_FORMAT_GRAY)
        let written = pixels.withUnsafeBytes { png_image_write_to_file(&image, path, 0, $0.baseAddress, 0, nil) }
        precondition(written != 0, "libpng could not write \(path)")
        return path
    }

    @Test("a PNG of dark ink on white becomes ink-high 28 x 28 bytes: a diagonal stays on the diagonal")
    func greyPNG() throws {
        let side = 280
        var pixels = [UInt8](repeating: 255, count: side * side)
        for i in 0..<side { for d in -6...6 where (0..<side).contains(i + d) { pixels[i * side + i + d] = 0 } }
        let bitmap = try PNGBitmap.read(path: Self.writePNG(pixels, width: side, height: side, channels: 1))
        #expect(bitmap.count == 784)
        let diagonal = (0..<28).map { Int(bitmap[$0 * 28 + $0]) }
        let corner = Int(bitmap[27])  // top right: paper
        #expect(diagonal.allSatisfy { $0 > 100 }, "diagonal \(diagonal)")
        #expect(corner == 0)
    }

    @Test("transparency is composited on white, so ink drawn on a transparent canvas still reads as ink")
    func transparentPNG() throws {
        let (width, height) = (100, 50)
        var pixels = [UInt8](repeating: 0, count: width * height * 4)  // transparent black everywhere
        for y in 20..<30 { for x in 0..<width { pixels[(y * width + x) * 4 + 3] = 255 } }  // an opaque black band
        let bitmap = try PNGBitmap.read(path: Self.writePNG(pixels, width: width, height: height, channels: 4))
        let rows = (0..<28).map { y in (0..<28).map { Int(bitmap[y * 28 + $0]) }.reduce(0, +) / 28 }
        #expect(rows[13] > 200 && rows[0] == 0 && rows[27] == 0, "row means \(rows)")
    }

    @Test("a file that is not a PNG is refused with a message naming it")
    func notAPNG() throws {
        let path = Self.temporary("not.png")
        try Data("GIF89a".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: ServiceError.invalidArgument("\(path) is not a readable PNG file")) { try PNGBitmap.read(path: path) }
    }

    @Test("ndjson records read the same from a plain file and from the dataset's gzip files")
    func ndjson() throws {
        let shared = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data/quickdraw")
        let gz = try DrawingRecord.read(shared.appendingPathComponent("render_pairs.ndjson.gz").path)
        #expect(gz.count == 533 && gz.allSatisfy { $0.bitmap?.count == 784 })
        let plain = Self.temporary("two.ndjson")
        try """
            {"word":"cat","key_id":"1","drawing":[[[0,10,20],[5,5,5]]]}
            {"word":"dog","key_id":"2","drawing":[[[0,1],[2,3],[0,16]]],"extra":"ignored"}

            """.write(toFile: plain, atomically: true, encoding: .utf8)
        let records = try DrawingRecord.read(plain)
        #expect(records.map(\.word) == ["cat", "dog"])
        #expect(records[0].strokes[0].x == [0, 10, 20] && !records[0].strokes[0].hasTimes)
        #expect(records[1].strokes[0].hasTimes && records[1].timeCounts == [2])
    }
}
