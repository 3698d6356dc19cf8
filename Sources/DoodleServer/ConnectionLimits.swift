/// Limits of the raw TCP protocol, per connection and for all connections together.
public struct ConnectionLimits: Sendable, Equatable {
    /// Largest frame payload accepted; a longer declared length closes the connection.
    public var maxFrameBytes = 1 << 20
    /// Requests one connection may have in flight; more are answered RESOURCE_EXHAUSTED.
    public var maxInFlightPerConnection = 1024
    /// Open raw-TCP connections; a connection beyond this is answered RESOURCE_EXHAUSTED and closed.
    public var maxConnections = 10_000
    /// A connection with nothing in flight that sends no frame for this long is closed.
    public var idleTimeout = Duration.seconds(300)
    /// A frame must arrive whole within this long of its first byte (slow senders are cut off).
    public var frameTimeout = Duration.seconds(10)
    /// Answers waiting for a client that does not read; beyond this the connection is closed.
    public var maxWriteBufferBytes = 4 << 20
    /// After a read in which requests were refused for overload (a full queue, or too long a wait), the connection
    /// reads nothing for this long (zero: never pauses). Overloaded, the requests then wait in TCP's buffers and
    /// are taken or refused many per read, instead of the event loop spending the workers' CPU refusing a few per
    /// read. Half of `max-queue-wait-ms` (100) by default: long enough that refusing costs the workers little
    /// (bench/RESULTS.md, 2026-11-30), short enough that the answers' p99 stays within twice that bound.
    public var shedPause = Duration.milliseconds(50)

    public init() {}
}

