import CZlib

/// A response body in `Content-Encoding: gzip` or `deflate`, decoded as it streams so the gate
/// can mask it; the client gets it decoded (the gate removes the Content-Encoding and frames the
/// body itself), never the coded bytes it could not read. The decoded size is bounded: a body
/// that decodes past `limit` bytes (a compression bomb) is refused, as is a corrupt stream, data
/// after the stream's end, or a body that ends before it. Other codings (br, zstd, compress,
/// several codings) are not decoded: `ResponseBodyHandling` refuses them and says which.
///
/// A class (zlib's stream state must not move in memory); used only on the session's event loop.
final class ContentDecoder {
    /// The codings decoded, as named in Content-Encoding (`x-gzip` is gzip, RFC 9110 §8.4.1.3).
    static func decodes(_ coding: String) -> Bool { ["gzip", "x-gzip", "deflate"].contains(coding) }

    let coding: String
    let limit: Int
    private let stream: UnsafeMutablePointer<z_stream>
    private(set) var decodedBytes = 0
    private(set) var ended = false

    /// Nil for a coding not decoded. `deflate` is the zlib format (RFC 9110 §8.4.1.2).
    init?(coding: String, limit: Int) {
        guard Self.decodes(coding) else { return nil }
        self.coding = coding
        self.limit = limit
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // 15: the largest window; +16: gzip's header and trailer instead of zlib's.
        let bits: Int32 = coding == "deflate" ? 15 : 15 + 16
        let rc = inflateInit2_(stream, bits, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        // Fails only when memory is exhausted; a coded body must never pass undecoded instead.
        precondition(rc == Z_OK, "zlib inflateInit2 failed (\(rc))")
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// The decoded bytes of `input` (possibly none yet), or why the body cannot be decoded.
    func decode(_ input: [UInt8]) -> Result<[UInt8], StreamingBodyMasker.Unmaskable> {
        guard !input.isEmpty else { return .success([]) }
        guard !ended else { return .failure(.init(detail: "the \(coding) body has data after the end of its stream")) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        return input.withUnsafeBufferPointer { inp in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: inp.baseAddress!)
            stream.pointee.avail_in = uInt(inp.count)
            defer { stream.pointee.next_in = nil; stream.pointee.next_out = nil }
            while true {
                let (rc, produced) = buffer.withUnsafeMutableBufferPointer { o -> (Int32, Int) in
                    stream.pointee.next_out = o.baseAddress!
                    stream.pointee.avail_out = uInt(o.count)
                    let rc = inflate(stream, Z_NO_FLUSH)
                    return (rc, o.count - Int(stream.pointee.avail_out))
                }
                decodedBytes += produced
                guard decodedBytes <= limit else {
                    return .failure(.init(detail: "the \(coding) body decodes to more than the target's \(limit)-byte limit (a compression bomb?)"))
                }
                out.append(contentsOf: buffer[..<produced])
                switch rc {
                case Z_STREAM_END:
                    ended = true
                    if stream.pointee.avail_in > 0 { return .failure(.init(detail: "the \(coding) body has data after the end of its stream")) }
                    return .success(out)
                case Z_OK, Z_BUF_ERROR:
                    // All input taken and the output not full: wait for more.
                    if stream.pointee.avail_in == 0 && produced < buffer.count { return .success(out) }
                    if rc == Z_BUF_ERROR && produced == 0 { return .failure(.init(detail: "the \(coding) body cannot be decoded")) }
                default:
                    let why = stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(rc)"
                    return .failure(.init(detail: "the \(coding) body is corrupt: \(why)"))
                }
            }
        }
    }

    /// Nil when the stream ended with the body; else why not.
    func finish() -> StreamingBodyMasker.Unmaskable? {
        ended ? nil : .init(detail: "the \(coding) body ends before its compressed stream does")
    }
}
