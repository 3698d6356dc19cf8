import DoodleGRPC
import GRPCCore
import SwiftProtobuf

/// The standard `grpc.health.v1.Health` service. The overall server ("") and `doodle.v1.Classifier` are
/// SERVING once the model is warm and NOT_SERVING while draining; other names are unknown.
struct HealthService: Grpc_Health_V1_Health.SimpleServiceProtocol {
    static let knownServices: Set<String> = ["", "doodle.v1.Classifier"]

    let state: ServingState

    func check(request: Grpc_Health_V1_HealthCheckRequest,
               context: ServerContext) async throws -> Grpc_Health_V1_HealthCheckResponse {
        guard Self.knownServices.contains(request.service) else {
            throw RPCError(code: .notFound, message: "unknown service '\(request.service)'")
        }
        return .with { $0.status = Self.wire(self.state.status) }
    }

    func watch(request: Grpc_Health_V1_HealthCheckRequest,
               response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>,
               context: ServerContext) async throws {
        guard Self.knownServices.contains(request.service) else {
            // An unknown service gets SERVICE_UNKNOWN once and the stream stays open (per the spec).
            try await response.write(.with { $0.status = .serviceUnknown })
            for await _ in self.state.watch() {}
            return
        }
        for await status in self.state.watch() {
            try await response.write(.with { $0.status = Self.wire(status) })
        }
    }

    static func wire(_ status: ServingState.Status) -> Grpc_Health_V1_HealthCheckResponse.ServingStatus {
        switch status {
        case .serving: .serving
        case .notServing: .notServing
        }
    }
}
