import DoodleCore
import DoodleWire
import Foundation
import Hummingbird
import HTTPTypes
import NIOCore

/// What the HTTP listener answers (see docs/http-api.md):
///
/// - `POST /v1/predict`: a drawing as JSON (`JSONPredictRequest`), answered as JSON through the same validation,
///   limits, batcher and metrics as raw TCP and gRPC (`PredictionService`); errors as `{"error": {"code",
///   "message"}}` with the matching status (400, 413, 429 with Retry-After, 503, 504).
/// - `GET /v1/model`: labels, input spec, version.
/// - `GET /` (and `/app.js`, `/app.css`): the drawing page (`DrawingPage`).
/// - `GET /metrics`, `/healthz`, `/readyz` for operators.
struct HTTPRoutes: Sendable {
    let service: PredictionService
    let metrics: ServiceMetrics
    let state: ServingState
    let configuration: HTTPAPIConfiguration

    func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: CORSPolicy(origins: self.configuration.corsOrigins))
        let text = "text/plain; charset=utf-8"
        router.get("/metrics") { _, _ in
            Self.respond(.ok, self.metrics.render(batcher: self.service.batcher), type: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.head("/metrics") { _, _ in Response(status: .ok) }
        router.get("/healthz") { _, _ in Self.respond(.ok, "ok\n", type: text) }
        router.head("/healthz") { _, _ in Response(status: .ok) }
        router.get("/readyz") { _, _ in
            self.state.status == .serving
                ? Self.respond(.ok, "ready\n", type: text)
                : Self.respond(.serviceUnavailable, "not ready (starting, draining or without a model)\n", type: text)
        }
        router.head("/readyz") { _, _ in Response(status: self.state.status == .serving ? .ok : .serviceUnavailable) }
        router.get("/") { _, _ in Self.respond(.ok, DrawingPage.html, type: "text/html; charset=utf-8") }
        router.get("/app.js") { _, _ in Self.respond(.ok, DrawingPage.script, type: "text/javascript; charset=utf-8") }
        router.get("/app.css") { _, _ in Self.respond(.ok, DrawingPage.style, type: "text/css; charset=utf-8") }
        router.get("/v1/model") { _, _ in
            Self.json(.ok, JSONModelInfo(self.service.model.current.predictor,
                                         limits: self.service.model.current.validator.limits))
        }
        router.post("/v1/predict") { request, _ in try await self.predict(request) }
        router.get("/v1/predict") { _, _ in
            var response = Self.json(.methodNotAllowed, JSONPredictAnswer(
                error: ServiceError(.invalidArgument, "POST a JSON drawing to /v1/predict (see GET /v1/model for what it takes)"),
                predictor: self.service.model.current.predictor))
            response.headers[.allow] = "POST, OPTIONS"
            return response
        }
        // Preflights: `CORSPolicy` answers those from allowed origins; anyone else gets 204 without CORS headers.
        router.on("/v1/predict", method: .options) { _, _ in Response(status: .noContent) }
        router.on("/v1/model", method: .options) { _, _ in Response(status: .noContent) }
        return router
    }

    /// Reads, decodes, predicts, answers; every answer counted under transport `http`.
    private func predict(_ request: Request) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        let limit = self.configuration.maxBodyBytes
        let declared = request.headers[.contentLength].flatMap(Int.init)
        if let declared, declared > Self.maxDiscardBytes {
            // Too much even to read and throw away: answer and close the connection.
            var response = self.refuse(ServiceError(.invalidArgument, "the body has \(declared) bytes; the limit is \(limit) (http-max-body-bytes)"),
                                       status: .contentTooLarge, start: start)
            response.headers[.connection] = "close"
            return response
        }
        let body: ByteBuffer
        switch try await Self.readBody(request, limit: limit) {
        case .whole(let bytes):
            body = bytes
        case .tooLarge(let drained):
            let size = declared.map { "has \($0) bytes" } ?? "is longer than \(limit) bytes"
            var response = self.refuse(ServiceError(.invalidArgument, "the body \(size); the limit is \(limit) (http-max-body-bytes)"),
                                       status: .contentTooLarge, start: start)
            if !drained { response.headers[.connection] = "close" }
            return response
        }
        let wire: Doodle_V1_PredictRequest
        do {
            wire = try JSONPredictRequest.decode(body).wire()
        } catch {
            return self.refuse(error, status: .badRequest, start: start)
        }
        let outcome = await self.service.predict(wire, transport: .http, receivedAt: start)
        return Self.answer(outcome)
    }

    /// Most bytes of a refused body read and thrown away, so that a client still sending it gets to read the
    /// answer (a lingering close) instead of a reset connection; beyond it the connection is closed.
    static let maxDiscardBytes = 64 << 20

    enum Body {
        case whole(ByteBuffer)
        /// Longer than the limit: read to its end and thrown away (`drained`), or abandoned past
        /// `maxDiscardBytes`.
        case tooLarge(drained: Bool)
    }

    /// The body, up to `limit` bytes; past it the rest is read and discarded, never kept.
    static func readBody(_ request: Request, limit: Int) async throws -> Body {
        var collected = ByteBuffer()
        var total = 0
        for try await chunk in request.body {
            total += chunk.readableBytes
            if total > Self.maxDiscardBytes { return .tooLarge(drained: false) }
            if total <= limit { collected.writeImmutableBuffer(chunk) }
        }
        return total <= limit ? .whole(collected) : .tooLarge(drained: true)
    }

    /// A request refused before it reached the prediction service (body too large, not the JSON it should be).
    private func refuse(_ error: ServiceError, status: HTTPResponse.Status, start: UInt64) -> Response {
        self.metrics.requestCompleted(.http, code: error.code, nanos: DispatchTime.now().uptimeNanoseconds &- start)
        let predictor = self.service.model.current.predictor
        return Self.json(status, JSONPredictAnswer(error: error, predictor: predictor))
    }

    /// The JSON answer to an outcome, with the status its code maps to.
    static func answer(_ outcome: PredictionOutcome) -> Response {
        switch outcome.result {
        case .success(let classes):
            return Self.json(.ok, JSONPredictAnswer(classes: classes, predictor: outcome.predictor, capture: outcome.capture))
        case .failure(let error):
            var response = Self.json(Self.status(error.code), JSONPredictAnswer(error: error, predictor: outcome.predictor))
            if error.code == .resourceExhausted { response.headers[.retryAfter] = "1" }
            return response
        }
    }

    /// The HTTP status for a service error's code.
    static func status(_ code: StatusCode) -> HTTPResponse.Status {
        switch code {
        case .ok: .ok
        case .invalidArgument: .badRequest
        case .deadlineExceeded: .gatewayTimeout
        case .resourceExhausted: .tooManyRequests
        case .unavailable: .serviceUnavailable
        case .internal: .internalServerError
        }
    }

    static func respond(_ status: HTTPResponse.Status, _ body: String, type: String) -> Response {
        Response(status: status, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func json(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data(#"{"error":{"code":"INTERNAL","message":"encoding failed"}}"#.utf8)
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
