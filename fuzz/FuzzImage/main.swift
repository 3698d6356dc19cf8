// libFuzzer target: the image input, from the bytes a client sends to the picture traced into strokes and
// rendered. The input is an encoded file (PNG, JPEG or anything else) when its first byte is even; otherwise raw
// pixels: byte 1 = format (grey or RGBA), bytes 2-3 = width, and the rest the pixels (height = what they fill).
// Every input must be validated (limits from the header, before decoding), then decoded and traced or refused
// with a message: no trap, no leak, no unbounded allocation, no hang.
import DoodleCore
import DoodlePreprocessing

enum Fixture {
    static let validator: RequestValidator = {
        var limits = RequestLimits()
        limits.maxImagePixels = 1 << 20  // keeps each run fast; the real default is 4 Mi
        return RequestValidator(limits: limits, labels: (0..<345).map { "class_\($0)" })
    }()
    // libFuzzer calls in from one thread.
    nonisolated(unsafe) static let preprocessor = Preprocessor()
}

/// The picture the bytes describe.
func image(_ bytes: UnsafeRawBufferPointer) -> CanvasImage? {
    guard let first = bytes.first else { return nil }
    if first & 1 == 0 { return .encoded(Array(bytes.dropFirst())) }
    guard bytes.count >= 4 else { return nil }
    let format: CanvasImage.PixelFormat = bytes[1] & 1 == 0 ? .grey8 : .rgba8
    let width = max(1, Int(bytes[2]) | Int(bytes[3]) << 8)
    let pixels = Array(bytes.dropFirst(4))
    let height = pixels.count / (width * format.channels)
    return .pixels(Array(pixels.prefix(width * height * format.channels)), width: width, height: height, format: format)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImage(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard let picture = image(UnsafeRawBufferPointer(start: start, count: count)),
          (try? Fixture.validator.validateImage(picture)) != nil else { return 0 }
    var pixels = [UInt8](repeating: 0, count: 784)
    do {
        try pixels.withUnsafeMutableBufferPointer { try Fixture.preprocessor.prepare(.image(picture), into: $0.baseAddress!) }
    } catch let error as PreprocessingError {
        precondition(!error.message.isEmpty, "a refusal without a message")
    } catch {
        preconditionFailure("an error that is not a PreprocessingError: \(error)")
    }
    return 0
}
