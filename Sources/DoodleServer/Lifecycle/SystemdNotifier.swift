#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
#if canImport(CoreFoundation)
// Where Foundation is loaded (release builds optimise the module whole), `timespec`'s members are found through
// CoreFoundation's copy of the C declaration.
import CoreFoundation
#endif

/// Tells the service manager about the daemon's state, as sd_notify(3) does: one datagram per message to the
/// AF_UNIX socket named by `NOTIFY_SOCKET` (a leading `@` means the abstract namespace). Without
/// `NOTIFY_SOCKET` (not run by systemd, or `Type=simple`) every message is dropped quietly.
public final class SystemdNotifier: Sendable {
    /// The socket messages go to; nil when not under systemd's notify protocol.
    public let socketPath: String?

    public init(environment: [String: String]) {
        let path = environment["NOTIFY_SOCKET"]
        self.socketPath = (path?.isEmpty ?? true) ? nil : path
    }

    /// True when messages have somewhere to go.
    public var isEnabled: Bool { self.socketPath != nil }

    /// Sends `READY=1`, with a status line.
    public func ready(status: String) { self.send("READY=1\nSTATUS=\(status)") }

    /// Sends a `STATUS=` line (shown by `systemctl status`).
    public func status(_ text: String) { self.send("STATUS=\(text)") }

    /// Sends `RELOADING=1` with the monotonic timestamp systemd wants (`Type=notify-reload` requires it).
    public func reloading(status: String) {
        self.send("RELOADING=1\nMONOTONIC_USEC=\(Self.monotonicMicros())\nSTATUS=\(status)")
    }

    /// Sends `STOPPING=1`.
    public func stopping(status: String) { self.send("STOPPING=1\nSTATUS=\(status)") }

    /// Sends `WATCHDOG=1`.
    public func watchdog() { self.send("WATCHDOG=1") }

    /// Sends one message; returns whether the datagram left. Never throws: the daemon serves on even if the
    /// service manager went away.
    @discardableResult
    public func send(_ message: String) -> Bool {
        guard let path = self.socketPath else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var pathBytes = Array(path.utf8)
        if pathBytes.first == UInt8(ascii: "@") { pathBytes[0] = 0 }  // abstract namespace
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + pathBytes.count + (pathBytes.first == 0 ? 0 : 1))
        let bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                sendto(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL), sa, length)
            }
        }
        return sent == bytes.count
    }

    /// CLOCK_MONOTONIC in microseconds.
    public static func monotonicMicros() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }
}
