/// Where a service listens: an address to bind, or a socket already bound and listening (systemd socket
/// activation hands these over).
public enum Listener: Sendable, Equatable, CustomStringConvertible {
    case address(host: String, port: Int)
    case socket(descriptor: Int32)

    public var description: String {
        switch self {
        case .address(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .socket(let descriptor): "fd \(descriptor)"
        }
    }
}
