// libFuzzer target: stroke validation, normalisation (raw -> simplified) and rendering, from a compact encoding
// of a drawing: byte 0 = format, then strokes as [point count][x, y as little-endian Float32 ...]. Differential:
// the serving rasteriser (DoodleRenderer) must draw exactly the bytes libcairo draws (CairoRenderer).
import DoodleCairoReference
import DoodleCore
import DoodlePreprocessing

enum Fixture {
    static let validator = RequestValidator(limits: RequestLimits(), labels: (0..<345).map { "class_\($0)" })
    // libFuzzer calls in from one thread.
    nonisolated(unsafe) static let preprocessor = Preprocessor()
    nonisolated(unsafe) static let cairo = CairoRenderer()
}

/// The drawing the bytes describe.
func drawing(_ bytes: UnsafeRawBufferPointer) -> (StrokeFormat, [Stroke]) {
    guard let first = bytes.first else { return (.auto, []) }
    let format: StrokeFormat = [.auto, .raw, .simplified][Int(first % 3)]
    var strokes: [Stroke] = []
    var i = 1
    func float() -> Double? {
        guard i + 4 <= bytes.count else { return nil }
        defer { i += 4 }
        return Double(Float(bitPattern: bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self)))
    }
    while i < bytes.count {
        let n = Int(bytes[i])
        i += 1
        var stroke = Stroke(x: [], y: [])
        for _ in 0..<n {
            guard let x = float(), let y = float() else { break }
            stroke.x.append(x)
            stroke.y.append(y)
        }
        strokes.append(stroke)
    }
    return (format, strokes)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPreprocess(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let (format, strokes) = drawing(UnsafeRawBufferPointer(start: start, count: count))
    guard (try? Fixture.validator.validateStrokes(strokes, timeCounts: strokes.map { _ in 0 })) != nil else { return 0 }
    var pixels = [UInt8](repeating: 0, count: 784)
    pixels.withUnsafeMutableBufferPointer { buffer in
        do { try Fixture.preprocessor.prepare(.strokes(strokes, format), into: buffer.baseAddress!) } catch {
            preconditionFailure("validated strokes were refused: \(error)")
        }
    }
    // What the worker drew (DoodleRenderer, inside prepare) against libcairo on the same simplified strokes.
    let cairo = Fixture.cairo.render(Preprocessor.simplify(strokes, format: format))
    precondition(pixels == cairo, "DoodleRenderer differs from libcairo")
    return 0
}
