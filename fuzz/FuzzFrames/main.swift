// libFuzzer target: raw-TCP bytes -> frames -> ClientMessage -> request validation -> preprocessing.
// Build and run with fuzz/run (swift build --sanitize=fuzzer).
import DoodleCore
import DoodlePreprocessing
import DoodleWire
import NIOCore
import SwiftProtobuf

/// Built once (a main.swift of a fuzz target may hold declarations only: libFuzzer owns main).
enum Fixture {
    static let validator = RequestValidator(limits: RequestLimits(), labels: (0..<345).map { "class_\($0)" })
    nonisolated(unsafe) static let preprocessor = Preprocessor()  // libFuzzer calls in from one thread
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrames(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var buffer = ByteBuffer(bytes: UnsafeRawBufferPointer(start: start, count: count))
    let decoder = FrameDecoder(maxFrameBytes: 1 << 16)
    var pixels = [UInt8](repeating: 0, count: 784)
    while true {
        let frame: InboundFrame?
        do { frame = try decoder.next(&buffer) } catch { return 0 }  // a framing error closes the connection
        guard let frame else { return 0 }
        guard let message = try? Doodle_V1_ClientMessage(serializedBytes: Array(frame.payload.readableBytesView)),
              case .predict(let wire) = message.message,
              let request = try? Fixture.validator.request(from: wire, receivedAt: 0) else { continue }
        precondition(request.topK >= 1 && request.topK <= 345, "validated top_k out of range")
        // A picture may still be refused here (corrupt, or nothing drawn on it): an answer, not a crash.
        pixels.withUnsafeMutableBufferPointer { _ = try? Fixture.preprocessor.prepare(request.input, into: $0.baseAddress!) }
    }
}
