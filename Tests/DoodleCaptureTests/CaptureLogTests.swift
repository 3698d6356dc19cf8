@testable import DoodleCapture
import Dispatch
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under the system's temporary directory.
func temporaryDirectory() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("capture-test-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// A payload of `size` bytes that says which record it is.
func payload(_ n: Int, size: Int = 100) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: max(size, 8))
    for k in 0..<bytes.count { bytes[k] = UInt8(truncatingIfNeeded: n &* 31 &+ k &* 7) }
    withUnsafeBytes(of: UInt64(n).littleEndian) { for k in 0..<8 { bytes[k] = $0[k] } }
    return bytes
}

func readAll(_ directory: String) throws -> [[UInt8]] {
    var records: [[UInt8]] = []
    try CaptureLogReader(directory: directory).forEachRecord { records.append($0) }
    return records
}

func segmentFiles(_ directory: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
        .filter { $0.hasSuffix(".dcap") }.sorted().map { directory + "/" + $0 }
}

/// Appends raw bytes to a file, as a crash in the middle of a write leaves them.
func appendBytes(_ bytes: [UInt8], to path: String) {
    let fd = open(path, O_WRONLY | O_APPEND)
    precondition(fd >= 0)
    bytes.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

@Suite("Capture log: durable, checksummed, bounded")
struct CaptureLogTests {
    @Test("records come back in order, across segments and after reopening")
    func roundTrip() throws {
        let directory = temporaryDirectory()
        var written: [[UInt8]] = []
        do {
            let log = try CaptureLog(configuration: .init(directory: directory, maxBytes: 1 << 20, segmentBytes: 4096))
            for group in 0..<40 {
                let records = (0..<(group % 5 + 1)).map { payload(written.count + $0, size: 50 + 37 * (group % 7)) }
                #expect(try log.append(records) == records.map { _ in .written })
                written += records
            }
            #expect(log.recordCount == written.count)
            log.close()
        }
        #expect(segmentFiles(directory).count > 3)  // rotated at 4 KiB
        #expect(try readAll(directory) == written)
        let reopened = try CaptureLog(configuration: .init(directory: directory, maxBytes: 1 << 20, segmentBytes: 4096))
        #expect(reopened.recovery.records == written.count && reopened.recovery.droppedTailBytes == 0)
        #expect(try reopened.append([payload(999)]) == [.written])
        reopened.close()
        #expect(try readAll(directory) == written + [payload(999)])
    }

    @Test("a write torn at any byte is cut off when the log is opened; every record before it is kept")
    func tornWriteAtEveryByte() throws {
        let template = temporaryDirectory()
        let kept = (0..<5).map { payload($0, size: 60) }
        do {
            let log = try CaptureLog(configuration: .init(directory: template))
            _ = try log.append(kept)
            log.close()
        }
        // The bytes of a group of two records, as this store writes them, that a crash interrupted.
        let whole = temporaryDirectory()
        try FileManager.default.removeItem(atPath: whole)
        try FileManager.default.copyItem(atPath: template, toPath: whole)
        do {
            let log = try CaptureLog(configuration: .init(directory: whole))
            _ = try log.append([payload(5, size: 60), payload(6, size: 60)])
            log.close()
        }
        let before = FileManager.default.contents(atPath: segmentFiles(template).last!)!.count
        let torn = [UInt8](FileManager.default.contents(atPath: segmentFiles(whole).last!)!)[before...]
        #expect(torn.count == 2 * CaptureLog.recordBytes(payloadBytes: 60))
        for cut in 1..<torn.count {
            let directory = temporaryDirectory()
            try FileManager.default.removeItem(atPath: directory)
            try FileManager.default.copyItem(atPath: template, toPath: directory)
            let segment = segmentFiles(directory).last!
            appendBytes(Array(torn.prefix(cut)), to: segment)
            let whole = cut >= torn.count / 2 ? 1 : 0  // the group's first record may have reached the disk whole
            let log = try CaptureLog(configuration: .init(directory: directory))
            #expect(log.recovery.records == 5 + whole, "cut at \(cut)")
            #expect(log.recovery.droppedTailBytes == cut - whole * torn.count / 2, "cut at \(cut)")
            #expect(try log.append([payload(100)]) == [.written])
            log.close()
            let records = try readAll(directory)
            #expect(records == kept + (whole == 1 ? [payload(5, size: 60)] : []) + [payload(100)], "cut at \(cut)")
            try FileManager.default.removeItem(atPath: directory)
        }
    }

    @Test("a zero-filled tail (a file extended but not written before a power cut) is cut off")
    func zeroFilledTail() throws {
        let directory = temporaryDirectory()
        do {
            let log = try CaptureLog(configuration: .init(directory: directory))
            _ = try log.append([payload(1), payload(2)])
            log.close()
        }
        appendBytes([UInt8](repeating: 0, count: 4096), to: segmentFiles(directory).last!)
        let log = try CaptureLog(configuration: .init(directory: directory))
        #expect(log.recovery.records == 2 && log.recovery.droppedTailBytes == 4096)
        log.close()
        #expect(try readAll(directory) == [payload(1), payload(2)])
    }

    @Test("a damaged record is never served; the records after it still are, and nothing is cut off")
    func damagedRecordIsSkipped() throws {
        let directory = temporaryDirectory()
        let records = (0..<6).map { payload($0, size: 80) }
        do {
            let log = try CaptureLog(configuration: .init(directory: directory))
            _ = try log.append(records)
            log.close()
        }
        // Flip one payload byte of the third record.
        let segment = segmentFiles(directory).last!
        var bytes = [UInt8](FileManager.default.contents(atPath: segment)!)
        let recordBytes = CaptureLog.recordBytes(payloadBytes: 80)
        bytes[2 * recordBytes + CaptureLog.headerBytes + 40] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: segment))
        let summary = try CaptureLogReader(directory: directory).forEachRecord { _ in }
        #expect(summary.records == 5 && summary.unreadableBytes == recordBytes)
        #expect(try readAll(directory) == records.enumerated().filter { $0.offset != 2 }.map(\.element))
        let log = try CaptureLog(configuration: .init(directory: directory))
        #expect(log.recovery.droppedTailBytes == 0 && log.recovery.records == 5)
        log.close()
        #expect(FileManager.default.contents(atPath: segment)!.count == bytes.count)
    }

    @Test("at maxBytes, records are refused (.full); those that fit are still written; the bound holds after reopening")
    func boundedByMaxBytes() throws {
        let directory = temporaryDirectory()
        let size = CaptureLog.recordBytes(payloadBytes: 100)
        let log = try CaptureLog(configuration: .init(directory: directory, maxBytes: 10 * size + 50))
        #expect(try log.append((0..<8).map { payload($0) }) == [AppendResult](repeating: .written, count: 8))
        #expect(try log.append([payload(8), payload(9, size: 200), payload(10), payload(11)]) == [.written, .full, .written, .full])
        #expect(log.bytesUsed == 10 * size)
        log.close()
        let reopened = try CaptureLog(configuration: .init(directory: directory, maxBytes: 10 * size + 50))
        #expect(try reopened.append([payload(12)]) == [.full])
        reopened.close()
        #expect(try readAll(directory).count == 10)
    }

    @Test("a second writer of the same directory is refused while the first holds it")
    func oneWriter() throws {
        let directory = temporaryDirectory()
        let first = try CaptureLog(configuration: .init(directory: directory))
        #expect(throws: CaptureLogError.self) { try CaptureLog(configuration: .init(directory: directory)) }
        first.close()
        let second = try CaptureLog(configuration: .init(directory: directory))
        second.close()
    }

    @Test("the store groups concurrent records into shared syncs, and calls every caller back once")
    func groupCommit() async throws {
        let directory = temporaryDirectory()
        let store = try CaptureStore(configuration: .init(directory: directory))
        let count = 2000
        let results = try await withThrowingTaskGroup(of: CaptureStore.Result.self) { group in
            for n in 0..<count {
                group.addTask {
                    await withCheckedContinuation { continuation in
                        store.append(payload(n)) { continuation.resume(returning: $0) }
                    }
                }
            }
            return try await group.reduce(into: [CaptureStore.Result]()) { $0.append($1) }
        }
        #expect(results.count == count && results.allSatisfy { $0 == .captured })
        let stats = store.statistics
        store.shutdown()
        #expect(stats.records == count)
        #expect(stats.groups < count / 2, "\(stats)")
        #expect(Set(try readAll(directory)) == Set((0..<count).map { payload($0) }))
    }

    typealias AppendResult = CaptureLog.AppendResult
}

@Suite("CRC-32")
struct CRC32Tests {
    @Test("the log's checksum is zlib's CRC-32 (check value, and the same as Python's zlib.crc32 on other inputs)")
    func matchesZlib() {
        // The standard check value: CRC-32 of "123456789".
        #expect(CaptureLog.crc(Array("123456789".utf8), seed: 0) == 0xCBF4_3926)
        #expect(CaptureLog.crc([], seed: 0) == 0)
        // Continued in pieces, the same as in one go.
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let whole = CaptureLog.crc(bytes, seed: 0)
        let pieces = CaptureLog.crc(Array(bytes[13...]), seed: CaptureLog.crc(Array(bytes[..<13]), seed: 0))
        #expect(whole == pieces)
        #expect(CaptureLog.crc(Array("The quick brown fox jumps over the lazy dog".utf8), seed: 0) == 0x414F_A339)
    }
}
