/// An error loading or running a model. `node` and `opType` name the graph node at fault, when there is one.
public struct EngineError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, in words that name the offending node and operator.
    public var message: String
    /// The ONNX node the error is about, if any.
    public var node: String?
    /// The operator type of that node, if any.
    public var opType: String?

    public init(_ message: String, node: String? = nil, opType: String? = nil) {
        self.message = message
        self.node = node
        self.opType = opType
    }

    public var description: String {
        if let node, let opType {
            return "node '\(node)' (\(opType)): \(self.message)"
        }
        return self.message
    }
}
