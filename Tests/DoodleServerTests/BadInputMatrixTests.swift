import DoodleClient
import DoodleCore
import DoodleServer
import DoodleTestSupport
import DoodleWire
import Foundation
import NIOCore
import SwiftProtobuf
import Testing

/// What a bad input did: the status the client got (nil: no answer), whether its connection stayed open, and
/// the server's message.
struct BadInputOutcome: Equatable, Sendable {
    var status: StatusCode?
    var open: Bool
    var message = ""

    static func == (a: Self, b: Self) -> Bool { a.status == b.status && a.open == b.open }
}

/// One row of the bad-input matrix (docs/bad-input.md).
struct BadInputCase: Sendable, CustomTestStringConvertible {
    let input: String
    let expected: (status: StatusCode?, open: Bool)
    let send: @Sendable (RawConnection) throws -> BadInputOutcome

    var testDescription: String { self.input }
}

func predict(_ configure: (inout Doodle_V1_PredictRequest) -> Void) -> Doodle_V1_ClientMessage {
    .with { $0.predict = .with { configure(&$0) } }
}

func strokes(_ points: [[(Float, Float)]], format: Doodle_V1_StrokeFormat = .auto) -> Doodle_V1_Drawing {
    .with {
        $0.format = format
        $0.strokes = points.map { stroke in .with { $0.x = stroke.map(\.0); $0.y = stroke.map(\.1) } }
    }
}

let square: [[(Float, Float)]] = [[(10, 10), (200, 10), (200, 200), (10, 200), (10, 10)]]

/// A 400 x 300 canvas with a house on it, dark on white.
func canvasWithDrawing() -> TestCanvas {
    var canvas = TestCanvas(width: 400, height: 300)
    canvas.draw([[(120, 140), (200, 60), (280, 140), (280, 260), (120, 260), (120, 140), (280, 140)],
                 [(180, 260), (180, 200), (220, 200), (220, 260)]], pen: 7)
    return canvas
}

/// Sends one message and reads its answer; then checks whether the connection still answers.
func answerTo(_ message: Doodle_V1_ClientMessage, on connection: RawConnection) throws -> BadInputOutcome {
    try connection.send(message)
    return outcome(connection)
}

/// The answer to what was just sent, and whether the connection still serves a model-info request after it.
func outcome(_ connection: RawConnection) -> BadInputOutcome {
    let answer = connection.readPredict()
    return BadInputOutcome(status: answer.map { StatusCode(rawValue: $0.status.code.rawValue) ?? .internal },
                           open: stillOpen(connection), message: answer?.status.message ?? "")
}

/// Sends `bytes`, closes the sending side, and reports any answer and whether the server then closed.
func sendThenClose(_ bytes: [UInt8], on connection: RawConnection) -> BadInputOutcome {
    connection.send(bytes)
    connection.shutdownWrite()
    let answer = connection.readPredict()
    return BadInputOutcome(status: answer.map { StatusCode(rawValue: $0.status.code.rawValue) ?? .internal },
                           open: !connection.isClosedByServer(), message: answer?.status.message ?? "")
}

func stillOpen(_ connection: RawConnection) -> Bool {
    guard (try? connection.send(.with { $0.modelInfo = .with { $0.requestID = 99 } })) != nil else { return false }
    while true {
        switch connection.read(timeout: 3) {
        case .message(let m): if case .modelInfo = m.message { return true }
        case .closed, .timedOut: return false
        }
    }
}

@Suite("Bad input: every row answered clearly, the server keeps serving others")
struct BadInputMatrixTests {
    static let cases: [BadInputCase] = [
        BadInputCase(input: "truncated header (3 bytes), then the client closes its side", expected: (.invalidArgument, false)) { c in
            sendThenClose([0, 0, 0], on: c)
        },
        BadInputCase(input: "header announcing 100 bytes, then the client closes its side", expected: (.invalidArgument, false)) { c in
            sendThenClose([0, 0, 0, 0, 100], on: c)
        },
        BadInputCase(input: "length above --max-frame-bytes (1 MiB + 1)", expected: (.invalidArgument, false)) { c in
            let n = (1 << 20) + 1
            c.send([0, UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)])
            return outcome(c)
        },
        BadInputCase(input: "length 0 (an empty ClientMessage)", expected: (.invalidArgument, true)) { c in
            c.sendFrame([])
            return outcome(c)
        },
        BadInputCase(input: "compressed flag set", expected: (.invalidArgument, true)) { c in
            c.sendFrame(try predict { $0.bitmap = Data(count: 784) }.serializedBytes(), flags: 1)
            return outcome(c)
        },
        BadInputCase(input: "unknown flag bits (0x80)", expected: (.invalidArgument, true)) { c in
            c.sendFrame(try predict { $0.bitmap = Data(count: 784) }.serializedBytes(), flags: 0x80)
            return outcome(c)
        },
        BadInputCase(input: "random bytes in a frame (not protobuf)", expected: (.invalidArgument, true)) { c in
            c.sendFrame([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x07, 0x22])
            return outcome(c)
        },
        BadInputCase(input: "random bytes instead of frames (an HTTP request)", expected: (.invalidArgument, false)) { c in
            c.send(Array("GET / HTTP/1.1\r\nHost: doodled\r\n\r\n".utf8))
            return outcome(c)
        },
        BadInputCase(input: "a valid protobuf of another message (a Prediction)", expected: (.invalidArgument, true)) { c in
            let other = Doodle_V1_Prediction.with { $0.classIndex = 5; $0.label = "cat"; $0.score = 0.5 }
            c.sendFrame(try other.serializedBytes())
            return outcome(c)
        },
        BadInputCase(input: "predict with no input", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.topK = 3 }, on: c)
        },
        BadInputCase(input: "empty drawing (no strokes)", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.strokes = Doodle_V1_Drawing() }, on: c)
        },
        BadInputCase(input: "empty stroke (no points)", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.strokes = strokes([[]]) }, on: c)
        },
        BadInputCase(input: "one-point stroke (a dot)", expected: (.ok, true)) { c in
            try answerTo(predict { $0.strokes = strokes([[(100, 100)]]) }, on: c)
        },
        BadInputCase(input: "x and y of different lengths", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.strokes = .with { $0.strokes = [.with { $0.x = [1, 2, 3]; $0.y = [1, 2] }] } }, on: c)
        },
        BadInputCase(input: "times of a different length than the points", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.strokes = .with { $0.strokes = [.with { $0.x = [1, 2]; $0.y = [1, 2]; $0.t = [0] }] } }, on: c)
        },
        BadInputCase(input: "a million points (8 MB: over the frame limit)", expected: (.invalidArgument, false)) { c in
            let xs = [Float](repeating: 1, count: 1_000_000)
            return try answerTo(predict { $0.strokes = .with { $0.strokes = [.with { $0.x = xs; $0.y = xs }] } }, on: c)
        },
        BadInputCase(input: "30,000 points (within the frame limit, over --max-points)", expected: (.invalidArgument, true)) { c in
            let xs = (0..<30_000).map { Float($0 % 256) }
            return try answerTo(predict { $0.strokes = .with { $0.strokes = [.with { $0.x = xs; $0.y = xs }] } }, on: c)
        },
        BadInputCase(input: "5,000 strokes (over --max-strokes)", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.strokes = strokes(Array(repeating: [(1, 1), (2, 2)], count: 5000)) }, on: c)
        },
        BadInputCase(input: "all points equal", expected: (.ok, true)) { c in
            try answerTo(predict { $0.strokes = strokes([[(50, 50), (50, 50), (50, 50)], [(50, 50), (50, 50)]]) }, on: c)
        },
        BadInputCase(input: "negative coordinates (raw canvas)", expected: (.ok, true)) { c in
            try answerTo(predict { $0.strokes = strokes([[(-500, -300), (-100, -300), (-100, 20)]], format: .raw) }, on: c)
        },
        BadInputCase(input: "huge coordinates (1e9)", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.strokes = strokes([[(0, 0), (1e9, 1e9)]]) }, on: c)
        },
        BadInputCase(input: "NaN and infinite coordinates", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.strokes = strokes([[(0, 0), (.nan, .infinity)]]) }, on: c)
        },
        BadInputCase(input: "NaN time", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.strokes = .with { $0.strokes = [.with { $0.x = [1, 2]; $0.y = [1, 2]; $0.t = [0, .nan] }] } }, on: c)
        },
        BadInputCase(input: "783-byte bitmap", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.bitmap = Data(count: 783) }, on: c)
        },
        BadInputCase(input: "785-byte bitmap", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.bitmap = Data(count: 785) }, on: c)
        },
        BadInputCase(input: "top_k 0 (means 5)", expected: (.ok, true)) { c in
            try answerTo(predict { $0.bitmap = Data(count: 784); $0.topK = 0 }, on: c)
        },
        BadInputCase(input: "top_k 10,000", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.bitmap = Data(count: 784); $0.topK = 10_000 }, on: c)
        },
        BadInputCase(input: "unknown candidate label", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.bitmap = Data(count: 784); $0.candidateLabels = ["cat", "not-a-class"] }, on: c)
        },
        BadInputCase(input: "candidate index out of range (345)", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.bitmap = Data(count: 784); $0.candidateIndices = [345] }, on: c)
        },
        BadInputCase(input: "more candidates than --max-candidates (400)", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.bitmap = Data(count: 784); $0.candidateIndices = (0..<400).map { UInt32($0 % 345) } }, on: c)
        },
        BadInputCase(input: "duplicate request ids (two requests, id 7)", expected: (.ok, true)) { c in
            let message = predict { $0.requestID = 7; $0.bitmap = Data(count: 784) }
            try c.send(message)
            try c.send(message)
            let (a, b) = (c.readPredict(), c.readPredict())
            let both = a?.requestID == 7 && b?.requestID == 7 && a?.status.code == .ok && b?.status.code == .ok
            return BadInputOutcome(status: both ? .ok : .internal, open: stillOpen(c), message: "both answered, both with id 7")
        },
        BadInputCase(input: "deadline already past (1 ms, behind 300 queued stroke requests)", expected: (.deadlineExceeded, true)) { c in
            let drawing = strokes([[(0, 0), (255, 255), (0, 255), (255, 0)]], format: .raw)
            // One write, so that the server reads the 300 before the one with the deadline, however slow the client.
            var burst = ByteBuffer()
            for i in 0..<300 {
                writeFrame(try predict { $0.requestID = UInt64(i + 1); $0.strokes = drawing }.serializedBytes() as [UInt8], into: &burst)
            }
            writeFrame(try predict { $0.requestID = 1000; $0.bitmap = Data(count: 784); $0.deadlineMs = 1 }.serializedBytes() as [UInt8],
                       into: &burst)
            c.send(Array(burst.readableBytesView))
            var last: Doodle_V1_PredictResponse?
            for _ in 0...300 { if let r = c.readPredict(), r.requestID == 1000 { last = r } }
            return BadInputOutcome(status: last.map { StatusCode(rawValue: $0.status.code.rawValue)! }, open: stillOpen(c),
                                   message: last?.status.message ?? "")
        },
        BadInputCase(input: "image: a PNG of a drawing on a 400 x 300 canvas", expected: (.ok, true)) { c in
            try answerTo(predict { $0.image = Doodle_V1_Image(encoded: canvasWithDrawing().png()) }, on: c)
        },
        BadInputCase(input: "image: a progressive JPEG of it", expected: (.ok, true)) { c in
            try answerTo(predict { $0.image = Doodle_V1_Image(encoded: canvasWithDrawing().jpeg(progressive: true)) }, on: c)
        },
        BadInputCase(input: "image: a 16-bit PNG of it", expected: (.ok, true)) { c in
            try answerTo(predict { $0.image = Doodle_V1_Image(encoded: canvasWithDrawing().png(.rgba16)) }, on: c)
        },
        BadInputCase(input: "image: a palette PNG of it", expected: (.ok, true)) { c in
            try answerTo(predict { $0.image = Doodle_V1_Image(encoded: canvasWithDrawing().png(.palette)) }, on: c)
        },
        BadInputCase(input: "image: its raw RGBA pixels (getImageData)", expected: (.ok, true)) { c in
            let canvas = canvasWithDrawing()
            return try answerTo(predict {
                $0.image = .with { $0.pixels = Data(canvas.rgba); $0.width = 400; $0.height = 300; $0.pixelFormat = .rgba8 }
            }, on: c)
        },
        BadInputCase(input: "image: neither a file nor pixels (empty)", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.image = Doodle_V1_Image() }, on: c)
        },
        BadInputCase(input: "image: not a picture (a GIF)", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.image = Doodle_V1_Image(encoded: Array("GIF89a....".utf8)) }, on: c)
        },
        BadInputCase(input: "image: a truncated PNG (its first half)", expected: (.invalidArgument, true)) { c in
            let png = canvasWithDrawing().png()
            return try answerTo(predict { $0.image = Doodle_V1_Image(encoded: png.prefix(png.count / 2)) }, on: c)
        },
        BadInputCase(input: "image: a PNG with a corrupt chunk (one byte flipped)", expected: (.invalidArgument, true)) { c in
            var png = canvasWithDrawing().png()
            png[png.count / 2] ^= 0x55
            return try answerTo(predict { $0.image = Doodle_V1_Image(encoded: png) }, on: c)
        },
        BadInputCase(input: "image: a header claiming 100,000 x 100,000 pixels (33 bytes)", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.image = Doodle_V1_Image(encoded: CraftedPNG.header(width: 100_000, height: 100_000)) }, on: c)
        },
        BadInputCase(input: "image: a decompression bomb (a valid 8192 x 8192 PNG of 65 KB)", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.image = Doodle_V1_Image(encoded: CraftedPNG.bomb(width: 8192, height: 8192)) }, on: c)
        },
        BadInputCase(input: "image: a blank canvas", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.image = Doodle_V1_Image(encoded: TestCanvas(width: 400, height: 300).png()) }, on: c)
        },
        BadInputCase(input: "image: all ink (one colour)", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.image = Doodle_V1_Image(encoded: TestCanvas(width: 400, height: 300, grey: 0).png()) }, on: c)
        },
        BadInputCase(input: "image: one pixel", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.image = Doodle_V1_Image(encoded: TestCanvas(width: 1, height: 1, grey: 0).png()) }, on: c)
        },
        BadInputCase(input: "image: raw pixels that do not add up (100 bytes for 20 x 20 RGBA)", expected: (.invalidArgument, true)) { c in
            try answerTo(predict {
                $0.image = .with { $0.pixels = Data(count: 100); $0.width = 20; $0.height = 20; $0.pixelFormat = .rgba8 }
            }, on: c)
        },
        BadInputCase(input: "image: raw pixels without pixel_format", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.image = .with { $0.pixels = Data(count: 400); $0.width = 20; $0.height = 20 } }, on: c)
        },
        BadInputCase(input: "image: a file and raw pixels both", expected: (.invalidArgument, true)) { c in
            try answerTo(predict {
                $0.image = .with { $0.encoded = Data(canvasWithDrawing().png()); $0.pixels = Data(count: 4); $0.width = 2; $0.height = 2 }
            }, on: c)
        },
        BadInputCase(input: "capture_label of 257 bytes", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.strokes = strokes([[(10, 10), (200, 200)]]); $0.captureLabel = String(repeating: "a", count: 257) }, on: c)
        },
        BadInputCase(input: "capture_label with a newline", expected: (.invalidArgument, true)) { c in
            try answerTo(predict { $0.strokes = strokes([[(10, 10), (200, 200)]]); $0.captureLabel = "cat\ndog" }, on: c)
        },
        BadInputCase(input: "a valid request sent one byte at a time", expected: (.ok, true)) { c in
            var frame = ByteBuffer()
            writeFrame(try predict { $0.bitmap = Data(count: 784) }.serializedBytes() as [UInt8], into: &frame)
            for byte in frame.readableBytesView { c.send([byte]) }
            return outcome(c)
        },
    ]

    @Test("Bad input", arguments: cases)
    func badInput(_ row: BadInputCase) async throws {
        try await withDaemon { daemon, port in
            let bystander = try await DoodleConnection.connect(host: "127.0.0.1", port: port)
            let connection = try RawConnection(port: port)
            let got = try await offPool { try row.send(connection) }
            // Everyone else is still served, at once.
            let other = try await bystander.predict(.with { $0.bitmap = Data(count: 784) })
            #expect(other.status.code == .ok)
            await bystander.close()
            print("| \(row.input) | \(got.status.map { "\($0)" } ?? "none") | \(got.open ? "stays open" : "closed") | "
                  + "\(got.message.replacingOccurrences(of: "|", with: "/")) | served |")
            #expect(got.status == row.expected.status, "\(row.input): \(got)")
            #expect(got.open == row.expected.open, "\(row.input): \(got)")
        }
    }
}

@Suite("Connection limits: too many connections, too much in flight, slow senders, idle clients, clients that stop reading")
struct ConnectionLimitTests {
    @Test("Each limit answers or cuts off the offender, and the bystander is served throughout")
    func limits() async throws {
        // Too many connections, on a daemon whose other limits are far away (so slowness cannot close any).
        try await withDaemon({ $0.connectionLimits.maxConnections = 4 }) { daemon, port in
            var extra = try (0..<4).map { _ in try RawConnection(port: port) }
            let fourth = extra[3]
            #expect(try await offPool { stillOpen(fourth) })
            let refused = try RawConnection(port: port)
            let answer = try await offPool { refused.readPredict() }
            #expect(answer?.status.code == .resourceExhausted, "\(String(describing: answer))")
            #expect(answer?.status.message.contains("4 connections") == true)
            #expect(try await offPool { refused.isClosedByServer() })
            let (_, text) = try await httpGet(port: daemon.httpAddress!.port!, path: "/metrics")
            #expect(metric(text, #"doodled_connections_closed_total{reason="too_many_connections"}"#) == 1)
            extra.removeAll()
            #expect(await eventually {
                let bystander = try? await DoodleConnection.connect(host: "127.0.0.1", port: port)
                defer { if let bystander { Task { await bystander.close() } } }
                return (try? await bystander?.predict(.with { $0.bitmap = Data(count: 784) }))?.status.code == .ok
            })
        }
        try await withDaemon({ config in
            config.connectionLimits.maxConnections = 16
            config.connectionLimits.maxInFlightPerConnection = 16
            config.connectionLimits.frameTimeout = .seconds(1)
            config.connectionLimits.idleTimeout = .seconds(2)
            config.connectionLimits.maxWriteBufferBytes = 256 << 10
        }) { daemon, port in
            // Another client, connecting afresh each time (an idle one would itself be closed after 2 s).
            func bystanderServed() async throws -> Bool {
                let bystander = try await DoodleConnection.connect(host: "127.0.0.1", port: port)
                defer { Task { await bystander.close() } }
                return try await bystander.predict(.with { $0.bitmap = Data(count: 784) }).status.code == .ok
            }
            func closedBy(_ reason: String) async throws -> Double {
                let (_, text) = try await httpGet(port: daemon.httpAddress!.port!, path: "/metrics")
                return metric(text, "doodled_connections_closed_total{reason=\"\(reason)\"}")
            }

            // Too much in flight on one connection: the excess is answered RESOURCE_EXHAUSTED, all are answered.
            let pipelined = try RawConnection(port: port)
            let drawing = strokes([[(0, 0), (255, 255), (0, 255), (255, 0)]], format: .raw)
            for i in 0..<200 { try pipelined.send(predict { $0.requestID = UInt64(i + 1); $0.strokes = drawing }) }
            let codes = try await offPool {
                var codes: [Doodle_V1_StatusCode: Int] = [:]
                for _ in 0..<200 { if let r = pipelined.readPredict() { codes[r.status.code, default: 0] += 1 } }
                return codes
            }
            #expect(codes.values.reduce(0, +) == 200 && codes[.ok, default: 0] >= 16 && codes[.resourceExhausted, default: 0] > 0,
                    "\(codes)")

            // A slow sender (a frame trickling in) is cut off after --frame-timeout.
            let slow = try RawConnection(port: port)
            slow.send([0, 0, 0, 3, 20, 10, 0x81])
            let trickle = Task {
                for _ in 0..<20 {
                    try await Task.sleep(for: .milliseconds(200))
                    slow.send([1])
                }
            }
            #expect(try await offPool { slow.isClosedByServer(timeout: 30) })
            trickle.cancel()
            #expect(try await closedBy("frame_timeout") == 1)

            // An idle connection is closed after --idle-timeout (the pipelined one above is idle too).
            let idle = try RawConnection(port: port)
            #expect(try await offPool { idle.isClosedByServer(timeout: 30) })
            #expect(try await closedBy("idle") >= 1)
            #expect(try await bystanderServed())

            // A client that sends but never reads: once 256 KiB of answers wait, it is cut off.
            let deaf = try RawConnection(port: port)
            let big = try predict { $0.bitmap = Data(count: 784); $0.topK = 345 }.serializedBytes() as [UInt8]
            for _ in 0..<400 {
                for _ in 0..<16 { deaf.sendFrame(big) }
                if try await closedBy("slow_reader") == 1 { break }
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(try await closedBy("slow_reader") == 1)
            #expect(try await bystanderServed())
        }
    }
}
