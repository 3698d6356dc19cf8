import NIOCore

/// One length-prefixed message as read off the wire: its flags byte and its payload.
public struct InboundFrame: Sendable, Equatable {
    /// Bit 0 = compressed (not supported); the other bits must be 0.
    public var flags: UInt8
    public var payload: ByteBuffer

    /// The frame in `framed`: a whole frame, header included, as `FrameDecoder` passes it down a pipeline.
    public init(framed: ByteBuffer) {
        self.flags = framed.getInteger(at: framed.readerIndex, as: UInt8.self)!
        self.payload = framed.getSlice(at: framed.readerIndex + FrameDecoder.headerBytes,
                                       length: framed.readableBytes - FrameDecoder.headerBytes)!
    }

    public init(flags: UInt8, payload: ByteBuffer) {
        self.flags = flags
        self.payload = payload
    }
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
///
/// In a pipeline it passes each whole frame on as a `ByteBuffer`, header included (read it with
/// `InboundFrame(framed:)`): NIO hands a `ByteBuffer` through without boxing it, which a struct would need, and
/// an overloaded server reads tens of thousands of frames a second.
public struct FrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer
    public static let headerBytes = 5

    public let maxFrameBytes: Int

    public init(maxFrameBytes: Int) {
        self.maxFrameBytes = maxFrameBytes
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try self.nextFramed(&buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer,
                                    seenEOF: Bool) throws -> DecodingState {
        while let frame = try self.nextFramed(&buffer) {
            context.fireChannelRead(Self.wrapInboundOut(frame))
        }
        try Self.endOfStream(&buffer)
        return .needMoreData
    }

    /// At the end of the stream, after every whole frame was taken: an error naming the bytes of a frame left
    /// unfinished (consumed), if any.
    public static func endOfStream(_ buffer: inout ByteBuffer) throws {
        guard buffer.readableBytes > 0 else { return }
        let bytes = buffer.readableBytes
        buffer.moveReaderIndex(forwardBy: bytes)
        throw FramingError.truncated(bytes: bytes)
    }

    /// The next whole frame, consuming it, or nil when more bytes are needed.
    public func next(_ buffer: inout ByteBuffer) throws -> InboundFrame? {
        try self.nextFramed(&buffer).map(InboundFrame.init(framed:))
    }

    /// The whole frame at the start of `bytes` (memory the caller holds, such as a read buffer's), without consuming
    /// anything: its flags, payload and size with the header; nil when more bytes are needed or its declared length
    /// is over the limit (`nextFramed` then throws for it).
    public func wholeFrame(in bytes: UnsafeRawBufferPointer)
        -> (flags: UInt8, payload: UnsafeRawBufferPointer, framedBytes: Int)? {
        guard bytes.count >= Self.headerBytes else { return nil }
        let length = Int(UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 1, as: UInt32.self)))
        guard length <= self.maxFrameBytes, bytes.count - Self.headerBytes >= length else { return nil }
        let end = Self.headerBytes + length
        return (bytes[0], UnsafeRawBufferPointer(rebasing: bytes[Self.headerBytes..<end]), end)
    }

    /// The next whole frame, header included, consuming it, or nil when more bytes are needed.
    public func nextFramed(_ buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard buffer.readableBytes >= Self.headerBytes,
              let length = buffer.getInteger(at: buffer.readerIndex + 1, endianness: .big, as: UInt32.self) else {
            return nil
        }
        guard Int(length) <= self.maxFrameBytes else {
            throw FramingError.frameTooLarge(length: Int(length), limit: self.maxFrameBytes)
        }
        guard buffer.readableBytes >= Self.headerBytes + Int(length) else { return nil }
        return buffer.readSlice(length: Self.headerBytes + Int(length))!
    }
}

/// Writes a frame header and payload into `buffer`.
public func writeFrame(_ payload: some Collection<UInt8>, flags: UInt8 = 0, into buffer: inout ByteBuffer) {
    buffer.writeInteger(flags)
    buffer.writeInteger(UInt32(payload.count), endianness: .big)
    buffer.writeBytes(payload)
}
