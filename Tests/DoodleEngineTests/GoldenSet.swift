import Foundation

/// Golden inputs and their quantised logits from the exact-integer reference (`training/int8_reference.py`),
/// written by `python -m training.goldens`.
struct GoldenSet {
    let images: [UInt8]
    let logits: [UInt8]
    let count: Int
    let classes: Int

    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func fixture(_ name: String) -> URL {
        Self.repoRoot.appendingPathComponent("Tests/DoodleEngineTests/Fixtures").appendingPathComponent(name)
    }

    init(directory: URL) throws {
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("golden.json")))
            as? [String: Any] ?? [:]
        self.count = meta["count"] as? Int ?? 0
        self.classes = meta["classes"] as? Int ?? 0
        self.images = try [UInt8](Data(contentsOf: directory.appendingPathComponent("images.u8")))
        self.logits = try [UInt8](Data(contentsOf: directory.appendingPathComponent("logits.u8")))
    }
}
