import CDoodleKernels
import Foundation

/// The compiled plan as a flat program of kernel calls, weights unpacked, for `Tests/KernelCheck/plan_replay.c`:
/// a small C replayer that runs the whole model on every kernel path of the machine it is built for, including
/// those this build cannot run (the NEON paths, under qemu-aarch64), and compares the logits with the goldens.
/// A convolution the AVX2 engine runs by Winograd (`GemmWeights.winograd`) is replayed by the direct kernel,
/// which gives the same bits; the engine's own golden tests cover the Winograd kernel.
///
/// Little-endian, in this order (u32 unless stated; a buffer is an index into the layouts):
/// - magic `DKP1`; input channels, height, width; classes; logits buffer; first batched step; im2col bytes;
/// - layouts: count, then per buffer channels, height, width, border (pixels), pad value, single slot, stride;
/// - steps: count, then per step its kind and fields:
///   0 quantizeInput: output, 256 table bytes;
///   1 conv: input, output, 15 i32 of `CDoodleKernels_ConvShape` (declaration order), row bytes, pad value,
///     bordered, input offset, pooled, gemm;
///   2 maxPool: input, output, kernel h, w, stride h, w;
///   3 dense: input, output, gemm;
///   4 add: a, za (i32), sa (f32), b, zb, sb, output, zo, lo, hi;
///   5 addConstant: a, za, sa, channels, that many f32, output, zo, lo, hi;
/// - gemm: K, N, N x K i8 weights (`w[n * K + k]`), N i32 biases, N f32 scales, zero point, lo, hi.
struct KernelProgram {
    private(set) var data = Data()

    init(plan: ExecutionPlan, isa: KernelISA) {
        self.data.append(contentsOf: Array("DKP1".utf8))
        let input = plan.inputLayout
        self.u32(input.channels, input.height, input.width, plan.classCount, plan.logitsBuffer, plan.firstBatchedStep,
                 plan.im2colBytes)
        self.u32(plan.layouts.count)
        for l in plan.layouts {
            self.u32(l.channels, l.height, l.width, l.pad, Int(l.padValue), l.singleSlot ? 1 : 0, l.stride)
        }
        self.u32(plan.steps.count)
        for step in plan.steps {
            switch step {
            case .quantizeInput(let table, let output):
                self.u32(0, output)
                self.data.append(UnsafeBufferPointer(start: table, count: 256))
            case .conv(let input, let output, let shape, let rowBytes, let padValue, let gemm, let border):
                self.u32(1, input, output)
                let s = shape
                for v in [s.in_h, s.in_w, s.in_c, s.k_h, s.k_w, s.stride_h, s.stride_w, s.pad_top, s.pad_left,
                          s.pad_bottom, s.pad_right, s.dil_h, s.dil_w, s.out_h, s.out_w] { self.u32(Int(v)) }
                self.u32(rowBytes, Int(padValue), border == nil ? 0 : 1, border?.inputOffset ?? 0,
                         border?.pooled == true ? 1 : 0)
                self.gemm(gemm, isa: isa)
            case .maxPool(let input, let output, let kernel, let strides):
                self.u32(2, input, output, kernel.0, kernel.1, strides.0, strides.1)
            case .dense(let input, let output, let gemm):
                self.u32(3, input, output)
                self.gemm(gemm, isa: isa)
            case .add(let a, let za, let sa, let b, let zb, let sb, let output, let zo, let lo, let hi):
                self.u32(4, a)
                self.i32(za)
                self.f32(sa)
                self.u32(b)
                self.i32(zb)
                self.f32(sb)
                self.u32(output)
                self.i32(zo, lo, hi)
            case .addConstant(let a, let za, let sa, let constant, let channels, let output, let zo, let lo, let hi):
                self.u32(5, a)
                self.i32(za)
                self.f32(sa)
                self.u32(channels)
                for c in 0..<channels { self.f32(constant[c]) }
                self.u32(output)
                self.i32(zo, lo, hi)
            }
        }
    }

    private mutating func gemm(_ g: GemmWeights, isa: KernelISA) {
        self.u32(g.k, g.n)
        var w = [Int8](repeating: 0, count: g.k * g.n)
        w.withUnsafeMutableBufferPointer {
            CDoodleKernels_unpack_weights(isa.c, g.packed, Int32(g.k), Int32(g.n), $0.baseAddress)
        }
        w.withUnsafeBytes { self.data.append(contentsOf: $0) }
        for j in 0..<g.n { self.i32(g.requant.bias[j]) }
        for j in 0..<g.n { self.f32(g.requant.scale[j]) }
        self.i32(g.requant.zero_point, g.requant.lo, g.requant.hi)
    }

    private mutating func u32(_ values: Int...) {
        for v in values { self.i32(Int32(truncatingIfNeeded: v)) }
    }

    private mutating func i32(_ values: Int32...) {
        for v in values { withUnsafeBytes(of: v.littleEndian) { self.data.append(contentsOf: $0) } }
    }

    private mutating func f32(_ value: Float) {
        withUnsafeBytes(of: value.bitPattern.littleEndian) { self.data.append(contentsOf: $0) }
    }
}

extension InferenceEngine {
    /// The compiled model as a kernel program for `Tests/KernelCheck/plan_replay.c` (format: `KernelProgram`), so
    /// that kernel paths this machine cannot run natively can be checked on the whole model under an emulator.
    public func kernelProgram() -> Data {
        KernelProgram(plan: self.plan, isa: self.isa).data
    }
}
