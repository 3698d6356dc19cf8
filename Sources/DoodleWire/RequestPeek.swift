import NIOCore
import SwiftProtobuf

/// Reads just enough of a `ClientMessage` to answer it without decoding it: whether it is a prediction and its
/// request_id. Overload shedding uses it, so that a request the server cannot take costs next to nothing.
public enum RequestPeek {
    /// The request_id of a `ClientMessage` holding a `PredictRequest` (0 if it has none); nil when the bytes
    /// are not such a message, or not well-formed enough to tell.
    public static func predictRequestID(_ payload: ByteBuffer) -> UInt64? {
        payload.withUnsafeReadableBytes { Self.predictRequestID(bytes: $0) }
    }

    /// `predictRequestID` of a payload in memory the caller holds (a frame inside a read buffer).
    public static func predictRequestID(bytes payload: UnsafeRawBufferPointer) -> UInt64? {
        guard let request = Self.request(bytes: payload), request.kind == .predict else { return nil }
        return request.requestID
    }
}

extension RequestPeek {
    /// What a `ClientMessage` asks for.
    public enum Kind: Sendable, Equatable {
        case predict
        case modelInfo
    }

    /// What a `ClientMessage` asks for and its request_id (0 if it has none), read without decoding the rest; nil
    /// when the bytes are not well-formed enough to tell. Lets the server answer a frame it refuses (for its
    /// flags, or because it does not decode) in kind and under its id.
    public static func request(_ payload: ByteBuffer) -> (kind: Kind, requestID: UInt64)? {
        payload.withUnsafeReadableBytes { Self.request(bytes: $0) }
    }

    /// `request` of a payload in memory the caller holds.
    static func request(bytes payload: UnsafeRawBufferPointer) -> (kind: Kind, requestID: UInt64)? {
        var message = ProtobufScanner(payload)
        var found: (kind: Kind, requestID: UInt64)?
        while !message.isAtEnd {
            guard let (field, wireType) = message.tag() else { return nil }
            if (field == 1 || field == 2) && wireType == 2 {  // ClientMessage.predict, ClientMessage.model_info
                guard var request = message.lengthDelimited() else { return nil }
                var id: UInt64 = 0
                while !request.isAtEnd {
                    guard let (inner, innerType) = request.tag() else { return nil }
                    if inner == 1 && innerType == 0 {  // request_id in both
                        guard let value = request.varint() else { return nil }
                        id = value
                    } else if !request.skip(innerType) {
                        return nil
                    }
                }
                found = (field == 1 ? .predict : .modelInfo, id)  // the last one wins, as protobuf's oneof does
            } else if !message.skip(wireType) {
                return nil
            }
        }
        return found
    }
}

/// Reads the request_id and status code of a `ServerMessage` without decoding it, for a load generator that
/// counts answers by status at a high rate.
public enum ResponsePeek {
    /// The request_id and status code (0 = OK) of a `ServerMessage` holding a `PredictResponse`; nil when the
    /// bytes are not such a message, or not well-formed enough to tell.
    public static func predictOutcome(_ payload: ByteBuffer) -> (requestID: UInt64, code: Int)? {
        payload.withUnsafeReadableBytes { Self.predictOutcome(bytes: $0) }
    }

    /// `predictOutcome` of a payload in memory the caller holds.
    static func predictOutcome(bytes payload: UnsafeRawBufferPointer) -> (requestID: UInt64, code: Int)? {
        var message = ProtobufScanner(payload)
        var found: (requestID: UInt64, code: Int)?
        while !message.isAtEnd {
            guard let (field, wireType) = message.tag() else { return nil }
            if field == 1 && wireType == 2 {  // ServerMessage.predict
                guard var response = message.lengthDelimited() else { return nil }
                var outcome = (requestID: UInt64(0), code: 0)
                while !response.isAtEnd {
                    guard let (inner, innerType) = response.tag() else { return nil }
                    if inner == 1 && innerType == 0 {  // PredictResponse.request_id
                        guard let id = response.varint() else { return nil }
                        outcome.requestID = id
                    } else if inner == 3 && innerType == 2 {  // PredictResponse.status
                        guard var status = response.lengthDelimited() else { return nil }
                        while !status.isAtEnd {
                            guard let (statusField, statusType) = status.tag() else { return nil }
                            if statusField == 1 && statusType == 0 {  // Status.code
                                guard let code = status.varint() else { return nil }
                                outcome.code = Int(truncatingIfNeeded: code)
                            } else if !status.skip(statusType) {
                                return nil
                            }
                        }
                    } else if !response.skip(innerType) {
                        return nil
                    }
                }
                found = outcome
            } else if field == 2 {
                return nil  // model_info
            } else if !message.skip(wireType) {
                return nil
            }
        }
        return found
    }
}

/// Writes framed predict messages from bytes encoded once without the request_id, adding a request_id per
/// frame: what is sent millions of times costs a copy, not an encode. Requests (`ClientMessage.predict`) and
/// answers (`ServerMessage.predict`) share the layout: field 1 of the outer message, request_id field 1 inside.
/// (Protobuf parsers merge fields in any order, so the id may come first.)
public struct PredictFrameWriter: Sendable {
    private let body: [UInt8]

    /// Frames of `ClientMessage`s asking for `request` (encoded once, without its request_id): a load
    /// generator's requests.
    public init(_ request: Doodle_V1_PredictRequest) throws {
        var request = request
        request.requestID = 0
        self.body = try request.serializedBytes()
    }

    /// Frames of `ServerMessage`s answering with `response` (encoded once, without its request_id): the
    /// server's refusals under overload.
    public init(answering response: Doodle_V1_PredictResponse) throws {
        var response = response
        response.requestID = 0
        self.body = try response.serializedBytes()
    }

    /// The most bytes one frame takes (header, tags, lengths, the largest request_id).
    public var maxFrameBytes: Int { FrameDecoder.headerBytes + 1 + 10 + 1 + 10 + self.body.count }

    /// Appends one frame (header and payload) carrying the message under `requestID`.
    public func write(requestID: UInt64, into buffer: inout ByteBuffer) {
        let inner = 1 + varintSize(requestID) + self.body.count
        let payload = 1 + varintSize(UInt64(inner)) + inner
        // One capacity check and direct stores: the server writes one of these per refused request.
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: FrameDecoder.headerBytes + payload) { out in
            let p = out.baseAddress!
            p.storeBytes(of: UInt8(0), as: UInt8.self)
            p.storeBytes(of: UInt32(payload).bigEndian, toByteOffset: 1, as: UInt32.self)
            var n = FrameDecoder.headerBytes
            p.storeBytes(of: UInt8(0x0a), toByteOffset: n, as: UInt8.self)  // field 1 (predict), length-delimited
            n += 1
            n += storeVarint(UInt64(inner), at: p + n)
            p.storeBytes(of: UInt8(0x08), toByteOffset: n, as: UInt8.self)  // request_id, varint
            n += 1
            n += storeVarint(requestID, at: p + n)
            self.body.withUnsafeBytes { body in
                if let base = body.baseAddress { (p + n).copyMemory(from: base, byteCount: body.count) }
            }
            return n + self.body.count
        }
    }
}
