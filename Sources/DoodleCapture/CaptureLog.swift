import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An append-only log of checksummed records in a directory of segment files: the capture store's disk format.
///
/// A record is a 12-byte header - the magic `DCAP`, the payload's length and the CRC-32 of length and payload
/// (continued from the store's own random seed, in the file `STORE`), all little-endian - followed by the
/// payload. Segments are named `segment-<12 digits>.dcap` and hold records
/// back to back; a segment is closed (and a new one started) once the next write would take it past
/// `segmentBytes`. `append` writes a group of records with one `write` and makes them durable with one
/// `fdatasync` before it returns; a new segment's directory entry is synced too.
///
/// Opening the log recovers it: the last segment is read to its last whole, checksummed record, and anything
/// after it (the torn end of a write a crash or power cut interrupted, which was therefore never acknowledged)
/// is cut off. A damaged record (a bad checksum between whole records) is skipped, never served, and never
/// makes the log cut off the records after it. A file `LOCK` (held with `flock`) keeps a second writer out; readers (`CaptureLogReader`) need no
/// lock and stop at the first record that is not whole.
///
/// Not thread-safe: one owner (the `CaptureStore`'s writer thread) calls it.
public final class CaptureLog {
    /// Where and how big.
    public struct Configuration: Sendable, Equatable {
        public var directory: String
        /// Most bytes all segments may hold together (headers included); `append` refuses records beyond it.
        public var maxBytes: Int
        /// Size at which a segment is closed and the next started.
        public var segmentBytes: Int

        public init(directory: String, maxBytes: Int = 1 << 30, segmentBytes: Int = 64 << 20) {
            self.directory = directory
            self.maxBytes = maxBytes
            self.segmentBytes = segmentBytes
        }
    }

    /// What opening the log found.
    public struct Recovery: Sendable, Equatable {
        public var segments = 0
        public var records = 0
        public var bytes = 0
        /// Bytes cut off the end of the last segment: a write that a crash interrupted (never acknowledged).
        public var droppedTailBytes = 0
        /// Bytes that are not whole records between whole ones, or at the end of an earlier segment (damage to
        /// synced data); kept on disk, never read.
        public var unreadableBytes = 0
    }

    /// How one record of a group fared.
    public enum AppendResult: Sendable, Equatable {
        case written
        /// It would take the log past `maxBytes`, or the disk is full.
        case full
    }

    public static let headerBytes = 12
    static let magic: UInt32 = 0x5041_4344  // "DCAP" little-endian
    /// Largest payload a record may have (a reader treats a longer declared length as damage).
    public static let maxPayloadBytes = 16 << 20

    public let configuration: Configuration
    public let recovery: Recovery
    /// Bytes all segments hold now.
    public private(set) var bytesUsed: Int
    /// Records written since opening, plus those recovered.
    public private(set) var recordCount: Int
    private var segmentIndex: Int
    private var segmentFD: Int32 = -1
    private var segmentSize = 0
    private var lockFD: Int32
    /// Where every record's checksum starts (`CaptureLogReader.checksumSeed`).
    private let seed: UInt32
    /// Set after a failed sync: what the kernel kept of the failed write is unknown, so nothing more is written.
    public private(set) var failure: CaptureLogError?

    /// Opens (creating if needed) the log in `configuration.directory`, recovering its last segment.
    public init(configuration: Configuration) throws(CaptureLogError) {
        self.configuration = configuration
        let directory = configuration.directory
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CaptureLogError("cannot create the capture directory \(directory): \(error.localizedDescription)")
        }
        let lockFD = open(directory + "/LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockFD >= 0 else { throw CaptureLogError(errno: errno, "cannot open \(directory)/LOCK") }
        guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            Glibc.close(lockFD)
            throw CaptureLogError(errno: code, "the capture directory \(directory) is in use by another process")
        }
        self.lockFD = lockFD
        var recovery = Recovery()
        let segments: [Int]
        let seed: UInt32
        do {
            segments = try CaptureLogReader.segmentIndices(in: directory)
            seed = try CaptureLogReader.checksumSeed(in: directory, create: segments.isEmpty)
        } catch {
            Glibc.close(lockFD)
            throw error
        }
        self.seed = seed
        recovery.segments = segments.count
        var lastValidBytes = 0
        for (position, index) in segments.enumerated() {
            let path = CaptureLogReader.segmentPath(directory, index)
            let scan: CaptureLogReader.SegmentScan
            do {
                scan = try CaptureLogReader.scan(path: path, seed: seed) { _ in }
            } catch {
                Glibc.close(lockFD)
                throw error
            }
            recovery.records += scan.records
            recovery.bytes += scan.validBytes
            recovery.unreadableBytes += scan.damagedBytes
            let tail = scan.fileBytes - scan.validBytes
            if position == segments.count - 1 {
                recovery.droppedTailBytes = tail
                lastValidBytes = scan.validBytes
            } else {
                recovery.unreadableBytes += tail
                recovery.bytes += tail  // still on disk, still counted against maxBytes
            }
        }
        self.recovery = recovery
        self.bytesUsed = recovery.bytes
        self.recordCount = recovery.records
        self.segmentIndex = segments.last ?? 0
        // (From here on a throw runs deinit, which releases the lock.)
        if let last = segments.last {
            try self.openSegment(last, truncatingTo: lastValidBytes)
        } else {
            try self.startSegment(1)
        }
    }

    deinit {
        self.close()
    }

    /// Closes the segment and releases the directory's lock; later appends fail.
    public func close() {
        if self.segmentFD >= 0 { Glibc.close(self.segmentFD) }
        if self.lockFD >= 0 { Glibc.close(self.lockFD) }  // releases the flock
        self.segmentFD = -1
        self.lockFD = -1
        if self.failure == nil { self.failure = CaptureLogError("the capture log is closed") }
    }

    /// Bytes a record of `payloadBytes` takes on disk.
    public static func recordBytes(payloadBytes: Int) -> Int { headerBytes + payloadBytes }

    /// Writes `payloads` as records and syncs them to disk; each result says whether that record was written
    /// (a record that would pass `maxBytes` is not, the others still are). Durable when this returns without
    /// throwing. A write error removes the whole group from the file again (nothing of it is acknowledged) and
    /// is thrown; a full disk answers `.full` for the group instead. After a failed sync the log refuses every
    /// later write (`failure`).
    public func append(_ payloads: [[UInt8]]) throws(CaptureLogError) -> [AppendResult] {
        if let failure = self.failure { throw failure }
        var results = [AppendResult](repeating: .full, count: payloads.count)
        var group: [UInt8] = []
        var projected = self.bytesUsed
        for (i, payload) in payloads.enumerated() {
            let size = Self.recordBytes(payloadBytes: payload.count)
            guard payload.count <= Self.maxPayloadBytes, projected + size <= self.configuration.maxBytes else { continue }
            projected += size
            self.frame(payload, into: &group)
            results[i] = .written
        }
        guard !group.isEmpty else { return results }
        if self.segmentSize > 0 && self.segmentSize + group.count > self.configuration.segmentBytes {
            try self.startSegment(self.segmentIndex + 1)
        }
        let start = self.segmentSize
        let written = group.withUnsafeBytes { Self.writeAll(self.segmentFD, $0) }
        if written != 0 {
            let code = written
            self.rollBack(to: start)
            if code == ENOSPC || code == EDQUOT || code == EFBIG {
                return results.map { _ in .full }
            }
            throw CaptureLogError(errno: code, "writing the capture log")
        }
        guard fdatasync(self.segmentFD) == 0 else {
            let code = errno
            self.rollBack(to: start)
            let error = CaptureLogError(errno: code, "syncing the capture log (no more captures until restart)")
            self.failure = error
            throw error
        }
        self.segmentSize += group.count
        self.bytesUsed += group.count
        self.recordCount += results.lazy.filter { $0 == .written }.count
        return results
    }

    /// Appends one framed record to `buffer`.
    private func frame(_ payload: [UInt8], into buffer: inout [UInt8]) {
        let length = UInt32(payload.count)
        var header = [UInt8](repeating: 0, count: Self.headerBytes)
        Self.store(Self.magic, at: 0, in: &header)
        Self.store(length, at: 4, in: &header)
        let crc = payload.withUnsafeBytes { Self.checksum(length: length, seed: self.seed, payload: $0) }
        Self.store(crc, at: 8, in: &header)
        buffer.append(contentsOf: header)
        buffer.append(contentsOf: payload)
    }

    /// CRC-32 (zlib's), continued from `seed` (the store's), of the length's four little-endian bytes followed by
    /// the payload.
    static func checksum(length: UInt32, seed: UInt32, payload: UnsafeRawBufferPointer) -> UInt32 {
        let le = length.littleEndian
        let crc = withUnsafeBytes(of: le) { CRC32.update(seed, $0) }
        return CRC32.update(crc, payload)
    }

    /// CRC-32 of `bytes`, continued from `seed`.
    static func crc(_ bytes: [UInt8], seed: UInt32) -> UInt32 { CRC32.update(seed, bytes) }

    private static func store(_ value: UInt32, at offset: Int, in bytes: inout [UInt8]) {
        for k in 0..<4 { bytes[offset + k] = UInt8(truncatingIfNeeded: value >> (8 * k)) }
    }

    /// Writes all of `bytes`; 0, or the errno that stopped it.
    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32 {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += n
        }
        return 0
    }

    /// Cuts the current segment back to `size` after a failed write (the file offset follows: O_APPEND).
    private func rollBack(to size: Int) {
        _ = ftruncate(self.segmentFD, off_t(size))
        _ = fdatasync(self.segmentFD)
    }

    /// Closes the current segment (already synced) and starts segment `index`, syncing the directory so the
    /// new file's name survives a power cut.
    private func startSegment(_ index: Int) throws(CaptureLogError) {
        let path = CaptureLogReader.segmentPath(self.configuration.directory, index)
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CaptureLogError(errno: errno, "cannot create \(path)") }
        try Self.syncDirectory(self.configuration.directory)
        if self.segmentFD >= 0 { Glibc.close(self.segmentFD) }
        self.segmentFD = fd
        self.segmentIndex = index
        self.segmentSize = 0
    }

    /// Opens segment `index` for appending, first cutting off anything after its last whole record.
    private func openSegment(_ index: Int, truncatingTo validBytes: Int) throws(CaptureLogError) {
        let path = CaptureLogReader.segmentPath(self.configuration.directory, index)
        let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw CaptureLogError(errno: errno, "cannot open \(path)") }
        if self.recovery.droppedTailBytes > 0 {
            guard ftruncate(fd, off_t(validBytes)) == 0, fdatasync(fd) == 0 else {
                let code = errno
                Glibc.close(fd)
                throw CaptureLogError(errno: code, "cannot cut the torn end off \(path)")
            }
        }
        self.segmentFD = fd
        self.segmentIndex = index
        self.segmentSize = validBytes
    }

    static func syncDirectory(_ directory: String) throws(CaptureLogError) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw CaptureLogError(errno: errno, "cannot open \(directory)") }
        defer { Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw CaptureLogError(errno: errno, "cannot sync \(directory)") }
    }
}

/// Why the capture log could not be opened or written.
public struct CaptureLogError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    /// The system error behind it, if any.
    public let errno: Int32?

    public init(_ message: String) {
        self.message = message
        self.errno = nil
    }

    public init(errno: Int32, _ message: String) {
        self.message = "\(message): \(String(cString: strerror(errno)))"
        self.errno = errno
    }

    public var description: String { self.message }
}
