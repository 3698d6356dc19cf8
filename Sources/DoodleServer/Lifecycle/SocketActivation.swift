#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Listening sockets handed over by systemd (sd_listen_fds(3)): `LISTEN_PID` must be this process, the sockets
/// are descriptors 3, 4, ... (`LISTEN_FDS` of them), named by `LISTEN_FDNAMES` (the socket unit's
/// `FileDescriptorName=`).
///
/// doodled takes sockets named `tcp`, `grpc` and `http` (`FileDescriptorName=`). When no socket has one of
/// these names (one socket unit names all its sockets after itself) they are taken in that order.
public struct SocketActivation: Sendable, Equatable {
    /// First descriptor systemd passes (SD_LISTEN_FDS_START).
    public static let firstDescriptor: Int32 = 3

    public var tcp: Listener?
    public var grpc: Listener?
    public var http: Listener?

    /// The sockets passed to this process, or nil when it was not socket-activated.
    public static func fromEnvironment(_ environment: [String: String],
                                       pid: Int32 = getpid()) throws(SettingsError) -> SocketActivation? {
        guard let pidText = environment["LISTEN_PID"], let countText = environment["LISTEN_FDS"] else { return nil }
        guard Int32(pidText) == pid else { return nil }  // meant for another process
        guard let count = Int(countText), count >= 1, count <= 3 else {
            throw SettingsError(message: "LISTEN_FDS=\(countText): doodled takes 1 to 3 sockets (tcp, grpc, http)")
        }
        let names = environment["LISTEN_FDNAMES"].map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) }
        if let names, names.count != count {
            throw SettingsError(message: "LISTEN_FDNAMES has \(names.count) names for \(count) sockets")
        }
        let order = ["tcp", "grpc", "http"]
        let named = names?.contains { order.contains($0) } ?? false
        var activation = SocketActivation()
        for index in 0..<count {
            let descriptor = Self.firstDescriptor + Int32(index)
            let name = named ? names![index] : order[index]
            let listener = Listener.socket(descriptor: descriptor)
            switch name {
            case "tcp" where activation.tcp == nil: activation.tcp = listener
            case "grpc" where activation.grpc == nil: activation.grpc = listener
            case "http" where activation.http == nil: activation.http = listener
            default:
                throw SettingsError(message: "socket \(descriptor) is named '\(name)': expected each of tcp, grpc and "
                                    + "http at most once (FileDescriptorName= in the socket unit)")
            }
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)  // not inherited by anything we start
        }
        return activation
    }

    /// Replaces `configuration`'s listeners with the sockets passed in; the others keep their addresses.
    public func apply(to configuration: inout DoodleDaemon.Configuration) {
        if let tcp = self.tcp { configuration.tcp = tcp }
        if let grpc = self.grpc { configuration.grpc = grpc }
        if let http = self.http { configuration.http = http }
    }
}
