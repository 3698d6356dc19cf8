import NIOCore

/// One length-prefixed message as read off the wire: its flags byte and its payload.
public struct InboundFrame: Sendable, Equatable {
    /// Bit 0 = compressed (not supported); the other bits must be 0.
    public var flags: UInt8
    public var payload: ByteBuffer
}

/// Why the stream cannot be read on: the connection is answered and closed.
public enum FramingError: Error, Equatable, CustomStringConvertible {
    case frameTooLarge(length: Int, limit: Int)
    case truncated(bytes: Int)

    public var description: String {
        switch self {
        case .frameTooLarge(let length, let limit):
            "frame of \(length) bytes exceeds the limit of \(limit) bytes"
        case .truncated(let bytes):
            "connection closed in the middle of a frame (\(bytes) bytes of it received)"
        }
    }
}

/// Splits a byte stream into gRPC-style Length-Prefixed-Messages: 1 byte flags, 4 bytes big-endian length,
/// payload. A declared length above `maxFrameBytes` is an error before any of the payload is buffered.
public struct FrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = InboundFrame
    public static let headerBytes = 5

    public let maxFrameBytes: Int

    public init(maxFrameBytes: Int) {
        self.maxFrameBytes = maxFrameBytes
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try self.next(&buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer,
                                    seenEOF: Bool) throws -> DecodingState {
        while let frame = try self.next(&buffer) {
            context.fireChannelRead(Self.wrapInboundOut(frame))
        }
        if buffer.readableBytes > 0 {
            let n = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: n)
            throw FramingError.truncated(bytes: n)
        }
        return .needMoreData
    }

    /// The next whole frame, consuming it, or nil when more bytes are needed.
    public func next(_ buffer: inout ByteBuffer) throws -> InboundFrame? {
        guard buffer.readableBytes >= Self.headerBytes,
              let flags = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
              let length = buffer.getInteger(at: buffer.readerIndex + 1, endianness: .big, as: UInt32.self) else {
            return nil
        }
        guard Int(length) <= self.maxFrameBytes else {
            throw FramingError.frameTooLarge(length: Int(length), limit: self.maxFrameBytes)
        }
        guard buffer.readableBytes >= Self.headerBytes + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: Self.headerBytes)
        let payload = buffer.readSlice(length: Int(length))!
        return InboundFrame(flags: flags, payload: payload)
    }
}

/// Writes a frame header and payload into `buffer`.
public func writeFrame(_ payload: some Collection<UInt8>, flags: UInt8 = 0, into buffer: inout ByteBuffer) {
    buffer.writeInteger(flags)
    buffer.writeInteger(UInt32(payload.count), endianness: .big)
    buffer.writeBytes(payload)
}
