/// What a model says about itself: name, version, class labels and how it was quantised.
public struct ModelMetadata: Sendable, Equatable {
    /// Model name (`doodle.model_name` in the ONNX metadata), e.g. "quickdraw-345".
    public var name: String
    /// Model version (`doodle.model_version`).
    public var version: String
    /// One label per class, index = class index.
    public var labels: [String]
    /// A description of the quantisation scheme (`doodle.quantization`).
    public var quantization: String
    /// Every metadata_props entry of the file.
    public var properties: [String: String]

    init(properties: [String: String], classCount: Int) {
        self.properties = properties
        self.name = properties["doodle.model_name"] ?? "unnamed"
        self.version = properties["doodle.model_version"] ?? "0"
        self.quantization = properties["doodle.quantization"] ?? "int8"
        let labels = properties["doodle.labels"].map { $0.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
        if let labels, labels.count == classCount {
            self.labels = labels
        } else {
            self.labels = (0..<classCount).map { "class_\($0)" }
        }
    }
}
