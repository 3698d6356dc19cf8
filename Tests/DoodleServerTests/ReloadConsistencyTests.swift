import DoodleClient
import DoodleCore
import DoodleDataset
@testable import DoodleEngine
import DoodlePreprocessing
import DoodleServer
import DoodleWire
import Foundation
import SwiftProtobuf
import Testing

/// Reloads between models of different shapes while requests are in flight: every answer must be what the model
/// it names computes, and nothing may read past a score row (also run it with `scripts/test-sanitizers address`).
@Suite("Reload under load: one model per request")
struct ReloadConsistencyTests {
    /// The three models it alternates between: the shipped one (345 classes), the engine tests' 10-class
    /// fixture, and the shipped weights under another version with its labels reversed.
    static func models(in directory: URL) throws -> [String] {
        let shipped = Paths.model
        let tiny = Paths.repoRoot.appendingPathComponent("Tests/DoodleEngineTests/Fixtures/tiny/tiny.onnx").path
        var proto = try Onnx_ModelProto(serializedBytes: try Data(contentsOf: URL(fileURLWithPath: shipped + "/model.onnx")))
        for i in proto.metadataProps.indices {
            switch proto.metadataProps[i].key {
            case "doodle.model_version": proto.metadataProps[i].value = "relabelled"
            case "doodle.labels":
                proto.metadataProps[i].value = proto.metadataProps[i].value.split(separator: "\n").reversed().joined(separator: "\n")
            default: break
            }
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let relabelled = directory.appendingPathComponent("relabelled.onnx")
        try Data(proto.serializedBytes() as [UInt8]).write(to: relabelled)
        return [shipped, tiny, relabelled.path]
    }

    /// What `predictor` answers for `bitmap` (run directly, batch of 1), as the wire would carry it.
    static func expected(_ request: Doodle_V1_PredictRequest, predictor: Predictor) throws -> [Doodle_V1_Prediction]? {
        let indices = request.candidateIndices.map(Int.init)
        if indices.contains(where: { $0 >= predictor.labels.count }) { return nil }  // refused by this model
        let engine = predictor.engine
        var scores = [Float](repeating: 0, count: engine.classCount)
        let scratch = engine.makeScratch(maxBatch: 1)
        try [UInt8](request.bitmap).withUnsafeBytes { px in
            try scores.withUnsafeMutableBufferPointer { try engine.run(images: px, count: 1, scratch: scratch, scores: $0) }
        }
        let top = scores.withUnsafeBufferPointer {
            predictor.top(Int(request.topK), of: $0, candidates: indices.isEmpty ? nil : indices)
        }
        return top.map { c in .with { $0.classIndex = UInt32(c.index); $0.label = predictor.labels[c.index]; $0.score = c.score } }
    }

    @Test("20 reloads between 345-, 10-class and relabelled models under 4 x 64 pipelined requests: every answer is the named model's")
    func answersMatchTheModelTheyName() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("reload-models-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let paths = try Self.models(in: directory)
        let predictors = try paths.map { try Predictor(path: $0) }
        let key = { (p: Predictor) in "\(p.name) v\(p.version)" }
        #expect(Set(predictors.map(key)).count == 3)

        // Requests: real bitmaps, half restricted to the 345-class model's last ten classes.
        let pairs = try DrawingRecord.read(Paths.shared.appendingPathComponent("render_pairs.ndjson.gz").path)
        let requests: [Doodle_V1_PredictRequest] = (0..<16).map { i in
            .with {
                $0.bitmap = Data(pairs[i * 7].bitmap!)
                $0.topK = 3
                if i % 2 == 0 { $0.candidateIndices = Array(335..<345) }
            }
        }
        var table: [String: [[Doodle_V1_Prediction]?]] = [:]
        for p in predictors { table[key(p)] = try requests.map { try Self.expected($0, predictor: p) } }
        let expectations = table

        try await withDaemon({ $0.batcher = .init(workers: 2, maxBatch: 32, maxQueueWaitMillis: 2000) }) { daemon, port in
            let stop = Locked(false)
            let load = Task {
                try await withThrowingTaskGroup(of: (ok: Int, refused: Int, mismatched: [String]).self) { group in
                    for _ in 0..<4 {
                        let connection = try await DoodleConnection.connect(host: "127.0.0.1", port: port)
                        for lane in 0..<64 {
                            group.addTask {
                                var ok = 0, refused = 0, mismatched: [String] = []
                                var i = lane
                                while !stop.withLock({ $0 }) {
                                    let which = i % requests.count
                                    i += 1
                                    let answer = try await connection.predict(requests[which])
                                    let model = "\(answer.modelName) v\(answer.modelVersion)"
                                    guard let known = expectations[model] else {
                                        mismatched.append("answer names unknown model '\(model)'")
                                        continue
                                    }
                                    switch (answer.status.code, known[which]) {
                                    case (.ok, let want?) where answer.predictions == want:
                                        ok += 1
                                    case (.invalidArgument, nil):
                                        refused += 1
                                    default:
                                        if mismatched.count < 5 {
                                            mismatched.append("request \(which) named \(model): \(answer.status.code) "
                                                              + "\(answer.predictions.map { "\($0.classIndex) \($0.label) \($0.score)" }), "
                                                              + "want \(known[which].map { "\($0.map { "\($0.classIndex) \($0.label) \($0.score)" })" } ?? "a refusal")")
                                        }
                                    }
                                }
                                return (ok, refused, mismatched)
                            }
                        }
                    }
                    return try await group.reduce(into: (ok: 0, refused: 0, mismatched: [String]())) {
                        $0.ok += $1.ok
                        $0.refused += $1.refused
                        $0.mismatched += $1.mismatched
                    }
                }
            }
            for round in 1...20 {
                try await Task.sleep(for: .milliseconds(30))
                try await daemon.reload(path: paths[round % paths.count])
            }
            stop.withLock { $0 = true }
            let result = try await load.value
            print("reload consistency: \(result.ok) answers as their model computes, \(result.refused) refused by the model they name")
            #expect(result.mismatched.isEmpty, "\(result.mismatched)")
            #expect(result.ok > 1000)
            #expect(result.refused > 0)
        }
    }
}
