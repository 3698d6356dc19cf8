import DoodleDataset
import DoodlePreprocessing
import DoodleTestSupport
import Foundation
import Testing

@Suite("Preprocessing parity with the dataset and training/")
struct PreprocessingTests {
    @Test("the renderer is bit-exact on all 533 of Google's drawing/bitmap pairs")
    func rendererIsBitExact() throws {
        let pairs = try TestData.sharedFile("render_pairs.ndjson.gz")
        #expect(pairs.count == 533)
        let renderer = DoodleRenderer()
        var mismatched: [String] = []
        for p in pairs where renderer.render(p.simplified) != p.bitmap {
            mismatched.append(p.keyID ?? "?")
        }
        #expect(mismatched.isEmpty, "mismatched: \(mismatched.prefix(5))")
    }

    @Test("normalisation equals training/normalize.py on all 8,952 raw drawings")
    func normalizerMatchesPython() async throws {
        let (counts, differ) = try await computeOffPool {
            let raw = try TestData.sharedFile("raw.ndjson.gz")
            var python: [String: [SimplifiedStroke]] = [:]
            for r in try DrawingRecord.read(TestData.fixture("normalized.ndjson.gz")) {
                python[r.keyID ?? ""] = r.simplified
            }
            let differ = raw.filter { StrokeNormalizer.normalize($0.strokes) != python[$0.keyID ?? ""] }.count
            return ((raw.count, python.count), differ)
        }
        #expect(counts == (8952, 8952))
        #expect(differ == 0, "\(differ) drawings normalise differently")
    }

    @Test("Google's simplified drawings are recognised as such; raw ones are not")
    func formatDetection() async throws {
        let (judgedRaw, rawJudgedSimplified) = try await computeOffPool {
            let simplified = try TestData.sharedFile("simplified.ndjson.gz")
            let raw = try TestData.sharedFile("raw.ndjson.gz")
            return (simplified.filter { !StrokeNormalizer.looksSimplified($0.strokes) }.count,
                    raw.filter { StrokeNormalizer.looksSimplified($0.strokes) }.count)
        }
        #expect(judgedRaw == 9)  // the same 9 that training/normalize.looks_simplified rejects
        #expect(rawJudgedSimplified == 0)
    }

    @Test("degenerate drawings still render")
    func degenerate() {
        let r = DoodleRenderer()
        let dot = r.render(StrokeNormalizer.normalize([Stroke(x: [5, 5, 5], y: [7, 7, 7])]))
        #expect(dot.contains { $0 > 0 })
        #expect(StrokeNormalizer.normalize([Stroke(x: [], y: [])]).isEmpty)
        let line = StrokeNormalizer.normalize([Stroke(x: [0, 1, 2, 3, 4, 100], y: [0, 1, 2, 3, 4, 100])])
        #expect(line == [SimplifiedStroke(x: [0, 255], y: [0, 255])])
        #expect(StrokeNormalizer.normalize([Stroke(x: [-1e6, 1e6], y: [3, 3])]) == [SimplifiedStroke(x: [0, 255], y: [0, 0])])
    }
}
