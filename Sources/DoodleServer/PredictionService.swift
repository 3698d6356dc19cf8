import Dispatch
import DoodleCore
import DoodleWire

/// The one way into a prediction for every transport (raw TCP, gRPC, and any later one): validation against the
/// serving model, submission to the batcher, the metrics, and the answer. A request is bound at admission to the
/// model that validated it; it runs on that model and its answer names it, whatever reloads happen meanwhile.
/// A request with a capture label is answered once its drawing is stored (`DrawingCapture`), or with the reason
/// it was not.
public final class PredictionService: Sendable {
    public let batcher: DynamicBatcher
    public let model: ModelSlot
    let metrics: ServiceMetrics
    /// Where labelled drawings are captured; nil when the daemon runs without capture-dir.
    let capture: DrawingCapture?

    public init(batcher: DynamicBatcher, model: ModelSlot, metrics: ServiceMetrics, capture: DrawingCapture? = nil) {
        self.batcher = batcher
        self.model = model
        self.metrics = metrics
        self.capture = capture
    }

    /// A validated request, bound to the model it was validated against.
    public struct Admitted: Sendable {
        public let request: PredictionRequest
        public let requestID: UInt64
        public let predictor: Predictor
        let transport: Transport
        /// Monotonic nanoseconds when the transport read it.
        let start: UInt64
        /// Its capture label and input, when it asks to be captured.
        let capture: DrawingCapture.Intent?
    }

    /// What `admit` decided.
    public enum Admission: Sendable {
        /// Valid: submit it (or run it with `runIfIdle`).
        case admitted(Admitted)
        /// Refused and already counted: send this answer.
        case answered(PredictionOutcome)
    }

    /// Validates `wire` against the serving model. A refusal is counted in the metrics and comes back ready to
    /// send, labelled with the model that refused it.
    public func admit(_ wire: Doodle_V1_PredictRequest, transport: Transport,
                      receivedAt start: UInt64 = DispatchTime.now().uptimeNanoseconds) -> Admission {
        let serving = self.model.current
        do {
            let request = try serving.validator.request(from: wire, receivedAt: start)
            let capture = request.captureLabel.map { DrawingCapture.Intent(label: $0, input: wire.input) }
            return .admitted(Admitted(request: request, requestID: wire.requestID, predictor: serving.predictor,
                                      transport: transport, start: start, capture: capture))
        } catch {
            return .answered(self.refuse(error, requestID: wire.requestID, transport: transport, receivedAt: start))
        }
    }

    /// Answers a request the transport itself refuses (a per-connection or per-stream cap), counted like any
    /// other answer and labelled with the serving model.
    public func refuse(_ error: ServiceError, requestID: UInt64, transport: Transport,
                       receivedAt start: UInt64 = DispatchTime.now().uptimeNanoseconds) -> PredictionOutcome {
        self.metrics.requestCompleted(transport, code: error.code, nanos: DispatchTime.now().uptimeNanoseconds &- start)
        return PredictionOutcome(requestID: requestID, result: .failure(error), predictor: self.model.current.predictor)
    }

    /// Queues an admitted request on the model it was validated against; `completion` gets its outcome once, on a
    /// worker thread (or at once when the queue refuses it). `caller` names the sender for `runIfIdle`.
    public func submit(_ admitted: Admitted, caller: Int? = nil,
                       completion: @escaping @Sendable (PredictionOutcome) -> Void) {
        let metrics = self.metrics
        let answer: @Sendable (Result<[ScoredClass], ServiceError>, CaptureOutcome) -> Void = { result, capture in
            metrics.requestCompleted(admitted.transport, code: StatusCode(result),
                                     nanos: DispatchTime.now().uptimeNanoseconds &- admitted.start)
            if let name = capture.name { metrics.captureCompleted(name) }
            completion(PredictionOutcome(requestID: admitted.requestID, result: result, predictor: admitted.predictor,
                                         capture: capture))
        }
        guard let intent = admitted.capture else {
            self.batcher.submit(admitted.request, on: admitted.predictor, caller: caller) { answer($0, .none) }
            return
        }
        let capture = self.capture
        self.batcher.submit(admitted.request, on: admitted.predictor, caller: caller) { result in
            guard case .success(let classes) = result else { return answer(result, .none) }
            guard let capture else { return answer(result, CaptureOutcome(.disabled)) }
            capture.capture(intent, classes: classes, predictor: admitted.predictor) { answer(result, $0) }
        }
    }

    /// Admits and submits `wire`, and returns its outcome when it has one (for transports that answer from an
    /// async handler: HTTP).
    public func predict(_ wire: Doodle_V1_PredictRequest, transport: Transport,
                        receivedAt start: UInt64 = DispatchTime.now().uptimeNanoseconds) async -> PredictionOutcome {
        switch self.admit(wire, transport: transport, receivedAt: start) {
        case .answered(let outcome):
            return outcome
        case .admitted(let admitted):
            return await withCheckedContinuation { continuation in
                self.submit(admitted) { continuation.resume(returning: $0) }
            }
        }
    }

    /// Runs an admitted request on the calling thread when the batcher is idle (`DynamicBatcher.runIfIdle`);
    /// nil when it is not (or the request is to be captured), and then the caller submits it.
    public func runIfIdle(_ admitted: Admitted, caller: Int) -> PredictionOutcome? {
        // A capture waits for a disk: never on the caller's (event-loop) thread.
        guard admitted.capture == nil, let result = self.batcher.runIfIdle(admitted.request, on: admitted.predictor, caller: caller) else {
            return nil
        }
        self.metrics.requestCompleted(admitted.transport, code: StatusCode(result),
                                      nanos: DispatchTime.now().uptimeNanoseconds &- admitted.start)
        return PredictionOutcome(requestID: admitted.requestID, result: result, predictor: admitted.predictor)
    }

    /// The serving model's description (status OK), counted as an answer on `transport`.
    public func modelInfo(requestID: UInt64, transport: Transport) -> Doodle_V1_ModelInfoResponse {
        self.metrics.requestCompleted(transport, code: .ok, nanos: 0)
        return Doodle_V1_ModelInfoResponse(requestID: requestID, predictor: self.model.current.predictor)
    }
}
