import CaptureFormat
import Forensics
import Foundation
import Masking
import ProxyCore

/// Writes an HTTP session's replay as a capture: the header links it to the original (the same
/// `replay.*` attributes as the PostgreSQL replay), each replayed request under its original
/// exchange id with its body as a stdin chunk, then the target's response recorded as the gate
/// records one (status, fields with credentials withheld, the body masked and capped, the
/// duration) and a mask summary; each request skipped for safety as a request with a
/// `sessreplay` deny decision.
final class HTTPReplayRecorder {
    struct Setup: Sendable {
        var path: String
        var header: SessionHeader
        var key: SigningKey
        var maxBodyBytes: Int
        var masks: ReplayMasks
    }

    let setup: Setup
    let writer: CaptureWriter
    var requests: UInt64 = 0, refused: UInt64 = 0, errors: UInt64 = 0

    init(_ setup: Setup) throws {
        self.setup = setup
        writer = try ReplayCapture.writer(path: setup.path, header: setup.header, key: setup.key)
    }

    static func header(of source: HTTPReplaySource, target: String, settings: [KeyValue]) -> SessionHeader {
        ReplayCapture.header(of: source.header, path: source.path, finalChainHash: source.finalChainHash, target: target, settings: settings,
                             protocolName: source.header.protocolName)
    }

    func request(_ step: HTTPReplayStep) throws {
        requests += 1
        try writer.append(.request(step.request), exchangeID: step.exchangeID)
        if !step.body.isEmpty { try writer.append(.streamChunk(StreamChunk(stream: .stdin, data: step.body)), exchangeID: step.exchangeID) }
    }

    func replied(_ step: HTTPReplayStep, _ reply: HTTPReplayReply) throws {
        if reply.status >= 400 { errors += 1 }
        let (body, tally) = Self.recordedBody(reply, masks: setup.masks, cap: setup.maxBodyBytes)
        var fields = RecordedFieldsForReplay.record(reply.fields)
        if let note = tally.note { fields.append(KeyValue("X-Tollgate-Replay", note)) }
        try writer.append(.response(.http(HTTPResponse(status: reply.status, headers: fields, body: body, durationMicros: reply.micros))),
                          exchangeID: step.exchangeID)
        if !tally.counts.isEmpty {
            try writer.append(.maskSummary(MaskSummary(entries: tally.counts.sorted { $0.key < $1.key }.map {
                MaskCount(detector: $0.key, count: UInt64($0.value), location: "body")
            })), exchangeID: step.exchangeID)
        }
    }

    /// A request the target could not answer (the connection failed mid-replay): on the record as a
    /// response with status 0 and why, as the gate records a cut exchange.
    func failed(_ step: HTTPReplayStep, _ why: String) throws {
        errors += 1
        try writer.append(.response(.http(HTTPResponse(status: 0, headers: [KeyValue("X-Tollgate-Error", why)]))), exchangeID: step.exchangeID)
    }

    func skipped(_ step: HTTPReplayStep, _ reason: SkipReason) throws {
        switch reason {
        case .notForwarded, .outsideWindow: return
        default: break
        }
        requests += 1
        refused += 1
        try writer.append(.request(step.request), exchangeID: step.exchangeID)
        try writer.append(.decision(Decision(action: .deny, policy: "sessreplay", rule: reason.kind, reason: reason.description)), exchangeID: step.exchangeID)
    }

    func finish(reason: String, detail: String) throws {
        try writer.append(.sessionEnd(SessionEnd(reason: reason, detail: detail,
                                                 counts: SessionCounts(requests: requests, refused: refused, errors: errors, rows: 0))))
        try writer.close()
    }

    struct Tally {
        var counts: [String: Int] = [:]
        /// Why the body is not recorded as it came, when it is not.
        var note: String?
    }

    /// As the gate records a body: text, JSON, XML or untyped bodies through the masks (for a
    /// Kubernetes capture, JSON through the Secret masking first), capped with the size and a
    /// SHA-256 of the rest, the secrets pass on what is kept. A body in a Content-Encoding cannot
    /// be masked: only its size is recorded (the gate answers such a response 502).
    static func recordedBody(_ reply: HTTPReplayReply, masks: ReplayMasks, cap: Int) -> (CappedBytes, Tally) {
        var tally = Tally()
        var body = reply.body
        if let encoding = reply.fields.first(where: { $0.key.lowercased() == "content-encoding" })?.value,
           encoding.lowercased() != "identity" {
            tally.note = "body in Content-Encoding \(encoding) not recorded (it cannot be masked)"
            return (CappedBytes(data: [], totalSize: UInt64(body.count)), tally)
        }
        let type = reply.fields.first(where: { $0.key.lowercased() == "content-type" })?.value.lowercased() ?? ""
        let isJSON = type.contains("json")
        let maskable = type.isEmpty || type.hasPrefix("text/") || isJSON || type.contains("xml")
        if masks.kubernetes, isJSON {
            do {
                let r = try KubernetesSecretMasking.mask(body)
                body = r.bytes
                if r.masked > 0 { tally.counts[KubernetesSecretMasking.detectorName.rawValue, default: 0] += r.masked }
            } catch {
                tally.note = "body not recorded: \(error.description)"
                return (CappedBytes(data: [], totalSize: UInt64(reply.body.count)), tally)
            }
        }
        if maskable, let session = masks.session, let m = session.mask(body) {
            body = m.bytes
            for (name, n) in m.counts { tally.counts[name.rawValue, default: 0] += n }
        }
        var capped = CappedBytes(capping: body, at: cap)
        if let s = masks.secrets.mask(capped.data) { capped.data = s.bytes }
        return (capped, tally)
    }
}

/// Response fields as the capture keeps them (as the gate's `RecordedFields`): credential
/// fields' values withheld.
enum RecordedFieldsForReplay {
    static let credentials: Set<String> = ["authorization", "proxy-authorization", "cookie", "set-cookie"]

    static func record(_ fields: [KeyValue]) -> [KeyValue] {
        fields.map { KeyValue($0.key, credentials.contains($0.key.lowercased()) ? "(withheld)" : $0.value) }
    }
}
