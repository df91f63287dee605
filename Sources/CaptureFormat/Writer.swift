import Crypto
import Foundation

/// When written bytes are forced to disk.
public enum Durability: Sendable, Equatable {
    /// Leave it to the operating system (benchmarks, tests).
    case none
    /// fsync after every sealed block (default): a crash loses at most the open block.
    case perBlock
    /// fsync at most this often; blocks sealed in between may be lost together.
    case interval(Duration)
    /// Every append seals a block and fsyncs before returning: nothing acknowledged is lost.
    case strict
}

public struct WriterOptions: Sendable {
    /// Seal the open block when its uncompressed events reach this size.
    public var blockTargetBytes: Int = 128 * 1024
    /// Seal the open block when its first event is this old, so an idle session still reaches disk.
    public var maxBlockAge: Duration = .seconds(2)
    public var durability: Durability = .perBlock
    public var codec: BlockCodec = .zlib
    /// zlib level 1–9.
    public var compressionLevel: Int32 = 6

    public init() {}
}

/// Builds and appends blocks: framing, chain hash and signature, in one place for the writer and recovery.
struct BlockSealer {
    var chainHash: [UInt8]

    /// The chain starts from the hash of the file header, so the header is covered too.
    init(fileHeader: [UInt8]) {
        chainHash = Array(SHA256.hash(data: fileHeader))
    }

    /// The complete block bytes for `info` (offset, counts, times, kinds, filter set) and `raw` payload.
    mutating func seal(_ info: inout BlockInfo, raw: [UInt8], level: Int32, key: SigningKey) -> [UInt8] {
        let stored = info.codec.compress(raw, level: level)
        info.rawLength = UInt32(raw.count)
        info.storedLength = UInt32(stored.count)
        info.length = UInt32(CaptureLayout.blockFixedSize + info.filter.bits.count + stored.count + CaptureLayout.blockTailSize)
        var block = info.headerBytes()
        block.reserveCapacity(Int(info.length))
        block.append(contentsOf: stored)
        var h = SHA256()
        h.update(data: chainHash)
        h.update(data: block)
        chainHash = Array(h.finalize())
        block.append(contentsOf: chainHash)
        block.append(contentsOf: key.sign(CaptureLayout.blockSignatureContext + chainHash))
        block.appendLE(crc32(block))
        block.appendLE(info.length)
        return block
    }
}

/// The file header bytes: fixed part, session header fields, CRC32.
func fileHeaderBytes(_ header: SessionHeader, compatibleFlags: UInt32 = 0, incompatibleFlags: UInt32 = 0) -> [UInt8] {
    let body = header.encoded()
    var b = CaptureLayout.magic
    b.appendLE(CaptureLayout.majorVersion)
    b.appendLE(CaptureLayout.minorVersion)
    b.appendLE(compatibleFlags)
    b.appendLE(incompatibleFlags)
    b.appendLE(UInt32(body.count))
    b.append(contentsOf: body)
    b.appendLE(crc32(b))
    return b
}

/// Writes one session's capture file. Not thread-safe: one owner (the session's
/// recorder) appends; wrap it in an actor to share it.
public final class CaptureWriter {
    public let path: String
    public let header: SessionHeader
    let options: WriterOptions
    let key: SigningKey
    let fd: Int32
    var offset: UInt64
    var sealer: BlockSealer
    var blocks: [BlockInfo] = []
    let clock = ContinuousClock()
    let started: ContinuousClock.Instant

    // What every event changes. Release builds make no runtime exclusivity check on it
    // (`@exclusivity(unchecked)`: part of the gate's CPU per transaction, issue 18). Safe: the
    // writer has one owner at a time (see above), and its methods pass none of these inout to
    // code that could reach the writer again. Debug builds, where the tests run, keep the checks.
    #if DEBUG
    var summary = SummaryBuilder()
    /// Bounded: a gate session may run millions of exchanges; forgetting old ones only widens spans.
    var spans = ExchangeSpanBuilder(maxTracked: 4096)
    var nextSequence: UInt64 = 1
    // The open block.
    var pending = WireWriter(capacity: 128 * 1024)
    var pendingInfo = BlockInfo()
    var pendingTerms: Set<String> = []
    /// The term-relevant parts of the requests and decisions already in the open block: a session
    /// repeats a few statements, and an event that would add only terms the block has is skipped.
    var termedRequests = RecentValues<RequestTerms>()
    var termedDecisions = RecentValues<DecisionTerms>()
    /// Each event is encoded here first: a buffer kept from event to event.
    var scratch = WireWriter(capacity: 4096)
    #else
    @exclusivity(unchecked) var summary = SummaryBuilder()
    @exclusivity(unchecked) var spans = ExchangeSpanBuilder(maxTracked: 4096)
    @exclusivity(unchecked) var nextSequence: UInt64 = 1
    @exclusivity(unchecked) var pending = WireWriter(capacity: 128 * 1024)
    @exclusivity(unchecked) var pendingInfo = BlockInfo()
    @exclusivity(unchecked) var pendingTerms: Set<String> = []
    @exclusivity(unchecked) var termedRequests = RecentValues<RequestTerms>()
    @exclusivity(unchecked) var termedDecisions = RecentValues<DecisionTerms>()
    @exclusivity(unchecked) var scratch = WireWriter(capacity: 4096)
    #endif
    var pendingSince: ContinuousClock.Instant?
    var lastSync: ContinuousClock.Instant
    /// How much of the file the last `fsync` covered.
    var syncedOffset: UInt64 = 0
    /// Set during `sealDeferringSync`: the caller syncs.
    var deferSync = false
    var closed = false

    /// Creates `path` (which must not exist) with mode 0600 and writes the file header.
    /// The header's key fields are filled from `key`.
    public init(path: String, header: SessionHeader, key: SigningKey, options: WriterOptions = WriterOptions()) throws(CaptureError) {
        var header = header
        header.signingKeyID = key.keyID
        header.signingPublicKey = key.publicKey
        self.path = path
        self.header = header
        self.key = key
        self.options = options
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CaptureError(.io, "\(path): cannot create capture: \(String(cString: strerror(errno)))") }
        self.fd = fd
        let bytes = fileHeaderBytes(header)
        sealer = BlockSealer(fileHeader: bytes)
        offset = UInt64(bytes.count)
        started = clock.now
        lastSync = started
        do {
            try writeAll(fd: fd, bytes, path: path)
            if options.durability != .none { try sync() }
        } catch {
            // A capture that never got its header is removed (the file is ours: O_EXCL): left
            // behind, every tool would read it as cut off (a full disk refusing a session did that).
            Foundation.close(fd)
            unlink(path)
            throw error
        }
    }

    deinit {
        if !closed { Foundation.close(fd) }
    }

    public var eventCount: UInt64 { nextSequence - 1 }
    public var finalChainHash: [UInt8] { sealer.chainHash }

    /// Appends an event stamped now; returns its sequence number.
    @discardableResult
    public func append(_ payload: Payload, exchangeID: UInt64 = 0) throws(CaptureError) -> UInt64 {
        let mono = UInt64((clock.now - started).nanoseconds)
        return try append(Event(monotonicNanos: mono, wallMicros: nowMicros(), exchangeID: exchangeID, payload: payload))
    }

    /// Appends an event with the caller's timestamps; the writer assigns its sequence number.
    @discardableResult
    public func append(_ event: consuming Event) throws(CaptureError) -> UInt64 {
        let sequence = try add(event)
        try sealIfDue()
        return sequence
    }

    /// Appends `events` in order, moving each out (the array is left empty), and looks at the open
    /// block's age once at the end, not once per event (a clock read each): for a recorder that
    /// hands over what gathered in the last few milliseconds.
    public func append(moving events: inout [Event]) throws(CaptureError) {
        defer { events.removeAll(keepingCapacity: true) }
        // Moved out one by one (see `Event.take`).
        for i in events.indices { _ = try add(Event.take(&events[i])) }
        try sealIfDue()
    }

    /// Appends one event without the age check (see `append`).
    func add(_ event: consuming Event) throws(CaptureError) -> UInt64 {
        guard !closed else { throw CaptureError(.io, "\(path): append after close") }
        event.sequence = nextSequence
        // Read from here on: passing the consumed parameter on would copy it (and retain all it holds).
        let event = event
        scratch.reset()
        event.encode(to: &scratch)
        let encoded = scratch.bytes
        // A block's raw payload may not exceed the format's limit; callers cap bodies long before this.
        guard encoded.count + 10 <= CaptureLayout.maxBlockLength else {
            throw CaptureError(.io, "\(path): event of \(encoded.count) bytes exceeds the \(CaptureLayout.maxBlockLength)-byte block limit; cap its body")
        }
        if pending.bytes.count + encoded.count + 10 > CaptureLayout.maxBlockLength { try sealBlock() }
        nextSequence += 1
        if pendingInfo.eventCount == 0 {
            pendingInfo.firstSequence = event.sequence
            pendingInfo.firstMicros = event.wallMicros
            pendingSince = clock.now
        }
        pendingInfo.eventCount += 1
        pendingInfo.lastSequence = event.sequence
        pendingInfo.lastMicros = event.wallMicros
        pendingInfo.kinds |= 1 << UInt32(event.kindCode & 31)
        if addsTerms(event) { SearchTerms.of(event, into: &pendingTerms) }
        spans.add(exchangeID: event.exchangeID, block: blocks.count)
        summary.add(event)
        pending.varint(UInt64(encoded.count))
        pending.append(raw: encoded)
        if options.durability == .strict || pending.bytes.count >= options.blockTargetBytes { try sealBlock() }
        return event.sequence
    }

    /// False when the event's terms are certainly in the open block already (the same statement
    /// facts, or the same decision, as an earlier event of the block).
    func addsTerms(_ event: borrowing Event) -> Bool {
        switch event.payload {
        case .request(.postgres(let p)):
            termedRequests.insert(RequestTerms(fingerprint: p.fingerprint, resources: p.resources,
                                               statementKinds: p.statementKinds, functions: p.functions))
        case .decision(let d):
            termedDecisions.insert(DecisionTerms(action: d.action, policy: d.policy, rule: d.rule))
        default:
            true
        }
    }

    /// Seals the open block if it is older than `maxBlockAge`. Call from a timer so idle sessions reach disk.
    public func sealIfDue() throws(CaptureError) {
        if let since = pendingSince, clock.now - since >= options.maxBlockAge { try sealBlock() }
        if case .interval(let every) = options.durability, clock.now - lastSync >= every { try sync() }
    }

    /// When `sealIfDue` next has something to do: the open block turns `maxBlockAge` old, or an
    /// interval's sync is due for what was written since the last (nil: nothing waits).
    public var sealDue: ContinuousClock.Instant? {
        let seal = pendingSince.map { $0 + options.maxBlockAge }
        guard case .interval(let every) = options.durability, offset > syncedOffset else { return seal }
        let sync = lastSync + every
        return seal.map { min($0, sync) } ?? sync
    }

    /// Seals the open block now (no-op when empty).
    public func flush() throws(CaptureError) {
        try sealBlock()
    }

    /// Seals the open block without forcing it to disk (no-op when empty): a group commit seals
    /// the blocks of many sessions, then forces each with `syncWritten` in one pass.
    public func sealDeferringSync() throws(CaptureError) {
        deferSync = true
        defer { deferSync = false }
        try sealBlock()
    }

    /// Forces what was written to disk, if anything was written since the last sync.
    public func syncWritten() throws(CaptureError) {
        if offset > syncedOffset { try sync() }
    }

    func sealBlock() throws(CaptureError) {
        guard pendingInfo.eventCount > 0 else { return }
        var info = pendingInfo
        info.offset = offset
        info.codec = options.codec
        info.filter = TermFilter(terms: pendingTerms)
        let block = sealer.seal(&info, raw: pending.bytes, level: options.compressionLevel, key: key)
        try writeAll(fd: fd, block, path: path)
        offset += UInt64(block.count)
        blocks.append(info)
        pending = WireWriter(capacity: options.blockTargetBytes + options.blockTargetBytes / 4)
        pendingInfo = BlockInfo()
        pendingTerms.removeAll(keepingCapacity: true)
        termedRequests.removeAll()
        termedDecisions.removeAll()
        pendingSince = nil
        switch options.durability {
        case .perBlock, .strict: if !deferSync { try sync() }
        case .interval, .none: break
        }
    }

    func sync() throws(CaptureError) {
        guard fsync(fd) == 0 else { throw CaptureError(.io, "\(path): fsync failed: \(String(cString: strerror(errno)))") }
        lastSync = clock.now
        syncedOffset = offset
    }

    /// Seals the last block, writes footer and trailer, and closes the file.
    public func close() throws(CaptureError) {
        guard !closed else { return }
        try sealBlock()
        for (i, span) in spans.build(count: blocks.count).enumerated() { blocks[i].exchangeSpan = span }
        let footer = Footer(sessionID: header.sessionID, blocks: blocks, summary: summary.build(),
                            sealedMicros: nowMicros(), sealerPublicKey: key.publicKey)
        let tail = sealFooter(footer, at: offset, sealer: &sealer, key: key, flags: .cleanClose, level: options.compressionLevel)
        try writeAll(fd: fd, tail, path: path)
        if options.durability != .none { try sync() }
        closed = true
        guard Foundation.close(fd) == 0 else { throw CaptureError(.io, "\(path): close failed: \(String(cString: strerror(errno)))") }
    }
}

/// Footer block plus trailer, chained after the last block and signed.
func sealFooter(_ footer: Footer, at offset: UInt64, sealer: inout BlockSealer, key: SigningKey,
                flags: SealFlags, level: Int32) -> [UInt8] {
    var info = BlockInfo(offset: offset, type: .footer, codec: .zlib,
                         firstSequence: footer.summary.firstSequence, lastSequence: footer.summary.lastSequence,
                         firstMicros: footer.summary.firstMicros, lastMicros: footer.summary.lastMicros)
    var bytes = sealer.seal(&info, raw: footer.encoded(), level: level, key: key)
    let message = Trailer.signedMessage(flags: flags, footerOffset: offset, finalChainHash: sealer.chainHash)
    let trailer = Trailer(flags: flags, footerOffset: offset, finalChainHash: sealer.chainHash,
                          sealerPublicKey: key.publicKey, signature: key.sign(message))
    bytes.append(contentsOf: trailer.bytes())
    return bytes
}

public func nowMicros() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
}

extension Duration {
    /// Whole nanoseconds, saturating at Int64's range (durations from config files can be huge).
    public var nanoseconds: Int64 {
        let (s, atto) = components
        let (ns, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return s < 0 ? .min : .max }
        return ns.addingReportingOverflow(atto / 1_000_000_000).overflow ? .max : ns + atto / 1_000_000_000
    }
}

/// The last few distinct values seen, for skipping work an equal value already did. Compared
/// with `==`, not hashed: values an event copies from a cache share their storage, so most
/// comparisons stop at an identity check, where hashing would read every byte every time.
/// When full it starts over, so `insert` may call a value new again (callers redo the work,
/// never skip it wrongly).
struct RecentValues<Value: Equatable> {
    var values: [Value] = []
    static var capacity: Int { 32 }

    /// True when `value` is not among the values kept (and keeps it).
    mutating func insert(_ value: Value) -> Bool {
        if values.contains(value) { return false }
        if values.count >= Self.capacity { values.removeAll(keepingCapacity: true) }
        values.append(value)
        return true
    }

    mutating func removeAll() { values.removeAll(keepingCapacity: true) }
}

extension RecentValues: Sendable where Value: Sendable {}

/// What of a PostgreSQL request goes into a block's search terms (see `SearchTerms`).
struct RequestTerms: Equatable {
    var fingerprint: String
    var resources: [Resource]
    var statementKinds: [String]
    var functions: [String]
}

/// What of a decision goes into a block's search terms.
struct DecisionTerms: Equatable {
    var action: Decision.Action
    var policy: String
    var rule: String
}
