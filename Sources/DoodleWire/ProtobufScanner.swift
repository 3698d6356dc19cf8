import NIOCore

/// Reads protobuf wire format field by field without decoding messages: the peeks that answer or count a
/// message from a few of its fields (`RequestPeek`, `ResponsePeek`) walk bytes with it.
struct ProtobufScanner {
    var buffer: ByteBuffer

    var isAtEnd: Bool { self.buffer.readableBytes == 0 }

    /// The next field's number and wire type; nil at a malformed key.
    mutating func tag() -> (field: UInt64, wireType: UInt64)? {
        guard let key = self.varint() else { return nil }
        return (key >> 3, key & 7)
    }

    mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 7) {
            guard let byte = self.buffer.readInteger(as: UInt8.self) else { return nil }
            value |= UInt64(byte & 0x7f) << UInt64(shift)
            if byte & 0x80 == 0 { return value }
        }
        return nil
    }

    /// A length-delimited field's bytes, as a scanner of their own.
    mutating func lengthDelimited() -> ProtobufScanner? {
        guard let length = self.varint(), length <= self.buffer.readableBytes,
              let slice = self.buffer.readSlice(length: Int(length)) else { return nil }
        return ProtobufScanner(buffer: slice)
    }

    /// Skips a field's value; false when it is malformed or of an unknown wire type.
    mutating func skip(_ wireType: UInt64) -> Bool {
        switch wireType {
        case 0: return self.varint() != nil
        case 1: return self.buffer.readSlice(length: 8) != nil
        case 2: return self.lengthDelimited() != nil
        case 5: return self.buffer.readSlice(length: 4) != nil
        default: return false
        }
    }
}

/// Stores the varint encoding of `value` at `pointer` (room for 10 bytes) and returns its length.
func storeVarint(_ value: UInt64, at pointer: UnsafeMutableRawPointer) -> Int {
    var v = value
    var n = 0
    while v >= 0x80 {
        pointer.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, toByteOffset: n, as: UInt8.self)
        v >>= 7
        n += 1
    }
    pointer.storeBytes(of: UInt8(v), toByteOffset: n, as: UInt8.self)
    return n + 1
}

/// Bytes in the varint encoding of `value`.
func varintSize(_ value: UInt64) -> Int {
    value == 0 ? 1 : (64 - value.leadingZeroBitCount + 6) / 7
}
