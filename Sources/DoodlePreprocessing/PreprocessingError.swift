/// Why an input could not be turned into the model's bitmap (a corrupt image, one with no drawing on it): the
/// client's error, with a message for a person.
public struct PreprocessingError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { self.message }
}
