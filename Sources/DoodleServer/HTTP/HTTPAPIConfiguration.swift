/// Limits and policy of the HTTP listener's JSON API and page.
public struct HTTPAPIConfiguration: Sendable, Equatable {
    /// Largest request body accepted, in bytes; a larger one is answered 413 before it is read.
    public var maxBodyBytes = 2 << 20
    /// Origins (e.g. `https://game.example.com`) whose pages may call the API from a browser (CORS); `*` allows
    /// any. None by default: only pages served by doodled itself, or by a proxy in front of it, can call it.
    public var corsOrigins: [String] = []

    public init() {}
}
