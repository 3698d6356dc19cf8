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

    @Test("image limits: bytes, and pixels from the header or as declared, are checked before anything is decoded")
    func imageLimits() throws {
        var limits = RequestLimits()
        limits.maxImageBytes = 100
        limits.maxImagePixels = 1000
        let v = RequestValidator(limits: limits, labels: ["cat"])
        #expect(throws: ServiceError.invalidArgument("the image has 101 bytes; the limit is 100")) {
            try v.validateImage(.pixels([UInt8](repeating: 0, count: 101), width: 101, height: 1, format: .grey8))
        }
        #expect(throws: ServiceError.invalidArgument("the image is 40 x 30 pixels; the limit is 1000 pixels (max-image-pixels)")) {
            try v.validateImage(.pixels([UInt8](repeating: 0, count: 40), width: 40, height: 30, format: .grey8))
        }
        try v.validateImage(.pixels([UInt8](repeating: 0, count: 100), width: 25, height: 1, format: .rgba8))
        #expect(throws: ServiceError.self) {
            try v.validateImage(.pixels([UInt8](repeating: 0, count: 4), width: 1 << 40, height: 1 << 40, format: .grey8))
        }
        // An encoded file's size comes from its header: 60 bytes claiming 40 x 30.
        let header: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8)
            + [0, 0, 0, 40, 0, 0, 0, 30, 8, 0, 0, 0, 0, 0, 0, 0, 0]
        #expect(throws: ServiceError.invalidArgument("the image is 40 x 30 pixels; the limit is 1000 pixels (max-image-pixels)")) {
            try v.validateImage(.encoded(header))
        }
        #expect(throws: ServiceError.invalidArgument("the image is empty (0 bytes)")) { try v.validateImage(.encoded([])) }
    }
}
