import CaptureFormat
import Foundation

/// What `sessinfo` says about one capture: built from the header and footer
/// (or, for an unsealed file, from its events), rendered as text or JSON.
public struct SessionReport: Sendable {
    public let capture: CaptureFile
    public let summary: SessionSummary
    /// nil when there is no trailer to check.
    public let trailerSignatureValid: Bool?

    public init(_ capture: CaptureFile) throws {
        self.capture = capture
        summary = try capture.summary()
        trailerSignatureValid = capture.trailer.map { $0.signatureIsValid }
    }

    public var stateText: String {
        switch capture.state {
        case .sealed(let flags):
            var s = flags.contains(.recovered) ? "sealed (recovered copy)" : "sealed (clean close)"
            if trailerSignatureValid == false { s += ", TRAILER SIGNATURE INVALID" }
            if let r = capture.footer?.recovery {
                s += "; original was \(r.originalLength) bytes, cut after byte \(r.keptLength): \(r.reason)"
            }
            return s
        case .unsealed(let complete, let length, let reason):
            return "TRUNCATED (\(length) bytes, \(length - complete) after the last complete block): \(reason)"
        }
    }

    public func text(terminal: Terminal) -> String {
        let h = capture.header
        var lines: [(String, String)] = []
        func add(_ k: String, _ v: String) { lines.append((k, v)) }
        add("File", capture.path)
        add("Format", "Tollgate capture \(capture.majorVersion).\(capture.minorVersion)")
        let state = capture.state.isSealed && trailerSignatureValid != false
            ? terminal.paint(stateText, capture.footer?.recovery == nil ? .ok : .warn)
            : terminal.paint(stateText, .bad)
        add("State", state + (capture.state.isSealed ? " (run --verify to check every block)" : ""))
        add("Session", h.sessionID)
        add("Subject", h.subject + (h.groups.isEmpty ? "" : " (groups: \(h.groups.joined(separator: ", ")))"))
        if !h.issuer.isEmpty { add("Issuer", h.issuer) }
        add("Target", "\(h.target) (\(h.protocolName))")
        add("Proxy", h.proxyID)
        add("Signing key", h.signingKeyID)
        add("Start", isoTime(micros: h.startMicros))
        if summary.eventCount > 0 {
            add("Last event", isoTime(micros: summary.lastMicros))
            add("Duration", String(format: "%.3f s", Double(summary.lastMicros - h.startMicros) / 1_000_000))
        }
        add("Events", "\(summary.eventCount)" + tally(summary.kindCounts.map { NamedCount(EventKind.displayName(summaryName: $0.name), $0.count) }))
        add("Exchanges", "\(summary.exchanges)")
        add("Decisions", summary.decisionCounts.isEmpty ? "none" : summary.decisionCounts.map { "\($0.name) \($0.count)" }.joined(separator: ", "))
        add("Errors", "\(summary.errors)")
        add("Masked values", summary.maskedCounts.isEmpty ? "none" : summary.maskedCounts.map { "\($0.name) \($0.count)" }.joined(separator: ", "))
        let shown = summary.resources.prefix(8).joined(separator: ", ")
        add("Resources", summary.resources.isEmpty ? "none" : shown + (summary.resources.count > 8 ? " (+\(summary.resources.count - 8) more)" : ""))
        add("Bytes in/out", "\(humanBytes(summary.requestBytes)) / \(humanBytes(summary.responseBytes))")
        add("Blocks", "\(capture.blocks.count)")
        add("File size", humanBytes(capture.fileSize))
        add("Events raw/stored", "\(humanBytes(capture.rawEventBytes)) / \(humanBytes(capture.storedEventBytes)) (\(ratioText))")
        add("End reason", summary.endReason.isEmpty ? "none recorded" : summary.endReason)
        let width = lines.map(\.0.count).max() ?? 0
        return lines.map { "\($0.0 + ":")\(String(repeating: " ", count: width - $0.0.count + 1))\($0.1)" }.joined(separator: "\n")
    }

    var ratio: Double {
        capture.storedEventBytes == 0 ? 1 : Double(capture.rawEventBytes) / Double(capture.storedEventBytes)
    }

    var ratioText: String { String(format: "compression %.1fx", ratio) }

    func tally(_ counts: [NamedCount]) -> String {
        counts.isEmpty ? "" : " (" + counts.map { "\($0.name) \($0.count)" }.joined(separator: ", ") + ")"
    }

    public func json() -> String {
        let h = capture.header
        var w = JSONWriter()
        w.object { o in
            o.string("file", capture.path)
            o.string("format_version", "\(capture.majorVersion).\(capture.minorVersion)")
            o.object("state") { s in
                s.bool("sealed", capture.state.isSealed)
                s.bool("recovered", capture.footer?.recovery != nil)
                if let valid = trailerSignatureValid { s.bool("trailer_signature_valid", valid) }
                if case .unsealed(let complete, _, let reason) = capture.state {
                    s.number("complete_length", complete)
                    s.string("reason", reason)
                }
                if let r = capture.footer?.recovery {
                    s.object("recovery") {
                        $0.number("original_length", r.originalLength); $0.number("kept_length", r.keptLength)
                        $0.string("reason", r.reason); $0.string("time", isoTime(micros: r.recoveredMicros))
                    }
                }
            }
            o.string("session", h.sessionID)
            o.string("subject", h.subject)
            o.strings("groups", h.groups)
            o.field("issuer", h.issuer)
            o.string("target", h.target)
            o.string("protocol", h.protocolName)
            o.string("proxy", h.proxyID)
            o.string("signing_key_id", h.signingKeyID)
            o.string("start", isoTime(micros: h.startMicros))
            if summary.eventCount > 0 { o.string("last_event", isoTime(micros: summary.lastMicros)) }
            o.number("events", summary.eventCount)
            o.object("kinds") { k in for c in summary.kindCounts { k.number(EventKind.displayName(summaryName: c.name), c.count) } }
            o.number("exchanges", summary.exchanges)
            o.object("decisions") { k in for c in summary.decisionCounts { k.number(c.name, c.count) } }
            o.number("errors", summary.errors)
            o.object("masked") { k in for c in summary.maskedCounts { k.number(c.name, c.count) } }
            o.array("resources") { a in for r in summary.resources { a.string(nil, r) } }
            o.number("request_bytes", summary.requestBytes)
            o.number("response_bytes", summary.responseBytes)
            o.number("blocks", capture.blocks.count)
            o.number("file_size", capture.fileSize)
            o.number("raw_event_bytes", capture.rawEventBytes)
            o.number("stored_event_bytes", capture.storedEventBytes)
            o.field("end_reason", summary.endReason)
        }
        return w.text
    }
}

extension VerificationReport {
    public func text(path: String, terminal: Terminal) -> String {
        guard let first = firstProblem else {
            var s = terminal.paint("OK", .ok) + "  \(path): \(blocksChecked) blocks, \(eventsChecked) events; CRCs, hash chain and signatures hold"
            s += keyPinned ? "; signed by trusted key \(signerKeyID)" : "; signed by key \(signerKeyID) (named by the file; pass --key to pin it)"
            if recovered, let sealer = sealerKeyID { s += "; RECOVERED copy sealed by key \(sealer)" }
            return s
        }
        var s = terminal.paint("FAILED", .bad) + "  \(path): \(first)"
        if problems.count > 1 {
            s += "\n        and \(problems.count - 1) more:"
            for p in problems.dropFirst().prefix(20) { s += "\n        \(p)" }
            if problems.count > 21 { s += "\n        …" }
        }
        return s
    }

    public func json(path: String) -> String {
        var w = JSONWriter()
        w.object { o in
            o.string("file", path)
            o.bool("valid", isValid)
            o.number("blocks_checked", blocksChecked)
            o.number("events_checked", eventsChecked)
            o.string("signer_key_id", signerKeyID)
            if let sealerKeyID { o.string("sealer_key_id", sealerKeyID) }
            o.bool("key_pinned", keyPinned)
            o.bool("sealed", sealed)
            o.bool("recovered", recovered)
            o.array("problems") { a in
                for p in problems {
                    a.object { $0.string("location", p.location); $0.number("offset", p.offset); $0.string("message", p.message) }
                }
            }
        }
        return w.text
    }
}

/// One readable line per event, for `sessinfo --events`.
public func eventLine(_ e: Event, sessionStart: Int64, terminal: Terminal) -> String {
    let seq = String(e.sequence).leftPad(7)
    let time = String(isoTime(micros: e.wallMicros).dropFirst(11))  // HH:MM:SS.ffffffZ
    let rel = String(format: "+%.3fs", Double(e.wallMicros - sessionStart) / 1_000_000).leftPad(10)
    let ex = e.exchangeID == 0 ? "    " : "x\(e.exchangeID)".leftPad(4)
    let kind = (e.payload.kind?.name ?? "kind-\(e.kindCode)").padding(toLength: 13, withPad: " ", startingAt: 0)
    return "\(seq) \(time) \(terminal.paint(rel, .dim)) \(ex) \(terminal.paint(kind, .bold)) \(describe(e.payload, terminal: terminal))"
}

func describe(_ p: Payload, terminal: Terminal) -> String {
    switch p {
    case .sessionStart(let s):
        var parts = ["client \(s.clientAddress)"]
        if !s.applicationName.isEmpty { parts.append("app=\(s.applicationName)") }
        if let t = s.tls { parts.append("tls=\(t.version)") }
        return parts.joined(separator: " ")
    case .sessionEnd(let e):
        var s = e.reason + (e.detail.isEmpty ? "" : ": \(e.detail)")
        if let c = e.counts {
            s += "  (\(c.requests) requests, \(c.refused) refused, \(c.errors) errors, \(c.rows) rows,"
                + " \(c.bytesFromClient) bytes in, \(c.bytesToClient) bytes out)"
        }
        return s
    case .request(.postgres(let r)):
        return "[\(r.path.name)] " + oneLine(r.text, 160) + (r.parameters.isEmpty ? "" : "  (\(r.parameters.count) params)")
    case .request(.http(let h)):
        return "\(h.method) \(h.host)\(h.target)"
    case .request(.kubernetes(let k)):
        var s = "\(k.verb) \(k.resource)"
        if !k.namespace.isEmpty { s += " -n \(k.namespace)" }
        if !k.name.isEmpty { s += " \(k.name)" }
        if !k.subresource.isEmpty { s += "/\(k.subresource)" }
        if !k.command.isEmpty { s += " -- " + k.command.joined(separator: " ") }
        return s
    case .decision(let d):
        let style: Terminal.Style = d.action == .allow ? .ok : d.action == .deny ? .bad : .warn
        var s = terminal.paint(d.action.name, style)
        if !d.policy.isEmpty || !d.rule.isEmpty { s += " \(d.policy)/\(d.rule)" }
        if !d.reason.isEmpty { s += ": \(d.reason)" }
        return s
    case .approval(let a):
        var s = "\(a.state.name) \(a.approvalID)"
        if !a.by.isEmpty { s += " by \(a.by)" }
        if !a.reason.isEmpty { s += ": \(a.reason)" }
        if !a.approverGroups.isEmpty { s += " (approvers: \(a.approverGroups.joined(separator: ", ")))" }
        if !a.grantID.isEmpty { s += " [grant \(a.grantID)]" }
        return s
    case .response(.postgres(let r)):
        if let e = r.error { return terminal.paint("\(e.severity) \(e.sqlState)", .bad) + ": " + oneLine(e.message, 120) }
        var s = r.commandTag.isEmpty ? "\(r.rowCount) rows" : r.commandTag
        if !r.columns.isEmpty { s += " (\(r.columns.count) columns, \(r.rows.count) rows recorded)" }
        if let c = r.cut { s += ", \(c.rows) rows cut" }
        if r.durationMicros > 0 { s += ", \(r.durationMicros) µs" }
        return s
    case .request(.unknown(let u)), .response(.unknown(let u)):
        return "\(u.name), \(u.bytes.count) bytes"
    case .response(.http(let h)):
        var s = "\(h.status), \(humanBytes(h.body.totalSize))"
        if h.body.isTruncated { s += " (\(humanBytes(h.body.data.count)) recorded)" }
        return s
    case .streamChunk(let c):
        if c.stream == .resize { return "resize \(c.columns)x\(c.rows)" }
        return "\(c.stream.name) \(c.data.count) bytes: " + oneLine(String(decoding: c.data, as: UTF8.self), 80)
    case .maskSummary(let m):
        return m.entries.map { "\($0.detector)×\($0.count)" + ($0.location.isEmpty ? "" : " (\($0.location))") }.joined(separator: ", ")
    case .annotation(let a):
        var parts: [String] = []
        if !a.promptID.isEmpty { parts.append("prompt=\(a.promptID)") }
        if !a.traceparent.isEmpty { parts.append("traceparent=\(a.traceparent)") }
        for kv in a.attributes {
            parts.append((kv.key == Annotation.applicationNameKey ? "app" : kv.key) + "=" + oneLine(kv.value, 60))
        }
        if !a.text.isEmpty { parts.append(oneLine(a.text, 80)) }
        return parts.joined(separator: " ")
    case .divergence(let d):
        return "statement \(d.statement + 1): expected \(oneLine(d.expected, 60)), server answered \(oneLine(d.actual, 60))"
    case .unknown(let kind, let bytes):
        return "unknown kind \(kind), \(bytes.count) bytes"
    }
}

func oneLine(_ s: String, _ max: Int) -> String {
    let t = s.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    return t.count > max ? String(t.prefix(max - 1)) + "…" : t
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
