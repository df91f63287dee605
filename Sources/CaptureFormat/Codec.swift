import CZlib

/// CRC-32 (ISO-HDLC, as zlib, gzip and PNG compute it).
public func crc32(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
    guard let base = bytes.baseAddress, bytes.count > 0 else { return seed }
    return UInt32(CZlib.crc32(UInt(seed), base.assumingMemoryBound(to: Bytef.self), UInt32(bytes.count)))
}

public func crc32(_ bytes: [UInt8]) -> UInt32 {
    bytes.withUnsafeBytes { crc32($0) }
}

/// How a block's payload is stored.
public enum BlockCodec: UInt8, Sendable {
    case none = 0
    /// zlib stream (RFC 1950: deflate with an Adler-32 check).
    case zlib = 1

    func compress(_ raw: [UInt8], level: Int32) -> [UInt8] {
        switch self {
        case .none: return raw
        case .zlib:
            var outLen = compressBound(uLong(raw.count))
            var out = [UInt8](repeating: 0, count: Int(outLen))
            let rc = out.withUnsafeMutableBytes { o in
                raw.withUnsafeBytes { i in
                    compress2(o.baseAddress!.assumingMemoryBound(to: Bytef.self), &outLen,
                              i.baseAddress?.assumingMemoryBound(to: Bytef.self), uLong(raw.count), level)
                }
            }
            precondition(rc == Z_OK, "zlib compress2 failed (\(rc)) with a buffer of compressBound size")
            out.removeSubrange(Int(outLen)...)
            return out
        }
    }

    func decompress(_ stored: UnsafeRawBufferPointer, rawLength: Int) throws(CaptureError) -> [UInt8] {
        switch self {
        case .none:
            guard stored.count == rawLength else { throw .corrupt("stored length \(stored.count) differs from raw length \(rawLength)") }
            return [UInt8](stored)
        case .zlib:
            var out = [UInt8](repeating: 0, count: rawLength)
            var outLen = uLong(rawLength)
            let rc = out.withUnsafeMutableBytes { o in
                uncompress(o.baseAddress?.assumingMemoryBound(to: Bytef.self) ?? UnsafeMutablePointer(bitPattern: 1)!, &outLen,
                           stored.baseAddress?.assumingMemoryBound(to: Bytef.self), uLong(stored.count))
            }
            guard rc == Z_OK, outLen == uLong(rawLength) else {
                throw .corrupt("zlib payload does not decompress to \(rawLength) bytes (zlib code \(rc))")
            }
            return out
        }
    }
}

// Little-endian fixed-width integers in the container framing.
extension Array where Element == UInt8 {
    mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        var le = v.littleEndian
        Swift.withUnsafeBytes(of: &le) { append(contentsOf: $0) }
    }
}

extension UnsafeRawBufferPointer {
    func le<T: FixedWidthInteger>(_ offset: Int, as: T.Type = T.self) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
