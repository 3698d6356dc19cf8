import DoodleWire
import Foundation
import SwiftProtobuf

#if canImport(Glibc)
import Glibc
#endif

/// A plain blocking TCP socket for sending doodled arbitrary bytes and reading its frames back, with
/// timeouts: what a broken or hostile client does, without any of the real client's care.
final class RawConnection: @unchecked Sendable {  // one reader at a time; sends may come from another task
    let fd: Int32

    init(port: Int) throws {
        self.fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(self.fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(self.fd)
            throw POSIXError(.ECONNREFUSED)
        }
        var one: Int32 = 1
        setsockopt(self.fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(self.fd) }

    func send(_ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(self.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }

    /// Sends a frame around `payload`.
    func sendFrame(_ payload: [UInt8], flags: UInt8 = 0) {
        let n = UInt32(payload.count)
        self.send([flags, UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)] + payload)
    }

    func send(_ message: Doodle_V1_ClientMessage) throws {
        self.sendFrame(try message.serializedBytes())
    }

    /// Closes the writing side (the server reads EOF).
    func shutdownWrite() { shutdown(self.fd, Int32(SHUT_WR)) }

    enum Read {
        case message(Doodle_V1_ServerMessage)
        case closed
        case timedOut
    }

    private var buffer: [UInt8] = []

    /// The next frame from the server, or closed / timed out.
    func read(timeout: Double = 5) -> Read {
        let deadline = Date().addingTimeInterval(TestTime.scaled(seconds: timeout))
        while true {
            if self.buffer.count >= 5 {
                let length = Int(self.buffer[1]) << 24 | Int(self.buffer[2]) << 16 | Int(self.buffer[3]) << 8 | Int(self.buffer[4])
                if self.buffer.count >= 5 + length {
                    let payload = Array(self.buffer[5..<(5 + length)])
                    self.buffer.removeFirst(5 + length)
                    guard let message = try? Doodle_V1_ServerMessage(serializedBytes: payload) else { return .closed }
                    return .message(message)
                }
            }
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return .timedOut }
            var poller = pollfd(fd: self.fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(left * 1000) + 1) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let n = chunk.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return .closed }
            self.buffer += chunk[0..<n]
        }
    }

    /// The next prediction answer, or nil when the connection closed or nothing came.
    func readPredict(timeout: Double = 5) -> Doodle_V1_PredictResponse? {
        if case .message(let m) = self.read(timeout: timeout), case .predict(let p) = m.message { return p }
        return nil
    }

    /// Whether the server closed the connection (reading EOF within `timeout`), skipping any frames first.
    func isClosedByServer(timeout: Double = 5) -> Bool {
        while true {
            switch self.read(timeout: timeout) {
            case .closed: return true
            case .timedOut: return false
            case .message: continue
            }
        }
    }
}
