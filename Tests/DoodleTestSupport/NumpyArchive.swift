import CZlib
import Foundation

/// The arrays of a numpy `.npz` file (a zip of `.npy` files, stored or deflated), as raw little-endian bytes with
/// their dtype and shape: enough to read the shared data's picture and bitmap archives in tests.
public struct NumpyArchive {
    public struct Entry {
        /// numpy's dtype string, e.g. `|u1`, `<i2`, `<U41`.
        public var dtype: String
        public var shape: [Int]
        public var bytes: [UInt8]
    }

    public let arrays: [String: Entry]

    public struct Malformed: Error, CustomStringConvertible {
        public var description: String
    }

    public init(path: String) throws {
        let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        var arrays: [String: Entry] = [:]
        var at = 0
        // Local file headers ("PK\u{3}\u{4}") follow each other; the central directory ends the walk.
        while at + 30 <= data.count, Self.u32(data, at) == 0x0403_4b50 {
            let method = Self.u16(data, at + 8)
            var compressed = Int(Self.u32(data, at + 18))
            var size = Int(Self.u32(data, at + 22))
            let nameLength = Int(Self.u16(data, at + 26))
            let extraLength = Int(Self.u16(data, at + 28))
            let name = String(decoding: data[(at + 30)..<(at + 30 + nameLength)], as: UTF8.self)
            // numpy writes zip64 sizes in the extra field when they may not fit 32 bits.
            var e = at + 30 + nameLength
            while e + 4 <= at + 30 + nameLength + extraLength {
                let id = Self.u16(data, e), length = Int(Self.u16(data, e + 2))
                if id == 1, length >= 16 {
                    size = Int(Self.u64(data, e + 4))
                    compressed = Int(Self.u64(data, e + 12))
                }
                e += 4 + length
            }
            let start = at + 30 + nameLength + extraLength
            guard start + compressed <= data.count else { throw Malformed(description: "\(name): truncated") }
            let body = Array(data[start..<(start + compressed)])
            let npy: [UInt8]
            switch method {
            case 0: npy = body
            case 8: npy = try Self.inflate(body, size: size)
            default: throw Malformed(description: "\(name): zip method \(method)")
            }
            let key = name.hasSuffix(".npy") ? String(name.dropLast(4)) : name
            arrays[key] = try Self.parseNpy(npy, name: name)
            at = start + compressed
        }
        self.arrays = arrays
    }

    private static func parseNpy(_ b: [UInt8], name: String) throws -> Entry {
        guard b.count >= 10, b[0] == 0x93, b[1...5].elementsEqual("NUMPY".utf8) else {
            throw Malformed(description: "\(name): not an .npy")
        }
        let (headerStart, headerLength) = b[6] == 1 ? (10, Int(u16(b, 8))) : (12, Int(u32(b, 8)))
        let header = String(decoding: b[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        guard let descr = header.firstMatch(of: /'descr':\s*'([^']*)'/)?.1,
              let shape = header.firstMatch(of: /'shape':\s*\(([^)]*)\)/)?.1,
              !header.contains("'fortran_order': True") else {
            throw Malformed(description: "\(name): unsupported header \(header)")
        }
        let dims = shape.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        return Entry(dtype: String(descr), shape: dims, bytes: Array(b[(headerStart + headerLength)...]))
    }

    private static func inflate(_ input: [UInt8], size: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: size)
        var stream = z_stream()
        guard inflateInit2_(&stream, -MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw Malformed(description: "zlib init")
        }
        defer { inflateEnd(&stream) }
        var input = input
        let status = input.withUnsafeMutableBufferPointer { src in
            output.withUnsafeMutableBufferPointer { dst in
                stream.next_in = src.baseAddress
                stream.avail_in = UInt32(src.count)
                stream.next_out = dst.baseAddress
                stream.avail_out = UInt32(dst.count)
                return CZlib.inflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END, Int(stream.total_out) == size else {
            throw Malformed(description: "inflate: status \(status), \(stream.total_out) of \(size) bytes")
        }
        return output
    }

    private static func u16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
    private static func u32(_ b: [UInt8], _ i: Int) -> UInt32 { UInt32(u16(b, i)) | UInt32(u16(b, i + 2)) << 16 }
    private static func u64(_ b: [UInt8], _ i: Int) -> UInt64 { UInt64(u32(b, i)) | UInt64(u32(b, i + 4)) << 32 }
}
