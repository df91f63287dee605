import Crypto
import Foundation

/// Whether a file was sealed by its writer (or by recovery), or ends without a trailer.
public enum SealState: Sendable, Equatable {
    case sealed(SealFlags)
    /// No valid trailer: the writer crashed or the file was cut. Blocks up to
    /// `completeLength` are whole; `reason` says what follows them.
    case unsealed(completeLength: Int, fileLength: Int, reason: String)

    public var isSealed: Bool { if case .sealed = self { return true } else { return false } }
}

/// A capture file opened for reading. The whole file is memory-mapped; blocks
/// are decompressed only when their events are asked for.
public struct CaptureFile: Sendable {
    public let path: String
    let data: Data
    public let header: SessionHeader
    public let majorVersion: UInt16
    public let minorVersion: UInt16
    public let compatibleFlags: UInt32
    public let headerLength: Int
    /// Event blocks, in file order.
    public let blocks: [BlockInfo]
    public let footer: Footer?
    public let trailer: Trailer?
    public let state: SealState
    /// Set when a trailer was present but its footer could not be used, so blocks were found by scanning.
    public let footerProblem: String?

    public var fileSize: Int { data.count }

    /// Opens `path`: reads the header, then the footer through the trailer, or
    /// scans blocks from the start when the file was not sealed.
    public init(path: String) throws(CaptureError) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw CaptureError(.io, "\(path): cannot read: \((error as NSError).localizedDescription)")
        }
        try self.init(path: path, data: data)
    }

    public init(path: String, data: Data) throws(CaptureError) {
        self.path = path
        self.data = data
        let parsed = try withTypedBytes(of: data) { (file) throws(CaptureError) in try CaptureFile.parseHeader(file) }
        (header, majorVersion, minorVersion, compatibleFlags, headerLength) = parsed

        var footerProblem: String?
        let sealed: (Trailer, Footer)? = data.withUnsafeBytes { file -> (Trailer, Footer)? in
            guard let trailer = try? Trailer.parse(file) else { return nil }
            do {
                let footer = try CaptureFile.readFooter(file, at: Int(clamping: trailer.footerOffset), headerLength: parsed.4)
                return (trailer, footer)
            } catch {
                footerProblem = "trailer present but footer unusable: \(error)"
                return nil
            }
        }
        if let (trailer, footer) = sealed {
            self.trailer = trailer
            self.footer = footer
            blocks = footer.blocks
            state = .sealed(trailer.flags)
        } else {
            let scan = data.withUnsafeBytes { CaptureFile.scan($0, from: parsed.4) }
            trailer = nil
            footer = scan.footer
            blocks = scan.blocks
            state = .unsealed(completeLength: scan.end, fileLength: data.count, reason: scan.stop)
        }
        self.footerProblem = footerProblem
    }

    static func parseHeader(_ file: UnsafeRawBufferPointer) throws(CaptureError)
        -> (SessionHeader, UInt16, UInt16, UInt32, Int) {
        let magic = CaptureLayout.magic
        guard file.count >= magic.count, file.prefix(magic.count).elementsEqual(magic) else {
            // A file cut off inside the magic (a crash right after creating it) is truncated, not foreign.
            if file.count < magic.count, magic.starts(with: file) {
                throw CaptureError(.truncated, "file header cut off: \(file.count) of \(magic.count) magic bytes present", offset: file.count)
            }
            if file.count >= 4, file[0] == 0x89, file[1...3].elementsEqual(magic[1...3]) {
                throw CaptureError(.notCapture, "capture magic damaged after \"\\x89TGC\": the file went through a text-mode transfer (line endings or 7-bit)", offset: 4)
            }
            throw CaptureError(.notCapture, "not a Tollgate capture (magic bytes missing)", offset: 0)
        }
        let fixed = CaptureLayout.fileHeaderFixedSize
        guard file.count >= fixed else { throw CaptureError(.truncated, "file header cut off", offset: file.count) }
        let major: UInt16 = file.le(8), minor: UInt16 = file.le(10)
        let compatible: UInt32 = file.le(12), incompatible: UInt32 = file.le(16)
        guard major == CaptureLayout.majorVersion else {
            throw CaptureError(.unsupported, "capture format version \(major).\(minor); this reader reads version \(CaptureLayout.majorVersion).x", offset: 8)
        }
        let unknown = incompatible & ~CaptureLayout.knownIncompatibleFlags
        guard unknown == 0 else {
            throw CaptureError(.unsupported, "capture uses incompatible features 0x\(String(unknown, radix: 16)) that this reader does not know; upgrade the tools", offset: 16)
        }
        let bodyLength = Int(file.le(20, as: UInt32.self))
        guard bodyLength <= file.count - fixed - 4 else {
            throw CaptureError(.truncated, "file header cut off (header says \(bodyLength) bytes of fields)", offset: 20)
        }
        let end = fixed + bodyLength + 4
        let stored: UInt32 = file.le(end - 4)
        guard crc32(UnsafeRawBufferPointer(rebasing: file[0..<(end - 4)])) == stored else {
            throw .corrupt("file header CRC mismatch", offset: end - 4)
        }
        var r = WireReader(base: file, from: fixed, to: fixed + bodyLength)
        do {
            return (try SessionHeader(wire: &r), major, minor, compatible, end)
        } catch {
            throw .corrupt("file header fields: \(error)", offset: fixed)
        }
    }

    /// The block at `offset`, framing and CRC checked.
    static func checkedBlock(_ file: UnsafeRawBufferPointer, at offset: Int) throws(CaptureError) -> BlockInfo {
        let info = try BlockInfo.parse(file, at: offset)
        let end = offset + Int(info.length)
        let repeated: UInt32 = file.le(end - 4)
        guard repeated == info.length else {
            throw .corrupt("block length at its end (\(repeated)) differs from its start (\(info.length))", offset: end - 4)
        }
        let stored: UInt32 = file.le(end - 8)
        guard crc32(UnsafeRawBufferPointer(rebasing: file[offset..<(end - 8)])) == stored else {
            throw .corrupt("block CRC mismatch", offset: end - 8)
        }
        return info
    }

    static func payload(_ file: UnsafeRawBufferPointer, _ info: BlockInfo) throws(CaptureError) -> [UInt8] {
        let start = info.payloadOffset
        let stored = UnsafeRawBufferPointer(rebasing: file[start..<(start + Int(info.storedLength))])
        do {
            return try info.codec.decompress(stored, rawLength: Int(info.rawLength))
        } catch {
            throw CaptureError(.corrupt, error.message, offset: start)
        }
    }

    static func readFooter(_ file: UnsafeRawBufferPointer, at offset: Int, headerLength: Int) throws(CaptureError) -> Footer {
        guard offset >= headerLength, offset < file.count else { throw .corrupt("footer offset \(offset) outside the file") }
        let info = try checkedBlock(file, at: offset)
        guard info.type == .footer else { throw .corrupt("block at footer offset is not a footer", offset: offset) }
        let raw = try payload(file, info)
        do {
            return try Footer(decoding: raw)
        } catch {
            throw .corrupt("footer fields: \(error)", offset: info.payloadOffset)
        }
    }

    /// Walks blocks from the header to the first one that is incomplete or damaged.
    static func scan(_ file: UnsafeRawBufferPointer, from start: Int) -> (blocks: [BlockInfo], footer: Footer?, end: Int, stop: String) {
        var blocks: [BlockInfo] = []
        var offset = start
        while offset < file.count {
            do {
                let info = try checkedBlock(file, at: offset)
                if info.type == .footer {
                    let footer = try? readFooter(file, at: offset, headerLength: start)
                    let end = offset + Int(info.length)
                    return (blocks, footer, end, "footer at byte \(offset) ends at byte \(end) with no valid trailer after it (\(file.count - end) bytes follow)")
                }
                blocks.append(info)
                offset += Int(info.length)
            } catch {
                return (blocks, nil, offset, "\(blocks.count) complete blocks end at byte \(offset); the \(file.count - offset) bytes after them are not a complete block: \(error.message)")
            }
        }
        return (blocks, nil, offset, "the file ends at byte \(offset) after \(blocks.count) complete blocks, with no footer (the writer did not close it)")
    }

    // MARK: Events

    /// The events of one block, with the block's CRC checked.
    public func events(in block: BlockInfo) throws(CaptureError) -> [Event] {
        let raw = try rawPayload(of: block)
        do {
            return try raw.withUnsafeBytes { try EventStream.decode($0, expectedCount: Int(block.eventCount)) }
        } catch {
            throw .corrupt("events: \(error)", offset: block.payloadOffset)
        }
    }

    /// One block's events as stored before compression (varint-prefixed event messages), with the
    /// block's framing and CRC checked: for readers that decode only some events (`EventEnvelope`).
    public func rawPayload(of block: BlockInfo) throws(CaptureError) -> [UInt8] {
        try withTypedBytes(of: data) { (file) throws(CaptureError) -> [UInt8] in
            guard block.offset <= UInt64(file.count), Int(block.offset) + Int(block.length) <= file.count else {
                throw CaptureError(.truncated, "block runs past the end of the file", offset: Int(clamping: block.offset))
            }
            let info = try CaptureFile.checkedBlock(file, at: Int(block.offset))
            guard info.type == .events else { throw .corrupt("not an events block", offset: Int(block.offset) + 8) }
            return try CaptureFile.payload(file, info)
        }
    }

    /// Calls `body` with every event from `sequence` (and from `micros`, when given) on, in order,
    /// until it returns false. Blocks entirely before the start are not decompressed.
    public func forEachEvent(fromSequence sequence: UInt64 = 0, fromMicros micros: Int64? = nil,
                             _ body: (Event) throws -> Bool) throws {
        for block in blocks {
            if block.lastSequence < sequence { continue }
            if let micros, block.lastMicros < micros { continue }
            for event in try events(in: block) {
                if event.sequence < sequence { continue }
                if let micros, event.wallMicros < micros { continue }
                if try !body(event) { return }
            }
        }
    }

    /// The footer's summary, or one computed from the events when there is no footer.
    public func summary() throws -> SessionSummary {
        if let footer { return footer.summary }
        var b = SummaryBuilder()
        try forEachEvent { b.add($0); return true }
        return b.build()
    }

    /// Bytes in event blocks as stored, and as they decompress.
    public var storedEventBytes: Int { blocks.reduce(0) { $0 + Int($1.storedLength) } }
    public var rawEventBytes: Int { blocks.reduce(0) { $0 + Int($1.rawLength) } }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try data.withUnsafeBytes(body)
    }
}

/// `Data.withUnsafeBytes` with a typed error.
func withTypedBytes<R>(of data: Data, _ body: (UnsafeRawBufferPointer) throws(CaptureError) -> R) throws(CaptureError) -> R {
    let result: Result<R, CaptureError> = data.withUnsafeBytes { buf in
        do throws(CaptureError) { return .success(try body(buf)) } catch { return .failure(error) }
    }
    return try result.get()
}
