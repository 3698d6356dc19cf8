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

    @Test("a read with a limit gives the file's first records, and stops at its end when the file is shorter")
    func limitedRead() throws {
        let shared = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data/quickdraw")
        let path = shared.appendingPathComponent("simplified.ndjson.gz").path
        let all = try GzipLineReader.lines(of: path)
        // 1,500 lines cross many 64 KiB chunks, so lines split between chunks are joined.
        for limit in [0, 1, 1500] {
            #expect(try GzipLineReader.lines(of: path, limit: limit) == Array(all.prefix(limit)))
        }
        #expect(try DrawingRecord.read(path, limit: 3).map(\.keyID) == all.prefix(3).map { line in
            try? JSONDecoder().decode(DrawingRecord.self, from: Data(line.utf8)).keyID
        })
        let plain = Self.temporary("no-final-newline.ndjson")
        try "a\n\nb\nc".write(toFile: plain, atomically: true, encoding: .utf8)
        #expect(try GzipLineReader.lines(of: plain) == ["a", "b", "c"])
        #expect(try GzipLineReader.lines(of: plain, limit: 10) == ["a", "b", "c"])
        #expect(try GzipLineReader.lines(of: plain, limit: 2) == ["a", "b"])
    }
}
