import DoodleCore
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Plays systemd's side of sd_notify: a datagram socket that records every message sent to it, with the
/// monotonic time it arrived.
final class NotifySocket: Sendable {
    struct Message: Sendable {
        let at: UInt64
        let text: String
        /// `KEY=value` lines as a dictionary.
        var fields: [String: String] {
            Dictionary(self.text.split(separator: "\n").compactMap { line in
                line.firstIndex(of: "=").map { (String(line[..<$0]), String(line[line.index(after: $0)...])) }
            }, uniquingKeysWith: { _, last in last })
        }
    }

    let path: String
    private let fd: Int32
    private let received = Locked<[Message]>([])
    private let problem = Locked<String>("ok")
    /// "ok", or what went wrong with the socket (for failure messages).
    var health: String { self.problem.withLock { $0 } }
    private let stopped = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    init() throws {
        self.path = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString.prefix(8))").path
        self.fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(self.path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(self.fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard self.fd >= 0, bound == 0 else { throw POSIXError(.EADDRINUSE) }
        let thread = Thread { [self] in self.readLoop() }
        thread.start()
    }

    private func readLoop() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !self.stopped.load(ordering: .relaxed) {
            var poller = pollfd(fd: self.fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 50) > 0 else { continue }
            if poller.revents & Int16(POLLNVAL) != 0 { self.problem.withLock { $0 = "fd \(self.fd) was closed under it" } }
            let n = buffer.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                let message = Message(at: DispatchTime.now().uptimeNanoseconds, text: String(decoding: buffer[0..<n], as: UTF8.self))
                self.received.withLock { $0.append(message) }
            }
        }
        self.finished.signal()
    }

    var messages: [Message] { self.received.withLock { $0 } }

    /// The first message after index `after` for which `predicate` holds, waiting up to `timeout`.
    func first(after: Int = 0, timeout: Duration = .seconds(30),
               where predicate: (Message) -> Bool) async -> (index: Int, message: Message)? {
        let deadline = ContinuousClock.now + TestTime.scaled(timeout)
        // Checked once more after the deadline: a test starved of the cooperative pool (other tests' CPU-bound
        // work runs there) still sees a message that came in time.
        while true {
            let all = self.messages
            if after < all.count, let index = all[after...].firstIndex(where: predicate) { return (index, all[index]) }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    func close() {
        self.stopped.store(true, ordering: .relaxed)
        self.finished.wait()
        Glibc.close(self.fd)
        unlink(self.path)
    }
}
