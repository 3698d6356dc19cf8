import Hummingbird
import HTTPTypes

/// Cross-origin access for the configured origins only (none by default): a request from an allowed `Origin`
/// gets `Access-Control-Allow-Origin` naming it; a preflight (`OPTIONS` with `Access-Control-Request-Method`)
/// from one is answered 204 with the methods and headers the API takes. Others get no CORS headers, so browsers
/// keep their pages out.
struct CORSPolicy: RouterMiddleware {
    typealias Context = BasicRequestContext

    let origins: Set<String>

    init(origins: [String]) {
        self.origins = Set(origins)
    }

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin], self.origins.contains(origin) || self.origins.contains("*") else {
            return try await next(request, context)
        }
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            var headers = HTTPFields()
            headers[.accessControlAllowOrigin] = origin
            headers[.accessControlAllowMethods] = "GET, POST, OPTIONS"
            headers[.accessControlAllowHeaders] = "content-type"
            headers[.accessControlMaxAge] = "600"
            headers[.vary] = "Origin"
            return Response(status: .noContent, headers: headers)
        }
        var response = try await next(request, context)
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.vary] = "Origin"
        return response
    }
}
