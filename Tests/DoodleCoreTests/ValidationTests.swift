import DoodleCore
import DoodleDataset
import DoodlePreprocessing
import Foundation
import Testing

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
