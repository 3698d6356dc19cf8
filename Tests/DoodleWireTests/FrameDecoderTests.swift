import DoodleWire
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@Suite("Framing: FrameDecoder")
struct FrameDecoderTests {
    /// One frame, header included, as the decoder passes it on.
    func framed(_ payload: [UInt8], flags: UInt8 = 0) -> ByteBuffer {
        var buffer = ByteBuffer()
        writeFrame(payload, flags: flags, into: &buffer)
        return buffer
    }

    @Test("splits any byte stream into whole frames, however it is cut (ByteToMessageDecoderVerifier)")
    func verifier() throws {
        let frames = [framed([1, 2, 3]), framed([]), framed([UInt8](repeating: 7, count: 300), flags: 1), framed([9])]
        var all = ByteBuffer()
        for var f in frames { all.writeBuffer(&f) }
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [
                (framed([42]), [framed([42])]),
                (all, frames),
            ],
            decoderFactory: { FrameDecoder(maxFrameBytes: 1024) }
        )
    }

    @Test("a declared length over the limit is an error before any payload arrives; the limit itself is allowed")
    func frameTooLarge() throws {
        let decoder = FrameDecoder(maxFrameBytes: 8)
        var header = ByteBuffer(bytes: [0, 0, 0, 0, 9])
        #expect(throws: FramingError.frameTooLarge(length: 9, limit: 8)) { try decoder.next(&header) }
        var exact = framed([UInt8](repeating: 1, count: 8))
        #expect(try decoder.next(&exact)?.payload.readableBytes == 8)
    }

    @Test("end of input inside a frame is an error naming the bytes received; between frames it is not")
    func truncatedAtEOF() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: 64)))
        var input = framed([1, 2])
        input.writeBytes([0, 0, 0, 0, 5, 1, 2])
        try channel.writeInbound(input)
        #expect(try channel.readInbound(as: ByteBuffer.self) == framed([1, 2]))
        #expect(throws: FramingError.truncated(bytes: 7)) { try channel.finish() }

        let clean = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: 64)))
        try clean.writeInbound(framed([3]))
        #expect(try clean.finish().isClean == false)  // the frame is still waiting to be read
    }

    @Test("InboundFrame reads the flags and the payload of a framed buffer")
    func inboundFrame() {
        let frame = InboundFrame(framed: framed([5, 6, 7], flags: 1))
        #expect(frame.flags == 1)
        #expect(Array(frame.payload.readableBytesView) == [5, 6, 7])
    }
}
