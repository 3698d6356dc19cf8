import DoodleCore
import DoodleGRPC
import DoodleWire
import Dispatch
import GRPCCore

/// `doodle.v1.Classifier` over gRPC. Requests go through the same validator and batcher as raw TCP, so both
/// transports batch together and answer with the same codes and messages.
struct ClassifierService: Doodle_V1_Classifier.SimpleServiceProtocol {
    let batcher: DynamicBatcher
    let model: ModelSlot
    let metrics: ServiceMetrics
    /// Requests one PredictStream may have in flight; more are answered RESOURCE_EXHAUSTED in the stream.
    let maxInFlightPerStream: Int

    func predict(request: Doodle_V1_PredictRequest, context: ServerContext) async throws -> Doodle_V1_PredictResponse {
        let (result, predictor) = await withCheckedContinuation { continuation in
            self.submit(request) { continuation.resume(returning: ($0, $1)) }
        }
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
                    self.metrics.requestCompleted(.grpc, code: .resourceExhausted, nanos: 0)
                    sink.yield(.error(ServiceError(.resourceExhausted,
                        "\(self.maxInFlightPerStream) requests in flight on this stream"), requestID: wire.requestID))
                    continue
                }
                self.submit(wire) { result, predictor in
                    sink.yield(Doodle_V1_PredictResponse(requestID: wire.requestID, result: result, predictor: predictor))
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

    /// Validates and predicts one request, recording it in the metrics; `completion` gets the outcome and the
    /// model that produced it (on a worker thread, or at once for an invalid request).
    private func submit(_ wire: Doodle_V1_PredictRequest,
                        completion: @escaping @Sendable (Result<[ScoredClass], ServiceError>, Predictor) -> Void) {
        let start = DispatchTime.now().uptimeNanoseconds
        let serving = self.model.current
        let metrics = self.metrics
        let predictor = serving.predictor
        let request: PredictionRequest
        do {
            request = try serving.validator.request(from: wire, receivedAt: start)
        } catch {
            metrics.requestCompleted(.grpc, code: error.code, nanos: DispatchTime.now().uptimeNanoseconds &- start)
            completion(.failure(error), predictor)
            return
        }
        self.batcher.submit(request) { result in
            metrics.requestCompleted(.grpc, code: StatusCode(result), nanos: DispatchTime.now().uptimeNanoseconds &- start)
            completion(result, predictor)
        }
    }
}

extension RPCError {
    /// The gRPC status for a service error: same code (doodled uses gRPC's numbers), same message.
    init(_ error: ServiceError) {
        let code = Status.Code(rawValue: error.code.rawValue).flatMap(RPCError.Code.init) ?? .internalError
        self.init(code: code, message: error.message)
    }
}
