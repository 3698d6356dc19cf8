import DoodleCore
import DoodleTestSupport
@testable import DoodleServer
import DoodleWire
import Foundation
import NIOCore
import NIOEmbedded
import SwiftProtobuf
import Testing

/// The raw-TCP pipeline's handlers one by one, on NIO's test channels (no sockets).
@Suite("Raw-TCP pipeline handlers")
struct ConnectionPipelineTests {
    static let predictor = try! Predictor(path: Paths.model)

    static func framed(_ message: Doodle_V1_ClientMessage, flags: UInt8 = 0) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        writeFrame(try message.serializedBytes() as [UInt8], flags: flags, into: &buffer)
        return buffer
    }

    static func bitmapRequest(_ id: UInt64) -> Doodle_V1_ClientMessage {
        .with { $0.predict = .with { $0.requestID = id; $0.bitmap = Data(repeating: 0, count: 784) } }
    }

    /// A prediction service over `batcher`, serving the shipped model.
    static func service(_ batcher: DynamicBatcher, metrics: ServiceMetrics) throws -> PredictionService {
        let model = ModelSlot(try ServingModel(predictor: Self.predictor, limits: RequestLimits(),
                                               queueFull: batcher.queueFullError, queueWait: batcher.queueWaitError))
        return PredictionService(batcher: batcher, model: model, metrics: metrics)
    }

    @Test("ClientFrameDecoder: predictions and model info decoded; refusals in kind under their id; nothing once closed")
    func decoder() throws {
        let batcher = DynamicBatcher(configuration: .init(workers: 1))
        defer { batcher.shutdown() }
        let activity = ConnectionActivity()
        let metrics = ServiceMetrics(maxBatch: 64)
        let decoder = ClientFrameDecoder(maxFrameBytes: 1 << 20, service: try Self.service(batcher, metrics: metrics),
                                         metrics: metrics, activity: activity)
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(decoder))
        func next(_ frame: ByteBuffer) throws -> ClientRequest? {
            try channel.writeInbound(frame)
            return try channel.readInbound(as: ClientRequest.self)
        }
        guard case .predict(let request, _) = try next(Self.framed(Self.bitmapRequest(5))) else {
            Issue.record("a prediction was not decoded as one")
            return
        }
        #expect(request.requestID == 5 && request.bitmap.count == 784)
        guard case .modelInfo(requestID: 6) = try next(Self.framed(.with { $0.modelInfo = .with { $0.requestID = 6 } })) else {
            Issue.record("a model-info request was not decoded as one")
            return
        }
        guard case .refused(let error, .modelInfo, 78) = try next(Self.framed(.with { $0.modelInfo = .with { $0.requestID = 78 } }, flags: 1)) else {
            Issue.record("a compressed model-info frame was not refused in kind under its id")
            return
        }
        #expect(error.message == "compressed messages are not supported (flags bit 0 set)")
        guard case .refused(_, .predict, 9) = try next(Self.framed(Self.bitmapRequest(9), flags: 0x40)) else {
            Issue.record("a frame with unknown flags was not refused under its id")
            return
        }
        var empty = ByteBuffer()
        writeFrame([UInt8](), into: &empty)
        guard case .refused(let emptyError, .predict, 0) = try next(empty) else {
            Issue.record("an empty ClientMessage was not refused")
            return
        }
        #expect(emptyError.message == "the ClientMessage is empty: set predict or model_info")
        #expect(metrics.tcpFrames.framesRead == 5)
        activity.acceptsFrames = false
        #expect(try next(Self.framed(Self.bitmapRequest(10))) == nil)
        #expect(metrics.tcpFrames.framesRead == 5)
        _ = try channel.finish()
    }

    @Test("ClientFrameDecoder, overloaded: whole runs of predictions refused unread under their ids, anything else decoded")
    func decoderSheds() throws {
        // The worker sticks after its first request and the queue has room for one more: with that one queued,
        // the batcher refuses every other (queue full).
        let metrics = ServiceMetrics(maxBatch: 64)
        let gate = StuckObserver()
        let batcher = DynamicBatcher(configuration: .init(workers: 1, maxQueue: 1), observer: gate)
        defer { gate.release(); batcher.shutdown() }
        let service = try Self.service(batcher, metrics: metrics)
        let activity = ConnectionActivity()
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(
            ClientFrameDecoder(maxFrameBytes: 1 << 20, service: service, metrics: metrics, activity: activity)))
        gate.hold()
        var queued = ByteBuffer()
        for id: UInt64 in [1, 2] {
            var frame = try Self.framed(Self.bitmapRequest(id))
            try channel.writeInbound(frame)
            queued.writeBuffer(&frame)
            guard case .predict(let request, _) = try channel.readInbound(as: ClientRequest.self),
                  case .admitted(let admitted) = service.admit(request, transport: .tcp) else {
                Issue.record("prediction \(id) was not decoded and admitted")
                return
            }
            service.submit(admitted, caller: 0) { _ in }
            while id == 1 && (batcher.queueDepth > 0 || batcher.longestBatchNanos == 0) { usleep(100) }  // the worker holds it
        }
        #expect(batcher.isOverloaded)

        // One read: three predictions, a model-info request, two more predictions, and half of a seventh.
        var read = ByteBuffer()
        for message in [Self.bitmapRequest(10), Self.bitmapRequest(11), Self.bitmapRequest(300),
                        .with { $0.modelInfo = .with { $0.requestID = 12 } }, Self.bitmapRequest(13), Self.bitmapRequest(14)] {
            var frame = try Self.framed(message)
            read.writeBuffer(&frame)
        }
        var last = try Self.framed(Self.bitmapRequest(15))
        let firstHalf = last.readSlice(length: last.readableBytes / 2)!
        read.writeImmutableBuffer(firstHalf)
        let wholeFrameBytes = read.readableBytes - firstHalf.readableBytes
        try channel.writeInbound(read)

        func refusedIDs(_ request: ClientRequest?) throws -> [UInt64]? {
            guard case .shed(var answers, let count) = request else { return nil }
            var ids: [UInt64] = []
            while let frame = try FrameDecoder(maxFrameBytes: 1 << 20).next(&answers) {
                let message = try Doodle_V1_ServerMessage(serializedBytes: Array(frame.payload.readableBytesView))
                #expect(message.predict.status.code == .resourceExhausted)
                #expect(message.predict.status.message == batcher.queueFullError.message)
                #expect(message.predict.modelName == Self.predictor.name)
                ids.append(message.predict.requestID)
            }
            #expect(ids.count == count)
            return ids
        }
        #expect(try refusedIDs(channel.readInbound(as: ClientRequest.self)) == [10, 11, 300])
        guard case .modelInfo(requestID: 12) = try channel.readInbound(as: ClientRequest.self) else {
            Issue.record("a model-info request among refused predictions was not decoded")
            return
        }
        #expect(try refusedIDs(channel.readInbound(as: ClientRequest.self)) == [13, 14])
        #expect(try channel.readInbound(as: ClientRequest.self) == nil)  // half a frame: nothing yet
        #expect(metrics.tcpFrames.framesRead == 8)
        #expect(activity.bytesFramed == queued.readableBytes + wholeFrameBytes)
        try channel.writeInbound(last)
        #expect(try refusedIDs(channel.readInbound(as: ClientRequest.self)) == [15])
        #expect(metrics.tcpFrames.framesRead == 9)
        _ = try channel.finish()
    }

    @Test("ConnectionHandler: every frame read before the input closes is answered, then the channel closes")
    func halfCloseOnTestChannel() async throws {
        let metrics = ServiceMetrics(maxBatch: 8)
        let batcher = DynamicBatcher(configuration: .init(workers: 1, maxBatch: 8), observer: metrics)
        defer { batcher.shutdown() }
        let service = try Self.service(batcher, metrics: metrics)
        let channel = NIOAsyncTestingChannel()
        try await channel.eventLoop.submit {
            let activity = ConnectionActivity()
            try channel.pipeline.syncOperations.addHandlers([
                ByteToMessageHandler(ClientFrameDecoder(maxFrameBytes: 1 << 20, service: service, metrics: metrics,
                                                        activity: activity)),
                ConnectionHandler(service: service, limits: ConnectionLimits(), metrics: metrics, activity: activity),
            ])
        }.get()
        var input = ByteBuffer()
        for id in 1...10 {
            var frame = try Self.framed(Self.bitmapRequest(UInt64(id)))
            input.writeBuffer(&frame)
        }
        try await channel.writeInbound(input)
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        try await channel.closeFuture.get()
        var answered: [UInt64] = []
        while let buffer = try await channel.readOutbound(as: ByteBuffer.self) {
            var rest = buffer
            while let frame = try FrameDecoder(maxFrameBytes: 1 << 20).next(&rest) {
                let message = try Doodle_V1_ServerMessage(serializedBytes: Array(frame.payload.readableBytesView))
                #expect(message.predict.status.code == .ok && message.predict.modelName == Self.predictor.name)
                answered.append(message.predict.requestID)
            }
        }
        #expect(answered.sorted() == Array(1...10))
        #expect(metrics.tcpFrames.framesRead == 10 && metrics.tcpFrames.framesWritten == 10)
    }
}
