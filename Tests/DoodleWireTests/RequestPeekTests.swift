import DoodleCore
import DoodleWire
import Foundation
import NIOCore
import SwiftProtobuf
import Testing

@Suite("Shedding without decoding: RequestPeek")
struct RequestPeekTests {
    func buffer(_ message: Doodle_V1_ClientMessage) throws -> ByteBuffer {
        ByteBuffer(bytes: try message.serializedBytes() as [UInt8])
    }

    @Test("tells a prediction from a model-info request and reads either's request_id; nil when unreadable")
    func kindAndID() throws {
        #expect(RequestPeek.request(try buffer(.with { $0.predict = .with { $0.requestID = 42; $0.topK = 3 } }))! == (.predict, 42))
        #expect(RequestPeek.request(try buffer(.with { $0.modelInfo = .with { $0.requestID = 7 } }))! == (.modelInfo, 7))
        #expect(RequestPeek.request(try buffer(.with { $0.modelInfo = .with { _ in } }))! == (.modelInfo, 0))
        #expect(RequestPeek.request(ByteBuffer(bytes: [0xff, 0xff, 0xff])) == nil)
        #expect(RequestPeek.request(ByteBuffer()) == nil)
        // A prediction whose request_id comes after its input (fields in any order) is still read.
        let late = Doodle_V1_PredictRequest.with { $0.bitmap = Data(count: 784); $0.requestID = 1 << 40 }
        var bytes: [UInt8] = try Doodle_V1_ClientMessage.with { $0.predict = late }.serializedBytes()
        #expect(RequestPeek.request(ByteBuffer(bytes: bytes))! == (.predict, 1 << 40))
        bytes.removeLast()  // cut inside the message: not readable
        #expect(RequestPeek.request(ByteBuffer(bytes: bytes)) == nil)
    }

    @Test("finds the request_id of a prediction, and only of a prediction")
    func peek() throws {
        let strokes = Doodle_V1_Drawing.with { $0.strokes = [.with { $0.x = [1, 2, 300]; $0.y = [4, 5, 6]; $0.t = [0, 1, 2] }] }
        #expect(RequestPeek.predictRequestID(try buffer(.with { $0.predict = .with { $0.requestID = 42; $0.strokes = strokes; $0.topK = 3 } })) == 42)
        #expect(RequestPeek.predictRequestID(try buffer(.with { $0.predict = .with { $0.bitmap = Data(count: 784); $0.requestID = 1 << 40 } })) == 1 << 40)
        #expect(RequestPeek.predictRequestID(try buffer(.with { $0.predict = .with { $0.bitmap = Data(count: 784) } })) == 0)
        #expect(RequestPeek.predictRequestID(try buffer(.with { $0.modelInfo = .with { $0.requestID = 7 } })) == nil)
        #expect(RequestPeek.predictRequestID(ByteBuffer(bytes: [0xff, 0xff, 0xff])) == nil)
        #expect(RequestPeek.predictRequestID(ByteBuffer(bytes: [0x0a, 0x10, 0x08])) == nil)  // a length past the end
    }

    @Test("reads the request_id and status of a prediction's answer, and nothing else")
    func responsePeek() throws {
        func peek(_ message: Doodle_V1_ServerMessage) throws -> (requestID: UInt64, code: Int)? {
            ResponsePeek.predictOutcome(ByteBuffer(bytes: try message.serializedBytes() as [UInt8]))
        }
        let ok = try peek(.with { $0.predict = .with {
            $0.requestID = 1 << 33
            $0.predictions = [.with { $0.classIndex = 7; $0.label = "cat"; $0.score = 0.5 }]
            $0.modelName = "quickdraw-345"
        } })
        #expect(ok?.requestID == 1 << 33 && ok?.code == 0)
        let refused = try peek(.with { $0.predict = .with {
            $0.requestID = 9
            $0.status = .with { $0.code = .resourceExhausted; $0.message = "full" }
        } })
        #expect(refused?.requestID == 9 && refused?.code == 8)
        #expect(try peek(.with { $0.modelInfo = .with { $0.requestID = 3 } }) == nil)
        #expect(ResponsePeek.predictOutcome(ByteBuffer(bytes: [0x0a, 0x05, 0x08])) == nil)
    }

    /// Each id's frame from `writer`, checked to be one whole frame with flags 0, as (id, payload).
    func framesWritten(by writer: PredictFrameWriter) throws -> [(id: UInt64, payload: ByteBuffer)] {
        try [0, 1, 127, 128, 300, 1 << 40, .max].map { (id: UInt64) in
            var buffer = ByteBuffer()
            writer.write(requestID: id, into: &buffer)
            let frame = try #require(try FrameDecoder(maxFrameBytes: 1 << 20).next(&buffer))
            #expect(buffer.readableBytes == 0 && frame.flags == 0)
            return (id, frame.payload)
        }
    }

    @Test("PredictFrameWriter's frames decode as the request with the id it was given")
    func frameWriter() throws {
        let request = Doodle_V1_PredictRequest.with { $0.bitmap = Data((0..<784).map { UInt8($0 % 251) }); $0.topK = 3; $0.requestID = 5 }
        for (id, payload) in try self.framesWritten(by: PredictFrameWriter(request)) {
            var expected = request
            expected.requestID = id
            #expect(try Doodle_V1_ClientMessage(serializedBytes: Array(payload.readableBytesView)).predict == expected)
        }
    }

    @Test("PredictFrameWriter(answering:) frames decode as the answer with the id it was given")
    func answerWriter() throws {
        let answer = Doodle_V1_PredictResponse.error(ServiceError(.resourceExhausted, "the request queue is full"))
        for (id, payload) in try self.framesWritten(by: PredictFrameWriter(answering: answer)) {
            var expected = answer
            expected.requestID = id
            #expect(try Doodle_V1_ServerMessage(serializedBytes: Array(payload.readableBytesView)).predict == expected)
            #expect(ResponsePeek.predictOutcome(payload)! == (id, Int(Doodle_V1_StatusCode.resourceExhausted.rawValue)))
        }
    }
}
