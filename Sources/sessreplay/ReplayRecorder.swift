import CaptureFormat
import Forensics
import Foundation
import ProxyCore

/// Writes a session's replay as a capture through the CaptureFormat writer: the header links it
/// to the original (attributes `replay.*`, docs/capture-format.md), each replayed request with
/// its original exchange id and its results as the gate records them, each request skipped for
/// safety as a request with a `sessreplay` deny decision.
final class ReplayRecorder {
    struct Setup: Sendable {
        var path: String
        var header: SessionHeader
        var key: SigningKey
    }

    let writer: CaptureWriter
    var path: String { writer.path }
    var requests: UInt64 = 0, refused: UInt64 = 0, errors: UInt64 = 0, rows: UInt64 = 0

    init(_ setup: Setup, startupParameters: [KeyValue]) throws {
        writer = try ReplayCapture.writer(path: setup.path, header: setup.header, key: setup.key, startupParameters: startupParameters)
    }

    /// The header of a replay of `source` against `target`.
    static func header(of source: ReplaySource, target: String, settings: [KeyValue]) -> SessionHeader {
        ReplayCapture.header(of: source.header, path: source.path, finalChainHash: source.finalChainHash, target: target, settings: settings,
                             protocolName: "postgres")
    }

    /// `parsed`: the named prepared statement this replay parsed for the request (an annotation
    /// `replay.parsed` says so; executions of a statement already parsed carry none).
    func replayed(_ step: ReplayStep, _ reply: ReplayReply, parsed: String? = nil) throws {
        requests += 1
        rows += reply.rows
        try writer.append(.request(.postgres(step.request)), exchangeID: step.exchangeID)
        if let parsed { try writer.append(.annotation(Annotation(attributes: [KeyValue("replay.parsed", parsed)])), exchangeID: step.exchangeID) }
        // COPY data both ways, as the gate records it: what was sent, then what came back.
        for chunk in step.copyIn ?? [] { try writer.append(.streamChunk(StreamChunk(stream: .stdin, data: chunk)), exchangeID: step.exchangeID) }
        for chunk in reply.copyOut { try writer.append(.streamChunk(StreamChunk(stream: .stdout, data: chunk)), exchangeID: step.exchangeID) }
        for r in reply.responses {
            if r.error != nil { errors += 1 }
            try writer.append(.response(.postgres(r)), exchangeID: step.exchangeID)
        }
    }

    func skipped(_ step: ReplayStep, _ reason: SkipReason) throws {
        // Not forwarded by the gate, or outside the window: not part of the replay at all.
        switch reason {
        case .notForwarded, .outsideWindow: return
        default: break
        }
        requests += 1
        refused += 1
        try writer.append(.request(.postgres(step.request)), exchangeID: step.exchangeID)
        try writer.append(.decision(Decision(action: .deny, policy: "sessreplay", rule: reason.kind, reason: reason.description)), exchangeID: step.exchangeID)
    }

    func finish(reason: String, detail: String, outcome: SessionOutcome) throws {
        try writer.append(.sessionEnd(SessionEnd(reason: reason, detail: detail,
                                                 counts: SessionCounts(requests: requests, refused: refused, errors: errors, rows: rows))))
        try writer.close()
    }
}
