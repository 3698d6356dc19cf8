import DoodleCairoReference
import DoodleCore
import DoodleLoad
import DoodlePreprocessing
import DoodleWire
import Foundation
import SwiftProtobuf

/// Single-thread cost of each server stage a stroke request goes through before inference, per drawing,
/// on the load client's inputs (simplified and raw drawings apart). Prints one JSON line per stage and kind.
///
///     doodle-preprocess-bench DATA_DIR [--seconds S]
///
/// Stages: `decode` (protobuf bytes -> message), `convert` (message -> validated request), `normalize`
/// (strokes -> simplified form), `render` (simplified strokes -> 784 bytes, `DoodleRenderer`), `render_cairo`
/// (the same bytes drawn by libcairo, `CairoRenderer`), and `prepare` (normalize and render together, as a
/// worker does).
@main
struct PreprocessBench {
    static func main() throws {
        var args = Array(CommandLine.arguments.dropFirst())
        var seconds = 1.0
        if let i = args.firstIndex(of: "--seconds"), i + 1 < args.count {
            seconds = Double(args[i + 1]) ?? 1
            args.removeSubrange(i...(i + 1))
        }
        guard args.count == 1 else {
            FileHandle.standardError.write(Data("usage: doodle-preprocess-bench DATA_DIR [--seconds S]\n".utf8))
            exit(2)
        }
        let all = try LoadInputs(kind: .strokes, dataDirectory: args[0]).requests
        let labels = (0..<345).map { "class\($0)" }
        let validator = RequestValidator(limits: RequestLimits(), labels: labels)
        let groups: [(String, [Doodle_V1_PredictRequest])] = [
            ("simplified", all.filter { !$0.strokes.strokes.contains { !$0.t.isEmpty } }),
            ("raw", all.filter { $0.strokes.strokes.contains { !$0.t.isEmpty } }),
        ]
        for (kind, requests) in groups {
            let encoded = try requests.map { r in
                try Doodle_V1_ClientMessage.with { $0.predict = r }.serializedBytes() as [UInt8]
            }
            let converted = try requests.map { try validator.request(from: $0) }
            let simplified = converted.map { r -> [SimplifiedStroke] in
                guard case .strokes(let s, let f) = r.input else { return [] }
                return Preprocessor.simplify(s, format: f)
            }
            let renderer = DoodleRenderer()
            let cairo = CairoRenderer()
            let preprocessor = Preprocessor()
            var output = [UInt8](repeating: 0, count: 784)
            let points = requests.reduce(0) { $0 + $1.strokes.strokes.reduce(0) { $0 + $1.x.count } }
            let simplePoints = simplified.reduce(0) { $0 + $1.reduce(0) { $0 + $1.x.count } }
            func time(_ stage: String, _ body: (Int) throws -> Void) rethrows {
                var n = 0
                let start = DispatchTime.now().uptimeNanoseconds
                var elapsed = 0.0
                while elapsed < seconds {
                    for i in 0..<requests.count { try body(i) }
                    n += requests.count
                    elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                }
                let row: [String: Any] = ["kind": kind, "stage": stage, "drawings": requests.count,
                                          "mean_points_in": Double(points) / Double(requests.count),
                                          "mean_points_rendered": Double(simplePoints) / Double(requests.count),
                                          "us_per_drawing": elapsed / Double(n) * 1e6]
                let data = try! JSONSerialization.data(withJSONObject: row, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            }
            try time("decode") { i in _ = try Doodle_V1_ClientMessage(serializedBytes: encoded[i]) }
            try time("convert") { i in _ = try validator.request(from: requests[i]) }
            time("normalize") { i in
                guard case .strokes(let s, let f) = converted[i].input else { return }
                _ = Preprocessor.simplify(s, format: f)
            }
            time("render") { i in output.withUnsafeMutableBufferPointer { renderer.render(simplified[i], into: $0.baseAddress!) } }
            time("render_cairo") { i in output.withUnsafeMutableBufferPointer { cairo.render(simplified[i], into: $0.baseAddress!) } }
            time("prepare") { i in
                output.withUnsafeMutableBufferPointer { _ = try? preprocessor.prepare(converted[i].input, into: $0.baseAddress!) }
            }
        }
    }
}
