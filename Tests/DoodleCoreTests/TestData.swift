import DoodleCore
import DoodleDataset
import DoodlePreprocessing
import Foundation

/// Paths to the shared Quick, Draw! data and the shipped model.
enum TestData {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let shared = repoRoot.deletingLastPathComponent().appendingPathComponent("shared/data/quickdraw")
    static let model = repoRoot.appendingPathComponent("models/quickdraw-345")

    static func sharedFile(_ name: String) throws -> [DrawingRecord] {
        try DrawingRecord.read(shared.appendingPathComponent(name).path)
    }
}

extension DrawingRecord {
    var simplified: [SimplifiedStroke] { self.strokes.map { SimplifiedStroke(x: $0.x.map { Int32($0) }, y: $0.y.map { Int32($0) }) } }
}
