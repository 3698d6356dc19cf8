import DoodleWire

/// What became of a request's capture label: the answer's `capture` and `capture_id`.
public struct CaptureOutcome: Sendable, Equatable {
    public var status: Doodle_V1_CaptureStatus
    /// The stored record's id (set when `status` is `.captured`).
    public var id: String

    public init(_ status: Doodle_V1_CaptureStatus, id: String = "") {
        self.status = status
        self.id = id
    }

    /// Nothing was asked for (or the request failed).
    public static let none = CaptureOutcome(.unspecified)

    /// The status as the HTTP API and the metrics name it (nil for none).
    public var name: String? { self.status.name }
}
