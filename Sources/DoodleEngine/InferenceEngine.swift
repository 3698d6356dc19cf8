import CDoodleKernels
import Foundation

/// A quantised ONNX classifier compiled to fused int8 layers, run on SIMD kernels.
///
/// Load once, then call `run` from any number of threads, each with its own `InferenceScratch`:
///
/// ```swift
/// let engine = try InferenceEngine(contentsOf: URL(fileURLWithPath: "models/quickdraw-345/model.onnx"))
/// let scratch = engine.makeScratch(maxBatch: 64)
/// var scores = [Float](repeating: 0, count: engine.classCount)
/// try pixels.withUnsafeBytes { px in
///     try scores.withUnsafeMutableBufferPointer { try engine.run(images: px, count: 1, scratch: scratch, scores: $0) }
/// }
/// ```
/// The engine is immutable after loading, so sharing it between threads needs no locks.
public final class InferenceEngine: @unchecked Sendable {
    /// Name, version, labels and quantisation of the loaded model.
    public let metadata: ModelMetadata
    /// The kernel path in use.
    public let isa: KernelISA
    /// Bytes per input image (C x H x W, e.g. 784 for 28 x 28 grey).
    public let inputBytes: Int
    /// Number of classes (length of one image's scores).
    public let classCount: Int
    /// Multiply-accumulates per image in conv and dense layers: the model's, less those of convolution outputs that
    /// a fused 2 x 2 pool never reads (a last odd row or column).
    public let macsPerImage: Int
    /// Input shape (channels, height, width).
    public let inputShape: (channels: Int, height: Int, width: Int)

    let plan: ExecutionPlan
    private let arena: WeightArena
    /// exp((q - 255) * logits scale) for every uint8 logit q.
    private let expTable: [Float]

    /// Loads and compiles a model file.
    /// - Parameters:
    ///   - url: an ONNX file made by onnxruntime's `quantize_static` in QDQ format.
    ///   - isa: the kernel path; defaults to the fastest this CPU supports.
    /// - Throws: `EngineError` naming the node and operator that cannot be compiled.
    public convenience init(contentsOf url: URL, isa: KernelISA = .best) throws {
        try self.init(graph: ONNXGraph(contentsOf: url), isa: isa)
    }

    /// Loads and compiles a model from its serialized bytes.
    public convenience init(serialized data: Data, isa: KernelISA = .best) throws {
        try self.init(graph: ONNXGraph(serialized: data), isa: isa)
    }

    private init(graph: ONNXGraph, isa: KernelISA) throws {
        guard isa.isSupported else { throw EngineError("this CPU cannot run the \(isa) kernels") }
        let arena = WeightArena()
        var compiler = PlanCompiler(graph: graph, isa: isa, arena: arena)
        let plan = try compiler.compile()
        self.arena = arena
        self.plan = plan
        self.isa = isa
        self.inputBytes = plan.inputLayout.elements
        self.inputShape = (plan.inputLayout.channels, plan.inputLayout.height, plan.inputLayout.width)
        self.classCount = plan.classCount
        self.macsPerImage = plan.macsPerImage
        self.metadata = ModelMetadata(properties: graph.metadata, classCount: plan.classCount)
        let scale = Double(plan.logitsParams.scale)
        self.expTable = (0..<256).map { Float(Foundation.exp(Double($0 - 255) * scale)) }
    }

    /// Working memory for one thread, for batches of up to `maxBatch` images.
    public func makeScratch(maxBatch: Int) -> InferenceScratch {
        InferenceScratch(plan: self.plan, maxBatch: maxBatch)
    }

    /// Runs a batch and writes softmax probabilities.
    /// - Parameters:
    ///   - images: `count` images of `inputBytes` bytes each, row-major, 0 = background, 255 = ink.
    ///   - count: images in the batch, 1...scratch.maxBatch.
    ///   - scratch: this thread's scratch.
    ///   - scores: room for `count * classCount` floats; image i's probabilities start at `i * classCount`.
    public func run(images: UnsafeRawBufferPointer, count: Int, scratch: InferenceScratch,
                    scores: UnsafeMutableBufferPointer<Float>) throws {
        try self.forward(images: images, count: count, scratch: scratch)
        guard scores.count >= count * self.classCount else {
            throw EngineError("scores has room for \(scores.count) floats, need \(count * self.classCount)")
        }
        let stride = self.plan.layouts[self.plan.logitsBuffer].stride
        let out = scratch.buffers[self.plan.logitsBuffer].assumingMemoryBound(to: UInt8.self)
        let n = self.classCount
        // Softmax over uint8 logits: exp((q - zp) * s) / sum = E[q] / sum E, with E[q] = exp((q - 255) * s) from a
        // table (no overflow, no exp calls).
        let table = self.expTable
        for i in 0..<count {
            let row = out + i * stride
            var sum: Float = 0
            for c in 0..<n {
                let e = table[Int(row[c])]
                scratch.logits[c] = e
                sum += e
            }
            let dst = scores.baseAddress! + i * n
            let inv = 1 / sum
            for c in 0..<n { dst[c] = scratch.logits[c] * inv }
        }
    }

    /// Runs a batch and writes the quantised logits (uint8, the model's last QuantizeLinear), for comparing
    /// with onnxruntime step for step. `logits` needs room for `count * classCount` bytes.
    public func runQuantizedLogits(images: UnsafeRawBufferPointer, count: Int, scratch: InferenceScratch,
                                   logits: UnsafeMutableBufferPointer<UInt8>) throws {
        try self.forward(images: images, count: count, scratch: scratch)
        guard logits.count >= count * self.classCount else {
            throw EngineError("logits has room for \(logits.count) bytes, need \(count * self.classCount)")
        }
        let stride = self.plan.layouts[self.plan.logitsBuffer].stride
        let out = scratch.buffers[self.plan.logitsBuffer].assumingMemoryBound(to: UInt8.self)
        for i in 0..<count {
            (logits.baseAddress! + i * self.classCount).update(from: out + i * stride, count: self.classCount)
        }
    }

    /// The scale and zero point of the quantised logits.
    public var logitsQuantization: (scale: Float, zeroPoint: Int32) {
        (self.plan.logitsParams.scale, self.plan.logitsParams.zeroPoint)
    }

    /// Time spent in each step over `repeats` runs of a batch, for benchmarks: (description, the model's MACs per
    /// image, the int16 multiply-adds per image of a step run by Winograd (0 for others), seconds per image). Steps
    /// run in plan order, each over the whole batch.
    public func profileSteps(images: UnsafeRawBufferPointer, count: Int, scratch: InferenceScratch, repeats: Int)
        throws -> [(step: String, macsPerImage: Int, winogradMaddsPerImage: Int, secondsPerImage: Double)]
    {
        try self.forward(images: images, count: count, scratch: scratch)  // warm
        var out: [(String, Int, Int, Double)] = []
        for step in self.plan.steps {
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<repeats {
                if case .dense = step {
                    self.execute(step, images: 0..<count, input: images, scratch: scratch)
                } else {
                    for i in 0..<count { self.execute(step, images: i..<(i + 1), input: images, scratch: scratch) }
                }
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(repeats * count)
            out.append((step.summary(self.plan), step.macs(self.plan), step.winogradMadds(isa: self.isa), seconds))
        }
        return out
    }

    private func forward(images: UnsafeRawBufferPointer, count: Int, scratch: InferenceScratch) throws {
        guard count >= 1, count <= scratch.maxBatch else {
            throw EngineError("batch of \(count) images; this scratch holds 1...\(scratch.maxBatch)")
        }
        guard images.count >= count * self.inputBytes else {
            throw EngineError("\(images.count) input bytes for \(count) images of \(self.inputBytes) bytes")
        }
        // Layers before the first dense one run image by image, so one image's activations stay in L1/L2;
        // dense layers then run on the whole batch as one GEMM.
        let steps = self.plan.steps
        let split = self.plan.firstBatchedStep
        for i in 0..<count {
            for step in steps[..<split] { self.execute(step, images: i..<(i + 1), input: images, scratch: scratch) }
        }
        for step in steps[split...] { self.execute(step, images: 0..<count, input: images, scratch: scratch) }
    }

    private func execute(_ step: PlanStep, images range: Range<Int>, input images: UnsafeRawBufferPointer,
                         scratch: InferenceScratch) {
        let layouts = self.plan.layouts
        let isa = self.isa.c
        func bytes(_ buffer: Int) -> UnsafeMutablePointer<UInt8> {
            scratch.buffers[buffer].assumingMemoryBound(to: UInt8.self)
        }
        // Image i's slice of a buffer (slot 0 for single-slot buffers).
        func slot(_ buffer: Int, _ i: Int) -> UnsafeMutablePointer<UInt8> {
            bytes(buffer) + (layouts[buffer].singleSlot ? 0 : i * layouts[buffer].stride)
        }
        switch step {
        case .quantizeInput(let table, let output):
            // Input bytes are planar (C x H x W, as ONNX's NCHW); the buffer is NHWC, possibly widened to more
            // channels than the input has (the extra ones meet zero weights) and possibly bordered.
            let l = layouts[output]
            let src = images.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let (channels, h, w) = self.inputShape
            let c = l.channels
            for i in range {
                let s = src + i * self.inputBytes
                let d = slot(output, i) + l.interiorOffset
                if c == 1 && l.pad == 0 {
                    for j in 0..<self.inputBytes { d[j] = table[Int(s[j])] }
                    continue
                }
                for ch in 0..<channels {
                    let plane = s + ch * h * w
                    for y in 0..<h {
                        let row = d + y * l.pitch + ch
                        for x in 0..<w { row[x * c] = table[Int(plane[y * w + x])] }
                    }
                }
            }
        case .conv(let input, let output, var shape, let rowBytes, let padValue, var gemm, let border):
            let a = scratch.im2col.assumingMemoryBound(to: UInt8.self)
            let m = Int32(shape.out_h * shape.out_w)
            let offset = border?.inputOffset ?? 0
            if let border, border.pooled {
                let l = layouts[input]
                let o = layouts[output]
                if let winograd = gemm.winograd {
                    for i in range {
                        CDoodleKernels_conv3x3_pool2_winograd_u8(isa, slot(input, i) + offset, l.pitch, shape.in_c,
                                                                 shape.out_h, shape.out_w, winograd, Int32(gemm.n),
                                                                 &gemm.requant, slot(output, i) + o.interiorOffset,
                                                                 o.channels, o.pitch)
                    }
                    return
                }
                for i in range {
                    CDoodleKernels_conv_implicit_pool2_u8(isa, slot(input, i) + offset, l.pitch, shape.in_c, shape.k_h,
                                                          shape.k_w, shape.out_h, shape.out_w, gemm.packed,
                                                          Int32(gemm.n), &gemm.requant,
                                                          slot(output, i) + o.interiorOffset, o.channels, o.pitch)
                }
                return
            }
            if border != nil {
                let l = layouts[input]
                for i in range {
                    CDoodleKernels_conv_implicit_u8(isa, slot(input, i) + offset, l.pitch, shape.in_c, shape.k_h,
                                                    shape.k_w, shape.out_h, shape.out_w, gemm.packed, Int32(gemm.n),
                                                    &gemm.requant, slot(output, i), gemm.n)
                }
                return
            }
            for i in range {
                CDoodleKernels_im2col_u8(isa, &shape, slot(input, i) + offset, padValue, a, rowBytes)
                CDoodleKernels_gemm_u8s8(isa, a, rowBytes, m, Int32(gemm.k), Int32(gemm.n), gemm.packed,
                                         &gemm.requant, slot(output, i), gemm.n)
            }
        case .maxPool(let input, let output, let kernel, let strides):
            let l = layouts[input]
            let o = layouts[output]
            for i in range {
                CDoodleKernels_maxpool_u8(isa, slot(input, i) + l.interiorOffset, Int32(l.height),
                                          Int32(l.width), Int32(l.channels), Int32(kernel.0), Int32(kernel.1),
                                          Int32(strides.0), Int32(strides.1), Int32(o.height), Int32(o.width),
                                          slot(output, i) + o.interiorOffset, o.pitch)
            }
        case .dense(let input, let output, var gemm):
            CDoodleKernels_gemm_u8s8(isa, bytes(input) + range.lowerBound * layouts[input].stride, layouts[input].stride,
                                     Int32(range.count), Int32(gemm.k), Int32(gemm.n), gemm.packed, &gemm.requant,
                                     bytes(output) + range.lowerBound * layouts[output].stride, layouts[output].stride)
        case .add(let a, let za, let sa, let b, let zb, let sb, let output, let zo, let lo, let hi):
            let l = layouts[output]
            for i in range {
                CDoodleKernels_add_u8(slot(a, i), za, sa, slot(b, i), zb, sb, zo, lo, hi, l.elements, slot(output, i))
            }
        case .addConstant(let a, let za, let sa, let constant, let channels, let output, let zo, let lo, let hi):
            let l = layouts[output]
            for i in range {
                CDoodleKernels_add_const_u8(slot(a, i), za, sa, constant, channels, zo, lo, hi, l.elements,
                                            slot(output, i))
            }
        }
    }
}
