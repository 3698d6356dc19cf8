/// Raw strokes -> Google's "simplified" form, exactly as `training/normalize.py` does it (same IEEE double
/// operations in the same order, so both give identical integers):
/// align to the top-left, scale uniformly so the largest coordinate is 255, resample every stroke at 1-unit
/// spacing, Ramer-Douglas-Peucker with epsilon 2, round half to even.
public enum StrokeNormalizer {
    static let epsilon = 2.0
    static let target = 255.0

    /// Whether strokes already have the simplified form: no times, integers in 0...255, spanning >= 250 units.
    public static func looksSimplified(_ strokes: [Stroke]) -> Bool {
        var hi = 0.0
        for s in strokes {
            if s.hasTimes { return false }
            for v in s.x where v.rounded() != v || v < 0 || v > 255 { return false }
            for v in s.y where v.rounded() != v || v < 0 || v > 255 { return false }
            hi = max(hi, s.x.max() ?? 0, s.y.max() ?? 0)
        }
        return hi >= 250
    }

    /// Strokes as integers without normalising (for input that is already simplified).
    public static func asSimplified(_ strokes: [Stroke]) -> [SimplifiedStroke] {
        strokes.filter { !$0.x.isEmpty }.map { s in
            SimplifiedStroke(x: s.x.map { Int32($0) }, y: s.y.map { Int32($0) })
        }
    }

    /// Normalises raw strokes. Empty strokes are dropped; a drawing whose points are all equal maps to (0, 0).
    /// Coordinates must be finite and x/y of equal length (validated by the caller).
    public static func normalize(_ strokes: [Stroke]) -> [SimplifiedStroke] {
        let kept = strokes.filter { !$0.x.isEmpty }
        guard !kept.isEmpty else { return [] }
        var minX = Double.infinity
        var minY = Double.infinity
        var maxX = -Double.infinity
        var maxY = -Double.infinity
        for s in kept {
            for v in s.x {
                minX = min(minX, v)
                maxX = max(maxX, v)
            }
            for v in s.y {
                minY = min(minY, v)
                maxY = max(maxY, v)
            }
        }
        let extent = max(maxX - minX, maxY - minY)
        let scale = extent > 0 ? Self.target / extent : 0
        var xs: [Double] = []
        var ys: [Double] = []
        var rx: [Double] = []
        var ry: [Double] = []
        var keep: [Bool] = []
        return kept.map { s in
            xs.removeAll(keepingCapacity: true)
            ys.removeAll(keepingCapacity: true)
            for v in s.x { xs.append((v - minX) * scale) }
            for v in s.y { ys.append((v - minY) * scale) }
            Self.resample(xs, ys, into: &rx, &ry)
            Self.rdp(rx, ry, keep: &keep)
            var out = SimplifiedStroke(x: [], y: [])
            for i in 0..<rx.count where keep[i] {
                out.x.append(Int32(rx[i].rounded(.toNearestOrEven)))
                out.y.append(Int32(ry[i].rounded(.toNearestOrEven)))
            }
            return out
        }
    }

    /// Points every 1 unit of arc length along the polyline, always keeping the last point.
    static func resample(_ xs: [Double], _ ys: [Double], into ox: inout [Double], _ oy: inout [Double]) {
        ox.removeAll(keepingCapacity: true)
        oy.removeAll(keepingCapacity: true)
        guard xs.count >= 2 else {
            ox.append(contentsOf: xs)
            oy.append(contentsOf: ys)
            return
        }
        ox.append(xs[0])
        oy.append(ys[0])
        var carry = 0.0
        for i in 1..<xs.count {
            let (x0, y0, x1, y1) = (xs[i - 1], ys[i - 1], xs[i], ys[i])
            let dx = x1 - x0
            let dy = y1 - y0
            let seg = (dx * dx + dy * dy).squareRoot()
            if seg == 0 { continue }
            var d = 1.0 - carry
            while d <= seg {
                let t = d / seg
                ox.append(x0 + t * (x1 - x0))
                oy.append(y0 + t * (y1 - y0))
                d += 1.0
            }
            carry = seg - (d - 1.0)
        }
        if ox[ox.count - 1] != xs[xs.count - 1] || oy[oy.count - 1] != ys[ys.count - 1] {
            ox.append(xs[xs.count - 1])
            oy.append(ys[ys.count - 1])
        }
    }

    /// Marks the points Ramer-Douglas-Peucker keeps (perpendicular distance to the chord > epsilon).
    static func rdp(_ xs: [Double], _ ys: [Double], keep: inout [Bool]) {
        let n = xs.count
        keep = [Bool](repeating: n < 3, count: n)
        guard n >= 3 else { return }
        keep[0] = true
        keep[n - 1] = true
        var stack = [(0, n - 1)]
        while let (a, b) = stack.popLast() {
            let (ax, ay, bx, by) = (xs[a], ys[a], xs[b], ys[b])
            let dx = bx - ax
            let dy = by - ay
            let norm = (dx * dx + dy * dy).squareRoot()
            var best = -1.0
            var bestIndex = -1
            if a + 1 < b {
                for i in (a + 1)..<b {
                    let d: Double
                    if norm == 0 {
                        let ex = xs[i] - ax
                        let ey = ys[i] - ay
                        d = (ex * ex + ey * ey).squareRoot()
                    } else {
                        d = abs(dy * (xs[i] - ax) - dx * (ys[i] - ay)) / norm
                    }
                    if d > best {
                        best = d
                        bestIndex = i
                    }
                }
            }
            if best > Self.epsilon {
                keep[bestIndex] = true
                stack.append((a, bestIndex))
                stack.append((bestIndex, b))
            }
        }
    }
}
