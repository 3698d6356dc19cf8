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
}
