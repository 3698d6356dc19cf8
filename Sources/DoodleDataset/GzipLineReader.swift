import CZlib
import Foundation

/// Reads the lines of a text file, gzip-compressed (`.gz`) or not, through zlib.
public struct GzipLineReader {
    /// Every non-empty line of the file, or its first `limit` non-empty lines (reading no further than they need).
    public static func lines(of path: String, limit: Int? = nil) throws -> [String] {
        guard let file = gzopen(path, "rb") else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        defer { gzclose(file) }
        var lines: [String] = []
        var pending = Data()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        func take(_ line: Data) {
            if !line.isEmpty { lines.append(String(decoding: line, as: UTF8.self)) }
        }
        while limit.map({ lines.count < $0 }) ?? true {
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: path]) }
            if n == 0 { break }
            pending.append(contentsOf: chunk[0..<Int(n)])
            var start = pending.startIndex
            while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                take(pending[start..<newline])
                start = pending.index(after: newline)
            }
            pending = Data(pending[start...])
        }
        take(pending)
        if let limit, lines.count > limit { lines.removeLast(lines.count - limit) }
        return lines
    }
}
