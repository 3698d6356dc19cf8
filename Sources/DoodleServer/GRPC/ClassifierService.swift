import DoodleCore
import DoodleGRPC
import DoodleWire
import Dispatch
import GRPCCore
import Synchronization

/// `doodle.v1.Classifier` over gRPC. Requests go through the same validator and batcher as raw TCP, so both
/// transports batch together and answer with the same codes and messages.
struct ClassifierService: Doodle_V1_Classifier.SimpleServiceProtocol {
    let batcher: DynamicBatcher
    let model: ModelSlot
    let metrics: ServiceMetrics
    /// Requests one PredictStream may have in flight; more are answered RESOURCE_EXHAUSTED in the stream.
    let maxInFlightPerStream: Int

    func predict(request: Doodle_V1_PredictRequest, context: ServerContext) async throws -> Doodle_V1_PredictResponse {
        let (result, predictor) = await self.run(request)
        switch result {
        case .success:
            return Doodle_V1_PredictResponse(requestID: request.requestID, result: result, predictor: predictor)
        case .failure(let error):
            throw RPCError(error)
        }
    }

    func predictStream(request: RPCAsyncSequence<Doodle_V1_PredictRequest, any Error>,
                       response: RPCWriter<Doodle_V1_PredictResponse>, context: ServerContext) async throws {
        // Requests are submitted as they arrive (the batcher sees them all at once); one task writes the answers.
        let (answers, sink) = AsyncStream.makeStream(of: Doodle_V1_PredictResponse.self)
        let pending = Mutex((inFlight: 0, inputDone: false))
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
                    self.metrics.requestCompleted(.grpc, code: .resourceExhausted, nanos: 0)
                    sink.yield(.error(ServiceError(.resourceExhausted,
                        "\(self.maxInFlightPerStream) requests in flight on this stream"), requestID: wire.requestID))
                    continue
                }
                self.submit(wire) { answer in
                    sink.yield(answer)
                    pending.withLock { $0.inFlight -= 1 }
                    finishIfDone()
                }
            }
            pending.withLock { $0.inputDone = true }
            finishIfDone()
            try await group.waitForAll()
        }
    }

    func getModelInfo(request: Doodle_V1_ModelInfoRequest,
                      context: ServerContext) async throws -> Doodle_V1_ModelInfoResponse {
        Doodle_V1_ModelInfoResponse(requestID: request.requestID, predictor: self.model.current.predictor)
    }

    /// Validates and predicts one request, recording it in the metrics.
    private func run(_ wire: Doodle_V1_PredictRequest) async -> (Result<[ScoredClass], ServiceError>, Predictor) {
        await withCheckedContinuation { continuation in
            self.submit(wire, raw: { result, predictor in continuation.resume(returning: (result, predictor)) })
        }
    }

    private func submit(_ wire: Doodle_V1_PredictRequest,
                        answer: @escaping @Sendable (Doodle_V1_PredictResponse) -> Void) {
        self.submit(wire, raw: { result, predictor in
            answer(Doodle_V1_PredictResponse(requestID: wire.requestID, result: result, predictor: predictor))
        })
    }

    private func submit(_ wire: Doodle_V1_PredictRequest,
                        raw: @escaping @Sendable (Result<[ScoredClass], ServiceError>, Predictor) -> Void) {
        let start = DispatchTime.now().uptimeNanoseconds
        let serving = self.model.current
        let metrics = self.metrics
        let predictor = serving.predictor
        let request: PredictionRequest
        do {
            request = try serving.validator.request(from: wire, receivedAt: start)
        } catch {
            metrics.requestCompleted(.grpc, code: error.code, nanos: DispatchTime.now().uptimeNanoseconds &- start)
            raw(.failure(error), predictor)
            return
        }
        self.batcher.submit(request) { result in
            let code: StatusCode = switch result {
            case .success: .ok
            case .failure(let error): error.code
            }
            metrics.requestCompleted(.grpc, code: code, nanos: DispatchTime.now().uptimeNanoseconds &- start)
            raw(result, predictor)
        }
    }
}

extension RPCError {
    /// The gRPC status for a service error: same code (doodled uses gRPC's numbers), same message.
    init(_ error: ServiceError) {
        let code: RPCError.Code = switch error.code {
        case .ok, .internal: .internalError
        case .invalidArgument: .invalidArgument
        case .deadlineExceeded: .deadlineExceeded
        case .resourceExhausted: .resourceExhausted
        case .unavailable: .unavailable
        }
        self.init(code: code, message: error.message)
    }
}
