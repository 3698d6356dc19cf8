import DoodleCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The package's built executables: `swift test` builds them beside the test runner.
enum Products {
    static let directory: URL = {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL,
            Paths.repoRoot.appendingPathComponent(".build/debug"),
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.appendingPathComponent("doodled").path) }
            ?? candidates.last!
    }()

    static func path(_ name: String) -> String { self.directory.appendingPathComponent(name).path }
}

/// A child process whose output goes to files, waited for without blocking Swift's cooperative pool (the
/// daemon under test may run its gRPC handlers there).
final class ChildProcess: Sendable {
    private let process: Process
    private let exit = ExitStatus()
    let standardOutputPath: URL
    let standardErrorPath: URL
    /// Monotonic time the process was started (ns).
    let startedAt: UInt64

    init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("doodled-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.standardOutputPath = directory.appendingPathComponent("stdout")
        self.standardErrorPath = directory.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: self.standardOutputPath.path, contents: nil)
        _ = FileManager.default.createFile(atPath: self.standardErrorPath.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
        process.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
        process.currentDirectoryURL = Paths.repoRoot
        if let environment { process.environment = environment }
        process.standardOutput = try FileHandle(forWritingTo: self.standardOutputPath)
        process.standardError = try FileHandle(forWritingTo: self.standardErrorPath)
        self.process = process
        self.startedAt = DispatchTime.now().uptimeNanoseconds
        process.terminationHandler = { [exit = self.exit] process in
            let status = process.terminationStatus
            exit.status.withLock { $0 = process.terminationReason == .uncaughtSignal ? -status : status }
        }
        try process.run()
    }

    var pid: Int32 { self.process.processIdentifier }

    /// Whether the process has exited (without waiting).
    var hasExited: Bool { self.exit.status.withLock { $0 } != nil }

    func signal(_ number: Int32) { kill(self.pid, number) }

    /// The exit status (negative: killed by that signal), or nil if still running after `timeout`.
    func waitForExit(timeout: Duration = .seconds(120)) async -> Int32? {
        let deadline = ContinuousClock.now + TestTime.scaled(timeout)
        // Checked once more after the deadline: a waiter starved of the cooperative pool still sees what happened.
        while true {
            if let status = self.exit.status.withLock({ $0 }) { return status }
            if let status = self.reapIfZombie() { return status }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Foundation can miss the exit of a process that ends very soon after it starts (it stays a zombie and
    /// the termination handler never runs); reap such a process here.
    private func reapIfZombie() -> Int32? {
        guard let stat = try? String(contentsOfFile: "/proc/\(self.pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")"), stat[stat.index(close, offsetBy: 2)] == "Z" else { return nil }
        var raw: Int32 = 0
        guard waitpid(self.pid, &raw, WNOHANG) == self.pid else { return nil }
        let signal = raw & 0x7f
        let status = signal == 0 ? (raw >> 8) & 0xff : -signal
        self.exit.status.withLock { $0 = status }
        return status
    }

    /// Kills the process if it still runs (test clean-up).
    func stop() async {
        if self.exit.status.withLock({ $0 }) == nil {
            self.signal(SIGKILL)
            _ = await self.waitForExit(timeout: .seconds(10))
        }
    }

    var standardOutput: String { (try? String(contentsOf: self.standardOutputPath, encoding: .utf8)) ?? "" }
    var standardError: String { (try? String(contentsOf: self.standardErrorPath, encoding: .utf8)) ?? "" }

    /// Waits until standard error holds `text` `count` times; false on timeout.
    func waitForLog(_ text: String, count: Int = 1, timeout: Duration = .seconds(120)) async -> Bool {
        let deadline = ContinuousClock.now + TestTime.scaled(timeout)
        while true {  // checked once more after the deadline (see waitForExit)
            if self.standardError.components(separatedBy: text).count - 1 >= count { return true }
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// How a process ended: nil while it runs.
final class ExitStatus: Sendable {
    let status = Locked<Int32?>(nil)
}

/// A TCP port on 127.0.0.1 that was free a moment ago, for a listener a test starts.
///
/// Taken below the kernel's ephemeral range (`ip_local_port_range`), from which every outgoing connection and
/// every bind to port 0 draws its port: a port from inside it could be taken by another test's connection between
/// this check and the daemon's bind (a CI run failed once that way: "Address already in use"). No port is handed
/// out twice in one test process, and each is checked free with a bind before it is returned.
func freePort() -> Int {
    ListenerPorts.shared.next()
}

/// Hands out listener ports for `freePort()`: a walk from a random start through the ports below the ephemeral
/// range, skipping any that cannot be bound now.
final class ListenerPorts: Sendable {
    static let shared = ListenerPorts()

    private let range: ClosedRange<Int>
    private let cursor: Locked<Int>

    private init() {
        let ephemeralLow = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))
            .flatMap { $0.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } } ?? 32768
        // 16,384 ports under the ephemeral range, never the privileged ones; if that range starts very low, ports
        // above it (its upper end is at most 65535, and such kernels are rare) are still better than failing.
        let upper = ephemeralLow - 1
        self.range = upper >= 2048 ? max(1024, upper - 16383)...upper : 1024...65535
        self.cursor = Locked(Int.random(in: self.range))
    }

    func next() -> Int {
        for _ in 0..<self.range.count {
            let port = self.cursor.withLock { cursor -> Int in
                let port = cursor
                cursor = cursor == self.range.upperBound ? self.range.lowerBound : cursor + 1
                return port
            }
            if Self.canBind(port) { return port }
        }
        preconditionFailure("no free TCP port on 127.0.0.1 in \(self.range)")
    }

    /// True when 127.0.0.1:`port` can be bound now without SO_REUSEADDR (stricter than doodled's listeners:
    /// a port some connection still holds in TIME_WAIT is skipped too).
    private static func canBind(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}

/// How much longer than usual the tests' waits may take: `DOODLE_TEST_TIME_SCALE` (default 1), for runs under a
/// sanitizer, which slows everything several-fold. Scales how long a test waits for something, never what it
/// expects to happen.
enum TestTime {
    static let scale: Double = {
        guard let text = ProcessInfo.processInfo.environment["DOODLE_TEST_TIME_SCALE"], let value = Double(text),
              value >= 1 else { return 1 }
        return value
    }()

    /// `duration` stretched by `scale`.
    static func scaled(_ duration: Duration) -> Duration { duration * scale }

    /// `seconds` stretched by `scale`.
    static func scaled(seconds: Double) -> Double { seconds * scale }
}

/// Polls `condition` until it holds; false on timeout (scaled by `TestTime`).
func eventually(timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + TestTime.scaled(timeout)
    while true {  // checked once more after the deadline (see ChildProcess.waitForExit)
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: .milliseconds(25))
    }
}
