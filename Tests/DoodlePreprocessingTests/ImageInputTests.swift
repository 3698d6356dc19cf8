import DoodleDataset
import DoodlePreprocessing
import DoodleTestSupport
import Foundation
import Testing

/// A picture's pixels (grey, alpha), decoded.
private func decoded(_ bytes: [UInt8]) throws -> [UInt8] {
    let header = try ImageDecoder.probe(bytes)
    var pixels: [UInt8] = []
    try ImageDecoder.decode(bytes, header: header, into: &pixels)
    return pixels
}

/// The model's 28 x 28 input for a picture, through the daemon's preprocessing.
private func bitmap(_ image: CanvasImage, _ preprocessor: Preprocessor = Preprocessor()) throws -> [UInt8] {
    var out = [UInt8](repeating: 0, count: 784)
    try out.withUnsafeMutableBufferPointer { try preprocessor.prepare(.image(image), into: $0.baseAddress!) }
    return out
}

/// A canvas with an asterisk-and-box drawing on it.
private func sketch(width: Int = 300, height: Int = 200, background: UInt8 = 255, alpha: UInt8 = 255,
                    ink: UInt8 = 0, pen: Double = 6) -> TestCanvas {
    var canvas = TestCanvas(width: width, height: height, grey: background, alpha: alpha)
    canvas.draw([[(60, 40), (240, 40), (240, 160), (60, 160), (60, 40)], [(60, 40), (240, 160)], [(150, 20), (150, 180)]],
                pen: pen, ink: ink)
    return canvas
}

@Suite("Image input: decoding every form clients send, finding the drawing, refusing what is not one")
struct ImageInputTests {
    @Test("every PNG form of one canvas decodes to its grey and alpha (8-bit fast path and libpng alike)")
    func pngForms() throws {
        let canvas = sketch(alpha: 255)
        for form in [TestCanvas.PNGForm.grey, .greyAlpha, .rgb, .rgba, .grey16, .rgba16, .interlaced] {
            #expect(try decoded(canvas.png(form)) == canvas.greyAlpha, "\(form)")
        }
        // The chunk reader (with libdeflate or zlib) and libpng read every 8-bit form alike.
        for form in [TestCanvas.PNGForm.grey, .greyAlpha, .rgb, .rgba, .palette] {
            let png = canvas.png(form)
            let header = try ImageDecoder.probe(png)
            var ways: [[UInt8]] = []
            for route in [ImageDecoder.PNGRoute.automatic, .libpng, .chunkReaderWithZlib] {
                var pixels: [UInt8] = []
                try ImageDecoder.decode(png, header: header, into: &pixels, pngRoute: route)
                ways.append(pixels)
            }
            #expect(ways[1] == ways[0] && ways[2] == ways[0], "\(form)")
        }
        // A palette holds colours quantised to 16 levels here.
        let palette = try decoded(canvas.png(.palette))
        let worst = zip(palette, canvas.greyAlpha).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(worst <= 15, "palette: \(worst)")
        #expect(canvas.png(.interlaced)[28] == 1, "Adam7 in the header")
        // Transparency survives: opaque ink on a transparent canvas.
        let clear = sketch(background: 0, alpha: 0)
        for form in [TestCanvas.PNGForm.greyAlpha, .rgba, .rgba16, .interlaced] {
            let pixels = try decoded(clear.png(form))
            #expect(stride(from: 1, to: pixels.count, by: 2).map { pixels[$0] } ==
                    stride(from: 1, to: clear.greyAlpha.count, by: 2).map { clear.greyAlpha[$0] }, "\(form)")
        }
    }

    @Test("JPEG, baseline and progressive, decodes to the canvas's grey within compression noise")
    func jpeg() throws {
        let canvas = sketch()
        for progressive in [false, true] {
            let pixels = try decoded(canvas.jpeg(progressive: progressive))
            let error = zip(pixels, canvas.greyAlpha).map { abs(Int($0) - Int($1)) }.reduce(0, +) / pixels.count
            #expect(error <= 3, "progressive \(progressive): mean error \(error)")
        }
        let fromJPEG = try bitmap(.encoded(canvas.jpeg())), fromPNG = try bitmap(.encoded(canvas.png()))
        let difference = zip(fromJPEG, fromPNG).map { abs(Int($0) - Int($1)) }.reduce(0, +) / 784
        #expect(difference <= 4, "mean difference of the 28 x 28 inputs: \(difference)")
    }

    @Test("the drawing is found whatever the colours: ink on paper, chalk on a board, ink on a transparent canvas")
    func colours() throws {
        let tracer = CanvasTracer()
        var bitmaps: [[UInt8]] = []
        let cases: [(TestCanvas, CanvasTracer.InkMode)] = [
            (sketch(background: 255, ink: 0), .dark),
            (sketch(background: 230, ink: 90), .dark),
            (sketch(background: 20, ink: 250), .light),
            (sketch(background: 0, alpha: 0, ink: 0), .transparency),
            (sketch(background: 255, alpha: 0, ink: 40), .transparency),
        ]
        for (canvas, mode) in cases {
            _ = try tracer.strokes(from: .encoded(canvas.png()))
            let found = try #require(tracer.findings)
            #expect(found.inkMode == mode)
            #expect(abs(found.minX - 57) <= 1 && abs(found.maxX - 243) <= 1 && abs(found.minY - 17) <= 1 && abs(found.maxY - 183) <= 1,
                    "\(found)")
            #expect(abs(found.penWidth - 6) < 1.5, "pen \(found.penWidth)")
            bitmaps.append(try bitmap(.encoded(canvas.png())))
        }
        for other in bitmaps.dropFirst() {
            let worst = zip(other, bitmaps[0]).map { abs(Int($0) - Int($1)) }.max() ?? 0
            #expect(worst <= 32, "worst pixel difference \(worst)")
        }
        // Raw pixels (getImageData's RGBA, a grey texture) give what the PNG of the same canvas gives.
        let canvas = sketch()
        #expect(try bitmap(.pixels(canvas.rgba, width: 300, height: 200, format: .rgba8)) == bitmaps[0])
        let grey = stride(from: 0, to: canvas.greyAlpha.count, by: 2).map { canvas.greyAlpha[$0] }
        #expect(try bitmap(.pixels(grey, width: 300, height: 200, format: .grey8)) == bitmaps[0])
    }

    @Test("pen width and canvas size hardly matter: the same drawing drawn with 2.5 to 14 px pens, small or large")
    func penAndSize() throws {
        let drawing = try TestData.sharedFile("render_pairs.ndjson.gz")[0].drawing
        var reference: [UInt8]?
        for (width, height, pen) in [(280, 280, 2.5), (400, 400, 6.0), (800, 600, 14.0), (640, 300, 9.0)] {
            var canvas = TestCanvas(width: width, height: height)
            canvas.draw(quickDraw: drawing, pen: pen, span: 0.7, origin: (Double(width) * 0.1, Double(height) * 0.15))
            let got = try bitmap(.encoded(canvas.png()))
            if let reference {
                let iou = overlap(got, reference)
                #expect(iou >= 0.75, "\(width) x \(height), pen \(pen): ink overlap \(iou)")
            } else {
                reference = got
            }
        }
    }

    @Test("real drawings drawn on canvases come out close to their stroke rendering (train/serve parity)")
    func parity() async throws {
        let records = Array(try TestData.sharedFile("render_pairs.ndjson.gz").prefix(24))
        let overlaps = try await computeOffPool { () -> [Double] in
            var random = SplitMix64(seed: 7)
            let preprocessor = Preprocessor()
            return try records.map { record in
                let width = 280 + Int(random.next() % 521), height = 280 + Int(random.next() % 321)
                let pen = 2.5 + 11.5 * random.nextUnit(), span = 0.45 + 0.45 * random.nextUnit()
                var canvas = TestCanvas(width: width, height: height)
                canvas.draw(quickDraw: record.drawing, pen: pen, span: span,
                            origin: (Double(width) * (1 - span) * random.nextUnit(), Double(height) * (1 - span) * random.nextUnit()))
                var strokes = [UInt8](repeating: 0, count: 784)
                try strokes.withUnsafeMutableBufferPointer {
                    try preprocessor.prepare(.strokes(record.strokes, .simplified), into: $0.baseAddress!)
                }
                return overlap(try bitmap(.encoded(canvas.png()), preprocessor), strokes)
            }
        }
        let mean = overlaps.reduce(0, +) / Double(overlaps.count)
        #expect(mean >= 0.8, "mean ink overlap \(mean): \(overlaps.map { String(format: "%.2f", $0) })")
        #expect(overlaps.min()! >= 0.6, "\(overlaps)")
    }

    @Test("pictures with nothing to read are refused with a message, never a crash or a guess")
    func refused() throws {
        let canvas = sketch()
        let png = canvas.png()
        var corrupt = png
        corrupt[png.count / 2] ^= 0x55
        var jpeg = canvas.jpeg()
        var random = SplitMix64(seed: 3)
        let noise = (0..<(300 * 300)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        let cases: [(String, CanvasImage, String)] = [
            ("blank", .encoded(TestCanvas(width: 300, height: 200).png()), "no drawing"),
            ("all ink", .encoded(TestCanvas(width: 300, height: 200, grey: 0).png()), "no drawing"),
            ("one pixel", .encoded(TestCanvas(width: 1, height: 1, grey: 0).png()), "no drawing"),
            ("fully transparent", .encoded(TestCanvas(width: 50, height: 50, grey: 0, alpha: 0).png()), "no drawing"),
            ("faint smudge", .encoded(sketch(background: 255, ink: 240).png()), "no drawing"),
            ("truncated PNG", .encoded(Array(png.prefix(png.count / 2))), "truncated"),
            ("PNG cut inside its header", .encoded(Array(png.prefix(20))), "IHDR"),
            ("a flipped byte in the image data", .encoded(corrupt), "CRC"),
            ("truncated JPEG", .encoded(Array(jpeg.prefix(jpeg.count / 2))), "JPEG"),
            ("not a picture", .encoded(Array("GIF89a, or anything else".utf8)), "neither PNG nor JPEG"),
            ("raw pixels that do not add up", .pixels([0, 1, 2], width: 2, height: 2, format: .grey8), "bytes of pixels"),
            ("noise", .pixels(noise, width: 300, height: 300, format: .grey8), "looks like noise"),
        ]
        jpeg.removeAll()
        let tracer = CanvasTracer()
        for (name, image, expected) in cases {
            do {
                _ = try tracer.strokes(from: image)
                Issue.record("\(name): accepted")
            } catch {
                #expect(error.message.contains(expected), "\(name): \(error.message)")
            }
        }
    }

    @Test("a header is read without decoding: a 100,000 x 100,000 PNG of a few bytes reports its size")
    func header() throws {
        let bomb = CraftedPNG.header(width: 100_000, height: 100_000)
        #expect(try ImageDecoder.probe(bomb) == ImageDecoder.Header(format: .png, width: 100_000, height: 100_000))
        let jpeg = sketch(width: 123, height: 45).jpeg()
        #expect(try ImageDecoder.probe(jpeg) == ImageDecoder.Header(format: .jpeg, width: 123, height: 45))
    }
}

/// Intersection over union of the pixels at least a quarter inked.
func overlap(_ a: [UInt8], _ b: [UInt8]) -> Double {
    let inter = zip(a, b).filter { $0 >= 64 && $1 >= 64 }.count, union = zip(a, b).filter { $0 >= 64 || $1 >= 64 }.count
    return union == 0 ? 1 : Double(inter) / Double(union)
}
