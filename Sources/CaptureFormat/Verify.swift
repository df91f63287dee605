import Crypto
import Foundation

/// The result of checking every byte of a capture: CRCs, framing, the hash chain,
/// signatures, sequence continuity, block headers against their events, and the
/// footer against the blocks. Independent of the footer's index: blocks are found by walking.
public struct VerificationReport: Sendable {
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        /// "header", "block N" (0-based), "footer" or "trailer".
        public var location: String
        public var offset: Int
        public var message: String
        public var description: String { "\(location) at byte \(offset): \(message)" }
    }

    public var problems: [Problem] = []
    public var blocksChecked = 0
    public var eventsChecked: UInt64 = 0
    public var signerKeyID = ""
    public var sealerKeyID: String?
    /// True when the signer was checked against a key given by the caller, not only the one in the file.
    public var keyPinned = false
    public var sealed = false
    public var recovered = false

    public var isValid: Bool { problems.isEmpty }
    public var firstProblem: Problem? { problems.first }
}

extension CaptureFile {
    /// Checks the whole file. `trustedKey` (a raw Ed25519 public key) pins who must have signed it;
    /// without it, signatures are checked against the key the file names, which proves
    /// integrity but not origin.
    public func verify(trustedKey: [UInt8]? = nil) -> VerificationReport {
        withBytes { file in
            var v = Verifier(file: file, capture: self, trustedKey: trustedKey)
            return v.run()
        }
    }
}

extension VerificationReport {
    /// Opens and verifies `path`. A damaged file header is a failed check (the file is a
    /// capture, but changed); only a file that cannot be read, is not a capture, or needs
    /// a newer reader throws.
    public static func verifying(path: String, trustedKey: [UInt8]? = nil) throws(CaptureError) -> VerificationReport {
        do {
            return try CaptureFile(path: path).verify(trustedKey: trustedKey)
        } catch where error.kind == .corrupt {
            var report = VerificationReport()
            report.problems = [Problem(location: "header", offset: error.offset ?? 0, message: error.message)]
            return report
        }
    }
}

struct Verifier {
    let file: UnsafeRawBufferPointer
    let capture: CaptureFile
    let trustedKey: [UInt8]?
    var report = VerificationReport()

    init(file: UnsafeRawBufferPointer, capture: CaptureFile, trustedKey: [UInt8]?) {
        self.file = file; self.capture = capture; self.trustedKey = trustedKey
    }

    mutating func problem(_ location: String, _ offset: Int, _ message: String) {
        report.problems.append(.init(location: location, offset: offset, message: message))
    }

    mutating func run() -> VerificationReport {
        let header = capture.header
        let signer = header.signingPublicKey
        report.signerKeyID = SigningKey.keyID(of: signer)
        if SigningKey.keyID(of: signer) != header.signingKeyID {
            problem("header", CaptureLayout.fileHeaderFixedSize, "signing key id \(header.signingKeyID) does not match the embedded public key")
        }
        if let trustedKey {
            report.keyPinned = true
            if trustedKey != signer {
                problem("header", CaptureLayout.fileHeaderFixedSize,
                        "file is signed by key \(report.signerKeyID), not the trusted key \(SigningKey.keyID(of: trustedKey))")
            }
        }
        var chain = Array(SHA256.hash(data: UnsafeRawBufferPointer(rebasing: file[0..<capture.headerLength])))
        var offset = capture.headerLength
        var nextSequence: UInt64 = 1
        var summary = SummaryBuilder()
        var spans = ExchangeSpanBuilder()
        var spansKnown = true
        var scanned: [BlockInfo] = []
        // Where an intact trailer says the footer is: names a damaged block at that offset "footer"
        // even when the damage hides its type or length.
        let footerHint = (try? Trailer.parse(file)).flatMap { Int(exactly: $0.footerOffset) }

        while offset < file.count {
            let location = "block \(scanned.count)"
            let info: BlockInfo
            do {
                info = try BlockInfo.parse(file, at: offset)
            } catch {
                // A damaged length makes everything after unreachable by walking; that is the first fault.
                let isTrailer = file.count - offset == CaptureLayout.trailerSize && scanned.count > 0
                    && UnsafeRawBufferPointer(rebasing: file[offset..<(offset + 4)]).elementsEqual(CaptureLayout.trailerMagic)
                let name = isTrailer ? "trailer" : offset == footerHint || Verifier.isPartialFooter(file, at: offset) ? "footer" : location
                problem(name, error.offset ?? offset, isTrailer ? "found where a block or footer was expected" : error.message)
                return report
            }
            let end = offset + Int(info.length)
            let bodyEnd = info.payloadOffset + Int(info.storedLength)
            let crcOK = crc32(UnsafeRawBufferPointer(rebasing: file[offset..<(end - 8)])) == file.le(end - 8, as: UInt32.self)
            // The type byte is trusted when the CRC holds; otherwise the block is named by where it is.
            let isFooter = crcOK || footerHint == nil
                ? info.type == .footer
                : offset == footerHint || end + CaptureLayout.trailerSize == file.count
            let name = isFooter ? "footer" : location
            let storedChain = Array(file[bodyEnd..<(bodyEnd + 32)])
            let signature = Array(file[(bodyEnd + 32)..<(bodyEnd + 96)])
            let repeated: UInt32 = file.le(end - 4)
            if repeated != info.length {
                problem(name, end - 4, "block length at its end (\(repeated)) differs from its start (\(info.length))")
            }
            if !crcOK { problem(name, end - 8, "block CRC mismatch: bytes \(offset)..<\(end - 8) were changed") }
            var h = SHA256()
            h.update(data: chain)
            h.update(bufferPointer: UnsafeRawBufferPointer(rebasing: file[offset..<bodyEnd]))
            let computed = Array(h.finalize())
            if crcOK && computed != storedChain {
                problem(name, bodyEnd, "hash chain broken: this block does not follow the previous one (a block was removed, reordered or replaced)")
            }
            chain = storedChain
            let key = isFooter ? sealerKey() : signer
            if !SigningKey.verify(signature: signature, message: CaptureLayout.blockSignatureContext + storedChain, publicKey: key) {
                problem(name, bodyEnd + 32, "Ed25519 signature does not verify with key \(SigningKey.keyID(of: key))")
            }
            if isFooter {
                checkFooter(info, summary: summary.build(), blocks: scanned, spans: spansKnown ? spans.build(count: scanned.count) : nil)
                checkTrailer(footerOffset: offset, footerEnd: end, chain: storedChain)
                return report
            }
            if crcOK {
                spansKnown = checkEvents(info, name: name, next: &nextSequence, summary: &summary, spans: &spans, block: scanned.count) && spansKnown
            } else {
                spansKnown = false
                // The damage is reported; the next block is checked against where this one says it
                // ends, so one changed byte is not also reported as missing events after it.
                nextSequence = info.lastSequence &+ 1
            }
            var indexed = info
            indexed.offset = UInt64(offset)
            scanned.append(indexed)
            report.blocksChecked += 1
            offset = end
        }
        problem("trailer", offset, offset == capture.headerLength && scanned.isEmpty
                ? "file ends after its header: no blocks, no footer (the writer did not close it)"
                : "file ends after block \(scanned.count - 1) without footer or trailer: truncated or not closed; `sessinfo --recover` can seal a copy")
        return report
    }

    /// A footer cut off or damaged after its magic and type byte (a file cut inside its footer).
    static func isPartialFooter(_ file: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        file.count - offset > 8 && file[offset + 8] == BlockType.footer.rawValue
            && UnsafeRawBufferPointer(rebasing: file[offset..<(offset + 4)]).elementsEqual(CaptureLayout.blockMagic)
    }

    /// The key that sealed the footer and trailer: the trailer's, else the footer's, else the signer.
    func sealerKey() -> [UInt8] {
        capture.trailer?.sealerPublicKey ?? capture.footer?.sealerPublicKey ?? capture.header.signingPublicKey
    }

    /// Returns false when the block's events could not be decoded.
    mutating func checkEvents(_ info: BlockInfo, name: String, next: inout UInt64, summary: inout SummaryBuilder,
                              spans: inout ExchangeSpanBuilder, block: Int) -> Bool {
        let events: [Event]
        do {
            let raw = try CaptureFile.payload(file, info)
            events = try raw.withUnsafeBytes { try EventStream.decode($0, expectedCount: Int(info.eventCount)) }
        } catch {
            problem(name, info.payloadOffset, "events cannot be decoded: \(error)")
            next = info.lastSequence &+ 1
            return false
        }
        var terms = Set<String>()
        var kinds: UInt32 = 0
        for (i, e) in events.enumerated() {
            if e.sequence != next {
                problem(name, info.payloadOffset, "event \(i) has sequence \(e.sequence), expected \(next): events are missing or out of order")
                next = e.sequence
            }
            next &+= 1
            kinds |= 1 << UInt32(e.kindCode & 31)
            SearchTerms.of(e, into: &terms)
            summary.add(e)
            spans.add(exchangeID: e.exchangeID, block: block)
        }
        report.eventsChecked += UInt64(events.count)
        let header = (UInt32(events.count), events.first?.sequence ?? 0, events.last?.sequence ?? 0,
                      events.first?.wallMicros ?? 0, events.last?.wallMicros ?? 0, kinds)
        if header != (info.eventCount, info.firstSequence, info.lastSequence, info.firstMicros, info.lastMicros, info.kinds) {
            problem(name, Int(info.offset) + 20, "block header (count, sequence, time or kinds) does not match its events")
        }
        if TermFilter(terms: terms) != info.filter {
            problem(name, Int(info.offset) + CaptureLayout.blockFixedSize, "term filter does not match its events")
        }
        return true
    }

    /// `spans`: the exact spans computed from the events (nil when some block could not be decoded).
    mutating func checkFooter(_ info: BlockInfo, summary: SessionSummary, blocks: [BlockInfo], spans: [ExchangeSpan]?) {
        let footer: Footer
        do {
            footer = try Footer(decoding: CaptureFile.payload(file, info))
        } catch {
            problem("footer", info.payloadOffset, "footer cannot be decoded: \(error)")
            return
        }
        let at = Int(info.offset)
        if footer.sessionID != capture.header.sessionID {
            problem("footer", at, "footer belongs to session \(footer.sessionID), not \(capture.header.sessionID)")
        }
        // Spans exist only in the footer's index (1.1): compared apart, as a promise that must hold.
        var indexed = footer.blocks
        for i in indexed.indices { indexed[i].exchangeSpan = nil }
        if let spans, indexed.count == spans.count {
            for (i, (entry, exact)) in zip(footer.blocks, spans).enumerated() {
                guard let recorded = entry.exchangeSpan else { continue }
                if !recorded.covers(exact) || Int(recorded.before) > i || i + Int(recorded.after) >= spans.count {
                    problem("footer", at, "block index entry \(i): exchange span (\(recorded.before) before, \(recorded.after) after) "
                            + "does not match its events (they reach \(exact.before) before, \(exact.after) after)")
                    break
                }
            }
        }
        if indexed != blocks {
            let i = zip(indexed, blocks).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(footer.blocks.count, blocks.count)
            problem("footer", at, "block index differs from the blocks in the file (first at entry \(i); index has \(footer.blocks.count), file has \(blocks.count))")
        }
        if footer.summary != summary {
            problem("footer", at, "session summary differs from the one computed from the events")
        }
        if footer.sealerPublicKey != sealerKey() {
            problem("footer", at, "footer names a different sealer key than the trailer")
        }
        report.recovered = footer.recovery != nil
    }

    mutating func checkTrailer(footerOffset: Int, footerEnd: Int, chain: [UInt8]) {
        let expectedEnd = footerEnd + CaptureLayout.trailerSize
        guard file.count >= expectedEnd else {
            problem("trailer", footerEnd, "trailer cut off: \(file.count - footerEnd) of \(CaptureLayout.trailerSize) bytes present")
            return
        }
        if file.count > expectedEnd {
            problem("trailer", expectedEnd, "\(file.count - expectedEnd) unexpected bytes after the trailer")
            return
        }
        let trailer: Trailer
        do {
            trailer = try Trailer.parse(file)
        } catch {
            problem("trailer", error.offset ?? footerEnd, error.message)
            return
        }
        report.sealed = true
        report.sealerKeyID = SigningKey.keyID(of: trailer.sealerPublicKey)
        if trailer.footerOffset != UInt64(footerOffset) {
            problem("trailer", footerEnd + 8, "trailer points to a footer at \(trailer.footerOffset), but the footer is at \(footerOffset)")
        }
        if trailer.finalChainHash != chain {
            problem("trailer", footerEnd + 16, "final chain hash differs from the footer's")
        }
        if !trailer.signatureIsValid {
            problem("trailer", footerEnd + 80, "trailer signature does not verify")
        }
        let recovered = trailer.flags.contains(.recovered)
        if recovered != report.recovered {
            problem("trailer", footerEnd + 4, "trailer and footer disagree on whether the file was recovered")
        }
        // A writer seals with its own key; only a recovery may be sealed by another.
        if !recovered && trailer.sealerPublicKey != capture.header.signingPublicKey {
            problem("trailer", footerEnd + 48, "sealed by key \(SigningKey.keyID(of: trailer.sealerPublicKey)), not the file's signing key, yet not marked recovered")
        }
    }
}
