import DoodleEngine
import Foundation

/// A loaded model ready to serve: the engine, its labels, and top-k selection over (candidate) classes.
public final class Predictor: Sendable {
    public let engine: InferenceEngine
    /// Class labels, index = class index.
    public let labels: [String]
    public let name: String
    public let version: String
    /// Where the model was loaded from.
    public let path: String

    /// Loads `model.onnx` from a model directory (or an .onnx file). Labels come from the model's metadata,
    /// or from `labels.txt` beside it.
    public init(path: String, isa: KernelISA = .best) throws {
        var isDir: ObjCBool = false
        let file = FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
            ? (path as NSString).appendingPathComponent("model.onnx") : path
        let engine = try InferenceEngine(contentsOf: URL(fileURLWithPath: file), isa: isa)
        var labels = engine.metadata.labels
        let labelsFile = ((file as NSString).deletingLastPathComponent as NSString).appendingPathComponent("labels.txt")
        if engine.metadata.properties["doodle.labels"] == nil,
           let text = try? String(contentsOfFile: labelsFile, encoding: .utf8) {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if lines.count >= engine.classCount { labels = Array(lines.prefix(engine.classCount)) }
        }
        self.engine = engine
        self.labels = labels
        self.name = engine.metadata.name
        self.version = engine.metadata.version
        self.path = file
    }

    /// The best `k` classes from one image's probabilities, renormalised over `candidates` when given.
    public func top(_ k: Int, of scores: UnsafeBufferPointer<Float>, candidates: [Int]?) -> [ScoredClass] {
        var best: [ScoredClass] = []
        best.reserveCapacity(k + 1)
        var total: Float = 0
        func consider(_ i: Int) {
            let s = scores[i]
            total += s
            if best.count == k, let last = best.last, s <= last.score { return }
            var pos = best.count
            while pos > 0 && best[pos - 1].score < s { pos -= 1 }
            best.insert(ScoredClass(index: i, score: s), at: pos)
            if best.count > k { best.removeLast() }
        }
        if let candidates {
            for i in candidates { consider(i) }
            if total > 0 {
                for j in best.indices { best[j].score /= total }
            }
        } else {
            for i in 0..<scores.count { consider(i) }
        }
        return best
    }
}
