import DoodleCore
import DoodleDataset
import DoodleEngine
import DoodlePreprocessing
import Foundation

/// The image input measured, on one thread, on a manifest of canvases that bench/image/make_canvases.py drew:
///
/// - `accuracy`: top-1/top-3 of the model on the same drawings sent as strokes and as pictures, the picture
///   brought to the model's 28 x 28 three ways: `traced` (what doodled does: the ink traced back into strokes,
///   normalised and rendered as strokes are), `cropped` (the ink's bounding box scaled into the dataset's frame
///   with its aspect kept, area-averaged, the client's pen width left as it is), and `stretched` (the whole
///   canvas averaged down to 28 x 28, what the CLI did before the image input).
/// - `stage`: microseconds per picture of each server stage (probe the header, decode, trace, normalise, render,
///   and all of preparation together), and the model's share per picture at batch 1 and batch 64. Decoding is
///   timed three ways side by side: libpng alone, the chunk reader with zlib, and what serving does (the chunk
///   reader with libdeflate when the system has it).
///
///     doodle-image-bench MANIFEST.ndjson MODEL_DIR [--seconds S] [--accuracy-only | --timing-only]
///
/// Prints one JSON line per row.
@main
struct ImageBench {
    static func main() throws {
        var args = Array(CommandLine.arguments.dropFirst())
        var seconds = 1.0
        if let i = args.firstIndex(of: "--seconds"), i + 1 < args.count {
            seconds = Double(args[i + 1]) ?? 1
            args.removeSubrange(i...(i + 1))
        }
        let accuracyOnly = args.contains("--accuracy-only")
        let timingOnly = args.contains("--timing-only")
        args.removeAll { $0.hasPrefix("--") }
        guard args.count == 2 else {
            FileHandle.standardError.write(Data("usage: doodle-image-bench MANIFEST.ndjson MODEL_DIR [--seconds S] [--accuracy-only | --timing-only]\n".utf8))
            exit(2)
        }
        let directory = (args[0] as NSString).deletingLastPathComponent
        let records = try DrawingRecord.read(args[0])
        let files = try records.map { r in
            try [UInt8](Data(contentsOf: URL(fileURLWithPath: (directory as NSString).appendingPathComponent(r.image ?? ""))))
        }
        let predictor = try Predictor(path: args[1])
        if !timingOnly { try Self.accuracy(records, files, predictor) }
        if !accuracyOnly { try Self.timing(files, predictor, seconds: seconds) }
    }

    // MARK: Accuracy

    static func accuracy(_ records: [DrawingRecord], _ files: [[UInt8]], _ predictor: Predictor) throws {
        let preprocessor = Preprocessor()
        let tracer = CanvasTracer()
        var methods: [(String, (Int) throws -> [UInt8])] = []
        methods.append(("strokes", { i in
            var out = [UInt8](repeating: 0, count: 784)
            try out.withUnsafeMutableBufferPointer { try preprocessor.prepare(.strokes(records[i].strokes, .raw), into: $0.baseAddress!) }
            return out
        }))
        methods.append(("traced", { i in
            var out = [UInt8](repeating: 0, count: 784)
            try out.withUnsafeMutableBufferPointer { try preprocessor.prepare(.image(.encoded(files[i])), into: $0.baseAddress!) }
            return out
        }))
        methods.append(("cropped", { i in
            _ = try tracer.strokes(from: .encoded(files[i]))
            let pen = tracer.findings!.penWidth
            return tracer.withInk { Self.cropped($0, $1, $2, $3, findings: tracer.findings!, pen: pen) }!
        }))
        methods.append(("stretched", { i in try Self.stretched(files[i]) }))
        let scratch = predictor.engine.makeScratch(maxBatch: 1)
        var scores = [Float](repeating: 0, count: predictor.engine.classCount)
        for (name, method) in methods {
            var top1 = 0, top3 = 0, failed = 0
            for (i, record) in records.enumerated() {
                guard let pixels = try? method(i) else {
                    failed += 1
                    continue
                }
                try pixels.withUnsafeBytes { px in
                    try scores.withUnsafeMutableBufferPointer { s in
                        try predictor.engine.run(images: px, count: 1, scratch: scratch, scores: s)
                    }
                }
                let best = scores.withUnsafeBufferPointer { predictor.top(3, of: $0, candidates: nil) }
                let labels = best.map { predictor.labels[$0.index] }
                if labels.first == record.word { top1 += 1 }
                if labels.contains(record.word ?? "") { top3 += 1 }
            }
            let n = Double(records.count)
            print(#"{"row":"accuracy","method":"\#(name)","drawings":\#(records.count),"failed":\#(failed),"top1":\#(Double(top1) / n),"top3":\#(Double(top3) / n)}"#)
        }
    }

    /// The ink's bounding box placed in the dataset's frame (the drawing's larger side over 255 of 304 units,
    /// centred) and area-averaged to 28 x 28: the client's pen width is kept, scaled with the drawing.
    static func cropped(_ ink: UnsafeBufferPointer<UInt8>, _ width: Int, _ height: Int, _ peak: Int,
                        findings f: CanvasTracer.Findings, pen: Double) -> [UInt8] {
        let boxW = Double(f.maxX - f.minX + 1), boxH = Double(f.maxY - f.minY + 1)
        // The centre line's extent is the ink's less one pen width.
        let extent = max(1, max(boxW, boxH) - pen)
        let k = 255 / extent
        let offX = (256 - (boxW - pen) * k) / 2 + 24 - pen / 2 * k
        let offY = (256 - (boxH - pen) * k) / 2 + 24 - pen / 2 * k
        let toCell = 28.0 / 304.0
        var sums = [Double](repeating: 0, count: 784)
        for y in f.minY...f.maxY {
            let cy = Int(((Double(y - f.minY) + 0.5) * k + offY) * toCell)
            guard cy >= 0, cy < 28 else { continue }
            for x in f.minX...f.maxX {
                let v = ink[y * width + x]
                if v == 0 { continue }
                let cx = Int(((Double(x - f.minX) + 0.5) * k + offX) * toCell)
                guard cx >= 0, cx < 28 else { continue }
                sums[cy * 28 + cx] += Double(v) / Double(peak)
            }
        }
        // A cell covers (304 / 28 / k)^2 canvas pixels.
        let cellPixels = pow(304.0 / 28.0 / k, 2)
        return sums.map { UInt8(min(255, ($0 / cellPixels * 255).rounded())) }
    }

    /// The whole canvas composited on white, averaged to 28 x 28 and inverted when mostly light.
    static func stretched(_ file: [UInt8]) throws -> [UInt8] {
        let header = try ImageDecoder.probe(file)
        let (width, height) = (header.width, header.height)
        var ga: [UInt8] = []
        try ImageDecoder.decode(file, header: header, into: &ga)
        var sums = [Int](repeating: 0, count: 784), counts = [Int](repeating: 0, count: 784)
        for y in 0..<height {
            for x in 0..<width {
                let g = Int(ga[2 * (y * width + x)]), a = Int(ga[2 * (y * width + x) + 1])
                let cell = (y * 28 / height) * 28 + x * 28 / width
                sums[cell] += (g * a + 255 * (255 - a)) / 255
                counts[cell] += 1
            }
        }
        let grey = (0..<784).map { UInt8(sums[$0] / max(1, counts[$0])) }
        let mean = grey.reduce(0) { $0 + Int($1) } / 784
        return mean > 127 ? grey.map { 255 - $0 } : grey
    }

    // MARK: Timing

    static func timing(_ files: [[UInt8]], _ predictor: Predictor, seconds: Double) throws {
        let headers = try files.map { try ImageDecoder.probe($0) }
        let tracer = CanvasTracer()
        let preprocessor = Preprocessor()
        let renderer = DoodleRenderer()
        let strokes = try files.map { try tracer.strokes(from: .encoded($0)) }
        let simplified = strokes.map { StrokeNormalizer.normalize($0) }
        var greyAlpha: [UInt8] = []
        var output = [UInt8](repeating: 0, count: 784)
        let pixels = headers.reduce(0) { $0 + $1.pixels } / max(1, headers.count)
        let bytes = files.reduce(0) { $0 + $1.count } / max(1, files.count)
        func time(_ stage: String, batch: Int = 1, _ body: (Int) throws -> Void) rethrows {
            var n = 0
            let start = DispatchTime.now().uptimeNanoseconds
            var elapsed = 0.0
            while elapsed < seconds {
                for i in 0..<files.count { try body(i) }
                n += files.count
                elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            }
            print(#"{"row":"stage","stage":"\#(stage)","pictures":\#(files.count),"mean_pixels":\#(pixels),"mean_file_bytes":\#(bytes),"us_per_picture":\#(elapsed * 1e6 / Double(n * batch))}"#)
        }
        try time("probe") { _ = try ImageDecoder.probe(files[$0]) }
        try time("decode_libpng") { try ImageDecoder.decode(files[$0], header: headers[$0], into: &greyAlpha, pngRoute: .libpng) }
        try time("decode_own_zlib") {
            try ImageDecoder.decode(files[$0], header: headers[$0], into: &greyAlpha, pngRoute: .chunkReaderWithZlib)
        }
        try time("decode") { try ImageDecoder.decode(files[$0], header: headers[$0], into: &greyAlpha) }
        try time("decode+trace") { _ = try tracer.strokes(from: .encoded(files[$0])) }
        time("normalize") { _ = StrokeNormalizer.normalize(strokes[$0]) }
        output.withUnsafeMutableBufferPointer { out in
            time("render") { renderer.render(simplified[$0], into: out.baseAddress!) }
        }
        try output.withUnsafeMutableBufferPointer { out in
            try time("prepare") { try preprocessor.prepare(.image(.encoded(files[$0])), into: out.baseAddress!) }
        }
        // The model's share per picture, for scale.
        let engine = predictor.engine
        for batch in [1, 64] {
            let scratch = engine.makeScratch(maxBatch: batch)
            let images = [UInt8](repeating: 0, count: batch * engine.inputBytes)
            var scores = [Float](repeating: 0, count: batch * engine.classCount)
            try time("model_batch\(batch)", batch: batch) { _ in
                try images.withUnsafeBytes { px in
                    try scores.withUnsafeMutableBufferPointer { s in
                        try engine.run(images: px, count: batch, scratch: scratch, scores: s)
                    }
                }
            }
        }
    }
}
