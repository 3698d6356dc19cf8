import DoodleCore
import DoodleDataset
import DoodleServer
import DoodleWire
import Foundation
import SwiftProtobuf
import Testing

/// A client that sends everything, closes its sending side (`shutdown(SHUT_WR)`, `nc -N`) and reads to the end
/// gets every answer: end of input after whole frames means "no more requests", not "gone".
@Suite("Half-closed connections get every answer")
struct HalfCloseTests {
    static let pairs: [DrawingRecord] = try! DrawingRecord.read(Paths.shared.appendingPathComponent("render_pairs.ndjson.gz").path)

    /// 100 pipelined messages of one kind, numbered 1...100.
    static func messages(_ kind: String) -> [Doodle_V1_ClientMessage] {
        (1...100).map { i in
            let record = Self.pairs[i % Self.pairs.count]
            switch kind {
            case "bitmaps":
                return .with { $0.predict = .with { $0.requestID = UInt64(i); $0.bitmap = Data(record.bitmap!) } }
            case "strokes":
                return .with { $0.predict = .with { $0.requestID = UInt64(i); $0.strokes = Doodle_V1_Drawing(quickDraw: record.drawing) } }
            default:
                return .with { $0.modelInfo = .with { $0.requestID = UInt64(i) } }
            }
        }
    }

    /// The request ids of every answer read until the server closes.
    static func answerIDs(_ connection: RawConnection) -> [UInt64]? {
        var ids: [UInt64] = []
        while true {
            switch connection.read(timeout: 10) {
            case .message(let m):
                switch m.message {
                case .predict(let p) where p.status.code == .ok: ids.append(p.requestID)
                case .modelInfo(let info): ids.append(info.requestID)
                default: return nil
                }
            case .closed: return ids
            case .timedOut: return nil
            }
        }
    }

    @Test("100 pipelined requests then shutdown(SHUT_WR): 100 answers, 20 of 20 tries, then the server closes",
          arguments: ["bitmaps", "strokes", "model info"])
    func everyAnswerAfterHalfClose(kind: String) async throws {
        try await withDaemon { daemon, port in
            var bytes: [UInt8] = []
            for message in Self.messages(kind) {
                let payload: [UInt8] = try message.serializedBytes()
                let n = UInt32(payload.count)
                bytes += [0, UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)] + payload
            }
            for attempt in 1...20 {
                let connection = try RawConnection(port: port)
                connection.send(bytes)
                connection.shutdownWrite()
                let ids = Self.answerIDs(connection)
                #expect(ids.map { $0.count == 100 && Set($0) == Set(1...100) } == true,
                        "try \(attempt): \(ids.map { "\($0.count) answers" } ?? "an error, or no close")")
            }
            let frames = daemon.metrics.tcpFrames
            #expect(frames.framesRead == 2000 && frames.framesWritten == 2000, "read \(frames.framesRead), answered \(frames.framesWritten)")
        }
    }

    @Test("a frame cut by the end of input is still an error, after the answers to the whole frames before it")
    func truncatedFrameAfterWholeOnes() async throws {
        try await withDaemon { daemon, port in
            let connection = try RawConnection(port: port)
            for message in Self.messages("bitmaps").prefix(10) { try connection.send(message) }
            connection.send([0, 0, 0, 0, 50, 1, 2, 3])
            connection.shutdownWrite()
            var answered = Set<UInt64>()
            var error: String?
            loop: while true {
                switch connection.read(timeout: 10) {
                case .message(let m):
                    guard case .predict(let p) = m.message else { break loop }
                    if p.status.code == .ok { answered.insert(p.requestID) } else { error = p.status.message }
                case .closed, .timedOut: break loop
                }
            }
            #expect(answered == Set(1...10))
            #expect(error == "connection closed in the middle of a frame (8 bytes of it received); closing the connection")
            #expect(daemon.metrics.tcpFrames.framesRead == 10 && daemon.metrics.tcpFrames.framesWritten == 10)
        }
    }
}
