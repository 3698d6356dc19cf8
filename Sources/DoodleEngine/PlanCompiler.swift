import CDoodleKernels
import Foundation

/// Folds an onnxruntime QDQ graph into fused int8 layers.
///
/// Accepted forms (what `quantize_static(..., quant_format=QDQ)` emits): QuantizeLinear on the float input;
/// DequantizeLinear on activations and on int8 weight / int32 bias initializers; Conv, Gemm, MatMul (+ Add of a
/// bias), MaxPool, Flatten/Reshape, Relu and Add between a DequantizeLinear and a QuantizeLinear; a final
/// DequantizeLinear, optionally followed by Softmax. Anything else is refused with an error naming the node.
struct PlanCompiler {
    /// A weight or bias initializer seen through its DequantizeLinear.
    struct DQConstant {
        var values: [Int32]
        var dims: [Int]
        var scales: [Float]
        var zeroPoints: [Int32]
        var axis: Int
        var type: Onnx_TensorProto.DataType
    }

    struct Activation {
        var buffer: Int
        var params: QuantParams
    }

    indirect enum Pending {
        case conv(Onnx_NodeProto, Activation, DQConstant, DQConstant?, relu: Bool)
        case dense(Onnx_NodeProto, Activation, DQConstant, transB: Bool, bias: DQConstant?, relu: Bool)
        case maxPool(Onnx_NodeProto, Activation)
        case reshape(Onnx_NodeProto, Activation)
        case relu(Onnx_NodeProto, Activation)
        case add(Onnx_NodeProto, Activation, Activation, relu: Bool)
        case addConstant(Onnx_NodeProto, Activation, DQConstant, relu: Bool)
    }

    enum Value {
        case imageInput
        case quantized(Activation)
        case dequantized(Activation)
        case constant(DQConstant)
        case pending(Pending)
        case probabilities(Activation)
    }

    let graph: ONNXGraph
    let isa: KernelISA
    let arena: WeightArena
    var values: [String: Value] = [:]
    var steps: [PlanStep] = []
    var layouts: [ActivationLayout] = []
    var im2colBytes = 0
    var inputLayout = ActivationLayout(channels: 1, height: 28, width: 28)
    /// How many nodes read each tensor.
    var consumers: [String: Int] = [:]
    /// The quantised image's buffer, when only one Conv reads it (through one DequantizeLinear): that conv's
    /// kernel is widened with zero taps so its rows are whole 4-byte groups and it can run without im2col.
    var widenableImage: Int?

    init(graph: ONNXGraph, isa: KernelISA, arena: WeightArena) {
        self.graph = graph
        self.isa = isa
        self.arena = arena
    }

    mutating func compile() throws -> ExecutionPlan {
        let g = self.graph.model.graph
        let inputs = g.input.filter { !self.graph.isConstant($0.name) }
        guard inputs.count == 1, let input = inputs.first else {
            throw EngineError("the model must have exactly one non-constant input, found \(inputs.count)")
        }
        let dims = input.type.tensorType.shape.dim.map { d -> Int in
            if case .dimValue(let v) = d.value { return Int(v) }
            return -1
        }
        guard dims.count == 4, dims[1] > 0, dims[2] > 0, dims[3] > 0 else {
            throw EngineError("input '\(input.name)' must be N x C x H x W with fixed C, H, W; got \(dims)")
        }
        self.inputLayout = ActivationLayout(channels: dims[1], height: dims[2], width: dims[3])
        self.values[input.name] = .imageInput
        for node in g.node {
            for name in node.input where !name.isEmpty { self.consumers[name, default: 0] += 1 }
        }
        for out in g.output { self.consumers[out.name, default: 0] += 1 }

        for node in g.node where node.opType != "Constant" {
            try self.visit(node)
        }

        var logits: Activation?
        for out in g.output {
            switch self.values[out.name] {
            case .dequantized(let a), .probabilities(let a):
                if let l = logits, l.buffer != a.buffer {
                    throw EngineError("outputs '\(out.name)' and another output come from different tensors")
                }
                logits = a
            default:
                throw EngineError("output '\(out.name)' is not a dequantised activation or its Softmax")
            }
        }
        guard let logits else { throw EngineError("the model has no output") }
        let layout = self.layouts[logits.buffer]
        guard layout.height == 1, layout.width == 1 else {
            throw EngineError("the output must be N x classes, got \(layout.channels)x\(layout.height)x\(layout.width)")
        }
        var plan = ExecutionPlan(steps: self.steps, layouts: self.layouts, inputLayout: self.inputLayout,
                                 logitsBuffer: logits.buffer, logitsParams: logits.params, classCount: layout.channels,
                                 macsPerImage: 0, im2colBytes: self.im2colBytes)
        plan.borderConvolutionInputs()
        plan.fuseConvolutionPools()
        self.useWinograd(&plan)
        plan.macsPerImage = plan.steps.reduce(0) { $0 + $1.macs(plan) }  // after fusion: the work actually done
        plan.shareSingleSlots()
        return plan
    }

    /// Gives each pooled 3 x 3 convolution the Winograd form of its weights where this path gains by it
    /// (CDoodleKernels_winograd_pays: AVX2) and the shape suits; the engine then runs that kernel, with the same bits.
    private func useWinograd(_ plan: inout ExecutionPlan) {
        guard CDoodleKernels_winograd_pays(self.isa.c) != 0 else { return }
        for i in plan.steps.indices {
            guard case .conv(let input, let output, let shape, let rowBytes, let padValue, var gemm, let border?) =
                    plan.steps[i],
                  border.pooled, shape.k_h == 3, shape.k_w == 3, gemm.k == 9 * Int(shape.in_c)
            else { continue }
            let size = CDoodleKernels_winograd_packed_size(shape.in_c, Int32(gemm.n))
            guard size > 0 else { continue }
            var weights = [Int8](repeating: 0, count: gemm.k * gemm.n)
            weights.withUnsafeMutableBufferPointer {
                CDoodleKernels_unpack_weights(self.isa.c, gemm.packed, Int32(gemm.k), Int32(gemm.n), $0.baseAddress)
            }
            let packed = self.arena.allocate(bytes: size)
            weights.withUnsafeBufferPointer {
                CDoodleKernels_pack_winograd($0.baseAddress, shape.in_c, Int32(gemm.n), packed)
            }
            gemm.winograd = UnsafeRawPointer(packed)
            plan.steps[i] = .conv(input: input, output: output, shape: shape, rowBytes: rowBytes, padValue: padValue,
                                  gemm: gemm, border: border)
        }
    }

    // MARK: - Nodes

    private mutating func visit(_ node: Onnx_NodeProto) throws {
        let fail = { (msg: String) in EngineError(msg, node: node.label, opType: node.opType) }
        guard node.domain.isEmpty || node.domain == "ai.onnx" else {
            throw fail("operator domain '\(node.domain)' is not supported")
        }
        switch node.opType {
        case "QuantizeLinear":
            try self.visitQuantize(node)
        case "DequantizeLinear":
            try self.visitDequantize(node)
        case "Conv":
            let x = try self.activation(node, 0)
            let w = try self.constant(node, 1)
            let b = node.input.count > 2 && !node.input[2].isEmpty ? try self.constant(node, 2) : nil
            self.values[node.output[0]] = .pending(.conv(node, x, w, b, relu: false))
        case "Gemm":
            guard node.int("transA", default: 0) == 0, node.float("alpha", default: 1) == 1,
                  node.float("beta", default: 1) == 1 else {
                throw fail("only transA = 0, alpha = 1, beta = 1 are supported")
            }
            let x = try self.activation(node, 0)
            let w = try self.constant(node, 1)
            let b = node.input.count > 2 && !node.input[2].isEmpty ? try self.constant(node, 2) : nil
            self.values[node.output[0]] = .pending(.dense(node, x, w, transB: node.int("transB", default: 0) == 1,
                                                          bias: b, relu: false))
        case "MatMul":
            let x = try self.activation(node, 0)
            let w = try self.constant(node, 1)
            self.values[node.output[0]] = .pending(.dense(node, x, w, transB: false, bias: nil, relu: false))
        case "Relu":
            switch self.values[node.input[0]] {
            case .pending(.conv(let n, let x, let w, let b, _)):
                self.values[node.output[0]] = .pending(.conv(n, x, w, b, relu: true))
            case .pending(.dense(let n, let x, let w, let t, let b, _)):
                self.values[node.output[0]] = .pending(.dense(n, x, w, transB: t, bias: b, relu: true))
            case .pending(.add(let n, let a, let b, _)):
                self.values[node.output[0]] = .pending(.add(n, a, b, relu: true))
            case .pending(.addConstant(let n, let a, let c, _)):
                self.values[node.output[0]] = .pending(.addConstant(n, a, c, relu: true))
            case .dequantized(let a):
                self.values[node.output[0]] = .pending(.relu(node, a))
            default:
                throw fail("input must be a dequantised activation or a Conv/Gemm/Add awaiting quantisation")
            }
        case "MaxPool":
            self.values[node.output[0]] = .pending(.maxPool(node, try self.activation(node, 0)))
        case "Flatten", "Reshape":
            self.values[node.output[0]] = .pending(.reshape(node, try self.activation(node, 0)))
        case "Add":
            if case .pending(.dense(let n, let x, let w, let t, nil, let relu)) = self.values[node.input[0]],
               case .constant(let b) = self.values[node.input[1]] {
                self.values[node.output[0]] = .pending(.dense(n, x, w, transB: t, bias: b, relu: relu))
            } else if case .constant(let c) = self.values[node.input[1]] {
                self.values[node.output[0]] = .pending(.addConstant(node, try self.activation(node, 0), c, relu: false))
            } else if case .constant(let c) = self.values[node.input[0]] {
                self.values[node.output[0]] = .pending(.addConstant(node, try self.activation(node, 1), c, relu: false))
            } else {
                let a = try self.activation(node, 0)
                let b = try self.activation(node, 1)
                self.values[node.output[0]] = .pending(.add(node, a, b, relu: false))
            }
        case "Softmax":
            guard case .dequantized(let a) = self.values[node.input[0]] else {
                throw fail("Softmax must read a dequantised activation")
            }
            let axis = node.int("axis", default: -1)
            guard axis == 1 || axis == -1 else { throw fail("Softmax over axis \(axis) is not supported") }
            self.values[node.output[0]] = .probabilities(a)
        default:
            throw fail("operator is not supported by the doodle engine")
        }
    }

    private func activation(_ node: Onnx_NodeProto, _ i: Int) throws -> Activation {
        guard i < node.input.count, case .dequantized(let a) = self.values[node.input[i]] else {
            throw EngineError("input \(i) must be a DequantizeLinear of a quantised activation", node: node.label,
                              opType: node.opType)
        }
        return a
    }

    private func constant(_ node: Onnx_NodeProto, _ i: Int) throws -> DQConstant {
        guard i < node.input.count, case .constant(let c) = self.values[node.input[i]] else {
            throw EngineError("input \(i) must be a DequantizeLinear of a constant", node: node.label,
                              opType: node.opType)
        }
        return c
    }

    private func scalarParams(_ node: Onnx_NodeProto) throws -> QuantParams {
        guard node.input.count >= 2 else {
            throw EngineError("scale is missing", node: node.label, opType: node.opType)
        }
        let scale = try self.graph.floats(node.input[1], for: node)
        var zp: [Int32] = [0]
        if node.input.count > 2, !node.input[2].isEmpty {
            let z = try self.graph.integers(node.input[2], for: node)
            guard z.type == .uint8 else {
                throw EngineError("activations must be uint8 (found \(z.type))", node: node.label, opType: node.opType)
            }
            zp = z.values
        } else {
            throw EngineError("activations must be uint8: give a uint8 zero point", node: node.label, opType: node.opType)
        }
        guard scale.count == 1, zp.count == 1, scale[0] > 0, scale[0].isFinite else {
            throw EngineError("activation quantisation must be per-tensor with a positive scale", node: node.label,
                              opType: node.opType)
        }
        return QuantParams(scale: scale[0], zeroPoint: zp[0])
    }

    private mutating func visitDequantize(_ node: Onnx_NodeProto) throws {
        let src = node.input[0]
        if self.graph.isConstant(src) {
            let v = try self.graph.integers(src, for: node)
            let scales = try self.graph.floats(node.input[1], for: node)
            var zps = [Int32](repeating: 0, count: scales.count)
            if node.input.count > 2, !node.input[2].isEmpty {
                zps = try self.graph.integers(node.input[2], for: node).values
            }
            let c = DQConstant(values: v.values, dims: self.graph.dims(src) ?? [v.values.count], scales: scales,
                               zeroPoints: zps, axis: node.int("axis", default: 1), type: v.type)
            self.values[node.output[0]] = .constant(c)
            return
        }
        guard case .quantized(let a) = self.values[src] else {
            throw EngineError("input '\(src)' is not a quantised activation", node: node.label, opType: node.opType)
        }
        let p = try self.scalarParams(node)
        guard p == a.params else {
            throw EngineError("scale/zero point differ from the QuantizeLinear that made '\(src)'", node: node.label,
                              opType: node.opType)
        }
        self.values[node.output[0]] = .dequantized(a)
    }

    private mutating func newBuffer(_ layout: ActivationLayout) -> Int {
        self.layouts.append(layout)
        return self.layouts.count - 1
    }

    private mutating func visitQuantize(_ node: Onnx_NodeProto) throws {
        let out = try self.scalarParams(node)
        let fail = { (msg: String) in EngineError(msg, node: node.label, opType: node.opType) }
        switch self.values[node.input[0]] {
        case .imageInput:
            // Pixel p is the float p / 255; quantise it as onnxruntime does: nearbyint(x / scale) + zp, saturated.
            var table = [UInt8](repeating: 0, count: 256)
            for p in 0..<256 {
                let x = Float(p) / 255
                let q = (x / out.scale).rounded(.toNearestOrEven) + Float(out.zeroPoint)
                table[p] = UInt8(max(0, min(255, q)))
            }
            let buffer = self.newBuffer(self.inputLayout)
            self.steps.append(.quantizeInput(table: self.arena.store(table), output: buffer))
            self.values[node.output[0]] = .quantized(Activation(buffer: buffer, params: out))
            let dq = self.graph.model.graph.node.filter { $0.input.first == node.output[0] }
            if self.consumers[node.output[0]] == 1, dq.count == 1,
               dq[0].opType == "DequantizeLinear", self.consumers[dq[0].output[0]] == 1 {
                self.widenableImage = buffer
            }
        case .pending(let pending):
            let result = try self.emit(pending, out: out)
            self.values[node.output[0]] = .quantized(result)
        default:
            throw fail("input '\(node.input[0])' is neither the model input nor a supported operator's output")
        }
    }

    // MARK: - Fused layers

    private mutating func emit(_ pending: Pending, out: QuantParams) throws -> Activation {
        switch pending {
        case .conv(let node, let x, let w, let b, let relu):
            return try self.emitConv(node, x, w, b, relu: relu, out: out)
        case .dense(let node, let x, let w, let transB, let b, let relu):
            return try self.emitDense(node, x, w, transB: transB, bias: b, relu: relu, out: out)
        case .maxPool(let node, let x):
            guard x.params == out else {
                throw EngineError("MaxPool must keep its input's scale and zero point", node: node.label, opType: node.opType)
            }
            let kernel = node.ints("kernel_shape") ?? []
            let strides = node.ints("strides") ?? kernel
            let pads = node.ints("pads") ?? [0, 0, 0, 0]
            guard kernel.count == 2, strides.count == 2, pads.allSatisfy({ $0 == 0 }),
                  (node.ints("dilations") ?? [1, 1]) == [1, 1], node.int("ceil_mode", default: 0) == 0,
                  node.output.count == 1 || node.output[1].isEmpty else {
                throw EngineError("only 2-D MaxPool without padding, dilation, ceil_mode or indices is supported",
                                  node: node.label, opType: node.opType)
            }
            let inL = self.layouts[x.buffer]
            let oh = (inL.height - kernel[0]) / strides[0] + 1
            let ow = (inL.width - kernel[1]) / strides[1] + 1
            guard oh > 0, ow > 0 else {
                throw EngineError("pooling window is larger than its input", node: node.label, opType: node.opType)
            }
            let buffer = self.newBuffer(ActivationLayout(channels: inL.channels, height: oh, width: ow))
            self.steps.append(.maxPool(input: x.buffer, output: buffer, kernel: (kernel[0], kernel[1]),
                                       strides: (strides[0], strides[1])))
            return Activation(buffer: buffer, params: out)
        case .reshape(let node, let x):
            guard x.params == out else {
                throw EngineError("Flatten/Reshape must keep its input's scale and zero point", node: node.label,
                                  opType: node.opType)
            }
            if node.opType == "Flatten", node.int("axis", default: 1) != 1 {
                throw EngineError("only Flatten with axis 1 is supported", node: node.label, opType: node.opType)
            }
            if node.opType == "Reshape" {
                let shape = try self.graph.integers(node.input[1], for: node).values
                let l = self.layouts[x.buffer]
                guard shape.count == 2, shape[0] == 0 || shape[0] == -1 || shape[0] == 1,
                      shape[1] == -1 || Int(shape[1]) == l.elements else {
                    throw EngineError("only Reshape to N x features is supported (got \(shape))", node: node.label,
                                      opType: node.opType)
                }
            }
            return x  // The buffer stays NHWC; the Gemm that reads it permutes its weights to match.
        case .relu(let node, let x):
            guard x.params == out else {
                throw EngineError("a separate Relu must keep its input's scale and zero point", node: node.label,
                                  opType: node.opType)
            }
            let l = self.layouts[x.buffer]
            let buffer = self.newBuffer(l)
            self.steps.append(.add(a: x.buffer, za: x.params.zeroPoint, sa: 1, b: x.buffer, zb: x.params.zeroPoint,
                                   sb: 0, output: buffer, zo: out.zeroPoint, lo: out.zeroPoint, hi: 255))
            return Activation(buffer: buffer, params: out)
        case .addConstant(let node, let x, let c, let relu):
            return try self.emitAddConstant(node, x, c, relu: relu, out: out)
        case .add(let node, let a, let b, let relu):
            let la = self.layouts[a.buffer]
            let lb = self.layouts[b.buffer]
            guard la.channels == lb.channels, la.height == lb.height, la.width == lb.width else {
                throw EngineError("Add inputs must have the same shape (no broadcasting)", node: node.label,
                                  opType: node.opType)
            }
            let buffer = self.newBuffer(la)
            self.steps.append(.add(a: a.buffer, za: a.params.zeroPoint, sa: a.params.scale / out.scale, b: b.buffer,
                                   zb: b.params.zeroPoint, sb: b.params.scale / out.scale, output: buffer,
                                   zo: out.zeroPoint, lo: relu ? out.zeroPoint : 0, hi: 255))
            return Activation(buffer: buffer, params: out)
        }
    }

    private mutating func emitAddConstant(_ node: Onnx_NodeProto, _ x: Activation, _ c: DQConstant, relu: Bool,
                                          out: QuantParams) throws -> Activation {
        let l = self.layouts[x.buffer]
        let count = c.values.count
        guard count == 1 || count == l.channels else {
            throw EngineError("a constant added to an activation must be a scalar or one value per channel",
                              node: node.label, opType: node.opType)
        }
        let real = (0..<count).map { i -> Float in
            let s = c.scales.count == 1 ? c.scales[0] : c.scales[i]
            let z = c.zeroPoints.isEmpty ? 0 : (c.zeroPoints.count == 1 ? c.zeroPoints[0] : c.zeroPoints[i])
            return Float(c.values[i] - z) * s / out.scale
        }
        let perChannel = count == 1 ? [Float](repeating: real[0], count: l.channels) : real
        let buffer = self.newBuffer(l)
        self.steps.append(.addConstant(a: x.buffer, za: x.params.zeroPoint, sa: x.params.scale / out.scale,
                                       constant: self.arena.store(perChannel), channels: l.channels, output: buffer,
                                       zo: out.zeroPoint, lo: relu ? out.zeroPoint : 0, hi: 255))
        return Activation(buffer: buffer, params: out)
    }

    /// Checks an int8 symmetric weight and returns its per-output-channel scales (length n).
    private func weightScales(_ node: Onnx_NodeProto, _ w: DQConstant, n: Int, axis: Int) throws -> [Float] {
        guard w.type == .int8 else {
            throw EngineError("weights must be int8 (found \(w.type))", node: node.label, opType: node.opType)
        }
        guard w.zeroPoints.allSatisfy({ $0 == 0 }) else {
            throw EngineError("weights must be symmetric (zero point 0)", node: node.label, opType: node.opType)
        }
        if w.scales.count == 1 { return [Float](repeating: w.scales[0], count: n) }
        guard w.scales.count == n, w.axis == axis || w.axis == axis - w.dims.count else {
            throw EngineError("weight scales must be per-tensor or per output channel", node: node.label,
                              opType: node.opType)
        }
        return w.scales
    }

    /// Bias as int32 in the accumulator's scale (in_scale * w_scale[n]), exactly as onnxruntime stores it.
    private func biasValues(_ node: Onnx_NodeProto, _ b: DQConstant?, n: Int, accScales: [Float]) throws -> [Int32] {
        guard let b else { return [Int32](repeating: 0, count: n) }
        guard b.values.count == n else {
            throw EngineError("bias has \(b.values.count) values for \(n) outputs", node: node.label, opType: node.opType)
        }
        return (0..<n).map { i in
            let s = b.scales.count == 1 ? b.scales[0] : b.scales[i]
            let z = b.zeroPoints.isEmpty ? 0 : (b.zeroPoints.count == 1 ? b.zeroPoints[0] : b.zeroPoints[i])
            if b.type == .int32, z == 0, abs(s - accScales[i]) <= 1e-6 * accScales[i] {
                return b.values[i]
            }
            let real = Float(b.values[i] - z) * s
            return Int32((real / accScales[i]).rounded(.toNearestOrEven))
        }
    }

    private func makeGemm(weights w: [Int8], k: Int, n: Int, bias: [Int32], inputZeroPoint za: Int32, scales: [Float],
                          out: QuantParams, relu: Bool, macsPerRow: Int) -> GemmWeights {
        let size = CDoodleKernels_packed_size(self.isa.c, Int32(k), Int32(n))
        let packed = self.arena.allocate(bytes: size)
        w.withUnsafeBufferPointer { CDoodleKernels_pack_weights(self.isa.c, $0.baseAddress, Int32(k), Int32(n), packed) }
        var folded = bias
        for j in 0..<n {
            var sum: Int32 = 0
            for i in 0..<k { sum += Int32(w[j * k + i]) }
            folded[j] -= za * sum
        }
        let rq = CDoodleKernels_Requant(bias: self.arena.store(folded), scale: self.arena.store(scales),
                                        zero_point: out.zeroPoint, lo: relu ? max(0, out.zeroPoint) : 0, hi: 255)
        return GemmWeights(k: k, n: n, macsPerRow: macsPerRow, packed: UnsafeRawPointer(packed), requant: rq)
    }

    private mutating func emitConv(_ node: Onnx_NodeProto, _ x: Activation, _ w: DQConstant, _ b: DQConstant?,
                                   relu: Bool, out: QuantParams) throws -> Activation {
        let fail = { (msg: String) in EngineError(msg, node: node.label, opType: node.opType) }
        guard w.dims.count == 4 else { throw fail("only 2-D convolution is supported") }
        guard node.int("group", default: 1) == 1 else { throw fail("grouped convolution is not supported") }
        if let pad = node.string("auto_pad"), pad != "NOTSET" { throw fail("auto_pad \(pad) is not supported") }
        let inL = self.layouts[x.buffer]
        let (cout, cin, kh, kw) = (w.dims[0], w.dims[1], w.dims[2], w.dims[3])
        guard cin == inL.channels else { throw fail("weight expects \(cin) input channels, input has \(inL.channels)") }
        // The image's conv gets zero taps on the right until a kernel row is whole 4-byte groups (3 taps of 1
        // channel -> 4): the same multiply-adds as im2col, but read in place (ExecutionPlan.borderConvolutionInputs).
        var kwStored = kw
        if x.buffer == self.widenableImage {
            while (kwStored * cin) % 4 != 0 { kwStored += 1 }
        }
        let strides = node.ints("strides") ?? [1, 1]
        let dil = node.ints("dilations") ?? [1, 1]
        let pads = node.ints("pads") ?? [0, 0, 0, 0]
        guard strides.count == 2, dil.count == 2, pads.count == 4 else { throw fail("malformed conv attributes") }
        let oh = (inL.height + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) / strides[0] + 1
        let ow = (inL.width + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) / strides[1] + 1
        guard oh > 0, ow > 0 else { throw fail("convolution output would be empty") }

        let wScales = try self.weightScales(node, w, n: cout, axis: 0)
        let accScales = wScales.map { x.params.scale * $0 }
        let bias = try self.biasValues(node, b, n: cout, accScales: accScales)
        // Repack [cout][cin][ky][kx] to the im2col order [cout][ky][kx][cin].
        let k = kh * kwStored * cin
        var wp = [Int8](repeating: 0, count: cout * k)
        for o in 0..<cout {
            for c in 0..<cin {
                for ky in 0..<kh {
                    for kx in 0..<kw {
                        wp[o * k + (ky * kwStored + kx) * cin + c] = Int8(w.values[((o * cin + c) * kh + ky) * kw + kx])
                    }
                }
            }
        }
        let scales = wScales.map { x.params.scale * $0 / out.scale }
        let gemm = self.makeGemm(weights: wp, k: k, n: cout, bias: bias, inputZeroPoint: x.params.zeroPoint,
                                 scales: scales, out: out, relu: relu, macsPerRow: kh * kw * cin * cout)
        let shape = CDoodleKernels_ConvShape(
            in_h: Int32(inL.height), in_w: Int32(inL.width), in_c: Int32(cin), k_h: Int32(kh), k_w: Int32(kwStored),
            stride_h: Int32(strides[0]), stride_w: Int32(strides[1]), pad_top: Int32(pads[0]),
            pad_left: Int32(pads[1]), pad_bottom: Int32(pads[2]), pad_right: Int32(pads[3] + (kwStored - kw) * dil[1]),
            dil_h: Int32(dil[0]),
            dil_w: Int32(dil[1]), out_h: Int32(oh), out_w: Int32(ow))
        let rowBytes = (k + 3) / 4 * 4
        self.im2colBytes = max(self.im2colBytes, rowBytes * oh * ow)
        let buffer = self.newBuffer(ActivationLayout(channels: cout, height: oh, width: ow))
        self.steps.append(.conv(input: x.buffer, output: buffer, shape: shape, rowBytes: rowBytes,
                                padValue: UInt8(x.params.zeroPoint), gemm: gemm, border: nil))
        return Activation(buffer: buffer, params: out)
    }

    private mutating func emitDense(_ node: Onnx_NodeProto, _ x: Activation, _ w: DQConstant, transB: Bool,
                                    bias b: DQConstant?, relu: Bool, out: QuantParams) throws -> Activation {
        let fail = { (msg: String) in EngineError(msg, node: node.label, opType: node.opType) }
        guard w.dims.count == 2 else { throw fail("weight must be 2-D") }
        let inL = self.layouts[x.buffer]
        let k = inL.elements
        let n = transB ? w.dims[0] : w.dims[1]
        guard (transB ? w.dims[1] : w.dims[0]) == k else {
            throw fail("weight expects \(transB ? w.dims[1] : w.dims[0]) inputs, input has \(k)")
        }
        let wScales = try self.weightScales(node, w, n: n, axis: transB ? 0 : 1)
        let accScales = wScales.map { x.params.scale * $0 }
        let bias = try self.biasValues(node, b, n: n, accScales: accScales)
        // ONNX flattens NCHW (index c*H*W + y*W + x); the buffer is NHWC ((y*W + x)*C + c).
        var wp = [Int8](repeating: 0, count: n * k)
        let (c, h, wd) = (inL.channels, inL.height, inL.width)
        for o in 0..<n {
            for ch in 0..<c {
                for y in 0..<h {
                    for xx in 0..<wd {
                        let onnxIndex = (ch * h + y) * wd + xx
                        let value = transB ? w.values[o * k + onnxIndex] : w.values[onnxIndex * n + o]
                        wp[o * k + (y * wd + xx) * c + ch] = Int8(value)
                    }
                }
            }
        }
        let scales = wScales.map { x.params.scale * $0 / out.scale }
        let gemm = self.makeGemm(weights: wp, k: k, n: n, bias: bias, inputZeroPoint: x.params.zeroPoint,
                                 scales: scales, out: out, relu: relu, macsPerRow: k * n)
        let buffer = self.newBuffer(ActivationLayout(channels: n, height: 1, width: 1))
        self.steps.append(.dense(input: x.buffer, output: buffer, gemm: gemm))
        return Activation(buffer: buffer, params: out)
    }
}
