import NIOCore

/// Reads just enough of a `ClientMessage` to answer it without decoding it: whether it is a prediction and its
/// request_id. Overload shedding uses it, so that a request the server cannot take costs next to nothing.
public enum RequestPeek {
    /// The request_id of a `ClientMessage` holding a `PredictRequest` (0 if it has none); nil when the bytes
    /// are not such a message, or not well-formed enough to tell.
    public static func predictRequestID(_ payload: ByteBuffer) -> UInt64? {
        var message = payload
        var found: UInt64?
        while message.readableBytes > 0 {
            guard let (field, wireType) = Self.tag(&message) else { return nil }
            if field == 1 && wireType == 2 {  // ClientMessage.predict
                guard let length = Self.varint(&message), length <= message.readableBytes,
                      var request = message.readSlice(length: Int(length)) else { return nil }
                found = 0
                while request.readableBytes > 0 {
                    guard let (inner, innerType) = Self.tag(&request) else { return nil }
                    if inner == 1 && innerType == 0 {  // PredictRequest.request_id
                        guard let id = Self.varint(&request) else { return nil }
                        found = id
                    } else if !Self.skip(innerType, &request) {
                        return nil
                    }
                }
            } else if field == 2 {
                return nil  // model_info
            } else if !Self.skip(wireType, &message) {
                return nil
            }
        }
        return found
    }

    private static func tag(_ buffer: inout ByteBuffer) -> (UInt64, UInt64)? {
        guard let key = Self.varint(&buffer) else { return nil }
        return (key >> 3, key & 7)
    }

    private static func varint(_ buffer: inout ByteBuffer) -> UInt64? {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 7) {
            guard let byte = buffer.readInteger(as: UInt8.self) else { return nil }
            value |= UInt64(byte & 0x7f) << UInt64(shift)
            if byte & 0x80 == 0 { return value }
        }
        return nil
    }

    private static func skip(_ wireType: UInt64, _ buffer: inout ByteBuffer) -> Bool {
        switch wireType {
        case 0: return Self.varint(&buffer) != nil
        case 1: return buffer.readSlice(length: 8) != nil
        case 2:
            guard let length = Self.varint(&buffer), length <= buffer.readableBytes else { return false }
            return buffer.readSlice(length: Int(length)) != nil
        case 5: return buffer.readSlice(length: 4) != nil
        default: return false
        }
    }
}
