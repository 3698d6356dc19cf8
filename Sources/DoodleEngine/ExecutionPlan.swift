import CDoodleKernels

/// Scale and zero point of a uint8 activation: real = (q - zeroPoint) * scale.
struct QuantParams: Equatable {
    var scale: Float
    var zeroPoint: Int32
}

/// Per-image layout of an activation buffer: NHWC uint8, `stride` bytes apart (a multiple of 64).
struct ActivationLayout {
    var channels: Int
    var height: Int
    var width: Int
    var elements: Int { self.channels * self.height * self.width }
    var stride: Int { (self.elements + 63) / 64 * 64 }
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
    var packed: UnsafeRawPointer
    var requant: CDoodleKernels_Requant
}

/// One step of the compiled plan. Buffers are indices into the scratch's activation buffers.
enum PlanStep {
    /// Pixel bytes -> quantised input through a 256-entry table.
    case quantizeInput(table: UnsafePointer<UInt8>, output: Int)
    /// 2-D convolution + bias + requantise (+ ReLU), one image at a time.
    case conv(input: Int, output: Int, shape: CDoodleKernels_ConvShape, rowBytes: Int, padValue: UInt8, gemm: GemmWeights)
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

    /// Index of the first dense step: the steps before it run image by image.
    var firstBatchedStep: Int {
        self.steps.firstIndex(where: { if case .dense = $0 { true } else { false } }) ?? self.steps.count
    }
}
