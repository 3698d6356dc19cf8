import DoodleClient
import DoodleWire
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Scale-out behind HAProxy (deploy/haproxy.cfg)", .serialized)
struct ScaleOutTests {
    /// deploy/haproxy.cfg with its listen ports and instance addresses replaced by the test's.
    static func haproxyConfig(tcpFront: Int, grpcFront: Int, instances: [DoodledProcess]) throws -> URL {
        var text = try String(contentsOf: Paths.repoRoot.appendingPathComponent("deploy/haproxy.cfg"), encoding: .utf8)
        let replacements = [
            ("bind :7431", "bind 127.0.0.1:\(tcpFront)"),
            ("bind :7432 proto h2", "bind 127.0.0.1:\(grpcFront) proto h2"),
        ] + instances.enumerated().flatMap { i, d in [
            ("10.0.0.1\(i + 1):7431 check port 7433", "127.0.0.1:\(d.tcpPort) check port \(d.httpPort)"),
            ("10.0.0.1\(i + 1):7432 proto h2 check port 7433", "127.0.0.1:\(d.grpcPort) proto h2 check port \(d.httpPort)"),
        ] }
        for (from, to) in replacements {
            #expect(text.contains(from), "deploy/haproxy.cfg no longer has '\(from)'")
            text = text.replacingOccurrences(of: from, with: to)
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("haproxy-\(UUID().uuidString).cfg")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    @Test("Two instances behind HAProxy: one is killed mid-run; only its in-flight requests fail, all later succeed")
    func killOneInstance() async throws {
        let a = try DoodledProcess.start()
        let b = try DoodledProcess.start()
        defer { Task { await a.child.stop(); await b.child.stop() } }
        try await a.waitUntilServing()
        try await b.waitUntilServing()
        let (tcpFront, grpcFront) = (freePort(), freePort())
        let config = try Self.haproxyConfig(tcpFront: tcpFront, grpcFront: grpcFront, instances: [a, b])
        let haproxy = try ChildProcess("haproxy", ["-db", "-f", config.path])
        defer { Task { await haproxy.stop() } }
        let through = await eventually {
            guard let connection = try? await DoodleConnection.connect(host: "127.0.0.1", port: tcpFront) else { return false }
            defer { Task { await connection.close() } }
            return (try? await connection.modelInfo())?.modelName == "quickdraw-345"
        }
        #expect(through, "HAProxy does not pass requests: \(haproxy.standardOutput) \(haproxy.standardError)")

        let (connections, depth) = (8, 4)
        let load = try runLoad(port: tcpFront, seconds: 8, connections: connections, depth: depth)
        #expect(await waitForTraffic(httpPorts: [a.httpPort, b.httpPort], frames: 2000))
        a.child.signal(SIGKILL)
        let killedAt = Date()
        #expect(await load.waitForExit() == 0, "doodle-load: \(load.standardError.prefix(5000))")
        let result = try report(load)
        let loadEnded = Date()
        let failed = result.errors.values.reduce(0, +)
        print("HAProxy, one instance killed: \(result.ok) OK, errors \(result.errors), last error at "
              + "\(result.lastErrorSeconds.map { String(format: "%.2f s", $0) } ?? "-"), \(result.okAfterLastError) OK after it")
        #expect(result.ok > 100)
        // Only requests in flight on the killed instance's connections can fail: at most all of them.
        #expect(Set(result.errors.keys).isSubset(of: ["connection_lost"]), "\(result.errors)")
        #expect(failed <= connections * depth)
        // Everything after the incident succeeds: clients reconnect through HAProxy to the live instance.
        // The run's measured part ends when the load ends: the last error came well before that.
        if let last = result.lastErrorSeconds {
            let killSecondsIntoRun = result.seconds - loadEnded.timeIntervalSince(killedAt)
            #expect(last < killSecondsIntoRun + 2.5, "last error \(last) s, kill at about \(killSecondsIntoRun) s")
            #expect(result.okAfterLastError > 100)
        }

        // gRPC (HTTP/2 through HAProxy) is served by the instance left.
        let (succeeded, output) = try await grpcHealthChecks(port: grpcFront, calls: 200, connections: 2)
        #expect(succeeded, "\(output)")
        await haproxy.stop()
        await b.child.stop()
    }
}
