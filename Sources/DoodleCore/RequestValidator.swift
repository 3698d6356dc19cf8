import Dispatch
import DoodlePreprocessing

/// Checks a request against the limits and the model, turning wire-level fields into a `PredictionRequest`.
/// Every rejection is an INVALID_ARGUMENT `ServiceError` whose message says what was wrong.
public struct RequestValidator: Sendable {
    public var limits: RequestLimits
    public let labels: [String]
    private let labelIndex: [String: Int]
    /// Bytes of a bitmap input.
    public let bitmapBytes: Int

    public init(limits: RequestLimits, labels: [String], bitmapBytes: Int = 784) {
        self.limits = limits
        self.labels = labels
        self.bitmapBytes = bitmapBytes
        var index: [String: Int] = [:]
        for (i, l) in labels.enumerated() where index[l] == nil { index[l] = i }
        self.labelIndex = index
    }

    /// Validates strokes: equal x/y (and t) lengths, finite coordinates within limits, some points at all.
    public func validateStrokes(_ strokes: [Stroke], timeCounts: [Int]) throws(ServiceError) {
        guard !strokes.isEmpty else { throw .invalidArgument("the drawing has no strokes") }
        guard strokes.count <= self.limits.maxStrokes else {
            throw .invalidArgument("the drawing has \(strokes.count) strokes; the limit is \(self.limits.maxStrokes)")
        }
        var points = 0
        for (i, s) in strokes.enumerated() {
            guard s.x.count == s.y.count else {
                throw .invalidArgument("stroke \(i) has \(s.x.count) x values but \(s.y.count) y values")
            }
            let t = i < timeCounts.count ? timeCounts[i] : 0
            guard t == 0 || t == s.x.count else {
                throw .invalidArgument("stroke \(i) has \(t) times for \(s.x.count) points")
            }
            points += s.x.count
            guard points <= self.limits.maxPoints else {
                throw .invalidArgument("the drawing has more than \(self.limits.maxPoints) points (the limit)")
            }
            let m = self.limits.maxCoordinate
            for v in s.x where !(v.isFinite && abs(v) <= m) {
                throw .invalidArgument("stroke \(i) has x = \(v); coordinates must be finite with |v| <= \(m)")
            }
            for v in s.y where !(v.isFinite && abs(v) <= m) {
                throw .invalidArgument("stroke \(i) has y = \(v); coordinates must be finite with |v| <= \(m)")
            }
        }
        guard points > 0 else { throw .invalidArgument("the drawing has no points (every stroke is empty)") }
    }

    /// Checks a capture label: at most `maxCaptureLabelBytes` bytes, no control characters (nil for empty: no
    /// capture).
    public func captureLabel(_ label: String) throws(ServiceError) -> String? {
        guard !label.isEmpty else { return nil }
        guard label.utf8.count <= self.limits.maxCaptureLabelBytes else {
            throw .invalidArgument("capture_label has \(label.utf8.count) bytes; the limit is \(self.limits.maxCaptureLabelBytes) (max-capture-label-bytes)")
        }
        guard !label.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .invalidArgument("capture_label has a control character")
        }
        return label
    }

    /// Checks one stroke's times: finite values (they are not used otherwise, except to tell `auto` the drawing
    /// is raw).
    public func validateTimes(_ times: some Sequence<Float>, stroke: Int) throws(ServiceError) {
        for t in times where !t.isFinite {
            throw .invalidArgument("stroke \(stroke) has t = \(t); times must be finite")
        }
    }

    /// Resolves candidate indices and labels into one sorted, de-duplicated index list (nil when none given).
    public func candidates(indices: [UInt32], labels: [String]) throws(ServiceError) -> [Int]? {
        if indices.isEmpty && labels.isEmpty { return nil }
        guard indices.count + labels.count <= self.limits.maxCandidates else {
            throw .invalidArgument("\(indices.count + labels.count) candidates; the limit is \(self.limits.maxCandidates)")
        }
        var set = Set<Int>()
        for i in indices {
            guard Int(i) < self.labels.count else {
                throw .invalidArgument("candidate index \(i) is out of range (the model has \(self.labels.count) classes)")
            }
            set.insert(Int(i))
        }
        for l in labels {
            guard let i = self.labelIndex[l] else { throw .invalidArgument("unknown candidate label \"\(l)\"") }
            set.insert(i)
        }
        return set.sorted()
    }

    /// The effective top-k: 0 means 5 (capped by the choices available); above the choices is an error.
    public func topK(_ requested: UInt32, choices: Int) throws(ServiceError) -> Int {
        if requested == 0 { return min(5, choices) }
        guard Int(requested) <= choices else {
            throw .invalidArgument("top_k \(requested) exceeds the \(choices) classes to choose from")
        }
        return Int(requested)
    }

    /// Checks a bitmap's size.
    public func validateBitmap(_ bytes: Int) throws(ServiceError) {
        guard bytes == self.bitmapBytes else {
            throw .invalidArgument("bitmap has \(bytes) bytes; it must be exactly \(self.bitmapBytes) (28 x 28)")
        }
    }

    /// Checks an image input against the limits before anything is decoded: its size in bytes, and its width x
    /// height (from the header of an encoded file, as declared for raw pixels, which must then add up).
    public func validateImage(_ image: CanvasImage) throws(ServiceError) {
        let bytes = image.byteCount
        guard bytes > 0 else { throw .invalidArgument("the image is empty (0 bytes)") }
        guard bytes <= self.limits.maxImageBytes else {
            throw .invalidArgument("the image has \(bytes) bytes; the limit is \(self.limits.maxImageBytes)")
        }
        let width: Int, height: Int
        switch image {
        case .encoded(let data):
            let header: ImageDecoder.Header
            do { header = try ImageDecoder.probe(data) } catch { throw .invalidArgument(error.message) }
            (width, height) = (header.width, header.height)
        case .pixels(_, let w, let h, _):
            (width, height) = (w, h)
        }
        guard width > 0, height > 0 else { throw .invalidArgument("the image has no pixels (\(width) x \(height))") }
        guard width <= self.limits.maxImagePixels / height else {
            throw .invalidArgument("the image is \(width) x \(height) pixels; the limit is \(self.limits.maxImagePixels) pixels (max-image-pixels)")
        }
        if case .pixels(let data, _, _, let format) = image, data.count != width * height * format.channels {
            throw .invalidArgument("\(data.count) bytes of pixels, but \(width) x \(height) x \(format.channels) channels is \(width * height * format.channels)")
        }
    }

    /// Deadline as a monotonic instant, from milliseconds after `now`.
    public static func deadline(ms: UInt32, now: UInt64 = DispatchTime.now().uptimeNanoseconds) -> UInt64? {
        ms == 0 ? nil : now &+ UInt64(ms) * 1_000_000
    }
}
