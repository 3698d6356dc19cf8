import DoodleCore
import DoodleDataset
import DoodlePreprocessing
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
    func normalizerMatchesPython() throws {
        let raw = try TestData.sharedFile("raw.ndjson.gz")
        var python: [String: [SimplifiedStroke]] = [:]
        for r in try DrawingRecord.read(TestData.fixture("normalized.ndjson.gz")) {
            python[r.keyID ?? ""] = r.simplified
        }
        #expect(raw.count == 8952 && python.count == 8952)
        var differ = 0
        for r in raw {
            if StrokeNormalizer.normalize(r.strokes) != python[r.keyID ?? ""] { differ += 1 }
        }
        #expect(differ == 0, "\(differ) drawings normalise differently")
    }

    @Test("Google's simplified drawings are recognised as such; raw ones are not")
    func formatDetection() throws {
        let simplified = try TestData.sharedFile("simplified.ndjson.gz")
        let judgedRaw = simplified.filter { !StrokeNormalizer.looksSimplified($0.strokes) }
        #expect(judgedRaw.count == 9)  // the same 9 that training/normalize.looks_simplified rejects
        let raw = try TestData.sharedFile("raw.ndjson.gz")
        #expect(raw.allSatisfy { !StrokeNormalizer.looksSimplified($0.strokes) })
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

@Suite("Request validation")
struct ValidationTests {
    @Test("every real drawing in the shared data passes the default limits")
    func realDrawingsPass() throws {
        let validator = RequestValidator(limits: RequestLimits(), labels: ["x"])
        for file in ["simplified.ndjson.gz", "raw.ndjson.gz"] {
            for r in try TestData.sharedFile(file) {
                do {
                    try validator.validateStrokes(r.strokes, timeCounts: r.timeCounts)
                } catch {
                    Issue.record("\(file) \(r.keyID ?? "?"): \(error)")
                }
            }
        }
    }

    @Test("limits and malformed strokes are refused with a message")
    func refusals() throws {
        var limits = RequestLimits()
        limits.maxStrokes = 2
        limits.maxPoints = 5
        let v = RequestValidator(limits: limits, labels: ["cat", "dog"])
        let s = Stroke(x: [0, 1], y: [0, 1])
        #expect(throws: ServiceError.invalidArgument("the drawing has 3 strokes; the limit is 2")) {
            try v.validateStrokes([s, s, s], timeCounts: [])
        }
        #expect(throws: ServiceError.self) { try v.validateStrokes([Stroke(x: [0, 1, 2, 3, 4, 5], y: [0, 1, 2, 3, 4, 5])], timeCounts: []) }
        #expect(throws: ServiceError.self) { try v.validateStrokes([Stroke(x: [.nan], y: [0])], timeCounts: []) }
        #expect(throws: ServiceError.self) { try v.validateStrokes([Stroke(x: [1e9], y: [0])], timeCounts: []) }
        #expect(throws: ServiceError.self) { try v.validateStrokes([Stroke(x: [], y: [])], timeCounts: []) }
        #expect(throws: ServiceError.self) { try v.validateStrokes([s], timeCounts: [1]) }
        #expect(throws: ServiceError.self) { try v.topK(3, choices: 2) }
        #expect(try v.topK(0, choices: 2) == 2)
        #expect(try v.candidates(indices: [1], labels: ["cat", "dog"]) == [0, 1])
    }
}
