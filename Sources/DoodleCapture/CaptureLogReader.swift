import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Reads a capture log (`CaptureLog`'s format) without locking it: the records of a stopped daemon's store, or
/// of a running one's (a record being written is not whole yet and is not read).
public struct CaptureLogReader: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// What reading found.
    public struct Summary: Sendable, Equatable {
        public var segments = 0
        public var records = 0
        /// Bytes after the last whole record of a segment (a write in progress, or a torn one not yet recovered).
        public var unreadableBytes = 0

        public init() {}
    }

    /// Calls `body` with every whole, checksummed record's payload, oldest first.
    @discardableResult
    public func forEachRecord(_ body: ([UInt8]) throws -> Void) throws -> Summary {
        var summary = Summary()
        let indices = try Self.segmentIndices(in: self.directory)
        guard !indices.isEmpty else { return summary }
        let seed = try Self.checksumSeed(in: self.directory, create: false)
        for index in indices {
            let scan = try Self.scan(path: Self.segmentPath(self.directory, index), seed: seed, body)
            summary.segments += 1
            summary.records += scan.records
            summary.unreadableBytes += scan.fileBytes - scan.validBytes + scan.damagedBytes
        }
        return summary
    }

    /// One segment as read: its size, where its last whole record ends, and the bytes between whole records
    /// that are not one (damage).
    struct SegmentScan {
        var fileBytes = 0
        var validBytes = 0
        var damagedBytes = 0
        var records = 0
    }

    /// The store's checksum seed: the CRC-32 of the 16 random bytes in `STORE`, written (and synced) when the
    /// store is created. Checksums that start from a secret no client knows mean that no bytes a client sent
    /// (a label, a picture) can pass for a record of their own when the scan looks past a damaged one.
    static func checksumSeed(in directory: String, create: Bool) throws(CaptureLogError) -> UInt32 {
        let path = directory + "/STORE"
        if let data = FileManager.default.contents(atPath: path), data.count == 16 {
            return CaptureLog.crc([UInt8](data), seed: 0)
        }
        guard create else {
            throw CaptureLogError("\(path) is missing or damaged: it holds the store's checksum seed")
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for k in 0..<16 { bytes[k] = UInt8.random(in: .min ... .max, using: &generator) }
        let temporary = path + ".new"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CaptureLogError(errno: errno, "cannot create \(temporary)") }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, 16) }
        let synced = fsync(fd)
        close(fd)
        guard written == 16, synced == 0, rename(temporary, path) == 0 else {
            throw CaptureLogError(errno: errno, "cannot write \(path)")
        }
        try CaptureLog.syncDirectory(directory)
        return CaptureLog.crc(bytes, seed: 0)
    }

    static func segmentPath(_ directory: String, _ index: Int) -> String {
        let digits = String(index)
        return directory + "/segment-" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits + ".dcap"
    }

    /// The segments' numbers, ascending.
    static func segmentIndices(in directory: String) throws(CaptureLogError) -> [Int] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw CaptureLogError("cannot list the capture directory \(directory): \(error.localizedDescription)")
        }
        return names.compactMap { name -> Int? in
            guard name.hasPrefix("segment-"), name.hasSuffix(".dcap") else { return nil }
            return Int(name.dropFirst("segment-".count).dropLast(".dcap".count))
        }.sorted()
    }

    /// Reads one segment, calling `body` with each whole record's payload. Where a record is not whole (short,
    /// a wrong magic, an impossible length or a checksum that does not match), the scan looks for the next whole
    /// record after it: bytes skipped that way are damage (`damagedBytes`); with none after them, they are the
    /// segment's torn end (after `validBytes`).
    static func scan(path: String, seed: UInt32, _ body: ([UInt8]) throws -> Void) throws(CaptureLogError) -> SegmentScan {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CaptureLogError(errno: errno, "cannot open \(path)") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw CaptureLogError(errno: errno, "cannot stat \(path)") }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var filled = 0
        while filled < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 {
                if errno == EINTR { continue }
                throw CaptureLogError(errno: errno, "cannot read \(path)")
            }
            if n == 0 { break }
            filled += n
        }
        var scan = SegmentScan(fileBytes: filled)
        var offset = 0
        let header = CaptureLog.headerBytes
        /// The length of the whole record at `at`, or nil.
        func wholeRecord(at at: Int) -> Int? {
            guard filled - at >= header, Self.load(bytes, at) == CaptureLog.magic else { return nil }
            let length = Int(Self.load(bytes, at + 4))
            guard length <= CaptureLog.maxPayloadBytes, length <= filled - at - header else { return nil }
            let matches = bytes.withUnsafeBytes { raw in
                CaptureLog.checksum(length: UInt32(length), seed: seed,
                                    payload: UnsafeRawBufferPointer(rebasing: raw[(at + header)..<(at + header + length)]))
                    == Self.load(bytes, at + 8)
            }
            return matches ? length : nil
        }
        while filled - offset >= header {
            guard let length = wholeRecord(at: offset) else {
                guard let next = ((offset + 1)..<(filled - header + 1)).first(where: { wholeRecord(at: $0) != nil }) else { break }
                scan.damagedBytes += next - offset
                offset = next
                continue
            }
            do {
                try body(Array(bytes[(offset + header)..<(offset + header + length)]))
            } catch {
                throw CaptureLogError("reading \(path): \(error)")
            }
            offset += header + length
            scan.records += 1
        }
        scan.validBytes = offset
        return scan
    }

    private static func load(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }
}
