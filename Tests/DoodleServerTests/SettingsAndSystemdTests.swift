
#if canImport(Glibc)
import DoodleCore
import DoodleEngine
import DoodlePreprocessing
import DoodleServer
import DoodleTestSupport
import DoodleWire
import Foundation
import Glibc
import Synchronization
import Testing
#endif

@Suite("Settings, socket activation and the watchdog")
struct SettingsAndSystemdTests {
    func configFile(_ text: String) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("doodled-\(UUID().uuidString).conf")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    @Test("Flags win over the environment, which wins over the file; each value's source is kept")
    func precedence() throws {
        let file = try configFile("""
            # a comment
            max-batch = 16   # trailing comment
            max-queue = 100
            workers = 1
            grpc-listen = off
            """)
        let resolved = try SettingsResolver.resolve(
            flags: ["workers": "3"], configPath: file,
            environment: ["DOODLED_MAX_QUEUE": "200", "DOODLED_WORKERS": "2", "HOME": "/root"])
        let s = resolved.settings
        let config = s.daemon
        #expect(config.batcher.maxBatch == 16 && config.batcher.maxQueue == 200 && config.batcher.workers == 3)
        #expect(config.grpc == nil && config.tcp == .address(host: "127.0.0.1", port: 7431))
        #expect(resolved.sources["max-batch"] == .file(path: file, line: 2))
        #expect(resolved.sources["max-queue"] == .environment(name: "DOODLED_MAX_QUEUE"))
        #expect(resolved.sources["workers"] == .flag)
        #expect(resolved.sources["listen"] == nil)  // default
        // --print-config output is itself a config file that reproduces the settings.
        let again = try SettingsResolver.resolve(flags: [:], configPath: try configFile(resolved.rendered), environment: [:])
        #expect(again.settings == s)
    }

    @Test("README's settings table names exactly the settings doodled has, in the same order")
    func readmeListsEverySetting() throws {
        let readme = try String(contentsOf: Paths.repoRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let section = readme.components(separatedBy: "## doodled settings")[1].components(separatedBy: "\n## ")[0]
        let names = section.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("| `"), let end = line.dropFirst(3).firstIndex(of: "`") else { return nil }
            return String(line[line.index(line.startIndex, offsetBy: 3)..<end])
        }
        #expect(names == DaemonSettings.specs.map(\.name))
    }

    @Test("The config file comes from DOODLED_CONFIG when --config is absent")
    func configFromEnvironment() throws {
        let file = try configFile("max-delay-us = 250\n")
        let resolved = try SettingsResolver.resolve(flags: [:], environment: ["DOODLED_CONFIG": file])
        #expect(resolved.settings.daemon.batcher.maxDelayMicros == 250 && resolved.configFile == file)
    }

    @Test("Invalid values fail with a message naming the setting and where it came from", arguments: [
        (["max-batch": "0"], [String: String](), "", "invalid max-batch '0' (from flag): expected an integer >= 1"),
        ([:], ["DOODLED_LISTEN": "nowhere"], "", "invalid listen 'nowhere' (from environment DOODLED_LISTEN): expected host:port"),
        ([:], [:], "kernels = sse9\n", "invalid kernels 'sse9' (from FILE:1): expected reference, avx2, avx512vnni, neon-dotprod, neon-i8mm or auto"),
        ([:], [:], "max-queue = 1\nmax-queue = 2\n", "FILE:2: max-queue is set twice (first on line 1)"),
        ([:], [:], "maxbatch = 3\n", "FILE:1: unknown setting 'maxbatch'"),
        ([:], [:], "just words\n", "FILE:1: expected 'name = value', got 'just words'"),
        ([:], ["DOODLED_MAX_BACH": "3"], "", "environment variable DOODLED_MAX_BACH names no setting"),
        (["drain-timeout": "-1"], [:], "", "invalid drain-timeout '-1' (from flag): expected seconds, more than 0 and at most 3600"),
        (["log-level": "loud"], [:], "", "invalid log-level 'loud' (from flag)"),
    ])
    func invalid(flags: [String: String], environment: [String: String], file: String, message: String) throws {
        let path = file.isEmpty ? nil : try configFile(file)
        do {
            _ = try SettingsResolver.resolve(flags: flags, configPath: path, environment: environment)
            Issue.record("accepted \(flags) \(environment) \(file)")
        } catch {
            let expected = message.replacingOccurrences(of: "FILE", with: path ?? "")
            #expect(error.message.hasPrefix(expected), "\(error.message)")
        }
    }

    @Test("A missing config file is an error that names it")
    func missingFile() {
        #expect(throws: SettingsError.self) {
            try SettingsResolver.resolve(flags: [:], configPath: "/nonexistent/doodled.conf", environment: [:])
        }
    }

    @Test("Socket activation: sockets by name, in order when unnamed, ignored when meant for another process")
    func socketActivation() throws {
        let pid: Int32 = 4242
        let named = try #require(try SocketActivation.fromEnvironment(
            ["LISTEN_PID": "4242", "LISTEN_FDS": "3", "LISTEN_FDNAMES": "http:tcp:grpc"], pid: pid))
        #expect(named.http == .socket(descriptor: 3) && named.tcp == .socket(descriptor: 4) && named.grpc == .socket(descriptor: 5))
        let unnamed = try #require(try SocketActivation.fromEnvironment(["LISTEN_PID": "4242", "LISTEN_FDS": "2"], pid: pid))
        #expect(unnamed.tcp == .socket(descriptor: 3) && unnamed.grpc == .socket(descriptor: 4) && unnamed.http == nil)
        #expect(try SocketActivation.fromEnvironment(["LISTEN_PID": "1", "LISTEN_FDS": "1"], pid: pid) == nil)
        #expect(try SocketActivation.fromEnvironment([:], pid: pid) == nil)
        #expect(throws: SettingsError.self) {
            try SocketActivation.fromEnvironment(["LISTEN_PID": "4242", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "tcp:tcp"], pid: pid)
        }
        #expect(throws: SettingsError.self) {
            try SocketActivation.fromEnvironment(["LISTEN_PID": "4242", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "tcp:metrics"], pid: pid)
        }
        // One socket unit names all its sockets after itself: taken in order.
        let one = try #require(try SocketActivation.fromEnvironment(
            ["LISTEN_PID": "4242", "LISTEN_FDS": "3", "LISTEN_FDNAMES": "doodled.socket:doodled.socket:doodled.socket"], pid: pid))
        #expect(one.tcp == .socket(descriptor: 3) && one.grpc == .socket(descriptor: 4) && one.http == .socket(descriptor: 5))
        var config = DoodleDaemon.Configuration()
        named.apply(to: &config)
        #expect(config.tcp == .socket(descriptor: 4) && config.http == .socket(descriptor: 3))
    }

    @Test("The watchdog pings while workers progress and stops while one is stuck in a batch")
    func watchdogStopsOnStuckWorker() async throws {
        let notify = try NotifySocket()
        defer { notify.close() }
        let gate = StuckObserver()
        let predictor = try Predictor(path: Paths.model)
        let batcher = DynamicBatcher(configuration: .init(workers: 1, maxBatch: 8), observer: gate)
        defer { gate.release(); batcher.shutdown() }
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": notify.path])
        #expect(Watchdog.timeout(environment: ["WATCHDOG_USEC": "200000"]) == .milliseconds(200))
        #expect(Watchdog.timeout(environment: ["WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"]) == nil)
        let stallLimit = UInt64(100_000_000)
        // Every watchdog tick is recorded with its verdict, so the test checks pings against ticks rather than
        // against wall-clock windows (the machine may be busy).
        let ticks = WatchdogTicks()
        let pinger = Task {
            await Watchdog.run(notifier: notifier, timeout: .milliseconds(200)) {
                let progressing = batcher.longestBatchNanos < stallLimit
                ticks.verdicts.withLock { $0.append(progressing) }
                return progressing
            }
        }
        defer { pinger.cancel() }
        func pings() -> Int { notify.messages.filter { $0.text == "WATCHDOG=1" }.count }
        func healthyTicks() -> Int { ticks.verdicts.withLock { $0.filter { $0 }.count } }
        func tickCount() -> Int { ticks.verdicts.withLock { $0.count } }

        // Healthy: every tick pings.
        #expect(await eventually { tickCount() >= 3 && pings() == healthyTicks() })
        #expect(healthyTicks() == tickCount())

        // The observer runs on the worker, inside the batch: holding it there is a stuck worker.
        gate.hold()
        let request = PredictionRequest(input: .bitmap([UInt8](repeating: 0, count: 784)), topK: 1)
        let answered = Atomic<Bool>(false)
        batcher.submit(request, on: predictor) { _ in answered.store(true, ordering: .relaxed) }
        #expect(await eventually { batcher.longestBatchNanos > stallLimit })
        let stalledFrom = tickCount()
        #expect(await eventually { tickCount() >= stalledFrom + 3 })
        let stalledTicks = ticks.verdicts.withLock { Array($0[stalledFrom...]) }
        #expect(!stalledTicks.contains(true), "ticks while stuck: \(stalledTicks)")
        #expect(pings() == healthyTicks(), "no ping for a tick that saw the stuck worker")

        // Released: the batch completes and the pings resume.
        gate.release()
        #expect(await eventually { answered.load(ordering: .relaxed) })
        let resumedFrom = healthyTicks()
        #expect(await eventually { healthyTicks() >= resumedFrom + 2 && pings() == healthyTicks() })
    }
}

/// Each watchdog tick's verdict, in order.
final class WatchdogTicks: Sendable {
    let verdicts = Locked<[Bool]>([])
}

