// The container around events: file header, blocks, footer, trailer.
// Byte layouts are specified in docs/capture-format.md; the constants here are that spec.

public enum CaptureLayout {
    /// PNG-style magic: the high-bit byte catches 7-bit transfers, CR LF catches
    /// line-ending conversion in either direction, 0x1A stops DOS `type`.
    public static let magic: [UInt8] = [0x89, 0x54, 0x47, 0x43, 0x0D, 0x0A, 0x1A, 0x0A]  // \x89 T G C \r \n ^Z \n
    public static let majorVersion: UInt16 = 1
    /// 1.1 added exchange spans to the footer's block index (skipped by 1.0 readers); 1.2 the
    /// divergence event kind (kept as an unknown kind by older readers); 1.3 the approval states
    /// withdrawn, abandoned and reused (field 6, beside their 1.2 reading in field 1); 1.4 value
    /// flags (masked, withheld, cut) on parameters, statement texts, result values and notices.
    public static let minorVersion: UInt16 = 4
    /// Feature flags this reader understands. An unknown incompatible flag is refused;
    /// an unknown compatible flag is ignored.
    public static let knownIncompatibleFlags: UInt32 = 0
    public static let fileHeaderFixedSize = 24
    public static let blockMagic: [UInt8] = Array("TGBK".utf8)
    public static let blockFixedSize = 64
    /// chain hash (32) + signature (64) + CRC32 (4) + repeated length (4)
    public static let blockTailSize = 104
    public static let trailerMagic: [UInt8] = Array("TGTR".utf8)
    public static let trailerEndMagic: [UInt8] = Array("TGEN".utf8)
    public static let trailerSize = 152
    public static let blockSignatureContext: [UInt8] = Array("tollgate-capture-v1 block\u{0}".utf8)
    public static let trailerSignatureContext: [UInt8] = Array("tollgate-capture-v1 trailer\u{0}".utf8)
    /// A block's declared length, or its payload's raw length, above this is treated as
    /// damage, not data: a reader never allocates more for one block.
    public static let maxBlockLength = 64 << 20
}

public enum BlockType: UInt8, Sendable {
    case events = 1
    case footer = 2
}

/// Trailer flags.
public struct SealFlags: OptionSet, Sendable, Equatable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Written by the writer's own close.
    public static let cleanClose = SealFlags(rawValue: 1)
    /// Written by `sessinfo --recover` after the file was cut off.
    public static let recovered = SealFlags(rawValue: 2)
}

/// Why a capture cannot be read, or what is wrong with it; with where.
public struct CaptureError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable { case io, notCapture, unsupported, corrupt, truncated, key }
    public var kind: Kind
    public var message: String
    public var offset: Int?

    public init(_ kind: Kind, _ message: String, offset: Int? = nil) {
        self.kind = kind; self.message = message; self.offset = offset
    }

    static func corrupt(_ m: String, offset: Int? = nil) -> CaptureError { CaptureError(.corrupt, m, offset: offset) }
    static func io(_ m: String) -> CaptureError { CaptureError(.io, m) }

    public var description: String {
        if let offset { return "\(message) (at byte \(offset))" }
        return message
    }
}

/// Session metadata written once at the start of the file.
public struct SessionHeader: Sendable, Equatable, WireMessage {
    public var sessionID: String
    public var target: String
    /// postgres, http, kubernetes…
    public var protocolName: String
    public var subject: String
    public var groups: [String]
    public var issuer: String
    public var proxyID: String
    public var startMicros: Int64
    public var signingKeyID: String
    public var signingPublicKey: [UInt8]
    public var writer: String
    public var attributes: [KeyValue]

    public init(sessionID: String, target: String, protocolName: String, subject: String, groups: [String] = [],
                issuer: String = "", proxyID: String, startMicros: Int64, writer: String = "tollgate",
                attributes: [KeyValue] = []) {
        self.sessionID = sessionID; self.target = target; self.protocolName = protocolName
        self.subject = subject; self.groups = groups; self.issuer = issuer; self.proxyID = proxyID
        self.startMicros = startMicros; self.signingKeyID = ""; self.signingPublicKey = []
        self.writer = writer; self.attributes = attributes
    }

    public func encode(to w: inout WireWriter) {
        w.string(1, sessionID); w.string(2, target); w.string(3, protocolName); w.string(4, subject)
        w.strings(5, groups); w.string(6, issuer); w.string(7, proxyID); w.int(8, startMicros)
        w.string(9, signingKeyID); w.bytes(10, signingPublicKey); w.string(11, writer)
        w.messages(12, attributes)
    }

    public init(wire r: inout WireReader) throws {
        self.init(sessionID: "", target: "", protocolName: "", subject: "", proxyID: "", startMicros: 0, writer: "")
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: sessionID = try r.string(t)
            case 2: target = try r.string(t)
            case 3: protocolName = try r.string(t)
            case 4: subject = try r.string(t)
            case 5: groups.append(try r.string(t))
            case 6: issuer = try r.string(t)
            case 7: proxyID = try r.string(t)
            case 8: startMicros = try r.int(t)
            case 9: signingKeyID = try r.string(t)
            case 10: signingPublicKey = try r.bytes(t)
            case 11: writer = try r.string(t)
            case 12: attributes.append(try r.message(t))
            default: try r.skip(t)
            }
        }
    }
}

/// A block's fixed header, as found in the file and repeated in the footer's index.
public struct BlockInfo: Sendable, Equatable, WireMessage {
    public var offset: UInt64
    public var length: UInt32
    public var type: BlockType
    public var codec: BlockCodec
    public var rawLength: UInt32
    public var storedLength: UInt32
    public var eventCount: UInt32
    public var firstSequence: UInt64
    public var lastSequence: UInt64
    public var firstMicros: Int64
    public var lastMicros: Int64
    /// Bit k set when an event of kind raw value k is in the block.
    public var kinds: UInt32
    public var filter: TermFilter
    /// Format 1.1, footer index only: how far this block's exchanges reach (nil: not recorded).
    public var exchangeSpan: ExchangeSpan?

    public init(offset: UInt64 = 0, length: UInt32 = 0, type: BlockType = .events, codec: BlockCodec = .zlib,
                rawLength: UInt32 = 0, storedLength: UInt32 = 0, eventCount: UInt32 = 0,
                firstSequence: UInt64 = 0, lastSequence: UInt64 = 0, firstMicros: Int64 = 0, lastMicros: Int64 = 0,
                kinds: UInt32 = 0, filter: TermFilter = TermFilter(bits: [], hashCount: 0), exchangeSpan: ExchangeSpan? = nil) {
        self.offset = offset; self.length = length; self.type = type; self.codec = codec
        self.rawLength = rawLength; self.storedLength = storedLength; self.eventCount = eventCount
        self.firstSequence = firstSequence; self.lastSequence = lastSequence
        self.firstMicros = firstMicros; self.lastMicros = lastMicros; self.kinds = kinds; self.filter = filter
        self.exchangeSpan = exchangeSpan
    }

    public func contains(kind: EventKind) -> Bool { kinds & (1 << UInt32(kind.rawValue)) != 0 }

    /// Offset of the payload within the file.
    public var payloadOffset: Int { Int(offset) + CaptureLayout.blockFixedSize + filter.bits.count }

    /// The fixed header and filter, as written at the start of the block.
    func headerBytes() -> [UInt8] {
        var b: [UInt8] = []
        b.reserveCapacity(CaptureLayout.blockFixedSize + filter.bits.count)
        b.append(contentsOf: CaptureLayout.blockMagic)
        b.appendLE(length)
        b.append(type.rawValue)
        b.append(codec.rawValue)
        b.appendLE(UInt16(0))
        b.appendLE(rawLength)
        b.appendLE(storedLength)
        b.appendLE(eventCount)
        b.appendLE(firstSequence)
        b.appendLE(lastSequence)
        b.appendLE(firstMicros)
        b.appendLE(lastMicros)
        b.appendLE(kinds)
        b.appendLE(UInt16(filter.bits.count))
        b.append(filter.hashCount)
        b.append(0)
        b.append(contentsOf: filter.bits)
        return b
    }

    /// Parses the fixed header at `offset`; checks only what framing needs (magic, lengths, known enums).
    static func parse(_ file: UnsafeRawBufferPointer, at offset: Int) throws(CaptureError) -> BlockInfo {
        let fixed = CaptureLayout.blockFixedSize
        guard file.count - offset >= fixed else {
            throw CaptureError(.truncated, "block header cut off: \(file.count - offset) of \(fixed) bytes present", offset: offset)
        }
        let h = UnsafeRawBufferPointer(rebasing: file[offset..<offset + fixed])
        guard h.starts(with: CaptureLayout.blockMagic) else {
            throw .corrupt("no block magic \"TGBK\"", offset: offset)
        }
        let length: UInt32 = h.le(4)
        guard let type = BlockType(rawValue: h[8]) else { throw .corrupt("unknown block type \(h[8])", offset: offset + 8) }
        guard let codec = BlockCodec(rawValue: h[9]) else { throw .corrupt("unknown block codec \(h[9])", offset: offset + 9) }
        let filterLength = Int(h.le(60, as: UInt16.self))
        let storedLength: UInt32 = h.le(16)
        let expected = fixed + filterLength + Int(storedLength) + CaptureLayout.blockTailSize
        guard Int(length) == expected, Int(length) <= CaptureLayout.maxBlockLength else {
            throw .corrupt("block length \(length) does not match its parts (\(expected))", offset: offset + 4)
        }
        let rawLength: UInt32 = h.le(12)
        guard Int(rawLength) <= CaptureLayout.maxBlockLength else {
            throw .corrupt("block raw length \(rawLength) exceeds the format's limit of \(CaptureLayout.maxBlockLength)", offset: offset + 12)
        }
        guard file.count - offset >= Int(length) else {
            throw CaptureError(.truncated, "block cut off: \(file.count - offset) of \(length) bytes present", offset: offset)
        }
        let filterStart = offset + fixed
        let filter = TermFilter(bits: [UInt8](UnsafeRawBufferPointer(rebasing: file[filterStart..<filterStart + filterLength])),
                                hashCount: h[62])
        return BlockInfo(offset: UInt64(offset), length: length, type: type, codec: codec,
                         rawLength: rawLength, storedLength: storedLength, eventCount: h.le(20),
                         firstSequence: h.le(24), lastSequence: h.le(32), firstMicros: h.le(40), lastMicros: h.le(48),
                         kinds: h.le(56), filter: filter)
    }

    public func encode(to w: inout WireWriter) {
        w.uint(1, offset); w.uint(2, UInt64(length)); w.uint(3, UInt64(type.rawValue)); w.uint(4, UInt64(codec.rawValue))
        w.uint(5, UInt64(rawLength)); w.uint(6, UInt64(storedLength)); w.uint(7, UInt64(eventCount))
        w.uint(8, firstSequence); w.uint(9, lastSequence); w.int(10, firstMicros); w.int(11, lastMicros)
        w.uint(12, UInt64(kinds)); w.bytes(13, filter.bits); w.uint(14, UInt64(filter.hashCount))
        w.message(15, exchangeSpan)
    }

    public init(wire r: inout WireReader) throws {
        self.init()
        // An absent field is 0: codec 0 (.none) is not written, so it must not read back as the init's .zlib.
        codec = .none
        var bits: [UInt8] = [], k: UInt8 = 0
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: offset = try r.uint(t)
            case 2: length = UInt32(truncatingIfNeeded: try r.uint(t))
            case 3:
                let v = try r.uint(t)
                guard let bt = BlockType(rawValue: UInt8(truncatingIfNeeded: v)) else { throw r.fail("unknown block type \(v)") }
                type = bt
            case 4:
                let v = try r.uint(t)
                guard let c = BlockCodec(rawValue: UInt8(truncatingIfNeeded: v)) else { throw r.fail("unknown codec \(v)") }
                codec = c
            case 5: rawLength = UInt32(truncatingIfNeeded: try r.uint(t))
            case 6: storedLength = UInt32(truncatingIfNeeded: try r.uint(t))
            case 7: eventCount = UInt32(truncatingIfNeeded: try r.uint(t))
            case 8: firstSequence = try r.uint(t)
            case 9: lastSequence = try r.uint(t)
            case 10: firstMicros = try r.int(t)
            case 11: lastMicros = try r.int(t)
            case 12: kinds = UInt32(truncatingIfNeeded: try r.uint(t))
            case 13: bits = try r.bytes(t)
            case 14: k = UInt8(truncatingIfNeeded: try r.uint(t))
            case 15: exchangeSpan = try r.message(t)
            default: try r.skip(t)
            }
        }
        filter = TermFilter(bits: bits, hashCount: k)
    }
}

/// A name with a count, for the summary's tallies.
public struct NamedCount: Sendable, Equatable, WireMessage {
    public var name: String
    public var count: UInt64
    public init(_ name: String, _ count: UInt64) { self.name = name; self.count = count }

    public func encode(to w: inout WireWriter) { w.string(1, name); w.uint(2, count) }

    public init(wire r: inout WireReader) throws {
        name = ""; count = 0
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: name = try r.string(t)
            case 2: count = try r.uint(t)
            default: try r.skip(t)
            }
        }
    }
}

/// What happened in the session, computed from its events, so tools can answer from the footer.
public struct SessionSummary: Sendable, Equatable, WireMessage {
    public var eventCount: UInt64 = 0
    public var firstSequence: UInt64 = 0
    public var lastSequence: UInt64 = 0
    public var firstMicros: Int64 = 0
    public var lastMicros: Int64 = 0
    /// Per event kind name (unknown kinds as "kind-N"), sorted by name.
    public var kindCounts: [NamedCount] = []
    /// Per decision action (allow, deny, review), sorted by name.
    public var decisionCounts: [NamedCount] = []
    /// Tables and other resources touched, sorted, at most `SummaryBuilder.maxResources`.
    public var resources: [String] = []
    /// Masked values per detector, sorted by name.
    public var maskedCounts: [NamedCount] = []
    public var requestBytes: UInt64 = 0
    public var responseBytes: UInt64 = 0
    public var exchanges: UInt64 = 0
    public var errors: UInt64 = 0
    public var endReason: String = ""

    public init() {}

    public func count(of kind: EventKind) -> UInt64 { kindCounts.first { $0.name == kind.summaryName }?.count ?? 0 }
    public func count(of action: Decision.Action) -> UInt64 { decisionCounts.first { $0.name == action.name }?.count ?? 0 }

    public func encode(to w: inout WireWriter) {
        w.uint(1, eventCount); w.uint(2, firstSequence); w.uint(3, lastSequence)
        w.int(4, firstMicros); w.int(5, lastMicros)
        w.messages(6, kindCounts); w.messages(7, decisionCounts); w.strings(8, resources)
        w.messages(9, maskedCounts); w.uint(10, requestBytes); w.uint(11, responseBytes)
        w.uint(12, exchanges); w.uint(13, errors); w.string(14, endReason)
    }

    public init(wire r: inout WireReader) throws {
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: eventCount = try r.uint(t)
            case 2: firstSequence = try r.uint(t)
            case 3: lastSequence = try r.uint(t)
            case 4: firstMicros = try r.int(t)
            case 5: lastMicros = try r.int(t)
            case 6: kindCounts.append(try r.message(t))
            case 7: decisionCounts.append(try r.message(t))
            case 8: resources.append(try r.string(t))
            case 9: maskedCounts.append(try r.message(t))
            case 10: requestBytes = try r.uint(t)
            case 11: responseBytes = try r.uint(t)
            case 12: exchanges = try r.uint(t)
            case 13: errors = try r.uint(t)
            case 14: endReason = try r.string(t)
            default: try r.skip(t)
            }
        }
    }
}

/// What a recovery did: where the original file was cut and who sealed the copy.
public struct RecoveryInfo: Sendable, Equatable, WireMessage {
    public var originalLength: UInt64
    /// Where the original's last complete block ended; bytes after it were dropped.
    public var keptLength: UInt64
    public var reason: String
    public var recoveredMicros: Int64

    public init(originalLength: UInt64, keptLength: UInt64, reason: String, recoveredMicros: Int64) {
        self.originalLength = originalLength; self.keptLength = keptLength
        self.reason = reason; self.recoveredMicros = recoveredMicros
    }

    public func encode(to w: inout WireWriter) {
        w.uint(1, originalLength); w.uint(2, keptLength); w.string(3, reason); w.int(4, recoveredMicros)
    }

    public init(wire r: inout WireReader) throws {
        self.init(originalLength: 0, keptLength: 0, reason: "", recoveredMicros: 0)
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: originalLength = try r.uint(t)
            case 2: keptLength = try r.uint(t)
            case 3: reason = try r.string(t)
            case 4: recoveredMicros = try r.int(t)
            default: try r.skip(t)
            }
        }
    }
}

/// The footer block's payload.
public struct Footer: Sendable, Equatable, WireMessage {
    public var sessionID: String
    public var blocks: [BlockInfo]
    public var summary: SessionSummary
    public var sealedMicros: Int64
    public var sealerPublicKey: [UInt8]
    public var recovery: RecoveryInfo?

    public init(sessionID: String, blocks: [BlockInfo], summary: SessionSummary, sealedMicros: Int64,
                sealerPublicKey: [UInt8], recovery: RecoveryInfo? = nil) {
        self.sessionID = sessionID; self.blocks = blocks; self.summary = summary
        self.sealedMicros = sealedMicros; self.sealerPublicKey = sealerPublicKey; self.recovery = recovery
    }

    public func encode(to w: inout WireWriter) {
        w.string(1, sessionID); w.messages(2, blocks); w.message(3, summary); w.int(4, sealedMicros)
        w.bytes(5, sealerPublicKey); w.message(6, recovery)
    }

    public init(wire r: inout WireReader) throws {
        self.init(sessionID: "", blocks: [], summary: SessionSummary(), sealedMicros: 0, sealerPublicKey: [])
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: sessionID = try r.string(t)
            case 2: blocks.append(try r.message(t))
            case 3: summary = try r.message(t)
            case 4: sealedMicros = try r.int(t)
            case 5: sealerPublicKey = try r.bytes(t)
            case 6: recovery = try r.message(t)
            default: try r.skip(t)
            }
        }
    }
}

/// The fixed-size record at the very end of a sealed file.
public struct Trailer: Sendable, Equatable {
    public var flags: SealFlags
    public var footerOffset: UInt64
    public var finalChainHash: [UInt8]
    public var sealerPublicKey: [UInt8]
    public var signature: [UInt8]

    /// The bytes the trailer signature covers.
    static func signedMessage(flags: SealFlags, footerOffset: UInt64, finalChainHash: [UInt8]) -> [UInt8] {
        var m = CaptureLayout.trailerSignatureContext
        m.appendLE(flags.rawValue)
        m.appendLE(footerOffset)
        m.append(contentsOf: finalChainHash)
        return m
    }

    /// Whether the trailer's signature holds for its own sealer key (not whether that key is trusted).
    public var signatureIsValid: Bool {
        SigningKey.verify(signature: signature,
                          message: Trailer.signedMessage(flags: flags, footerOffset: footerOffset, finalChainHash: finalChainHash),
                          publicKey: sealerPublicKey)
    }

    func bytes() -> [UInt8] {
        var b = CaptureLayout.trailerMagic
        b.reserveCapacity(CaptureLayout.trailerSize)
        b.appendLE(flags.rawValue)
        b.appendLE(footerOffset)
        b.append(contentsOf: finalChainHash)
        b.append(contentsOf: sealerPublicKey)
        b.append(contentsOf: signature)
        b.appendLE(crc32(b))
        b.append(contentsOf: CaptureLayout.trailerEndMagic)
        return b
    }

    /// Parses the trailer at the end of `file`, or says why there is none.
    static func parse(_ file: UnsafeRawBufferPointer) throws(CaptureError) -> Trailer {
        let n = CaptureLayout.trailerSize
        guard file.count >= n else { throw CaptureError(.truncated, "file too short for a trailer") }
        let start = file.count - n
        let t = UnsafeRawBufferPointer(rebasing: file[start...])
        guard t.starts(with: CaptureLayout.trailerMagic),
              UnsafeRawBufferPointer(rebasing: t[(n - 4)...]).elementsEqual(CaptureLayout.trailerEndMagic) else {
            throw CaptureError(.truncated, "no trailer at the end of the file", offset: start)
        }
        let stored: UInt32 = t.le(144)
        guard crc32(UnsafeRawBufferPointer(rebasing: t[0..<144])) == stored else {
            throw .corrupt("trailer CRC mismatch", offset: start + 144)
        }
        return Trailer(flags: SealFlags(rawValue: t.le(4)), footerOffset: t.le(8),
                       finalChainHash: Array(t[16..<48]), sealerPublicKey: Array(t[48..<80]), signature: Array(t[80..<144]))
    }
}
