import DoodleCore
import DoodleServer
import DoodleWire
import Foundation
import NIOCore
import SwiftProtobuf
import Testing

/// The field meanings docs/protocol.md and the .proto state, checked against a running daemon over raw TCP.
@Suite("Wire contract: one meaning per field")
struct WireContractTests {
    /// The next message from the server, whatever its kind.
    static func next(_ connection: RawConnection) throws -> Doodle_V1_ServerMessage {
        guard case .message(let message) = connection.read() else { throw POSIXError(.ETIMEDOUT) }
        return message
    }

    static let bitmap = Data(repeating: 0, count: 784)

    @Test("a frame refused for its flags is answered in kind under its request_id, labelled with the model")
    func flagRefusalsEchoTheID() async throws {
        try await withDaemon { daemon, port in
            let connection = try RawConnection(port: port)
            let model = daemon.model.current.predictor
            for flags: UInt8 in [1, 0x80] {
                connection.sendFrame(try predict { $0.requestID = 77; $0.bitmap = Self.bitmap }.serializedBytes(), flags: flags)
                let answer = try Self.next(connection)
                #expect(answer.predict.requestID == 77 && answer.predict.status.code == .invalidArgument)
                #expect(answer.predict.modelName == model.name && answer.predict.modelVersion == model.version)

                let info = Doodle_V1_ClientMessage.with { $0.modelInfo = .with { $0.requestID = 78 } }
                connection.sendFrame(try info.serializedBytes(), flags: flags)
                let infoAnswer = try Self.next(connection)
                guard case .modelInfo(let refused) = infoAnswer.message else {
                    Issue.record("a refused model-info frame was answered as \(infoAnswer)")
                    continue
                }
                #expect(refused.requestID == 78 && refused.status.code == .invalidArgument && refused.labels.isEmpty)
                #expect(refused.modelName == model.name)
            }
            // Unreadable: answered as a prediction with request_id 0.
            connection.sendFrame([0xff, 0xff, 0xff], flags: 1)
            let unreadable = try Self.next(connection)
            #expect(unreadable.predict.requestID == 0 && unreadable.predict.status.code == .invalidArgument)
        }
    }

    @Test("every answer names the model and has a status: OK, refusals, model info; request_id 0 is echoed")
    func everyAnswerIsLabelled() async throws {
        try await withDaemon { daemon, port in
            let connection = try RawConnection(port: port)
            let model = daemon.model.current.predictor
            try connection.send(predict { $0.requestID = 0; $0.bitmap = Self.bitmap })
            let ok = try Self.next(connection).predict
            #expect(ok.requestID == 0 && ok.status.code == .ok && ok.predictions.count == 5)
            try connection.send(predict { $0.requestID = 5; $0.bitmap = Data(count: 3) })
            let invalid = try Self.next(connection).predict
            #expect(invalid.requestID == 5 && invalid.status.code == .invalidArgument)
            for answer in [ok, invalid] {
                #expect(answer.modelName == model.name && answer.modelVersion == model.version)
            }
            try connection.send(.with { $0.modelInfo = .with { $0.requestID = 6 } })
            let info = try Self.next(connection).modelInfo
            #expect(info.requestID == 6 && info.hasStatus && info.status.code == .ok && info.labels.count == model.labels.count)
        }
    }

    @Test("top_k 0 means 5, or every distinct candidate when fewer; duplicates count once for top_k, as sent for the limit")
    func topKAndCandidates() async throws {
        try await withDaemon({ $0.requestLimits.maxCandidates = 4 }) { daemon, port in
            let connection = try RawConnection(port: port)
            try connection.send(predict { $0.requestID = 1; $0.bitmap = Self.bitmap; $0.candidateIndices = [3, 3, 7] })
            let two = try Self.next(connection).predict
            #expect(two.status.code == .ok && two.predictions.map(\.classIndex).sorted() == [3, 7])
            try connection.send(predict { $0.requestID = 2; $0.bitmap = Self.bitmap; $0.candidateIndices = [3, 3, 7]; $0.topK = 3 })
            #expect(try Self.next(connection).predict.status.message == "top_k 3 exceeds the 2 classes to choose from")
            try connection.send(predict { $0.requestID = 3; $0.bitmap = Self.bitmap; $0.candidateIndices = [1, 1, 1, 1, 1] })
            #expect(try Self.next(connection).predict.status.message == "5 candidates; the limit is 4")
            let label = daemon.model.current.predictor.labels[10]
            try connection.send(predict { $0.requestID = 4; $0.bitmap = Self.bitmap; $0.candidateLabels = [label.uppercased()] })
            #expect(try Self.next(connection).predict.status.message == "unknown candidate label \"\(label.uppercased())\"")
        }
    }

    @Test("doodled_requests_total counts every raw-TCP answer by code: their sum is the frames answered")
    func metricsCountEveryAnswer() async throws {
        try await withDaemon { daemon, port in
            let connection = try RawConnection(port: port)
            try connection.send(predict { $0.requestID = 1; $0.bitmap = Self.bitmap })
            connection.sendFrame(try predict { $0.requestID = 2; $0.bitmap = Self.bitmap }.serializedBytes(), flags: 1)
            connection.sendFrame([0xff, 0x01])
            connection.sendFrame([])
            try connection.send(.with { $0.modelInfo = .with { $0.requestID = 3 } })
            try connection.send(predict { $0.requestID = 4; $0.bitmap = Data(count: 1) })
            for _ in 0..<6 { _ = try Self.next(connection) }
            let (_, text) = try await httpGet(port: daemon.httpAddress!.port!, path: "/metrics")
            let ok = metric(text, #"doodled_requests_total{transport="tcp",code="OK"}"#)
            let invalid = metric(text, #"doodled_requests_total{transport="tcp",code="INVALID_ARGUMENT"}"#)
            #expect(ok == 2 && invalid == 4, "OK \(ok), INVALID_ARGUMENT \(invalid)")
            #expect(daemon.metrics.tcpFrames.framesWritten == 6)
        }
    }
}
