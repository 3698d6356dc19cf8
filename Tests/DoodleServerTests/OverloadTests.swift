import DoodleClient
import DoodleCore
import DoodleServer
import DoodleTestSupport
import DoodleWire
import Foundation
import NIOCore
import SwiftProtobuf
import Testing

@Suite("Overload: a full queue sheds over raw TCP")
struct OverloadTests {
    @Test("Requests beyond a full queue get RESOURCE_EXHAUSTED under their own request_id, each frame exactly once; the shedding connection is served again after its pause, and others throughout")
    func shedding() async throws {
        let pause = Duration.milliseconds(200)
        try await withDaemon({ config in
            config.batcher = .init(workers: 1, maxBatch: 1, maxQueue: 4)
            config.connectionLimits.shedPause = pause
        }) { daemon, port in
            let burst = try RawConnection(port: port)
            let drawing = strokes([[(0, 0), (255, 255), (0, 255), (255, 0)], [(10, 200), (200, 10)]], format: .raw)
            let n = 600
            for i in 0..<n { try burst.send(predict { $0.requestID = UInt64(i + 1); $0.strokes = drawing }) }
            let answers = try await offPool { (0..<n).compactMap { _ in burst.readPredict(timeout: 30) } }
            #expect(answers.count == n)
            #expect(Set(answers.map(\.requestID)) == Set((1...n).map(UInt64.init)))
            let shed = answers.filter { $0.status.code == .resourceExhausted }
            let ok = answers.filter { $0.status.code == .ok }
            #expect(shed.count + ok.count == n, "other codes: \(answers.filter { $0.status.code != .ok && $0.status.code != .resourceExhausted }.prefix(3))")
            #expect(!shed.isEmpty && !ok.isEmpty, "\(shed.count) shed, \(ok.count) OK")
            #expect(shed.allSatisfy { $0.status.message == "the request queue is full (4 waiting)" && $0.predictions.isEmpty })
            #expect(ok.allSatisfy { $0.predictions.count == 5 })

            // Another connection is served while the first one pauses.
            let bystander = try await DoodleConnection.connect(host: "127.0.0.1", port: port)
            #expect(try await bystander.predict(.with { $0.bitmap = Data(count: 784) }).status.code == .ok)
            await bystander.close()

            // The shedding connection reads again once its pause is over.
            try burst.send(predict { $0.requestID = 10_000; $0.strokes = drawing })
            let again = try await offPool { burst.readPredict(timeout: 30) }
            #expect(again?.requestID == 10_000 && again?.status.code == .ok)

            // Metrics count each refusal, and every frame read was answered.
            let (_, text) = try await httpGet(port: daemon.httpAddress!.port!, path: "/metrics")
            #expect(metric(text, #"doodled_requests_total{transport="tcp",code="RESOURCE_EXHAUSTED"}"#) == Double(shed.count))
            #expect(metric(text, #"doodled_requests_total{transport="tcp",code="OK"}"#) == Double(ok.count + 2))
            #expect(daemon.metrics.tcpFrames.framesRead == n + 2 && daemon.metrics.tcpFrames.framesWritten == n + 2)
        }
    }
}
