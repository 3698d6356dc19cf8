import CZlib
import Foundation

/// Reads the lines of a text file, gzip-compressed (`.gz`) or not, through zlib.
public struct GzipLineReader {
    /// Every non-empty line of the file.
    public static func lines(of path: String) throws -> [String] {
        guard let file = gzopen(path, "rb") else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        defer { gzclose(file) }
        var data = Data()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: path]) }
            if n == 0 { break }
            data.append(contentsOf: chunk[0..<Int(n)])
        }
        return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }
}
