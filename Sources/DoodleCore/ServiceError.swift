/// Status codes with gRPC's numbers and meanings (the wire's `doodle.v1.StatusCode`).
public enum StatusCode: Int, Sendable, CaseIterable, CustomStringConvertible {
    case ok = 0
    case invalidArgument = 3
    case deadlineExceeded = 4
    case resourceExhausted = 8
    case `internal` = 13
    case unavailable = 14

    public var description: String {
        switch self {
        case .ok: "OK"
        case .invalidArgument: "INVALID_ARGUMENT"
        case .deadlineExceeded: "DEADLINE_EXCEEDED"
        case .resourceExhausted: "RESOURCE_EXHAUSTED"
        case .internal: "INTERNAL"
        case .unavailable: "UNAVAILABLE"
        }
    }
}

extension StatusCode {
    /// OK for predictions, otherwise the error's code.
    public init<Success>(_ result: Result<Success, ServiceError>) {
        switch result {
        case .success: self = .ok
        case .failure(let error): self = error.code
        }
    }
}

/// A request that cannot be answered with predictions: a status code and a message for a person.
public struct ServiceError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: StatusCode
    public var message: String

    public init(_ code: StatusCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public static func invalidArgument(_ message: String) -> ServiceError { ServiceError(.invalidArgument, message) }

    public var description: String { "\(self.code): \(self.message)" }
}
