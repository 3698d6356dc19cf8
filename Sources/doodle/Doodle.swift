import ArgumentParser
import DoodleCapture
import DoodleClient
import DoodleCore
import DoodleDataset
import DoodleWire
import Foundation
import SwiftProtobuf

/// Command-line client for doodled.
@main
struct Doodle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doodle",
        abstract: "Ask a running doodled what a drawing is.",
        subcommands: [Predict.self, Eval.self, Info.self, Captures.self])
}

struct ServerOption: ParsableArguments {
    @Option(help: "doodled's raw-TCP address, host:port.")
    var server = "127.0.0.1:7431"

    func split() throws -> (String, Int) {
        guard let address = HostPort(self.server) else {
            throw ValidationError("--server: expected host:port, got '\(self.server)'")
        }
        return (address.host, address.port)
    }
}

struct Predict: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict one drawing: an ndjson line (strokes), a PNG, or a file of 784 raw bytes.")

    @OptionGroup var server: ServerOption

    @Argument(help: "Drawing file: .ndjson/.ndjson.gz (first line, or --line), a picture of a canvas (PNG or JPEG, sent as it is), or 784 raw bytes (a 28 x 28 bitmap).")
    var file: String

    @Option(help: "Which line of an ndjson file (from 1).")
    var line = 1

    @Option(name: .customLong("top-k"), help: "Classes to print.")
    var topK: UInt32 = 5

    @Option(help: "Comma-separated candidate labels to choose among.")
    var candidates: String?

    @Flag(help: """
        Predict every drawing of the ndjson file and print one tab-separated line each: line number, status \
        code, then class:label:score for each class, the score as the hex bits of its float (for exact \
        comparisons, e.g. by the C client's interop test).
        """)
    var each = false

    mutating func run() async throws {
        if self.each { return try await self.predictEach() }
        var request = Doodle_V1_PredictRequest()
        request.topK = self.topK
        if let candidates { request.candidateLabels = candidates.split(separator: ",").map(String.init) }
        if self.file.hasSuffix(".ndjson") || self.file.hasSuffix(".ndjson.gz") {
            let records = try DrawingRecord.read(self.file)
            guard self.line >= 1, self.line <= records.count else {
                throw ValidationError("\(self.file) has \(records.count) lines; --line \(self.line) is out of range")
            }
            request.strokes = Doodle_V1_Drawing(quickDraw: records[self.line - 1].drawing)
            if let word = records[self.line - 1].word { print("drawing of: \(word)") }
        } else {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: self.file))
            if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) || bytes.starts(with: [0xFF, 0xD8, 0xFF]) {
                // A PNG or JPEG goes to the server as it is: the server finds the drawing on it.
                request.image = Doodle_V1_Image(encoded: bytes)
            } else {
                guard bytes.count == 784 else {
                    throw ValidationError("\(self.file): \(bytes.count) bytes, neither a PNG, a JPEG nor a raw 28 x 28 bitmap (784 bytes)")
                }
                request.bitmap = bytes
            }
        }
        let (host, port) = try self.server.split()
        let connection = try await DoodleConnection.connect(host: host, port: port)
        defer { Task { await connection.close() } }
        let response = try await connection.predict(request)
        guard response.status.code == .ok else {
            throw ValidationError("server: \(response.status.code): \(response.status.message)")
        }
        for p in response.predictions {
            print(String(format: "%6.2f%%  %@ (%d)", 100 * p.score, p.label, p.classIndex))
        }
        print("model: \(response.modelName) v\(response.modelVersion)")
    }

    /// `--each`: every drawing of the file, 64 in flight on one connection, printed in file order.
    func predictEach() async throws {
        guard self.file.hasSuffix(".ndjson") || self.file.hasSuffix(".ndjson.gz") else {
            throw ValidationError("--each needs an .ndjson or .ndjson.gz file")
        }
        let records = try DrawingRecord.read(self.file)
        let (host, port) = try self.server.split()
        let connection = try await DoodleConnection.connect(host: host, port: port)
        defer { Task { await connection.close() } }
        let (topK, candidates) = (self.topK, self.candidates?.split(separator: ",").map(String.init))
        var answers = [Doodle_V1_PredictResponse?](repeating: nil, count: records.count)
        try await withThrowingTaskGroup(of: (Int, Doodle_V1_PredictResponse).self) { group in
            var next = 0
            func submit() {
                let index = next
                next += 1
                group.addTask {
                    let request = Doodle_V1_PredictRequest.with {
                        $0.strokes = Doodle_V1_Drawing(quickDraw: records[index].drawing)
                        $0.topK = topK
                        if let candidates { $0.candidateLabels = candidates }
                    }
                    return (index, try await connection.predict(request))
                }
            }
            while next < min(64, records.count) { submit() }
            while let (index, response) = try await group.next() {
                answers[index] = response
                if next < records.count { submit() }
            }
        }
        for (index, answer) in answers.enumerated() {
            guard let answer else { continue }
            let classes = answer.predictions.map { "\($0.classIndex):\($0.label):" + String(format: "%08x", $0.score.bitPattern) }
            print("\(index + 1)\t\(answer.status.code.rawValue)\t\(classes.joined(separator: " "))")
        }
    }
}

struct Eval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send every labelled drawing of an ndjson file through doodled and print top-1 / top-3 accuracy.")

    @OptionGroup var server: ServerOption

    @Argument(help: "Labelled drawings, simplified or raw: .ndjson or .ndjson.gz.")
    var file: String

    @Option(help: "Connections to open.")
    var connections = 4

    @Option(help: "Requests in flight per connection.")
    var depth = 32

    @Flag(help: "Print accuracy per class.")
    var perClass = false

    @Option(help: """
        What to send: 'strokes' (each record's drawing), or 'image' (the picture file its image field names, \
        relative to the ndjson file, as bench/image/make_canvases.py writes them).
        """)
    var input = "strokes"

    @Flag(help: "Send each drawing's word as its capture label: a doodled with capture-dir stores it for retraining.")
    var capture = false

    mutating func run() async throws {
        let records = try DrawingRecord.read(self.file)
        let (host, port) = try self.server.split()
        let input: Evaluation.Input
        switch self.input {
        case "strokes": input = .strokes
        case "image": input = .image(directory: (self.file as NSString).deletingLastPathComponent)
        default: throw ValidationError("--input must be strokes or image")
        }
        let start = Date()
        let r = try await Evaluation(host: host, port: port, connections: self.connections, depth: self.depth,
                                     capture: self.capture)
            .run(records, input: input)
        if self.perClass {
            for (label, c) in r.perClass.sorted(by: { $0.key < $1.key }) {
                print(String(format: "%-28@ %5d %7.1f%% %7.1f%%", label, c.n, 100 * Double(c.top1) / Double(max(1, c.n)),
                             100 * Double(c.top3) / Double(max(1, c.n))))
            }
        }
        let seconds = Date().timeIntervalSince(start)
        print(String(format: "drawings: %d  top-1: %.2f%%  top-3: %.2f%%  class-balanced top-1: %.2f%%  top-3: %.2f%%  (%.1f s)",
                     r.drawings, 100 * r.top1Accuracy, 100 * r.top3Accuracy, 100 * r.balancedTop1Accuracy,
                     100 * r.balancedTop3Accuracy, seconds))
        if !r.errors.isEmpty { print("errors: \(r.errors)") }
        if self.capture {
            print("captures: " + r.captures.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
    }
}

struct Captures: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with the drawings a doodled captured (capture-dir).",
        subcommands: [Export.self])

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the captured drawings as Quick, Draw! ndjson (DIR/captures.ndjson), for `python -m training.prepare --source`.",
            discussion: "Reads the store without stopping the daemon: every capture acknowledged so far is exported.")

        @Argument(help: "Directory to write captures.ndjson into (created if needed).")
        var directory: String

        @Option(help: "The capture store: doodled's capture-dir.")
        var store = "captures"

        mutating func run() async throws {
            try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
            let output = URL(fileURLWithPath: self.directory).appendingPathComponent("captures.ndjson")
            let summary = try CaptureExport(storeDirectory: self.store).write(to: output)
            var line = "exported \(summary.drawings) drawings from \(summary.store.segments) segments to \(output.path)"
            if summary.skippedPictures > 0 { line += " (\(summary.skippedPictures) pictures with no drawing found skipped)" }
            if summary.store.unreadableBytes > 0 { line += " (\(summary.store.unreadableBytes) bytes not yet whole skipped)" }
            print(line)
        }
    }
}

struct Info: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the served model's name, version and labels.")

    @OptionGroup var server: ServerOption

    mutating func run() async throws {
        let (host, port) = try self.server.split()
        let connection = try await DoodleConnection.connect(host: host, port: port)
        defer { Task { await connection.close() } }
        let info = try await connection.modelInfo()
        print("model: \(info.modelName) v\(info.modelVersion)")
        print("input: \(info.inputChannels) x \(info.inputHeight) x \(info.inputWidth) bytes")
        print("quantization: \(info.quantization)")
        print("classes (\(info.labels.count)): \(info.labels.prefix(8).joined(separator: ", ")), ...")
    }
}
