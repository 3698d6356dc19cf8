import DoodleCore
import DoodleDataset
import DoodleWire
import Foundation
import NIOCore
import NIOPosix
import SwiftProtobuf

/// Sends labelled drawings through a running doodled and scores its answers.
public struct Evaluation: Sendable {
    public struct Result: Sendable {
        public var drawings = 0
        public var top1 = 0
        public var top3 = 0
        /// Requests answered with a non-OK status, by status name.
        public var errors: [String: Int] = [:]
        /// Per class label: (drawings, top-1 hits, top-3 hits).
        public var perClass: [String: (n: Int, top1: Int, top3: Int)] = [:]
        /// With `capture`: answers by capture status (`captured`, `full`, ...).
        public var captures: [String: Int] = [:]
        /// With `capture`: the ids of the captured drawings.
        public var captureIDs: [String] = []

        public var top1Accuracy: Double { self.drawings == 0 ? 0 : Double(self.top1) / Double(self.drawings) }
        public var top3Accuracy: Double { self.drawings == 0 ? 0 : Double(self.top3) / Double(self.drawings) }
        /// The mean of the per-class top-1 accuracies: every class weighs the same however many drawings it has.
        public var balancedTop1Accuracy: Double { self.classMean { Double($0.top1) / Double($0.n) } }
        /// The mean of the per-class top-3 accuracies.
        public var balancedTop3Accuracy: Double { self.classMean { Double($0.top3) / Double($0.n) } }

        private func classMean(_ accuracy: ((n: Int, top1: Int, top3: Int)) -> Double) -> Double {
            let classes = self.perClass.values.filter { $0.n > 0 }
            return classes.isEmpty ? 0 : classes.map(accuracy).reduce(0, +) / Double(classes.count)
        }
    }

    /// What is sent for each record.
    public enum Input: Sendable {
        /// Its strokes, format AUTO.
        case strokes
        /// The picture its `image` field names (a PNG or JPEG file, relative to `directory`), as sent by a client
        /// that holds a canvas: the file's bytes, untouched.
        case image(directory: String)
    }

    public var host: String
    public var port: Int
    public var connections: Int
    /// Requests in flight per connection.
    public var depth: Int
    /// Send each record's `word` as its capture label (the server stores the drawing for retraining).
    public var capture: Bool

    public init(host: String, port: Int, connections: Int = 4, depth: Int = 32, capture: Bool = false) {
        self.host = host
        self.port = port
        self.connections = max(1, connections)
        self.depth = max(1, depth)
        self.capture = capture
    }

    /// Sends every record concurrently and counts top-1/top-3 hits against `word`.
    public func run(_ records: [DrawingRecord], input: Input = .strokes) async throws -> Result {
        if case .image = input, let record = records.first(where: { $0.image == nil }) {
            throw EvaluationError("a record of \(record.word ?? "?") has no image field (needed with image input)")
        }
        let conns = try await withThrowingTaskGroup(of: DoodleConnection.self) { group in
            for _ in 0..<self.connections {
                group.addTask { try await DoodleConnection.connect(host: self.host, port: self.port) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        defer { Task { for c in conns { await c.close() } } }
        let lanes = self.connections * self.depth
        return try await withThrowingTaskGroup(of: Result.self) { group in
            for lane in 0..<lanes {
                let connection = conns[lane % conns.count]
                group.addTask {
                    var r = Result()
                    var i = lane
                    while i < records.count {
                        let record = records[i]
                        var request = Doodle_V1_PredictRequest.with { $0.topK = 3 }
                        if self.capture { request.captureLabel = record.word ?? "" }
                        switch input {
                        case .strokes:
                            request.strokes = Doodle_V1_Drawing(quickDraw: record.drawing)
                        case .image(let directory):
                            let path = (directory as NSString).appendingPathComponent(record.image ?? "")
                            request.image = Doodle_V1_Image(encoded: try Data(contentsOf: URL(fileURLWithPath: path)))
                        }
                        let response = try await connection.predict(request)
                        let label = record.word ?? ""
                        r.drawings += 1
                        var entry = r.perClass[label] ?? (0, 0, 0)
                        entry.n += 1
                        if self.capture {
                            r.captures[response.capture.name ?? "none", default: 0] += 1
                            if response.capture == .captured { r.captureIDs.append(response.captureID) }
                        }
                        if response.status.code != .ok {
                            r.errors["\(response.status.code)", default: 0] += 1
                        } else {
                            let labels = response.predictions.map(\.label)
                            if labels.first == label {
                                r.top1 += 1
                                entry.top1 += 1
                            }
                            if labels.prefix(3).contains(label) {
                                r.top3 += 1
                                entry.top3 += 1
                            }
                        }
                        r.perClass[label] = entry
                        i += lanes
                    }
                    return r
                }
            }
            var total = Result()
            for try await r in group {
                total.drawings += r.drawings
                total.top1 += r.top1
                total.top3 += r.top3
                total.errors.merge(r.errors, uniquingKeysWith: +)
                total.perClass.merge(r.perClass) { a, b in (a.n + b.n, a.top1 + b.top1, a.top3 + b.top3) }
                total.captures.merge(r.captures, uniquingKeysWith: +)
                total.captureIDs += r.captureIDs
            }
            return total
        }
    }
}

/// A problem with the evaluation's input (not the server's answers).
public struct EvaluationError: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
