import DoodleClient
import DoodleCore
import DoodleGRPC
import DoodleWire
import GRPCCore
import GRPCNIOTransportHTTP2

/// One gRPC client connection the load generator sends predictions on (raw TCP runs on `TCPLoadDriver`).
protocol PredictChannel: Sendable {
    /// Sends one request; nil when answered OK, otherwise the status name (or "transport" for a failed call).
    func predict(_ request: Doodle_V1_PredictRequest) async -> String?
    /// Sends the load's request number `index` (a channel may have it pre-encoded).
    func predict(at index: Int, of requests: [Doodle_V1_PredictRequest]) async -> String?
    func close() async
}

extension PredictChannel {
    func predict(at index: Int, of requests: [Doodle_V1_PredictRequest]) async -> String? {
        await self.predict(requests[index % requests.count])
    }
}

/// Which protocol `doodle-load` speaks.
public enum LoadProtocol: String, Sendable, CaseIterable {
    /// doodled's framed protocol, requests pipelined on each connection.
    case tcp
    /// gRPC unary Predict calls, each on its own HTTP/2 stream.
    case grpc
    /// gRPC PredictStream: one long bidirectional stream per connection, requests pipelined on it.
    case grpcStream = "grpc-stream"
    /// The HTTP JSON API (`POST /v1/predict`), HTTP/1.1 keep-alive, one request per connection at a time.
    case http
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
    private let state = Locked((nextID: UInt64(1), calls: [UInt64: CheckedContinuation<String?, Never>](), failed: false))

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
