import DoodleClient
import DoodleCore
import DoodleDataset
import DoodleEngine
import DoodlePreprocessing
import DoodleServer
import DoodleTestSupport
import DoodleWire
import Foundation
import NIOCore
import NIOPosix
import SwiftProtobuf
import Testing

enum Paths {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let shared = repoRoot.deletingLastPathComponent().appendingPathComponent("shared/data/quickdraw")
    static let model = repoRoot.appendingPathComponent("models/quickdraw-345").path
}

/// Starts a daemon on an ephemeral port for the test's duration.
func withDaemon<T>(_ configure: (inout DoodleDaemon.Configuration) -> Void = { _ in },
                   _ body: (DoodleDaemon, Int) async throws -> T) async throws -> T {
    var config = DoodleDaemon.Configuration()
    config.tcp = .address(host: "127.0.0.1", port: 0)
    config.grpc = .address(host: "127.0.0.1", port: 0)
    config.http = .address(host: "127.0.0.1", port: 0)
    config.modelPath = Paths.model
    // Debug builds run several times slower than release: a generous bound on queued work (the overload tests set
    // their own).
    config.batcher = .init(workers: 2, maxBatch: 32, maxQueueWaitMillis: 2000)
    configure(&config)
    let daemon = try await DoodleDaemon.start(config)
    do {
        let result = try await body(daemon, daemon.tcpAddress!.port!)
        await daemon.shutdown()
        return result
    } catch {
        await daemon.shutdown()
        throw error
    }
}

@Suite("doodled end to end")
struct DaemonTests {
    static let records: [DrawingRecord] = try! DrawingRecord.read(Paths.shared.appendingPathComponent("simplified.ndjson.gz").path)
    static let pairs: [DrawingRecord] = try! DrawingRecord.read(Paths.shared.appendingPathComponent("render_pairs.ndjson.gz").path)

    /// What the engine says directly for one input (preprocessed in-process, batch of 1).
    static func direct(_ input: DoodleInput, predictor: Predictor, topK: Int = 5) throws -> [ScoredClass] {
        let engine = predictor.engine
        var pixels = [UInt8](repeating: 0, count: engine.inputBytes)
        try pixels.withUnsafeMutableBufferPointer { try Preprocessor().prepare(input, into: $0.baseAddress!) }
        var scores = [Float](repeating: 0, count: engine.classCount)
        let scratch = engine.makeScratch(maxBatch: 1)
        try pixels.withUnsafeBytes { px in
            try scores.withUnsafeMutableBufferPointer { try engine.run(images: px, count: 1, scratch: scratch, scores: $0) }
        }
        return scores.withUnsafeBufferPointer { predictor.top(topK, of: $0, candidates: nil) }
    }

    @Test("1,000 concurrent requests over 50 connections equal the engine run directly; batches form")
    func concurrentRequestsMatchEngine() async throws {
        try await withDaemon { daemon, port in
            let predictor = daemon.model.current.predictor
            let connections = try await withThrowingTaskGroup(of: DoodleConnection.self) { group in
                for _ in 0..<50 { group.addTask { try await DoodleConnection.connect(host: "127.0.0.1", port: port) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            // Half strokes (raw and simplified), half bitmaps.
            let raw = try DrawingRecord.read(Paths.shared.appendingPathComponent("raw.ndjson.gz").path)
            let inputs: [(Doodle_V1_PredictRequest, DoodleInput)] = (0..<1000).map { i in
                switch i % 3 {
                case 0:
                    let r = Self.records[i % Self.records.count]
                    return (.with { $0.strokes = Doodle_V1_Drawing(quickDraw: r.drawing) }, .strokes(r.strokes, .auto))
                case 1:
                    let r = raw[i % raw.count]
                    return (.with { $0.strokes = Doodle_V1_Drawing(quickDraw: r.drawing) }, .strokes(r.strokes.map { s in
                        Stroke(x: s.x.map { Double(Float($0)) }, y: s.y.map { Double(Float($0)) }, hasTimes: s.hasTimes)
                    }, .auto))
                default:
                    let b = Self.pairs[i % Self.pairs.count].bitmap!
                    return (.with { $0.bitmap = Data(b) }, .bitmap(b))
                }
            }
            let responses = try await withThrowingTaskGroup(of: (Int, Doodle_V1_PredictResponse).self) { group in
                for (i, input) in inputs.enumerated() {
                    let c = connections[i % connections.count]
                    group.addTask { (i, try await c.predict(input.0)) }
                }
                return try await group.reduce(into: [Int: Doodle_V1_PredictResponse]()) { $0[$1.0] = $1.1 }
            }
            #expect(responses.count == 1000)
            var mismatches = 0
            for (i, input) in inputs.enumerated() {
                let r = try #require(responses[i])
                #expect(r.status.code == .ok)
                let expected = try Self.direct(input.1, predictor: predictor)
                let got = r.predictions.map { ScoredClass(index: Int($0.classIndex), score: $0.score) }
                if got != expected { mismatches += 1 }
                #expect(r.predictions.map(\.label) == expected.map { predictor.labels[$0.index] })
                #expect(r.modelName == "quickdraw-345")
            }
            #expect(mismatches == 0)
            #expect(daemon.batcher.statistics.largestBatch > 1, "no batch larger than 1 formed")
            for c in connections { await c.close() }
        }
    }

    @Test("requests sent one at a time to a quiet server run on the event loop, with the engine's answers")
    func loneRequestsRunInline() async throws {
        try await withDaemon({ $0.batcher.inlineAfterIdleMicros = 50 }) { daemon, port in
            let predictor = daemon.model.current.predictor
            let c = try await DoodleConnection.connect(host: "127.0.0.1", port: port)
            for i in 0..<20 {
                let bitmap = Self.pairs[i].bitmap!
                let r = try await c.predict(.with { $0.bitmap = Data(bitmap) })
                #expect(r.status.code == .ok)
                let expected = try Self.direct(.bitmap(bitmap), predictor: predictor)
                #expect(r.predictions.map { ScoredClass(index: Int($0.classIndex), score: $0.score) } == expected)
                try await Task.sleep(for: .milliseconds(2))  // quiet for far longer than 50 us
            }
            #expect(daemon.batcher.statistics.ranInline == 20)
            let (_, text) = try await httpGet(port: daemon.httpAddress!.port!, path: "/metrics")
            #expect(metric(text, "doodled_requests_inline_total") == 20)
            #expect(metric(text, #"doodled_requests_total{transport="tcp",code="OK"}"#) == 20)
            await c.close()
        }
    }

    @Test("model info over raw TCP")
    func modelInfo() async throws {
        try await withDaemon { _, port in
            let c = try await DoodleConnection.connect(host: "127.0.0.1", port: port)
            let info = try await c.modelInfo()
            #expect(info.labels.count == 345 && info.labels[1] == "airplane")
            #expect(info.inputHeight == 28 && info.inputWidth == 28 && info.inputChannels == 1)
            await c.close()
        }
    }

    @Test("bad requests get INVALID_ARGUMENT with a message, and the connection keeps serving")
    func invalidRequests() async throws {
        try await withDaemon { _, port in
            let c = try await DoodleConnection.connect(host: "127.0.0.1", port: port)
            let bitmap = Data(Self.pairs[0].bitmap!)
            let cases: [(Doodle_V1_PredictRequest, String)] = [
                (.with { $0.bitmap = bitmap.prefix(783) }, "783 bytes"),
                (.with { $0.bitmap = bitmap; $0.topK = 10_000 }, "top_k 10000"),
                (.with { $0.bitmap = bitmap; $0.candidateLabels = ["unicorn"] }, "unknown candidate label"),
                (.with { $0.bitmap = bitmap; $0.candidateIndices = [345] }, "out of range"),
                (Doodle_V1_PredictRequest(), "no input"),
                (.with { $0.strokes = .with { $0.strokes = [.with { $0.x = [1, 2]; $0.y = [1] }] } }, "2 x values but 1 y"),
            ]
            for (request, fragment) in cases {
                let r = try await c.predict(request)
                #expect(r.status.code == .invalidArgument)
                #expect(r.status.message.contains(fragment), "'\(r.status.message)' lacks '\(fragment)'")
            }
            let ok = try await c.predict(.with { $0.bitmap = bitmap; $0.candidateLabels = ["cat", "dog"]; $0.topK = 2 })
            #expect(ok.status.code == .ok)
            #expect(Set(ok.predictions.map(\.label)) == ["cat", "dog"])
            #expect(abs(ok.predictions.map(\.score).reduce(0, +) - 1) < 1e-4)
            await c.close()
        }
    }

    @Test("unreadable frames are answered; an oversized length closes the connection; others are unaffected")
    func framingErrors() async throws {
        try await withDaemon({ $0.connectionLimits.maxFrameBytes = 4096 }) { _, port in
            let bad = try await DoodleConnection.connect(host: "127.0.0.1", port: port)
            try await bad.sendRaw([1, 0, 0, 0, 2, 0xAB, 0xCD])  // compressed flag
            try await bad.sendRaw([0, 0, 0, 0, 3, 0xFF, 0xFF, 0xFF])  // not a protobuf
            let ok = try await bad.predict(.with { $0.bitmap = Data(Self.pairs[1].bitmap!) })
            #expect(ok.status.code == .ok)
            let unmatched = try await bad.unmatchedResponses()
            #expect(unmatched.count == 2)
            #expect(unmatched.allSatisfy { $0.predict.status.code == .invalidArgument })
            #expect(unmatched.first?.predict.status.message.contains("compressed") == true)

            try await bad.sendRaw([0, 0x7F, 0xFF, 0xFF, 0xFF])  // 2 GiB declared
            #expect(await eventually { !bad.isActive })

            let other = try await DoodleConnection.connect(host: "127.0.0.1", port: port)
            #expect(try await other.predict(.with { $0.bitmap = Data(Self.pairs[2].bitmap!) }).status.code == .ok)
            await other.close()
        }
    }

    @Test("a client stalled mid-frame does not hold up others", .timeLimit(.minutes(1)))
    func slowClient() async throws {
        // frame-timeout far away: this is about others being served, not about cutting the slow one off.
        try await withDaemon({ $0.connectionLimits.frameTimeout = .seconds(600) }) { _, port in
            let slow = try await DoodleConnection.connect(host: "127.0.0.1", port: port)
            try await slow.sendRaw([0, 0, 0, 4, 0, 0x0A])  // 1,024-byte frame, 1 byte of it sent
            let fast = try await DoodleConnection.connect(host: "127.0.0.1", port: port)
            // Were the stalled frame holding anything up, these would never be answered (the time limit fails it).
            for i in 0..<50 {
                let r = try await fast.predict(.with { $0.bitmap = Data(Self.pairs[i].bitmap!) })
                #expect(r.status.code == .ok)
            }
            #expect(slow.isActive)
            await slow.close()
            await fast.close()
        }
    }

    @Test("deadlines: a request that cannot meet its deadline is answered DEADLINE_EXCEEDED")
    func deadline() async throws {
        // One worker held up by a long max-delay; a 1 ms deadline expires while it waits.
        try await withDaemon({ $0.batcher = .init(workers: 1, maxBatch: 64, maxDelayMicros: 50_000) }) { _, port in
            let c = try await DoodleConnection.connect(host: "127.0.0.1", port: port)
            let r = try await c.predict(.with { $0.bitmap = Data(Self.pairs[0].bitmap!); $0.deadlineMs = 1 })
            #expect(r.status.code == .deadlineExceeded)
            let ok = try await c.predict(.with { $0.bitmap = Data(Self.pairs[0].bitmap!); $0.deadlineMs = 5_000 })
            #expect(ok.status.code == .ok)
            await c.close()
        }
    }
}

@Suite("doodle eval parity")
struct EvalParityTests {
    @Test("doodle eval over the validation drawings gives exactly training/evaluate's int8 accuracy (the model card's)")
    func evalMatchesTraining() async throws {
        let dir = URL(fileURLWithPath: Paths.model)
        let records = try DrawingRecord.read(dir.appendingPathComponent("validation.ndjson.gz").path)
        let evaluation = try JSONSerialization.jsonObject(
            with: Data(contentsOf: dir.appendingPathComponent("evaluation.json"))) as? [String: Any]
        let trainingTop1 = try #require(evaluation?["top1"] as? Double)
        let trainingTop3 = try #require(evaluation?["top3"] as? Double)
        let trainingN = try #require(evaluation?["n"] as? Int)
        #expect(records.count == trainingN)
        let result = try await withDaemon { _, port in
            try await Evaluation(host: "127.0.0.1", port: port).run(records)
        }
        #expect(result.drawings == records.count)
        #expect(result.errors.isEmpty)
        // training/evaluate scores an int8 model with training/int8_reference.py, the engine's exact arithmetic and
        // its tie-breaking (the lower class index first): the same answers, drawing for drawing.
        #expect(Int((result.top1Accuracy * Double(records.count)).rounded()) == Int((trainingTop1 * Double(trainingN)).rounded()),
                "daemon top-1 \(result.top1Accuracy) vs training/evaluate \(trainingTop1)")
        #expect(Int((result.top3Accuracy * Double(records.count)).rounded()) == Int((trainingTop3 * Double(trainingN)).rounded()),
                "daemon top-3 \(result.top3Accuracy) vs training/evaluate \(trainingTop3)")
        // Class-balanced (each class weighs the same, as in an evaluation set with as many drawings of every class).
        let balancedTop1 = try #require(evaluation?["balanced_top1"] as? Double)
        let balancedTop3 = try #require(evaluation?["balanced_top3"] as? Double)
        #expect(abs(result.balancedTop1Accuracy - balancedTop1) < 1e-9, "\(result.balancedTop1Accuracy) vs \(balancedTop1)")
        #expect(abs(result.balancedTop3Accuracy - balancedTop3) < 1e-9, "\(result.balancedTop3Accuracy) vs \(balancedTop3)")
    }

    @Test("doodle eval --input image: real drawings drawn on canvases (PNG files) score about as their strokes do")
    func imagesScoreAsStrokes() async throws {
        let records = Array(try DrawingRecord.read(URL(fileURLWithPath: Paths.model).appendingPathComponent("validation.ndjson.gz").path)
            .enumerated().filter { $0.offset % 40 == 0 }.map(\.element))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("canvases-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let manifest = try await computeOffPool { () -> [DrawingRecord] in
            var random = SplitMix64(seed: 11)
            return try records.enumerated().map { i, record in
                let width = 280 + Int(random.next() % 521), height = 280 + Int(random.next() % 321)
                let pen = 2.5 + 11.5 * random.nextUnit(), span = 0.45 + 0.45 * random.nextUnit()
                var canvas = TestCanvas(width: width, height: height)
                canvas.draw(quickDraw: record.drawing, pen: pen, span: span,
                            origin: (Double(width) * (1 - span) * random.nextUnit(), Double(height) * (1 - span) * random.nextUnit()))
                try Data(canvas.png()).write(to: directory.appendingPathComponent("\(i).png"))
                var withImage = record
                withImage.image = "\(i).png"
                return withImage
            }
        }
        let (strokes, images) = try await withDaemon { _, port in
            let evaluation = Evaluation(host: "127.0.0.1", port: port)
            return (try await evaluation.run(manifest), try await evaluation.run(manifest, input: .image(directory: directory.path)))
        }
        #expect(images.drawings == records.count && images.errors.isEmpty, "\(images.errors)")
        #expect(images.top3Accuracy >= strokes.top3Accuracy - 0.15,
                "pictures top-3 \(images.top3Accuracy), strokes \(strokes.top3Accuracy) on \(records.count) drawings")
        #expect(images.top1Accuracy >= strokes.top1Accuracy - 0.15,
                "pictures top-1 \(images.top1Accuracy), strokes \(strokes.top1Accuracy) on \(records.count) drawings")
    }
}
