import DoodleCairoReference
import DoodleDataset
import DoodlePreprocessing
import DoodleTestSupport
import Foundation
import Testing

/// `DoodleRenderer` (the serving path, no cairo) against `CairoRenderer` (libcairo itself), byte for byte.
@Suite("Rasteriser parity with libcairo")
struct RasterizerParityTests {
    /// Drawings whose two renderings differ, by index, with the first differing pixel.
    static func mismatches(_ drawings: [[SimplifiedStroke]]) -> [String] {
        let fast = DoodleRenderer()
        let cairo = CairoRenderer()
        var out: [String] = []
        for (i, d) in drawings.enumerated() {
            let a = fast.render(d)
            let b = cairo.render(d)
            if a != b, let k = a.indices.first(where: { a[$0] != b[$0] }) {
                out.append("#\(i) pixel (\(k % 28), \(k / 28)): \(a[k]) vs cairo \(b[k])")
            }
        }
        return out
    }

    @Test("all 8,136 simplified drawings of all 345 classes")
    func simplifiedDrawings() async throws {
        let drawings = try await computeOffPool { try TestData.sharedFile("simplified.ndjson.gz").map(\.simplified) }
        #expect(drawings.count == 8136)
        let bad = try await computeOffPool { Self.mismatches(drawings) }
        #expect(bad.isEmpty, "\(bad.count) differ: \(bad.prefix(5))")
    }

    @Test("all 8,952 raw drawings after normalisation")
    func normalizedRawDrawings() async throws {
        let drawings = try await computeOffPool { try TestData.sharedFile("raw.ndjson.gz").map { StrokeNormalizer.normalize($0.strokes) } }
        #expect(drawings.count == 8952)
        let bad = try await computeOffPool { Self.mismatches(drawings) }
        #expect(bad.isEmpty, "\(bad.count) differ: \(bad.prefix(5))")
    }

    @Test("20,000 synthetic drawings built to hit the stroker's and scan converter's corner cases")
    func syntheticDrawings() async throws {
        let bad = try await computeOffPool {
            var rng = SplitMix64(seed: 0x5EED_D00D)
            return Self.mismatches((0..<20_000).map { _ in SyntheticDrawing.make(&rng) })
        }
        #expect(bad.isEmpty, "\(bad.count) differ: \(bad.prefix(5))")
    }

    @Test("hand-picked shapes: dots, repeated points, straight and axis-aligned lines, reversals, the corners")
    func handPicked() {
        func s(_ points: [(Int32, Int32)]) -> SimplifiedStroke {
            SimplifiedStroke(x: points.map(\.0), y: points.map(\.1))
        }
        let cases: [[SimplifiedStroke]] = [
            [],
            [s([(0, 0)])],
            [s([(255, 255)])],
            [s([(128, 128), (128, 128), (128, 128)])],
            [s([(0, 0), (255, 0)])],
            [s([(0, 0), (0, 255)])],
            [s([(0, 0), (255, 255)])],
            [s([(0, 255), (255, 0)])],
            [s([(0, 0), (100, 0), (200, 0), (255, 0)])],           // collinear: merged into one segment
            [s([(0, 0), (255, 0), (0, 0)])],                       // reversal: anti-parallel, kept
            [s([(0, 0), (255, 0), (0, 0), (255, 0), (0, 0)])],
            [s([(0, 0), (255, 0), (255, 255), (0, 255), (0, 0)])], // a closed square (not a closed path)
            [s([(10, 10), (11, 10), (11, 11), (10, 11), (10, 10)])],
            [s([(0, 0), (1, 1)]), s([(254, 254), (255, 255)])],
            [s([(0, 0)]), s([(255, 255)]), s([(0, 255)]), s([(255, 0)])],
            [s([(0, 0), (255, 1)]), s([(0, 1), (255, 0)])],        // nearly coincident crossing strokes
            (0..<40).map { i in s([(Int32(i * 6), 0), (Int32(i * 6), 255)]) }, // 40 vertical strokes
            // Found by FuzzPreprocess: a raw drawing whose third stroke turns back on itself (141,40 -> 139,162),
            // so two edges tie on a cell; cairo's merge order (not a stable sort) decides the full-row pairing.
            [
                s([(11, 243), (31, 245), (46, 251), (70, 252), (243, 237)]),
                s([(80, 245), (97, 170), (125, 94), (0, 89), (129, 84), (139, 45), (147, 102), (156, 115), (162, 152), (175, 181), (180, 218), (194, 248)]),
                s([(96, 237), (105, 196), (112, 180), (122, 109), (140, 79), (141, 40), (139, 162), (144, 176), (155, 192), (157, 0), (158, 198), (175, 228), (184, 255)]),
                s([(110, 156), (127, 154), (136, 139), (145, 133), (159, 157), (167, 161), (179, 161)]),
                s([(80, 192), (129, 189), (155, 181)]),
            ],
        ]
        let bad = Self.mismatches(cases)
        #expect(bad.isEmpty, "\(bad.count) differ: \(bad.prefix(5))")
    }
}

/// Random drawings with the structure that stresses a stroker: clusters of near and equal points (short and
/// degenerate segments), long straight runs (merged segments), zig-zags, spikes and reversals (tight joins and
/// edges that tie or cross), axis-aligned runs (vertical edges), and extremes of the 0...255 range.
enum SyntheticDrawing {
    static func make(_ rng: inout SplitMix64) -> [SimplifiedStroke] {
        let strokes = 1 + Int(rng.next() % 8)
        return (0..<strokes).map { _ in stroke(&rng) }
    }

    static func stroke(_ rng: inout SplitMix64) -> SimplifiedStroke {
        func coordinate() -> Int32 {
            switch rng.next() % 8 {
            case 0: 0
            case 1: 255
            default: Int32(rng.next() % 256)
            }
        }
        var x: [Int32] = [coordinate()]
        var y: [Int32] = [coordinate()]
        let points = Int(rng.next() % 40)
        let style = rng.next() % 6
        for _ in 0..<points {
            let (px, py) = (x.last!, y.last!)
            var (nx, ny): (Int32, Int32)
            switch style {
            case 0: (nx, ny) = (coordinate(), coordinate())                                       // anywhere
            case 1: (nx, ny) = (px + Int32(rng.next() % 5) - 2, py + Int32(rng.next() % 5) - 2)  // jitter
            case 2: (nx, ny) = rng.next() % 2 == 0 ? (coordinate(), py) : (px, coordinate())      // axis-aligned
            case 3: (nx, ny) = (px + (x.count % 2 == 0 ? 30 : -25), py + Int32(rng.next() % 7) - 3) // zig-zag
            case 4 where x.count % 2 == 1:                                                     // spikes out
                (nx, ny) = (px + Int32(rng.next() % 121) - 60, py + Int32(rng.next() % 121) - 60)
            case 4: (nx, ny) = (px + Int32(rng.next() % 5) - 2, py + Int32(rng.next() % 5) - 2)  // and back
            default:
                let step = Int32(rng.next() % 20)                                                 // straight runs
                (nx, ny) = (px + step, py + step / 2)
            }
            x.append(min(255, max(0, nx)))
            y.append(min(255, max(0, ny)))
        }
        return SimplifiedStroke(x: x, y: y)
    }
}
