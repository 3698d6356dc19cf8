import DoodleClient
import DoodleCore
import DoodleDataset
@testable import DoodleServer
import DoodleTestSupport
import DoodleWire
import Foundation
import HTTPTypes
import HummingbirdCore
import NIOCore
import SwiftProtobuf
import Testing

/// One row of the HTTP API's bad-input table (docs/bad-input.md).
struct HTTPBadInput: Sendable, CustomTestStringConvertible {
    let input: String
    let status: Int
    let send: @Sendable (Int) throws -> HTTPReply

    var testDescription: String { self.input }
}

private func postJSON(_ port: Int, _ body: String, headers: [String: String] = [:]) throws -> HTTPReply {
    try httpExchange(port: port, method: "POST", path: "/v1/predict",
                     headers: ["Content-Type": "application/json"].merging(headers) { $1 }, body: Array(body.utf8))
}

@Suite("HTTP API: JSON predictions as raw TCP gives them, clear JSON errors, CORS, the page")
struct HTTPAPITests {
    static let records = try! DrawingRecord.read(Paths.shared.appendingPathComponent("simplified.ndjson.gz").path)
    static let lines: [String] = try! GzipLineReader.lines(of: Paths.shared.appendingPathComponent("simplified.ndjson.gz").path)

    @Test("POST /v1/predict with 500 lines of the dataset's ndjson answers the raw-TCP path's classes and scores")
    func parityWithTCP() async throws {
        try await withDaemon { daemon, port in
            let http = daemon.httpAddress!.port!
            let connection = try await DoodleConnection.connect(host: "127.0.0.1", port: port)
            var mismatches: [String] = []
            for (line, record) in zip(Self.lines, Self.records).prefix(500) {
                let tcp = try await connection.predict(.with { $0.strokes = Doodle_V1_Drawing(quickDraw: record.drawing) })
                let reply = try await offPool { try postJSON(http, line) }
                let predictions = reply.json["predictions"] as? [[String: Any]] ?? []
                let labels = predictions.compactMap { $0["label"] as? String }
                let scores = predictions.compactMap { ($0["score"] as? NSNumber)?.floatValue }
                let same = reply.status == 200 && labels == tcp.predictions.map(\.label)
                    && scores.count == tcp.predictions.count
                    && zip(scores, tcp.predictions.map(\.score)).allSatisfy { abs($0 - $1) <= 1e-6 }
                if !same { mismatches.append("\(record.word ?? "?"): \(reply.status) \(reply.body.prefix(200))") }
            }
            await connection.close()
            #expect(mismatches.isEmpty, "\(mismatches.count) of 500 differ: \(mismatches.prefix(3))")
            let (_, metrics) = try await httpGet(port: http, path: "/metrics")
            #expect(metric(metrics, #"doodled_requests_total{transport="http",code="OK"}"#) == 500)
        }
    }

    static let cases: [HTTPBadInput] = [
        HTTPBadInput(input: "a line of the dataset's ndjson (extra fields ignored)", status: 200) { port in
            try postJSON(port, lines[0])
        },
        HTTPBadInput(input: "a canvas as a data URL (toDataURL)", status: 200) { port in
            try postJSON(port, #"{"image": "data:image/png;base64,\#(Data(canvasWithDrawing().png()).base64EncodedString())"}"#)
        },
        HTTPBadInput(input: "a 784-byte bitmap, base64", status: 200) { port in
            try postJSON(port, #"{"bitmap": "\#(Data(count: 784).base64EncodedString())", "top_k": 2}"#)
        },
        HTTPBadInput(input: "malformed JSON", status: 400) { port in try postJSON(port, #"{"drawing": [[[1, 2], [3, 4]]"#) },
        HTTPBadInput(input: "an empty body", status: 400) { port in try postJSON(port, "") },
        HTTPBadInput(input: "JSON that is not an object (an array)", status: 400) { port in try postJSON(port, "[1, 2, 3]") },
        HTTPBadInput(input: "wrong types (a string among the coordinates)", status: 400) { port in
            try postJSON(port, #"{"drawing": [[[1, 2], [3, "four"]]]}"#)
        },
        HTTPBadInput(input: "a stroke with one array", status: 400) { port in try postJSON(port, #"{"drawing": [[[1, 2]]]}"#) },
        HTTPBadInput(input: "no input (only top_k)", status: 400) { port in try postJSON(port, #"{"top_k": 3}"#) },
        HTTPBadInput(input: "drawing and bitmap both", status: 400) { port in
            try postJSON(port, #"{"drawing": [[[1, 2], [3, 4]]], "bitmap": "AAAA"}"#)
        },
        HTTPBadInput(input: "format \"sideways\"", status: 400) { port in
            try postJSON(port, #"{"drawing": [[[1, 2], [3, 4]]], "format": "sideways"}"#)
        },
        HTTPBadInput(input: "top_k -1", status: 400) { port in try postJSON(port, #"{"drawing": [[[1, 2], [3, 4]]], "top_k": -1}"#) },
        HTTPBadInput(input: "top_k 10,000", status: 400) { port in
            try postJSON(port, #"{"drawing": [[[1, 2], [3, 4]]], "top_k": 10000}"#)
        },
        HTTPBadInput(input: "an unknown candidate", status: 400) { port in
            try postJSON(port, #"{"drawing": [[[1, 2], [3, 4]]], "candidates": ["cat", "unicorn-dog"]}"#)
        },
        HTTPBadInput(input: "a bitmap that is not base64", status: 400) { port in try postJSON(port, #"{"bitmap": "***"}"#) },
        HTTPBadInput(input: "a 10-byte bitmap", status: 400) { port in
            try postJSON(port, #"{"bitmap": "\#(Data(count: 10).base64EncodedString())"}"#)
        },
        HTTPBadInput(input: "a blank canvas as image", status: 400) { port in
            try postJSON(port, #"{"image": "\#(Data(TestCanvas(width: 300, height: 200).png()).base64EncodedString())"}"#)
        },
        HTTPBadInput(input: "a huge array: 150,000 points (1.2 MB, over max-points)", status: 400) { port in
            let xs = (0..<150_000).map { String($0 % 256) }.joined(separator: ",")
            return try postJSON(port, #"{"drawing": [[[\#(xs)], [\#(xs)]]]}"#)
        },
        HTTPBadInput(input: "a 10 MB body (Content-Length)", status: 413) { port in
            try postJSON(port, "{" + String(repeating: " ", count: 10 << 20) + "}")
        },
        HTTPBadInput(input: "a 10 MB body (chunked, no length)", status: 413) { port in
            try httpExchange(port: port, method: "POST", path: "/v1/predict", body: Array(repeating: 32, count: 10 << 20),
                             contentLength: false)
        },
        HTTPBadInput(input: "GET /v1/predict", status: 405) { port in try httpExchange(port: port, path: "/v1/predict") },
        HTTPBadInput(input: "an unknown path", status: 404) { port in try httpExchange(port: port, path: "/v2/guess") },
    ]

    @Test("bad HTTP requests get the documented status and a JSON error", arguments: cases)
    func badInput(_ row: HTTPBadInput) async throws {
        try await withDaemon { daemon, _ in
            let reply = try await offPool { try row.send(daemon.httpAddress!.port!) }
            let error = reply.json["error"] as? [String: Any]
            print("| \(row.input) | \(reply.status) | \(error?["code"] as? String ?? "") | \((error?["message"] as? String ?? "").replacingOccurrences(of: "|", with: "/")) |")
            #expect(reply.status == row.status, "\(row.input): \(reply.status) \(reply.body.prefix(300))")
            if [400, 405, 413].contains(row.status) {
                #expect(error?["code"] as? String == "INVALID_ARGUMENT" && !(error?["message"] as? String ?? "").isEmpty,
                        "\(reply.body.prefix(300))")
                #expect(reply.headers["content-type"] == "application/json")
                #expect((reply.json["model"] as? [String: Any])?["name"] as? String == "quickdraw-345")
            }
            // The daemon still answers.
            #expect(try await offPool { try postJSON(daemon.httpAddress!.port!, Self.lines[1]) }.status == 200)
        }
    }

    @Test("every error code maps to its HTTP status; RESOURCE_EXHAUSTED says when to retry")
    func statusMapping() throws {
        let predictor = try Predictor(path: Paths.model)
        let expected: [(StatusCode, Int)] = [(.invalidArgument, 400), (.resourceExhausted, 429), (.unavailable, 503),
                                            (.deadlineExceeded, 504), (.internal, 500)]
        for (code, status) in expected {
            let response = HTTPRoutes.answer(PredictionOutcome(requestID: 0, result: .failure(ServiceError(code, "x")),
                                                               predictor: predictor))
            #expect(Int(response.status.code) == status)
            #expect((response.headers[.retryAfter] != nil) == (code == .resourceExhausted))
        }
    }

    @Test("CORS: the configured origin may call the API (preflight and request); any other gets no CORS headers")
    func cors() async throws {
        try await withDaemon({ $0.httpAPI.corsOrigins = ["http://game.example"] }) { daemon, _ in
            let port = daemon.httpAddress!.port!
            // Blocking sockets: off Swift's cooperative pool, on which the daemon's HTTP handlers run.
            try await offPool { try Self.checkCORS(port: port) }
        }
    }

    static func checkCORS(port: Int) throws {
        let preflight = try httpExchange(port: port, method: "OPTIONS", path: "/v1/predict", headers: [
            "Origin": "http://game.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        ])
        #expect(preflight.status == 204)
        #expect(preflight.headers["access-control-allow-origin"] == "http://game.example")
        #expect(preflight.headers["access-control-allow-methods"]?.contains("POST") == true)
        let allowed = try postJSON(port, Self.lines[0], headers: ["Origin": "http://game.example"])
        #expect(allowed.status == 200 && allowed.headers["access-control-allow-origin"] == "http://game.example")
        let other = try postJSON(port, Self.lines[0], headers: ["Origin": "http://evil.example"])
        #expect(other.status == 200 && other.headers["access-control-allow-origin"] == nil)
        let otherPreflight = try httpExchange(port: port, method: "OPTIONS", path: "/v1/predict", headers: [
            "Origin": "http://evil.example", "Access-Control-Request-Method": "POST",
        ])
        #expect(otherPreflight.headers["access-control-allow-origin"] == nil)
    }

    @Test("GET /v1/model describes the model; GET / serves the page and its script and style")
    func modelAndPage() async throws {
        try await withDaemon { daemon, _ in
            let port = daemon.httpAddress!.port!
            try await offPool { try Self.checkModelAndPage(port: port) }
        }
    }

    static func checkModelAndPage(port: Int) throws {
        let model = try httpExchange(port: port, path: "/v1/model")
        #expect(model.status == 200)
        #expect((model.json["labels"] as? [String])?.count == 345)
        #expect((model.json["input"] as? [String: Int]) == ["channels": 1, "height": 28, "width": 28])
        for (path, type) in [("/", "text/html"), ("/app.js", "text/javascript"), ("/app.css", "text/css")] {
            let reply = try httpExchange(port: port, path: path)
            #expect(reply.status == 200 && reply.headers["content-type"]?.hasPrefix(type) == true, "\(path)")
        }
        #expect(try httpExchange(port: port, path: "/").body.contains(#"<canvas id="canvas""#))
    }
}
