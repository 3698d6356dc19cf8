import NIOCore

/// Reads protobuf wire format field by field without decoding messages: the peeks that answer or count a
/// message from a few of its fields (`RequestPeek`, `ResponsePeek`) walk bytes with it. It reads memory it does not
/// own (valid only inside a `withUnsafeReadableBytes`), so that a peek costs no reference counting or slicing: an
/// overloaded server peeks at tens of thousands of frames a second.
struct ProtobufScanner {
    private let bytes: UnsafeRawBufferPointer
    private var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    var isAtEnd: Bool { self.offset >= self.bytes.count }

    /// The next field's number and wire type; nil at a malformed key.
    mutating func tag() -> (field: UInt64, wireType: UInt64)? {
        guard let key = self.varint() else { return nil }
        return (key >> 3, key & 7)
    }

    mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while self.offset < self.bytes.count && shift < 64 {
            let byte = self.bytes[self.offset]
            self.offset += 1
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }

    /// A length-delimited field's bytes, as a scanner of their own.
    mutating func lengthDelimited() -> ProtobufScanner? {
        guard let length = self.varint(), length <= self.bytes.count - self.offset else { return nil }
        let start = self.offset
        self.offset += Int(length)
        return ProtobufScanner(UnsafeRawBufferPointer(rebasing: self.bytes[start..<self.offset]))
    }

    /// Skips a field's value; false when it is malformed or of an unknown wire type.
    mutating func skip(_ wireType: UInt64) -> Bool {
        switch wireType {
        case 0: return self.varint() != nil
        case 1: return self.advance(8)
        case 2: return self.lengthDelimited() != nil
        case 5: return self.advance(4)
        default: return false
        }
    }

    private mutating func advance(_ count: Int) -> Bool {
        guard self.bytes.count - self.offset >= count else { return false }
        self.offset += count
        return true
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
