import DoodleClient
import DoodleCore
import DoodleGRPC
import DoodleWire
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization

/// One client connection the load generator sends predictions on: raw TCP (pipelined frames) or gRPC
/// (HTTP/2 streams, one unary Predict call each).
protocol PredictChannel: Sendable {
    /// Sends one request; nil when answered OK, otherwise the status name (or "transport" for a failed call).
    func predict(_ request: Doodle_V1_PredictRequest) async -> String?
    func close() async
}

/// Which protocol `doodle-load` speaks.
public enum LoadProtocol: String, Sendable, CaseIterable {
    /// doodled's framed protocol, requests pipelined on each connection.
    case tcp
    /// gRPC unary Predict calls, each on its own HTTP/2 stream.
    case grpc
    /// gRPC PredictStream: one long bidirectional stream per connection, requests pipelined on it.
    case grpcStream = "grpc-stream"
}

/// A raw-TCP connection that comes back: when it ends (a server drained or died, a load balancer moved it),
/// the calls on it fail as `connection_lost` and the next call connects again (`connect_failed` while that
/// fails, at most one attempt per 50 ms), as a production client would.
final class TCPPredictChannel: PredictChannel {
    private let current: Mutex<DoodleConnection>
    private let reconnector: Reconnector

    private init(host: String, port: Int, connection: DoodleConnection) {
        self.current = Mutex(connection)
        self.reconnector = Reconnector(host: host, port: port)
    }

    static func connect(host: String, port: Int) async throws -> TCPPredictChannel {
        TCPPredictChannel(host: host, port: port, connection: try await DoodleConnection.connect(host: host, port: port))
    }

    func predict(_ request: Doodle_V1_PredictRequest) async -> String? {
        guard let connection = await self.liveConnection() else {
            try? await Task.sleep(nanoseconds: 50_000_000)  // back off before the caller's next try
            return "connect_failed"
        }
        do {
            let response = try await connection.predict(request)
            return response.status.code == .ok ? nil : "\(response.status.code)"
        } catch let error as ClientError where error.kind == .connectionClosed {
            return "connection_lost"
        } catch {
            return "transport"
        }
    }

    /// The open connection, or a new one (callers arriving while one connects share its outcome); nil when
    /// connecting failed.
    private func liveConnection() async -> DoodleConnection? {
        let connection = self.current.withLock { $0 }
        if connection.isActive { return connection }
        guard let fresh = await self.reconnector.replacement(for: connection) else { return nil }
        self.current.withLock { $0 = fresh }
        return fresh
    }

    func close() async { await self.current.withLock({ $0 }).close() }
}

/// Makes one connection attempt at a time; callers arriving meanwhile share its outcome.
actor Reconnector {
    private let host: String
    private let port: Int
    private var attempt: (replacing: ObjectIdentifier, task: Task<DoodleConnection?, Never>)?
    private var latest: (replacing: ObjectIdentifier, connection: DoodleConnection)?

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    func replacement(for dead: DoodleConnection) async -> DoodleConnection? {
        let id = ObjectIdentifier(dead)
        if let latest = self.latest, latest.replacing == id, latest.connection.isActive { return latest.connection }
        if let attempt = self.attempt, attempt.replacing == id { return await attempt.task.value }
        let (host, port) = (self.host, self.port)
        let task = Task<DoodleConnection?, Never> {
            try? await DoodleConnection.connect(host: host, port: port, timeoutSeconds: 1)
        }
        self.attempt = (id, task)
        let fresh = await task.value
        self.attempt = nil
        if let fresh { self.latest = (id, fresh) }
        return fresh
    }
}

/// A plaintext gRPC client for `host:port` (connections start when `runConnections()` runs).
func makeGRPCClient(host: String, port: Int) throws -> GRPCClient<HTTP2ClientTransport.Posix> {
    GRPCClient(transport: try HTTP2ClientTransport.Posix(
        target: host.contains(":") ? .ipv6(address: host, port: port) : .ipv4(address: host, port: port),
        transportSecurity: .plaintext))
}

/// A gRPC client with its own HTTP/2 connection.
final class GRPCPredictChannel: PredictChannel {
    private let client: GRPCClient<HTTP2ClientTransport.Posix>
    private let stub: Doodle_V1_Classifier.Client<HTTP2ClientTransport.Posix>
    private let connections: Task<Void, any Error>

    init(host: String, port: Int) throws {
        let client = try makeGRPCClient(host: host, port: port)
        self.client = client
        self.stub = Doodle_V1_Classifier.Client(wrapping: client)
        self.connections = Task { try await client.runConnections() }
    }

    func predict(_ request: Doodle_V1_PredictRequest) async -> String? {
        do {
            let response = try await self.stub.predict(request)
            return response.status.code == .ok ? nil : "\(response.status.code)"
        } catch let error as RPCError {
            // Same names as the TCP path: doodled's status codes are gRPC's numbers.
            return StatusCode(rawValue: error.code.rawValue)?.description ?? "\(error.code)"
        } catch {
            return "transport"
        }
    }

    func close() async {
        self.client.beginGracefulShutdown()
        _ = try? await self.connections.value
    }
}

/// Calls waiting for their answer on one stream, by request_id.
final class PendingCalls: Sendable {
    private let state = Mutex((nextID: UInt64(1), calls: [UInt64: CheckedContinuation<String?, Never>](), failed: false))

    /// A new request_id for `continuation`, or nil when the stream has failed.
    func add(_ continuation: CheckedContinuation<String?, Never>) -> UInt64? {
        self.state.withLock { state in
            guard !state.failed else { return nil }
            let id = state.nextID
            state.nextID += 1
            state.calls[id] = continuation
            return id
        }
    }

    func resolve(_ id: UInt64, _ status: String?) {
        self.state.withLock { $0.calls.removeValue(forKey: id) }?.resume(returning: status)
    }

    /// The stream ended: every waiting call (and any later one) fails.
    func failAll() {
        let calls = self.state.withLock { state in
            state.failed = true
            defer { state.calls.removeAll() }
            return Array(state.calls.values)
        }
        for call in calls { call.resume(returning: "transport") }
    }
}

/// One PredictStream per connection: requests are written as they come, answers matched by request_id.
final class GRPCStreamPredictChannel: PredictChannel {
    private let client: GRPCClient<HTTP2ClientTransport.Posix>
    private let connections: Task<Void, any Error>
    private let call: Task<Void, any Error>
    private let outbox: AsyncStream<Doodle_V1_PredictRequest>.Continuation
    private let pending = PendingCalls()

    init(host: String, port: Int) throws {
        let client = try makeGRPCClient(host: host, port: port)
        self.client = client
        self.connections = Task { try await client.runConnections() }
        let (requests, outbox) = AsyncStream.makeStream(of: Doodle_V1_PredictRequest.self)
        self.outbox = outbox
        let stub = Doodle_V1_Classifier.Client(wrapping: client)
        let pending = self.pending
        self.call = Task {
            defer { pending.failAll() }
            try await stub.predictStream(request: StreamingClientRequest { writer in
                for await request in requests { try await writer.write(request) }
            }) { response in
                for try await answer in response.messages {
                    pending.resolve(answer.requestID, answer.status.code == .ok ? nil : "\(answer.status.code)")
                }
            }
        }
    }

    func predict(_ request: Doodle_V1_PredictRequest) async -> String? {
        await withCheckedContinuation { continuation in
            guard let id = self.pending.add(continuation) else { return continuation.resume(returning: "transport") }
            var request = request
            request.requestID = id
            self.outbox.yield(request)
        }
    }

    func close() async {
        self.outbox.finish()
        _ = try? await self.call.value
        self.client.beginGracefulShutdown()
        _ = try? await self.connections.value
    }
}
