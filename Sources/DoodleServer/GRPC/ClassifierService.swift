import DoodleCore
import DoodleGRPC
import DoodleWire
import Dispatch
import GRPCCore

/// `doodle.v1.Classifier` over gRPC. Requests take the same way in as raw TCP (`PredictionService`): the same
/// validation, batcher, metrics, codes and messages, and both transports batch together.
struct ClassifierService: Doodle_V1_Classifier.SimpleServiceProtocol {
    let service: PredictionService
    /// Requests one PredictStream may have in flight; more are answered RESOURCE_EXHAUSTED in the stream.
    let maxInFlightPerStream: Int

    func predict(request: Doodle_V1_PredictRequest, context: ServerContext) async throws -> Doodle_V1_PredictResponse {
        let outcome: PredictionOutcome
        switch self.service.admit(request, transport: .grpc) {
        case .answered(let refusal):
            outcome = refusal
        case .admitted(let admitted):
            outcome = await withCheckedContinuation { continuation in
                self.service.submit(admitted) { continuation.resume(returning: $0) }
            }
        }
        switch outcome.result {
        case .success:
            return outcome.response
        case .failure(let error):
            throw RPCError(error)
        }
    }

    func predictStream(request: RPCAsyncSequence<Doodle_V1_PredictRequest, any Error>,
                       response: RPCWriter<Doodle_V1_PredictResponse>, context: ServerContext) async throws {
        // Requests are submitted as they arrive (the batcher sees them all at once); one task writes the answers.
        let (answers, sink) = AsyncStream.makeStream(of: Doodle_V1_PredictResponse.self)
        let pending = Locked((inFlight: 0, inputDone: false))
        let finishIfDone: @Sendable () -> Void = {
            if pending.withLock({ $0.inputDone && $0.inFlight == 0 }) { sink.finish() }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await answer in answers { try await response.write(answer) }
            }
            defer { sink.finish() }
            for try await wire in request {
                let admitted = pending.withLock { state in
                    guard state.inFlight < self.maxInFlightPerStream else { return false }
                    state.inFlight += 1
                    return true
                }
                guard admitted else {
                    let error = ServiceError(.resourceExhausted, "\(self.maxInFlightPerStream) requests in flight on this stream")
                    sink.yield(self.service.refuse(error, requestID: wire.requestID, transport: .grpc).response)
                    continue
                }
                let answered: @Sendable (PredictionOutcome) -> Void = { outcome in
                    sink.yield(outcome.response)
                    pending.withLock { $0.inFlight -= 1 }
                    finishIfDone()
                }
                switch self.service.admit(wire, transport: .grpc) {
                case .answered(let refusal): answered(refusal)
                case .admitted(let request): self.service.submit(request, completion: answered)
                }
            }
            pending.withLock { $0.inputDone = true }
            finishIfDone()
            try await group.waitForAll()
        }
    }

    func getModelInfo(request: Doodle_V1_ModelInfoRequest,
                      context: ServerContext) async throws -> Doodle_V1_ModelInfoResponse {
        self.service.modelInfo(requestID: request.requestID, transport: .grpc)
    }
}

extension RPCError {
    /// The gRPC status for a service error: same code (doodled uses gRPC's numbers), same message.
    init(_ error: ServiceError) {
        let code = Status.Code(rawValue: error.code.rawValue).flatMap(RPCError.Code.init) ?? .internalError
        self.init(code: code, message: error.message)
    }
}
