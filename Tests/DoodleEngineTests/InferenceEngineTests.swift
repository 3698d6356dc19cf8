import CDoodleKernels
import DoodleTestSupport
import Foundation
import SwiftProtobuf
import Testing

@testable import DoodleEngine

/// Runs `engine` over every golden image in batches of `batch`, returning the quantised logits.
func quantizedLogits(_ engine: InferenceEngine, _ golden: GoldenSet, batch: Int) throws -> [UInt8] {
    let scratch = engine.makeScratch(maxBatch: batch)
    var out = [UInt8](repeating: 0, count: golden.count * engine.classCount)
    var start = 0
    while start < golden.count {
        let n = min(batch, golden.count - start)
        try golden.images.withUnsafeBytes { px in
            try out.withUnsafeMutableBufferPointer { buf in
                let images = UnsafeRawBufferPointer(rebasing: px[(start * engine.inputBytes)...])
                let dst = UnsafeMutableBufferPointer(rebasing: buf[(start * engine.classCount)...])
                try engine.runQuantizedLogits(images: images, count: n, scratch: scratch, logits: dst)
            }
        }
        start += n
    }
    return out
}

func argmax(_ row: ArraySlice<UInt8>) -> Int {
    var best = row.startIndex
    for i in row.indices where row[i] > row[best] { best = i }
    return best - row.startIndex
}

/// Compares with the goldens: the largest difference in quantisation steps and the share of equal top-1.
func compare(_ ours: [UInt8], _ golden: GoldenSet) -> (maxStep: Int, top1Agreement: Double) {
    var maxStep = 0
    var agree = 0
    for i in 0..<golden.count {
        let range = (i * golden.classes)..<((i + 1) * golden.classes)
        for j in range { maxStep = max(maxStep, abs(Int(ours[j]) - Int(golden.logits[j]))) }
        if argmax(ours[range]) == argmax(golden.logits[range]) { agree += 1 }
    }
    return (maxStep, Double(agree) / Double(golden.count))
}

@Suite("Inference engine")
struct InferenceEngineTests {
    static let shippedModel = GoldenSet.repoRoot.appendingPathComponent("models/quickdraw-345/model.onnx")

    /// The golden images and the reference path's logits for all of them (batch 64), computed once for the tests
    /// that compare with them: the reference kernels are the slow ones.
    static let referenceRun = Result { () throws -> (golden: GoldenSet, logits: [UInt8]) in
        let golden = try GoldenSet(directory: GoldenSet.fixture("quickdraw-345"))
        let engine = try InferenceEngine(contentsOf: shippedModel, isa: .reference)
        return (golden, try quantizedLogits(engine, golden, batch: 64))
    }

    @Test("tiny fixture model gives the exact-integer reference's bits on every kernel path", arguments: KernelISA.supported)
    func tinyMatchesGoldens(isa: KernelISA) throws {
        let dir = GoldenSet.fixture("tiny")
        let golden = try GoldenSet(directory: dir)
        let engine = try InferenceEngine(contentsOf: dir.appendingPathComponent("tiny.onnx"), isa: isa)
        #expect(engine.classCount == 10)
        #expect(engine.metadata.labels.first == "digit0")
        for batch in [1, 5, 96] {
            let result = compare(try quantizedLogits(engine, golden, batch: batch), golden)
            #expect(result.maxStep == 0, "batch \(batch): off by \(result.maxStep) steps")
            #expect(result.top1Agreement == 1, "batch \(batch): top-1 agreement \(result.top1Agreement)")
        }
    }

    @Test("shipped model gives the exact-integer reference's bits on 2,000 real drawings on every kernel path",
          arguments: KernelISA.supported)
    func shippedMatchesGoldens(isa: KernelISA) async throws {
        let (golden, reference) = try await computeOffPool { try Self.referenceRun.get() }
        #expect(golden.count >= 2000)
        let engine = try InferenceEngine(contentsOf: Self.shippedModel, isa: isa)
        #expect(engine.classCount == 345)
        #expect(engine.inputBytes == 784)
        #expect(engine.metadata.labels.count == 345)
        #expect(engine.metadata.labels[1] == "airplane")
        for batch in isa == .reference ? [64] : [1, 64, 256] {
            let ours = isa == .reference ? reference : try await computeOffPool { try quantizedLogits(engine, golden, batch: batch) }
            let result = compare(ours, golden)
            #expect(result.maxStep == 0, "batch \(batch): off by \(result.maxStep) steps")
            #expect(result.top1Agreement == 1, "batch \(batch): top-1 agreement \(result.top1Agreement)")
        }
    }

    @Test("each convolution of the shipped model runs with the 2 x 2 pool after it fused, computing only what it reads")
    func poolsAreFused() throws {
        let engine = try InferenceEngine(contentsOf: Self.shippedModel, isa: .reference)
        let fused = engine.plan.steps.filter { step in
            if case .conv(_, _, _, _, _, _, let border) = step { border?.pooled == true } else { false }
        }
        let pools = engine.plan.steps.filter { if case .maxPool = $0 { true } else { false } }
        #expect(fused.count == 3)
        #expect(pools.isEmpty)
        // The last convolution (7 x 7, pooled to 3 x 3) computes only the 6 x 6 outputs its pool reads.
        let unfused = engine.plan.steps.reduce(0) { total, step in
            switch step {
            case .conv(_, _, let shape, _, _, let gemm, _): total + Int(shape.out_h * shape.out_w) * gemm.macsPerRow
            case .dense(_, _, let gemm): total + gemm.macsPerRow
            default: total
            }
        }
        #expect(engine.macsPerImage == engine.plan.steps.reduce(0) { $0 + $1.macs(engine.plan) })
        guard case .conv(_, _, let shape, _, _, let last, _) = fused.last else { return }
        #expect(shape.out_h == 7 && shape.out_w == 7)
        #expect(unfused - engine.macsPerImage == (7 * 7 - 6 * 6) * last.macsPerRow)
    }

    @Test("the AVX2 path runs the model's two pooled 3 x 3 convolutions by Winograd (so the golden tests cover it), no other path does",
          arguments: KernelISA.supported)
    func winogradWhereItPays(isa: KernelISA) throws {
        let engine = try InferenceEngine(contentsOf: Self.shippedModel, isa: isa)
        let winograd = engine.plan.steps.compactMap { step -> String? in
            guard case .conv(_, _, _, _, _, let gemm, _) = step, gemm.winograd != nil else { return nil }
            return step.summary(engine.plan)
        }
        #expect(winograd == (isa == .avx2 ? ["conv 3x3 32->48 @14x14 + maxpool 2x2 (Winograd)",
                                             "conv 3x3 48->128 @7x7 + maxpool 2x2 (Winograd)"] : []))
        // What the benchmarks divide by the vpmaddwd peak: 16 per pooled pixel (taken 2 at a time), input and
        // output channel; 49 pooled pixels of conv2 make 50, conv3's 9 make 10.
        let madds = engine.plan.steps.map { $0.winogradMadds(isa: isa) }.filter { $0 > 0 }
        #expect(madds == (isa == .avx2 ? [16 * 50 * 32 * 48, 16 * 10 * 48 * 128] : []))
        #expect((isa.measuredWinogradPeak(seconds: 0.01) > 0) == (isa == .avx2))
    }

    @Test("every kernel path gives the reference path's bits on all 2,000 golden images, at batch 1 and 37",
          arguments: KernelISA.supported.filter { $0 != .reference })
    func pathsAgree(isa: KernelISA) async throws {
        let (golden, reference) = try await computeOffPool { try Self.referenceRun.get() }
        #expect(golden.count >= 2000)
        let engine = try InferenceEngine(contentsOf: Self.shippedModel, isa: isa)
        for batch in [1, 37] {
            let ours = try await computeOffPool { try quantizedLogits(engine, golden, batch: batch) }
            let differing = (0..<golden.count).filter { i in
                let row = (i * golden.classes)..<((i + 1) * golden.classes)
                return ours[row] != reference[row]
            }
            #expect(differing.isEmpty, "\(isa) batch \(batch): \(differing.count) images differ, first \(differing.prefix(5))")
        }
    }

    @Test("probabilities are a softmax of the logits")
    func probabilities() throws {
        let golden = GoldenSet.prefix(try GoldenSet(directory: GoldenSet.fixture("quickdraw-345")), 16)
        let engine = try InferenceEngine(contentsOf: Self.shippedModel)
        let scratch = engine.makeScratch(maxBatch: 16)
        var scores = [Float](repeating: 0, count: 16 * engine.classCount)
        try golden.images.withUnsafeBytes { px in
            try scores.withUnsafeMutableBufferPointer { try engine.run(images: px, count: 16, scratch: scratch, scores: $0) }
        }
        for i in 0..<16 {
            let row = scores[(i * 345)..<((i + 1) * 345)]
            #expect(abs(row.reduce(0, +) - 1) < 1e-4)
            let best = row.indices.max(by: { row[$0] < row[$1] })! - row.startIndex
            let goldenRow = golden.logits[(i * 345)..<((i + 1) * 345)]
            #expect(goldenRow[goldenRow.startIndex + best] == goldenRow.max())
        }
    }

    @Test("threads sharing one engine, each with its own scratch, get identical results")
    func concurrentRuns() async throws {
        let golden = GoldenSet.prefix(try GoldenSet(directory: GoldenSet.fixture("quickdraw-345")), 200)
        let engine = try InferenceEngine(contentsOf: Self.shippedModel)
        let expected = try quantizedLogits(engine, golden, batch: 8)
        try await withThrowingTaskGroup(of: [UInt8].self) { group in
            for t in 0..<4 {
                group.addTask { try quantizedLogits(engine, golden, batch: 3 + t) }
            }
            for try await result in group { #expect(result == expected) }
        }
    }

    @Test("an unsupported operator is refused, naming the node and op type")
    func refusesUnsupportedOps() throws {
        let graph = try ONNXGraph(contentsOf: GoldenSet.fixture("tiny").appendingPathComponent("tiny.onnx"))
        var model = graph.model
        let index = try #require(model.graph.node.firstIndex(where: { $0.opType == "MaxPool" }))
        model.graph.node[index].opType = "AveragePool"
        model.graph.node[index].name = "pool_under_test"
        #expect {
            try InferenceEngine(serialized: try model.serializedData())
        } throws: { error in
            let e = error as? EngineError
            return e?.node == "pool_under_test" && e?.opType == "AveragePool" && "\(error)".contains("AveragePool")
        }
    }

    @Test("bad files and bad calls are errors, not crashes")
    func badInput() throws {
        #expect(throws: EngineError.self) { try InferenceEngine(serialized: Data([1, 2, 3, 4, 5])) }
        #expect(throws: EngineError.self) { try InferenceEngine(contentsOf: URL(fileURLWithPath: "/nonexistent.onnx")) }
        let engine = try InferenceEngine(contentsOf: Self.shippedModel)
        let scratch = engine.makeScratch(maxBatch: 2)
        var scores = [Float](repeating: 0, count: 3 * 345)
        let pixels = [UInt8](repeating: 0, count: 3 * 784)
        #expect(throws: EngineError.self) {
            try pixels.withUnsafeBytes { px in
                try scores.withUnsafeMutableBufferPointer { try engine.run(images: px, count: 3, scratch: scratch, scores: $0) }
            }
        }
        #expect(throws: EngineError.self) {
            try pixels.withUnsafeBytes { px in
                try scores.withUnsafeMutableBufferPointer {
                    try engine.run(images: UnsafeRawBufferPointer(rebasing: px[0..<100]), count: 1, scratch: scratch, scores: $0)
                }
            }
        }
    }
}

extension GoldenSet {
    static func prefix(_ g: GoldenSet, _ n: Int) -> GoldenSet {
        GoldenSet(images: Array(g.images.prefix(n * 784)), logits: Array(g.logits.prefix(n * g.classes)),
                  count: min(n, g.count), classes: g.classes)
    }

    init(images: [UInt8], logits: [UInt8], count: Int, classes: Int) {
        self.images = images
        self.logits = logits
        self.count = count
        self.classes = classes
    }
}
