import DoodleDataset
import DoodlePreprocessing
import DoodleTestSupport
import Foundation
import Testing

/// Train/serve parity for the image path: `training/data/extra-images-128-traced.ndjson.gz` (training drawings made
/// by `python -m training.trace_pictures` through a running doodled) must be what the daemon's tracer and
/// normaliser give today for every picture of `extra-images-128.npz`. A change to the image path that leaves the
/// file stale fails here; rerun the script and retrain.
@Suite("Traced training pictures match the daemon's image path")
struct TracedPicturesTests {
    @Test("every picture of extra-images-128.npz traces to the committed training drawing")
    func tracedPicturesAreCurrent() throws {
        let archive = try NumpyArchive(path: TestData.shared.appendingPathComponent("extra-images-128.npz").path)
        let images = try #require(archive.arrays["images"])
        let labels = try #require(archive.arrays["labels"])
        #expect(images.dtype == "|u1" && labels.dtype == "<i2")
        let (count, height, width) = (images.shape[0], images.shape[1], images.shape[2])
        let categories = try String(contentsOf: TestData.shared.appendingPathComponent("categories.txt"), encoding: .utf8)
            .split(separator: "\n").map(String.init)

        // Per class, the traced drawings as text ("x,x;y,y|..."): the file is sorted, so compare as multisets.
        func key(_ strokes: [SimplifiedStroke]) -> String {
            strokes.map { s in s.x.map(String.init).joined(separator: ",") + ";" + s.y.map(String.init).joined(separator: ",") }
                .joined(separator: "|")
        }
        var expected: [String: [String]] = [:]
        let tracer = CanvasTracer()
        for i in 0..<count {
            let pixels = Array(images.bytes[(i * height * width)..<((i + 1) * height * width)])
            let label = Int(Int16(bitPattern: UInt16(labels.bytes[2 * i]) | UInt16(labels.bytes[2 * i + 1]) << 8))
            let traced = try tracer.strokes(from: .pixels(pixels, width: width, height: height, format: .grey8))
            expected[categories[label], default: []].append(key(StrokeNormalizer.normalize(traced)))
        }
        var committed: [String: [String]] = [:]
        for record in try DrawingRecord.read(TestData.repoRoot.appendingPathComponent("training/data/extra-images-128-traced.ndjson.gz").path) {
            committed[record.word ?? "", default: []].append(key(record.simplified))
        }
        #expect(committed.values.map(\.count).reduce(0, +) == count)
        var stale = 0
        for (word, drawings) in expected where drawings.sorted() != (committed[word] ?? []).sorted() {
            stale += 1
            if stale <= 3 { Issue.record("\(word): the committed traced drawings differ from the image path's") }
        }
        #expect(stale == 0, "\(stale) classes are stale: run python -m training.trace_pictures")
    }
}
