import CaptureFormat
import Foundation

/// A capture checked with CaptureFormat's verifier and sorted into the states an evidence
/// bundle accepts, or refused with every problem the verifier found.
public enum IntegrityCheck: Sendable, Equatable {
    case accepted(Integrity)
    case damaged([VerificationReport.Problem])

    /// Verifies `capture` and classifies it. `trustedKeys` pins the capture signers: when given,
    /// the file's signer must be one of them.
    public static func check(_ capture: CaptureFile, trustedKeys: [[UInt8]]) -> IntegrityCheck {
        let signer = capture.header.signingPublicKey
        // With several pinned keys, check against the one the file names if it is pinned, so that
        // a mismatch is reported only when none fits.
        let pin: [UInt8]? = trustedKeys.isEmpty ? nil : (trustedKeys.first { $0 == signer } ?? trustedKeys[0])
        let report = capture.verify(trustedKey: pin)
        return classify(capture, report)
    }

    /// A capture that verifies is clean or recovered; an unsealed one is accepted as truncated only
    /// when the verifier's single problem is the cut itself, at or after the end of the last
    /// complete block, and every block before it verified. Anything else is damage.
    public static func classify(_ capture: CaptureFile, _ report: VerificationReport) -> IntegrityCheck {
        let fileLength = UInt64(capture.fileSize)
        var integrity = Integrity(state: .clean, blocks: report.blocksChecked, events: report.eventsChecked,
                                  lastSequence: report.eventsChecked, signerKeyId: report.signerKeyID,
                                  sealerKeyId: report.sealerKeyID, keyPinned: report.keyPinned, fileLength: fileLength)
        switch capture.state {
        case .sealed:
            guard report.isValid else { return .damaged(report.problems) }
            if let r = capture.footer?.recovery {
                integrity.state = .recovered
                integrity.recovery = RecoveryRecord(originalLength: r.originalLength, keptLength: r.keptLength, reason: r.reason,
                                                    recovered: isoTime(micros: r.recoveredMicros))
            }
            return .accepted(integrity)
        case .unsealed(let complete, _, let reason):
            guard report.problems.count == 1, let cut = report.problems.first, cut.offset >= complete,
                  report.blocksChecked == capture.blocks.count else {
                return .damaged(report.problems)
            }
            integrity.state = .truncated
            integrity.sealerKeyId = nil
            integrity.completeLength = UInt64(complete)
            integrity.cut = reason
            return .accepted(integrity)
        }
    }
}

extension Integrity {
    /// The state in a few words: clean close, recovered copy, truncated at byte N of M.
    public var stateText: String {
        switch state {
        case .clean: "clean close"
        case .recovered: "recovered copy (sealed by key \(sealerKeyId ?? "?"))"
        case .truncated: "truncated at byte \(completeLength ?? 0) of \(fileLength)"
        }
    }

    /// One line for people: what state, how much verified, which key.
    public var summaryText: String {
        var s = stateText
        s += "; \(blocks) block\(blocks == 1 ? "" : "s"), \(events) events, sequence 1–\(lastSequence) without gaps"
        s += keyPinned ? "; signed by pinned key \(signerKeyId)" : "; signed by key \(signerKeyId) (named by the file, not pinned)"
        return s
    }

    /// Where a recomputed result differs from a declared one, in words; empty when they agree.
    /// Pinning is not compared: it depends on the options of each run, not on the file.
    public func differences(fromDeclared declared: Integrity) -> [String] {
        var out: [String] = []
        if state != declared.state {
            switch (state, declared.state) {
            case (.truncated, _):
                out.append("capture is truncated at byte \(completeLength ?? 0) (\(cut ?? "")), but the manifest declares a \(declared.state == .clean ? "clean close" : "recovered copy")")
            default:
                out.append("capture is \(state.rawValue), but the manifest declares it \(declared.state.rawValue)")
            }
            return out
        }
        if completeLength != declared.completeLength {
            out.append("capture's complete blocks end at byte \(completeLength.map(String.init) ?? "-"), the manifest declares \(declared.completeLength.map(String.init) ?? "-")")
        }
        if fileLength != declared.fileLength { out.append("capture is \(fileLength) bytes, the manifest declares \(declared.fileLength)") }
        if blocks != declared.blocks || events != declared.events || lastSequence != declared.lastSequence {
            out.append("capture has \(blocks) blocks and \(events) events (sequence 1–\(lastSequence)); the manifest declares \(declared.blocks) blocks and \(declared.events) events (1–\(declared.lastSequence))")
        }
        if signerKeyId != declared.signerKeyId { out.append("capture is signed by key \(signerKeyId), the manifest declares \(declared.signerKeyId)") }
        if sealerKeyId != declared.sealerKeyId {
            out.append("capture is sealed by key \(sealerKeyId ?? "none"), the manifest declares \(declared.sealerKeyId ?? "none")")
        }
        if recovery != declared.recovery { out.append("capture's recovery record differs from the manifest's") }
        return out
    }
}
