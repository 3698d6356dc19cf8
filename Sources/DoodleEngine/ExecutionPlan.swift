import CDoodleKernels

/// Scale and zero point of a uint8 activation: real = (q - zeroPoint) * scale.
struct QuantParams: Equatable {
    var scale: Float
    var zeroPoint: Int32
}

/// Per-image layout of an activation buffer: NHWC uint8, `stride` bytes apart (a multiple of 64).
///
/// A buffer may carry a border of `pad` pixels on every side, filled with `padValue` (the consumer's zero
/// point) once when the scratch is made; producers write only the interior.
struct ActivationLayout {
    var channels: Int
    var height: Int
    var width: Int
    var pad = 0
    var padValue: UInt8 = 0
    /// Written and read only by the layers that run image by image: one slot serves every image of a batch,
    /// so a large batch does not stream megabytes of intermediate activations through the caches.
    var singleSlot = false

    /// Logical elements (without the border).
    var elements: Int { self.channels * self.height * self.width }
    /// Bytes between rows, border included.
    var pitch: Int { (self.width + 2 * self.pad) * self.channels }
    /// Offset of the first interior element.
    var interiorOffset: Int { self.pad * self.pitch + self.pad * self.channels }
    var stride: Int { ((self.height + 2 * self.pad) * self.pitch + 63) / 64 * 64 }
}

/// Memory that lives as long as the plan (prepacked weights, biases, scales), 64-byte aligned.
final class WeightArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    func store<T>(_ values: [T]) -> UnsafePointer<T> {
        let p = self.allocate(bytes: max(1, values.count * MemoryLayout<T>.stride)).bindMemory(to: T.self, capacity: values.count)
        _ = UnsafeMutableBufferPointer(start: p, count: values.count).initialize(from: values)
        return UnsafePointer(p)
    }

    func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(64, (bytes + 63) / 64 * 64), alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: max(64, (bytes + 63) / 64 * 64))
        self.blocks.append(p)
        return p
    }

    deinit {
        for b in self.blocks { b.deallocate() }
    }
}

/// A fused int8 GEMM (conv via im2col, or dense): weights prepacked, zero points folded into the bias.
struct GemmWeights {
    var k: Int
    var n: Int
    /// The model's multiply-accumulates per output row (a kernel widened with zero taps does more work).
    var macsPerRow: Int
    var packed: UnsafeRawPointer
    var requant: CDoodleKernels_Requant
    /// The same 3 x 3 weights transformed for the Winograd kernel, where the path gains by it (PlanCompiler.useWinograd).
    var winograd: UnsafeRawPointer? = nil
}

/// One step of the compiled plan. Buffers are indices into the scratch's activation buffers.
enum PlanStep {
    /// Pixel bytes -> quantised input through a 256-entry table.
    case quantizeInput(table: UnsafePointer<UInt8>, output: Int)
    /// 2-D convolution + bias + requantise (+ ReLU), one image at a time. With a `border`, the input buffer carries
    /// the padding, so every kernel path reads it in place without im2col; `shape` then describes the window read (from
    /// `border.inputOffset`, rows `in_w` pixels apart, no padding), which is also what the im2col paths see.
    case conv(input: Int, output: Int, shape: CDoodleKernels_ConvShape, rowBytes: Int, padValue: UInt8, gemm: GemmWeights,
              border: ConvBorder?)
    /// Max pooling, no padding.
    case maxPool(input: Int, output: Int, kernel: (Int, Int), strides: (Int, Int))
    /// Fully connected layer over the whole batch at once.
    case dense(input: Int, output: Int, gemm: GemmWeights)
    /// Element-wise quantised add of two buffers.
    case add(a: Int, za: Int32, sa: Float, b: Int, zb: Int32, sb: Float, output: Int, zo: Int32, lo: Int32, hi: Int32)
    /// Element-wise quantised add of a constant (already divided by the output scale), repeating per channel.
    case addConstant(a: Int, za: Int32, sa: Float, constant: UnsafePointer<Float>, channels: Int, output: Int, zo: Int32,
                     lo: Int32, hi: Int32)
}

/// Where a bordered convolution's window starts inside its input's slot.
struct ConvBorder {
    var inputOffset: Int
    /// The 2 x 2, stride-2 max pool that alone read this convolution's output is done by it: the step's output is
    /// then the pool's buffer, and the full-size output is never made (ExecutionPlan.fuseConvolutionPools).
    var pooled = false
}

/// The compiled model: steps, buffer layouts, and where the logits come out.
struct ExecutionPlan {
    var steps: [PlanStep]
    var layouts: [ActivationLayout]
    var inputLayout: ActivationLayout
    var logitsBuffer: Int
    var logitsParams: QuantParams
    var classCount: Int
    var macsPerImage: Int
    var im2colBytes: Int

    /// Steps that read `buffer`.
    func readers(of buffer: Int) -> [Int] {
        self.steps.indices.filter { i in
            switch self.steps[i] {
            case .quantizeInput: false
            case .conv(let input, _, _, _, _, _, _): input == buffer
            case .maxPool(let input, _, _, _): input == buffer
            case .dense(let input, _, _): input == buffer
            case .add(let a, _, _, let b, _, _, _, _, _, _): a == buffer || b == buffer
            case .addConstant(let a, _, _, _, _, _, _, _, _): a == buffer
            }
        }
    }

    /// Gives each eligible convolution (stride 1, no dilation, kernel rows of a multiple of 4 bytes) a bordered
    /// input, written by a max pool or the input step and read by nobody else, so it runs without im2col. The
    /// border is the largest of its pads on every side; the window starts inside it.
    mutating func borderConvolutionInputs() {
        for i in self.steps.indices {
            guard case .conv(let input, let output, var shape, let rowBytes, let padValue, let gemm, nil) = self.steps[i]
            else { continue }
            let (pt, pl, pb, pr) = (Int(shape.pad_top), Int(shape.pad_left), Int(shape.pad_bottom), Int(shape.pad_right))
            let p = max(pt, pl, pb, pr)
            guard shape.stride_h == 1, shape.stride_w == 1, shape.dil_h == 1, shape.dil_w == 1,
                  Int(shape.k_w * shape.in_c) % 4 == 0, self.readers(of: input) == [i],
                  self.steps.contains(where: { step in
                      switch step {
                      case .maxPool(_, input, _, _), .quantizeInput(_, input): true
                      default: false
                      }
                  })
            else { continue }
            self.layouts[input].pad = p
            self.layouts[input].padValue = padValue
            let l = self.layouts[input]
            let offset = (p - pt) * l.pitch + (p - pl) * l.channels
            shape.in_h += Int32(pt + pb)
            shape.in_w += Int32(2 * p)  // rows of the bordered buffer: the im2col paths address with in_w
            shape.pad_top = 0
            shape.pad_left = 0
            shape.pad_bottom = 0
            shape.pad_right = 0
            self.steps[i] = .conv(input: input, output: output, shape: shape, rowBytes: rowBytes, padValue: padValue,
                                  gemm: gemm, border: ConvBorder(inputOffset: offset))
        }
    }

    /// Folds each 2 x 2, stride-2 max pool into the bordered convolution before it, where the pool alone reads the
    /// convolution's output and every requantisation scale is >= 0. Requantisation then never decreases, so the
    /// largest of four requantised sums is the requantised largest sum, bit for bit: each output is requantised
    /// once instead of four times, the full-size activation is never written, and a last odd row or column that
    /// the pool drops is never computed.
    mutating func fuseConvolutionPools() {
        var removed = Set<Int>()
        for i in self.steps.indices {
            guard case .conv(let input, let output, let shape, let rowBytes, let padValue, let gemm, let border?) =
                    self.steps[i],
                  !border.pooled, case let readers = self.readers(of: output), readers.count == 1, let j = readers.first,
                  case .maxPool(output, let pooledOutput, let kernel, let strides) = self.steps[j],
                  kernel == (2, 2), strides == (2, 2),
                  self.layouts[pooledOutput].height == Int(shape.out_h) / 2,
                  self.layouts[pooledOutput].width == Int(shape.out_w) / 2,
                  self.layouts[pooledOutput].channels == gemm.n,
                  (0..<gemm.n).allSatisfy({ gemm.requant.scale[$0] >= 0 })
            else { continue }
            var fused = border
            fused.pooled = true
            self.steps[i] = .conv(input: input, output: pooledOutput, shape: shape, rowBytes: rowBytes,
                                  padValue: padValue, gemm: gemm, border: fused)
            self.layouts[output] = ActivationLayout(channels: 0, height: 0, width: 0)  // no longer made
            removed.insert(j)
        }
        self.steps = self.steps.indices.filter { !removed.contains($0) }.map { self.steps[$0] }
    }

    /// Marks buffers that only per-image steps touch (see `ActivationLayout.singleSlot`).
    mutating func shareSingleSlots() {
        let split = self.firstBatchedStep
        for b in self.layouts.indices where b != self.logitsBuffer {
            let producedEarly = self.steps[..<split].contains { step in
                switch step {
                case .quantizeInput(_, let o), .conv(_, let o, _, _, _, _, _), .maxPool(_, let o, _, _),
                     .add(_, _, _, _, _, _, let o, _, _, _), .addConstant(_, _, _, _, _, let o, _, _, _):
                    o == b
                case .dense: false
                }
            }
            if producedEarly && self.readers(of: b).allSatisfy({ $0 < split }) { self.layouts[b].singleSlot = true }
        }
    }

    /// Index of the first dense step: the steps before it run image by image.
    var firstBatchedStep: Int {
        self.steps.firstIndex(where: { if case .dense = $0 { true } else { false } }) ?? self.steps.count
    }
}

extension PlanStep {
    /// One line for benchmark tables, e.g. "conv 3x3 32->40 @14x14".
    func summary(_ plan: ExecutionPlan, kernelWidth: Int? = nil) -> String {
        let layouts = plan.layouts
        switch self {
        case .quantizeInput: return "quantize input"
        case .conv(let input, let output, let shape, _, _, let gemm, let border):
            let o = layouts[output]
            let kw = gemm.macsPerRow / (Int(shape.k_h) * layouts[input].channels * gemm.n)
            let channels = "\(layouts[input].channels)->\(o.channels)"
            let conv = "conv \(shape.k_h)x\(kw) \(channels) @\(shape.out_h)x\(shape.out_w)"
            let pooled = border?.pooled == true ? conv + " + maxpool 2x2" : conv
            return gemm.winograd != nil ? pooled + " (Winograd)" : pooled
        case .maxPool(let input, _, let k, _):
            let i = layouts[input]
            return "maxpool \(k.0)x\(k.1) \(i.channels)ch @\(i.height)x\(i.width)"
        case .dense(_, let output, let gemm): return "dense \(gemm.k)->\(layouts[output].channels)"
        case .add: return "add"
        case .addConstant: return "add constant"
        }
    }

    /// The int16 multiply-adds per image of a convolution run by Winograd on `isa` (CDoodleKernels_winograd_madds);
    /// 0 for any other step.
    func winogradMadds(isa: KernelISA) -> Int {
        guard case .conv(_, _, let shape, _, _, let gemm, _) = self, gemm.winograd != nil else { return 0 }
        return CDoodleKernels_winograd_madds(isa.c, shape.in_c, Int32(gemm.n), shape.out_h, shape.out_w)
    }

    /// The model's multiply-accumulates per image over the outputs the step computes (not counting work on zero taps
    /// added for the kernels).
    func macs(_ plan: ExecutionPlan) -> Int {
        switch self {
        case .conv(_, _, let shape, _, _, let gemm, let border):
            // A fused pool's convolution computes only the rows and columns the pool reads.
            let pooled = border?.pooled == true
            let (h, w) = (Int(shape.out_h), Int(shape.out_w))
            return (pooled ? h / 2 * 2 : h) * (pooled ? w / 2 * 2 : w) * gemm.macsPerRow
        case .dense(_, _, let gemm): return gemm.macsPerRow
        default: return 0
        }
    }
}
