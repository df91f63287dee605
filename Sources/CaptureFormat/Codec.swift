import CZlib
import Foundation
import Synchronization

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
        case .zlib: return Deflater.compressWithAKeptStream(raw, level: level)
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

/// One zlib deflate stream, reset for every block. (`compress2` sets up and frees zlib's
/// 256 KiB of state on every call: measured here, about 90 µs a block, half the time of a 10 KB
/// block at level 1 and 5–15 % of a 128 KiB one.) The output is the same as `compress2`'s.
///
/// The streams are kept in a process-wide pool, not per capture: a gate holds many sessions but
/// compresses only as many blocks at once as it has writer threads, and 256 KiB per idle session
/// would add up. (`@unchecked Sendable`: a stream is used by one thread at a time, since it is
/// only ever used between being taken out of the pool and put back.)
final class Deflater: @unchecked Sendable {
    let level: Int32
    private var stream = z_stream()

    /// Streams not in use; at most `keep` of them.
    static let pool = Mutex<[Deflater]>([])
    static let keep = 2 * ProcessInfo.processInfo.activeProcessorCount + 2

    /// `raw` deflated by a stream from the pool (a new one when none of `level` is free).
    static func compressWithAKeptStream(_ raw: [UInt8], level: Int32) -> [UInt8] {
        let kept = pool.withLock { free -> Deflater? in
            guard let i = free.lastIndex(where: { $0.level == level }) else { return nil }
            return free.remove(at: i)
        }
        let deflater = kept ?? Deflater(level: level)
        defer { pool.withLock { free in if free.count < keep { free.append(deflater) } } }
        return deflater.compress(raw)
    }

    init(level: Int32) {
        self.level = level
        let rc = deflateInit_(&stream, level, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        precondition(rc == Z_OK, "zlib deflateInit failed (\(rc)) at level \(level)")
    }

    deinit { deflateEnd(&stream) }

    func compress(_ raw: [UInt8]) -> [UInt8] {
        var rc = deflateReset(&stream)
        precondition(rc == Z_OK, "zlib deflateReset failed (\(rc))")
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(raw.count))))
        let capacity = out.count
        rc = out.withUnsafeMutableBytes { o in
            raw.withUnsafeBytes { i in
                stream.next_in = UnsafeMutablePointer(mutating: i.baseAddress?.assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(i.count)
                stream.next_out = o.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(capacity)
                defer { stream.next_in = nil; stream.next_out = nil }
                return deflate(&stream, Z_FINISH)
            }
        }
        precondition(rc == Z_STREAM_END, "zlib deflate did not finish (\(rc)) in a buffer of deflateBound size")
        out.removeSubrange(Int(stream.total_out)...)
        return out
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
