import DoodleClient
import DoodleCore
import DoodleGRPC
import DoodlePreprocessing
import DoodleServer
import DoodleTestSupport
import DoodleWire
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import SwiftProtobuf
import Testing

/// docs/protocol.md's promises, each checked against a running daemon, over raw TCP and gRPC. (The field rules
/// are in `WireContractTests`, half-close in `HalfCloseTests`, every bad input in `BadInputMatrixTests`; each
/// test names the sentence it checks.)
@Suite("Protocol conformance (docs/protocol.md)")
struct ProtocolConformanceTests {
    static let bitmap = Data(repeating: 0, count: 784)

    /// Runs `body` with a gRPC client of the daemon's gRPC port.
    static func withGRPC<T: Sendable>(_ daemon: DoodleDaemon,
                                      _ body: @Sendable (Doodle_V1_Classifier.Client<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
        let client = GRPCClient(transport: try HTTP2ClientTransport.Posix(
            target: .ipv4(address: "127.0.0.1", port: daemon.grpcPort!), transportSecurity: .plaintext))
        let connections = Task { try await client.runConnections() }
        defer {
            client.beginGracefulShutdown()
            connections.cancel()
        }
        return try await body(Doodle_V1_Classifier.Client(wrapping: client))
    }

    /// At most eight requests in flight per connection or stream, and requests wait 300 ms for company in the
    /// batcher: eight stay in flight while a ninth arrives.
    static func eightInFlightHeld(_ config: inout DoodleDaemon.Configuration) {
        config.connectionLimits.maxInFlightPerConnection = 8
        config.batcher = .init(workers: 1, maxBatch: 64, maxDelayMicros: 300_000)
    }

    @Test("'send requests without waiting, up to max-in-flight unanswered; a request beyond that is answered RESOURCE_EXHAUSTED at once': raw TCP")
    func pipeliningToTheCapAndOnePast() async throws {
        try await withDaemon(Self.eightInFlightHeld) { _, port in
            let connection = try RawConnection(port: port)
            var bytes: [UInt8] = []
            for id in 1...9 {
                let payload: [UInt8] = try predict { $0.requestID = UInt64(id); $0.bitmap = Self.bitmap }.serializedBytes()
                bytes += [0, 0, 0, UInt8(payload.count >> 8), UInt8(payload.count & 0xff)] + payload
            }
            connection.send(bytes)
            let answers = try await offPool { (1...9).compactMap { _ in connection.readPredict() } }
            #expect(answers.count == 9)
            #expect(answers.first?.requestID == 9, "the refusal comes first, before the batch: \(answers.map(\.requestID))")
            #expect(answers.first?.status.code == .resourceExhausted)
            #expect(answers.first?.status.message == "8 requests in flight on this connection (limit 8)")
            #expect(answers.dropFirst().allSatisfy { $0.status.code == .ok })
            #expect(Set(answers.dropFirst().map(\.requestID)) == Set(1...8))
        }
    }

    @Test("'send requests without waiting, up to max-in-flight unanswered': gRPC PredictStream answers the one past the cap in the stream")
    func streamCap() async throws {
        try await withDaemon(Self.eightInFlightHeld) { daemon, _ in
            let answers = try await Self.withGRPC(daemon) { client in
                try await client.predictStream(requestProducer: { writer in
                    for id in 1...9 { try await writer.write(.with { $0.requestID = UInt64(id); $0.bitmap = Self.bitmap }) }
                }, onResponse: { response in
                    var all: [Doodle_V1_PredictResponse] = []
                    for try await answer in response.messages { all.append(answer) }
                    return all
                })
            }
            #expect(answers.count == 9)
            #expect(answers.first?.requestID == 9 && answers.first?.status.code == .resourceExhausted)
            #expect(answers.first?.status.message == "8 requests in flight on this stream")
            #expect(Set(answers.dropFirst().map(\.requestID)) == Set(1...8))
            #expect(answers.allSatisfy { $0.modelName == daemon.model.current.predictor.name })
        }
    }

    /// The bytes of the first code block after `heading` in docs/protocol.md: each line's leading hex pairs.
    static func documentedBytes(after heading: String) throws -> [UInt8] {
        let doc = try String(contentsOf: Paths.repoRoot.appendingPathComponent("docs/protocol.md"), encoding: .utf8)
        let block = doc.components(separatedBy: heading)[1].components(separatedBy: "```")[1]
        return block.split(separator: "\n").flatMap { line in
            line.split(separator: " ").prefix { $0.count == 2 && UInt8($0, radix: 16) != nil }.map { UInt8($0, radix: 16)! }
        }
    }

    @Test("the worked example's request bytes are what protobuf encodes, and the daemon answers them as shown")
    func workedExample() async throws {
        let bytes = try Self.documentedBytes(after: "## Worked example, byte by byte")
        let expected = Doodle_V1_ClientMessage.with {
            $0.predict = .with {
                $0.requestID = 7
                $0.strokes = .with { $0.strokes = [.with { $0.x = [0, 255]; $0.y = [0, 255] }] }
                $0.topK = 3
            }
        }
        let payload: [UInt8] = try expected.serializedBytes()
        #expect(bytes == [0, 0, 0, 0, UInt8(payload.count)] + payload)
        try await withDaemon { daemon, port in
            let connection = try RawConnection(port: port)
            connection.send(bytes)
            let answer = try await offPool { connection.readPredict() }
            #expect(answer?.requestID == 7 && answer?.status.code == .ok && answer?.predictions.count == 3)
            #expect(answer?.modelName == daemon.model.current.predictor.name)
            // The documented answer (one prediction of the three): the shipped model's, byte for byte.
            let shown = try Self.documentedBytes(after: "A response (shortened to one prediction) reads:")
            #expect(Int(shown[4]) == shown.count - 5)
            let documented = try Doodle_V1_ServerMessage(serializedBytes: Array(shown.dropFirst(5))).predict
            #expect(answer?.predictions.first == documented.predictions.first)
            #expect(answer?.requestID == documented.requestID && answer?.status == documented.status)
            #expect(answer?.modelName == documented.modelName && answer?.modelVersion == documented.modelVersion)
        }
    }

    @Test("'Responses come back in any order; match them to requests by request_id'")
    func outOfOrderAnswers() async throws {
        try await withDaemon({ $0.batcher = .init(workers: 1, maxBatch: 64, maxDelayMicros: 300_000) }) { _, port in
            let connection = try RawConnection(port: port)
            try connection.send(predict { $0.requestID = 1; $0.bitmap = Self.bitmap })
            try connection.send(.with { $0.modelInfo = .with { $0.requestID = 2 } })
            let first = try await offPool { connection.read() }
            let second = try await offPool { connection.read() }
            guard case .message(let a) = first, case .message(let b) = second else {
                Issue.record("expected two answers, got \(first) and \(second)")
                return
            }
            #expect(a.modelInfo.requestID == 2, "the model info, asked second, is answered first")
            #expect(b.predict.requestID == 1 && b.predict.status.code == .ok)
        }
    }

    @Test("'max-frame-bytes bounds the payload length, not counting the 5-byte header'")
    func frameSizeCountsThePayload() async throws {
        try await withDaemon({ $0.connectionLimits.maxFrameBytes = 64 }) { _, port in
            let atLimit = try RawConnection(port: port)
            atLimit.sendFrame([UInt8](repeating: 0xff, count: 64))
            let answer = try await offPool { atLimit.readPredict() }
            #expect(answer?.status.code == .invalidArgument && answer?.status.message.hasPrefix("the frame is not a doodle.v1.ClientMessage") == true)
            #expect(try await offPool { stillOpen(atLimit) })

            let over = try RawConnection(port: port)
            over.sendFrame([UInt8](repeating: 0xff, count: 65))
            let refusal = try await offPool { over.readPredict() }
            #expect(refusal?.status.message == "frame of 65 bytes exceeds the limit of 64 bytes; closing the connection")
            #expect(try await offPool { over.isClosedByServer() })
        }
    }

    @Test("'every answer names the model': the same bad requests get the same code and message over raw TCP and gRPC")
    func grpcAnswersAsTCPDoes() async throws {
        let bad: [Doodle_V1_PredictRequest] = [
            .with { $0.requestID = 1; $0.topK = 3 },
            .with { $0.requestID = 2; $0.bitmap = Data(count: 783) },
            .with { $0.requestID = 3; $0.bitmap = Self.bitmap; $0.candidateLabels = ["Cat"] },
            .with { $0.requestID = 4; $0.bitmap = Self.bitmap; $0.topK = 400 },
            .with { $0.requestID = 5; $0.strokes = .with { $0.strokes = [.with { $0.x = [1, 2]; $0.y = [1, 2]; $0.t = [0, .nan] }] } },
            // Pictures refused when read (the header), and by the worker that decodes them.
            .with { $0.requestID = 6; $0.image = Doodle_V1_Image(encoded: CraftedPNG.header(width: 100_000, height: 10)) },
            .with { $0.requestID = 7; $0.image = Doodle_V1_Image(encoded: TestCanvas(width: 300, height: 200).png()) },
            .with { $0.requestID = 8; $0.image = Doodle_V1_Image(encoded: canvasWithDrawing().png().prefix(500)) },
        ]
        try await withDaemon { daemon, port in
            let model = daemon.model.current.predictor
            let connection = try RawConnection(port: port)
            var tcp: [Doodle_V1_PredictResponse] = []
            for request in bad {
                try connection.send(.with { $0.predict = request })
                if let answer = try await offPool({ connection.readPredict() }) { tcp.append(answer) }
            }
            #expect(tcp.count == bad.count)
            #expect(tcp.allSatisfy { $0.status.code == .invalidArgument && $0.modelName == model.name && $0.modelVersion == model.version })

            let (unary, streamed, info) = try await Self.withGRPC(daemon) { client in
                var unary: [RPCError] = []
                for request in bad {
                    do {
                        _ = try await client.predict(request)
                    } catch let error as RPCError {
                        unary.append(error)
                    }
                }
                let streamed = try await client.predictStream(requestProducer: { writer in
                    for request in bad { try await writer.write(request) }
                }, onResponse: { response in
                    var all: [Doodle_V1_PredictResponse] = []
                    for try await answer in response.messages { all.append(answer) }
                    return all
                })
                let info = try await client.getModelInfo(.with { $0.requestID = 7 })
                return (unary, streamed, info)
            }
            #expect(unary.map(\.code) == Array(repeating: .invalidArgument, count: bad.count))
            #expect(unary.map(\.message) == tcp.map(\.status.message))
            #expect(streamed.sorted { $0.requestID < $1.requestID }.map(\.status.message) == tcp.map(\.status.message))
            #expect(streamed.allSatisfy { $0.modelName == model.name && $0.modelVersion == model.version })
            #expect(info.requestID == 7 && info.status.code == .ok && info.labels == model.labels)
        }
    }

    @Test("a picture of a canvas gets the same answer over raw TCP (as the CLI sends it) and gRPC as the engine gives for it directly")
    func imageParity() async throws {
        let png = canvasWithDrawing().png()
        try await withDaemon { daemon, port in
            let model = daemon.model.current.predictor
            let expected = try DaemonTests.direct(.image(.encoded(png)), predictor: model, topK: 3)
            let request = Doodle_V1_PredictRequest.with { $0.requestID = 9; $0.image = Doodle_V1_Image(encoded: png); $0.topK = 3 }
            let connection = try await DoodleConnection.connect(host: "127.0.0.1", port: port)
            let tcp = try await connection.predict(request)
            await connection.close()
            let grpc = try await Self.withGRPC(daemon) { try await $0.predict(request) }
            for answer in [tcp, grpc] {
                #expect(answer.status.code == .ok)
                #expect(answer.predictions.map(\.classIndex) == expected.map { UInt32($0.index) })
                #expect(answer.predictions.map(\.score) == expected.map(\.score))
            }
        }
    }
}
