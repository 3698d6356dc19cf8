import DoodleTestSupport
import Foundation

/// One HTTP/1.1 exchange over a fresh loopback connection (`Connection: close`), on a plain socket: what a
/// client sent and got, byte for byte, with no HTTP library in between.
struct HTTPReply {
    var status: Int
    /// Header names lower-cased.
    var headers: [String: String]
    var body: String

    /// The body parsed as a JSON object (empty when it is not one).
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(self.body.utf8))) as? [String: Any] ?? [:] }
}

func httpExchange(port: Int, method: String = "GET", path: String, headers: [String: String] = [:],
                  body: [UInt8] = [], contentLength: Bool = true) throws -> HTTPReply {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EIO) }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
    var head = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    for (name, value) in headers { head += "\(name): \(value)\r\n" }
    var payload = body
    if !body.isEmpty || method == "POST" {
        if contentLength {
            head += "Content-Length: \(body.count)\r\n"
        } else {
            // Chunked: the server cannot know the size before reading it.
            head += "Transfer-Encoding: chunked\r\n"
            payload = Array(String(body.count, radix: 16).utf8) + [13, 10] + body + Array("\r\n0\r\n\r\n".utf8)
        }
    }
    let request = Array((head + "\r\n").utf8) + payload
    var sent = 0
    while sent < request.count {
        let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { break }  // the server may answer (413) and close before reading it all
        sent += n
    }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        response += buffer[0..<n]
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { return HTTPReply(status: 0, headers: [:], body: "") }
    let lines = text[..<split.lowerBound].split(separator: "\r\n")
    let status = lines.first.flatMap { Int($0.split(separator: " ", maxSplits: 2)[1]) } ?? 0
    var fields: [String: String] = [:]
    for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return HTTPReply(status: status, headers: fields, body: String(text[split.upperBound...]))
}

/// GET `path`: (status, body). The socket blocks, so it runs off Swift's cooperative pool, on which the
/// daemon's HTTP handlers (Hummingbird) run.
func httpGet(port: Int, path: String) async throws -> (Int, String) {
    let reply = try await offPool { try httpExchange(port: port, path: path) }
    return (reply.status, reply.body)
}
