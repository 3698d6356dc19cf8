import Foundation
import SwiftProtobuf

/// Read access to an ONNX model's graph: initializers as typed arrays, node attributes, metadata.
struct ONNXGraph {
    let model: Onnx_ModelProto
    let initializers: [String: Onnx_TensorProto]

    init(contentsOf url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw EngineError("cannot read model file \(url.path): \(error.localizedDescription)")
        }
        try self.init(serialized: data)
    }

    init(serialized data: Data) throws {
        do {
            var options = BinaryDecodingOptions()
            options.messageDepthLimit = 64
            self.model = try Onnx_ModelProto(serializedBytes: data, options: options)
        } catch {
            throw EngineError("not a valid ONNX model: \(error)")
        }
        var inits: [String: Onnx_TensorProto] = [:]
        for t in self.model.graph.initializer { inits[t.name] = t }
        // Constant nodes are initializers too, for our purposes.
        for node in self.model.graph.node where node.opType == "Constant" {
            if let attr = node.attribute.first(where: { $0.name == "value" }), node.output.count == 1 {
                var t = attr.t
                t.name = node.output[0]
                inits[t.name] = t
            }
        }
        self.initializers = inits
    }

    var metadata: [String: String] {
        var out: [String: String] = [:]
        for p in self.model.metadataProps { out[p.key] = p.value }
        return out
    }

    func isConstant(_ name: String) -> Bool { self.initializers[name] != nil }

    func tensor(_ name: String, for node: Onnx_NodeProto) throws -> Onnx_TensorProto {
        guard let t = self.initializers[name] else {
            throw EngineError("input '\(name)' must be a constant initializer", node: node.name, opType: node.opType)
        }
        if t.hasDataLocation && t.dataLocation == .external {
            throw EngineError("tensor '\(name)' uses external data, which is not supported", node: node.name,
                              opType: node.opType)
        }
        return t
    }

    func floats(_ name: String, for node: Onnx_NodeProto) throws -> [Float] {
        let t = try self.tensor(name, for: node)
        guard t.dataType == Int32(Onnx_TensorProto.DataType.float.rawValue) else {
            throw EngineError("tensor '\(name)' must be float32", node: node.name, opType: node.opType)
        }
        if !t.floatData.isEmpty { return t.floatData }
        return t.rawData.withUnsafeBytes { raw in Array(raw.bindMemory(to: Float.self)) }
    }

    /// Integer tensor of type int8, uint8 or int32 (widened to Int32); `signed` says which 8-bit type it was.
    func integers(_ name: String, for node: Onnx_NodeProto) throws -> (values: [Int32], type: Onnx_TensorProto.DataType) {
        let t = try self.tensor(name, for: node)
        let type = Onnx_TensorProto.DataType(rawValue: Int(t.dataType)) ?? .undefined
        switch type {
        case .int8:
            if !t.int32Data.isEmpty { return (t.int32Data, type) }
            return (t.rawData.map { Int32(Int8(bitPattern: $0)) }, type)
        case .uint8:
            if !t.int32Data.isEmpty { return (t.int32Data, type) }
            return (t.rawData.map { Int32($0) }, type)
        case .int32:
            if !t.int32Data.isEmpty { return (t.int32Data, type) }
            return (t.rawData.withUnsafeBytes { raw in Array(raw.bindMemory(to: Int32.self)) }, type)
        case .int64:
            if !t.int64Data.isEmpty { return (t.int64Data.map { Int32(clamping: $0) }, type) }
            return (t.rawData.withUnsafeBytes { raw in raw.bindMemory(to: Int64.self).map { Int32(clamping: $0) } }, type)
        default:
            throw EngineError("tensor '\(name)' has unsupported element type \(type)", node: node.name,
                              opType: node.opType)
        }
    }

    func dims(_ name: String) -> [Int]? { self.initializers[name].map { $0.dims.map(Int.init) } }
}

extension Onnx_NodeProto {
    func int(_ name: String, default value: Int) -> Int {
        self.attribute.first(where: { $0.name == name }).map { Int($0.i) } ?? value
    }

    func ints(_ name: String) -> [Int]? {
        self.attribute.first(where: { $0.name == name }).map { $0.ints.map(Int.init) }
    }

    func float(_ name: String, default value: Float) -> Float {
        self.attribute.first(where: { $0.name == name }).map { $0.f } ?? value
    }

    func string(_ name: String) -> String? {
        self.attribute.first(where: { $0.name == name }).map { String(decoding: $0.s, as: UTF8.self) }
    }

    var label: String { self.name.isEmpty ? (self.output.first ?? "?") : self.name }
}
