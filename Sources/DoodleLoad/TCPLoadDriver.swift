import DoodleCore
import DoodleDataset
import DoodleWire
import Foundation
import NIOCore
import NIOPosix

/// doodle-load's raw-TCP driver: every connection sends, reads and times its requests on its own event loop,
/// with no task or thread hand-off per request (the way wrk drives HTTP servers), so the client spends as
/// little of the shared CPU as it can and adds as little as it can to the latency it reports.
///
/// - Closed loop: `depth` requests in flight per connection; each answer sends the next one.
/// - Open loop: each connection sends its share of the arrivals (rate / connections, evenly spaced with
///   staggered phases, or an independent Poisson process: the sum of Poisson processes is one) when they fall
///   due, timing each from its due time.
///
/// A connection that ends fails its requests in flight as `connection_lost` and connects again at once (one
/// attempt at a time, 50 ms apart while they fail; each failed attempt counts `connect_failed` for the
/// requests that could not be sent), as a production client would.
final class TCPLoadDriver: Sendable {
    struct Plan: Sendable {
        var host: String
        var port: Int
        var mode: LoadGenerator.Mode
        var connections: Int
        /// Monotonic nanoseconds when sending stops.
        var end: UInt64
        /// Open loop: requests in flight per connection before due ones count as `client_overload`.
        var maxOutstandingPerConnection: Int
        var seed: UInt64
    }

    private let plan: Plan
    private let writers: [PredictFrameWriter]
    private let recorder: LoadGenerator.Recorder

    init(plan: Plan, inputs: LoadInputs, recorder: LoadGenerator.Recorder) throws {
        self.plan = plan
        self.writers = try inputs.requests.map(PredictFrameWriter.init)
        self.recorder = recorder
    }

    /// Runs every connection until the end of the plan and its last answer (or 10 s past the end).
    func run(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws {
        // The first connection of each must succeed: a server that is not there is an error, not a figure.
        let connections = try await withThrowingTaskGroup(of: LoadConnection.self) { tasks in
            for index in 0..<self.plan.connections {
                let eventLoop = group.next()
                tasks.addTask {
                    try await eventLoop.flatSubmit {
                        let connection = LoadConnection(index: index, plan: self.plan, writers: self.writers,
                                                        recorder: self.recorder, eventLoop: eventLoop)
                        return connection.start().map { connection }
                    }.get()
                }
            }
            return try await tasks.reduce(into: []) { $0.append($1) }
        }
        for connection in connections { try await connection.finished.get() }
    }
}

/// One connection of a TCP load run and its requests in flight; lives on one event loop.
private final class LoadConnection: @unchecked Sendable {
    private let index: Int
    private let plan: TCPLoadDriver.Plan
    private let writers: [PredictFrameWriter]
    private let recorder: LoadGenerator.Recorder
    private let eventLoop: any EventLoop
    /// Succeeds once the plan has ended and every request has been answered (or given up).
    let finishedPromise: EventLoopPromise<Void>
    var finished: EventLoopFuture<Void> { self.finishedPromise.futureResult }

    private var channel: (any Channel)?
    private var connecting = false
    /// request_id -> the time it was sent (closed loop) or due (open loop).
    private var inFlight: [UInt64: UInt64] = [:]
    private var nextID: UInt64 = 1
    private var nextInput: Int
    private var depth = 0
    // Open loop:
    private var nextDue: UInt64 = 0
    private var interval: Double = 0
    private var poissonRate: Double = 0
    private var rng: SplitMix64
    /// Due while no connection was up; sent when one is.
    private var waiting: [UInt64] = []
    /// Whether the next arrival's timer is set (one per connection, however often it reconnects).
    private var arrivalTimerSet = false
    private var flushPending = false

    init(index: Int, plan: TCPLoadDriver.Plan, writers: [PredictFrameWriter], recorder: LoadGenerator.Recorder,
         eventLoop: any EventLoop) {
        self.index = index
        self.plan = plan
        self.writers = writers
        self.recorder = recorder
        self.eventLoop = eventLoop
        self.finishedPromise = eventLoop.makePromise()
        self.nextInput = index * 7919
        self.rng = SplitMix64(seed: plan.seed &+ UInt64(index) &* 0x9E37_79B9)
    }

    private static func now() -> UInt64 { LoadGenerator.now() }

    /// Connects and starts sending; fails when the first connection cannot be made.
    func start() -> EventLoopFuture<Void> {
        self.eventLoop.preconditionInEventLoop()
        switch self.plan.mode {
        case .closed(let depth):
            self.depth = max(1, depth)
        case .open(let rate, let poisson):
            let perConnection = rate / Double(self.plan.connections)
            let start = Self.now()
            if poisson {
                self.poissonRate = perConnection
                self.nextDue = start + self.exponentialGap()
            } else {
                self.interval = 1e9 / perConnection
                // Stagger the connections so that together they send evenly spaced requests.
                self.nextDue = start + UInt64(self.interval * Double(self.index) / Double(self.plan.connections))
            }
        }
        // A 10 s grace after the end for answers still owed; then they count as client timeouts.
        self.eventLoop.scheduleTask(deadline: .uptimeNanoseconds(self.plan.end + 10_000_000_000)) { self.giveUp() }
        return self.connect().map { _ in }
    }

    private func exponentialGap() -> UInt64 {
        UInt64(-log(1 - self.rng.nextUnit()) / self.poissonRate * 1e9)
    }

    // MARK: Connecting

    @discardableResult
    private func connect() -> EventLoopFuture<any Channel> {
        self.connecting = true
        let future = ClientBootstrap(group: self.eventLoop)
            .connectTimeout(.seconds(1))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: 64 << 20)))
                    try channel.pipeline.syncOperations.addHandler(LoadConnectionHandler(self))
                }
            }
            .connect(host: self.plan.host, port: self.plan.port)
        future.whenComplete { result in
            self.connecting = false
            switch result {
            case .success(let channel):
                self.channel = channel
                self.connected()
            case .failure:
                self.connectFailed()
            }
        }
        return future
    }

    private func connected() {
        switch self.plan.mode {
        case .closed:
            while self.inFlight.count < self.depth && Self.now() < self.plan.end { self.send(start: Self.now()) }
        case .open:
            let waiting = self.waiting
            self.waiting.removeAll()
            for due in waiting { self.send(start: due) }
            self.scheduleArrivals()
        }
        self.flushSoon()
        self.finishIfDone()
    }

    private func connectFailed() {
        let now = Self.now()
        switch self.plan.mode {
        case .closed:
            // Every request this connection would have had in flight failed to go out.
            for _ in 0..<self.depth { self.recorder.record(start: now, end: now, status: "connect_failed") }
        case .open:
            for due in self.waiting { self.recorder.record(start: due, end: now, status: "connect_failed") }
            self.waiting.removeAll()
            self.scheduleArrivals()
        }
        guard now < self.plan.end else { return self.finishIfDone() }
        self.eventLoop.scheduleTask(in: .milliseconds(50)) { self.connect() }
    }

    /// The connection ended: what was in flight on it is lost; connect again while the run lasts.
    fileprivate func connectionEnded() {
        self.channel = nil
        let now = Self.now()
        for (_, start) in self.inFlight { self.recorder.record(start: start, end: now, status: "connection_lost") }
        self.inFlight.removeAll()
        if now < self.plan.end && !self.connecting {
            self.connect()
        } else {
            self.finishIfDone()
        }
    }

    // MARK: Sending and answers

    private func send(start: UInt64) {
        guard let channel = self.channel else { return }
        let id = self.nextID
        self.nextID += 1
        self.inFlight[id] = start
        let writer = self.writers[self.nextInput % self.writers.count]
        var buffer = channel.allocator.buffer(capacity: writer.maxFrameBytes)
        writer.write(requestID: id, into: &buffer)
        self.nextInput += 1
        channel.write(buffer, promise: nil)
    }

    /// Flushes once the event loop has run what is queued, so that a burst of sends leaves in one system call.
    private func flushSoon() {
        guard !self.flushPending else { return }
        self.flushPending = true
        self.eventLoop.execute {
            self.flushPending = false
            self.channel?.flush()
        }
    }

    fileprivate func answered(_ frame: InboundFrame) {
        let now = Self.now()
        guard let outcome = ResponsePeek.predictOutcome(frame.payload),
              let start = self.inFlight.removeValue(forKey: outcome.requestID) else {
            self.recorder.record(start: now, end: now, status: "bad_response")
            return
        }
        self.recorder.record(start: start, end: now,
                             status: outcome.code == 0 ? nil : StatusName.of(outcome.code))
        if case .closed = self.plan.mode, now < self.plan.end {
            self.send(start: now)
            self.flushSoon()
        }
        self.finishIfDone()
    }

    /// Open loop: sets the timer for the next arrival, unless it is set already or arrivals have ended.
    private func scheduleArrivals() {
        guard !self.arrivalTimerSet, self.nextDue < self.plan.end else { return }
        self.arrivalTimerSet = true
        self.eventLoop.scheduleTask(deadline: .uptimeNanoseconds(self.nextDue)) {
            self.arrivalTimerSet = false
            self.arrive()
        }
    }

    private func arrive() {
        let now = Self.now()
        while self.nextDue <= now && self.nextDue < self.plan.end {
            let due = self.nextDue
            self.nextDue += self.poissonRate > 0 ? self.exponentialGap() : UInt64(self.interval)
            if self.inFlight.count + self.waiting.count >= self.plan.maxOutstandingPerConnection {
                self.recorder.record(start: due, end: due, status: "client_overload")
            } else if self.channel == nil {
                self.waiting.append(due)
            } else {
                self.send(start: due)
            }
        }
        self.flushSoon()
        if self.nextDue < self.plan.end {
            self.scheduleArrivals()
        } else {
            self.finishIfDone()
        }
    }

    private func finishIfDone() {
        let sending: Bool
        switch self.plan.mode {
        case .closed: sending = Self.now() < self.plan.end
        case .open: sending = self.nextDue < self.plan.end
        }
        guard !sending, self.inFlight.isEmpty, self.waiting.isEmpty, !self.connecting else { return }
        self.channel?.close(promise: nil)
        self.finishedPromise.succeed()
    }

    private func giveUp() {
        let now = Self.now()
        for (_, start) in self.inFlight { self.recorder.record(start: start, end: now, status: "client_timeout") }
        self.inFlight.removeAll()
        self.waiting.removeAll()
        self.connecting = false
        self.channel?.close(promise: nil)
        self.finishedPromise.succeed()
    }
}

/// Feeds a load connection its answers and tells it when the connection ends.
private final class LoadConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let connection: LoadConnection

    init(_ connection: LoadConnection) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.connection.answered(InboundFrame(framed: Self.unwrapInboundIn(data)))
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.connection.connectionEnded()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Status names as the other transports report them (doodled's codes are gRPC's numbers).
enum StatusName {
    static func of(_ code: Int) -> String {
        StatusCode(rawValue: code)?.description ?? "code_\(code)"
    }
}
