/// Per-connection limits of the raw TCP protocol.
public struct ConnectionLimits: Sendable, Equatable {
    /// Largest frame payload accepted; a longer declared length closes the connection.
    public var maxFrameBytes = 1 << 20
    /// Requests one connection may have in flight; more are answered RESOURCE_EXHAUSTED.
    public var maxInFlightPerConnection = 1024

    public init() {}
}
