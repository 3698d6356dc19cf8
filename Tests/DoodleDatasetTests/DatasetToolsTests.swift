import DoodleCore
import DoodleDataset
import DoodlePreprocessing
import Foundation
import Testing

@Suite("Dataset tools: ndjson")
struct DatasetToolsTests {
    static func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("\(UUID().uuidString)-\(name)").path
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
