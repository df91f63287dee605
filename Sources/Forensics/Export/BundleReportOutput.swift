import CaptureFormat
import Foundation

extension BundleReport {
    /// The verify result for people: what held, then every failure with its file and cause.
    public func text(terminal: Terminal) -> String {
        let ok = terminal.paint("OK", .ok), failed = terminal.paint("FAILED", .bad)
        var lines: [String] = []
        let m = manifest!
        lines.append("Bundle:    \(bundle) (\(isArchive ? "tar archive" : "directory")), made \(m.created) by \(m.exporter.name) with sessexport \(m.tool.version)")
        if let c = m.case { lines.append("Case:      \(c.id ?? "-")" + (c.note.map { ": \($0)" } ?? "")) }
        let sigFailures = failures.filter { $0.check == "signature" || $0.check == "key" }
        if sigFailures.isEmpty {
            lines.append("\(ok)        manifest signature: Ed25519 by exporter key \(exporterKeyID)"
                         + (exporterPinned ? " (trusted key given with --key: origin proven)"
                                           : "; ORIGIN NOT PROVEN: the bundle names this key itself; pass --key EXPORTER.pem to pin it"))
        }
        let fileFailures = failures.filter { $0.check == "file" || $0.check == "unlisted" }
        if fileFailures.isEmpty {
            lines.append("\(ok)        files: \(filesChecked) listed, every one present with its SHA-256 and size; nothing unlisted")
        }
        for s in sessions where s.ok {
            let i = s.integrity!
            lines.append("\(ok)        \(s.capture): \(i.summaryText)" + (i.state == .truncated ? " (as the manifest declares)" : ""))
        }
        if !captureKeysPinned && sessions.contains(where: \.ok) {
            lines.append("          captures are checked against the keys they name; pass --capture-key PROXY.pem to prove they come from the gate")
        }
        if derivedChecked == true, let m = manifest {
            let done = m.sessions.count - derivedSkipped.count
            lines.append("\(ok)        open formats: rendered again from " + (derivedSkipped.isEmpty ? "the captures" : "\(done) of \(m.sessions.count) captures (the others failed)") + ", identical")
        }
        for n in notes { lines.append("note      \(n)") }
        for f in failures { lines.append("\(failed)    \(f.file): \(f.message)") }
        lines.append(isValid ? terminal.paint("VERIFIED", .ok) + ": every check holds"
                             : terminal.paint("NOT VERIFIED", .bad) + ": \(failures.count) failure\(failures.count == 1 ? "" : "s")")
        return lines.joined(separator: "\n")
    }

    public func json() -> String {
        var w = JSONWriter()
        w.object { o in
            o.string("bundle", bundle)
            o.string("format", isArchive ? "tar" : "directory")
            o.bool("valid", isValid)
            o.bool("origin_proven", originProven)
            o.object("manifest") { j in
                j.bool("signature_valid", signatureValid)
                j.string("exporter_key_id", exporterKeyID)
                j.bool("exporter_key_pinned", exporterPinned)
                if let m = manifest {
                    j.string("created", m.created)
                    j.string("exporter", m.exporter.name)
                    if let id = m.case?.id { j.string("case", id) }
                }
            }
            o.number("files_checked", filesChecked)
            o.bool("capture_keys_pinned", captureKeysPinned)
            o.array("sessions") { a in
                for s in sessions {
                    a.object { j in
                        j.string("session", s.session)
                        j.string("capture", s.capture)
                        j.bool("ok", s.ok)
                        if let i = s.integrity {
                            j.string("state", i.state.rawValue)
                            j.number("blocks", i.blocks)
                            j.number("events", i.events)
                            j.number("last_sequence", i.lastSequence)
                            j.string("signer_key_id", i.signerKeyId)
                            j.bool("key_pinned", i.keyPinned)
                            if let c = i.completeLength { j.number("complete_length", c) }
                        }
                    }
                }
            }
            if let d = derivedChecked { o.bool("derived_identical", d) } else { o.null("derived_identical") }
            o.array("derived_skipped") { a in for s in derivedSkipped { a.string(nil, s) } }
            o.array("notes") { a in for n in notes { a.string(nil, n) } }
            o.array("failures") { a in
                for f in failures { a.object { $0.string("file", f.file); $0.string("check", f.check); $0.string("message", f.message) } }
            }
        }
        return w.text
    }
}

extension CustodyLog.Report {
    public func text(path: String, terminal: Terminal) -> String {
        var lines: [String] = []
        for e in entries {
            lines.append("\(String(e.seq).leftPad(5))  \(e.time)  \(e.who.name) (\(e.who.user)@\(e.who.host))  \(e.case?.id.map { "case \($0)  " } ?? "")"
                         + "\(e.sessions.count) session\(e.sessions.count == 1 ? "" : "s") -> \(e.bundle.path)  manifest \(e.bundle.manifestSha256.prefix(16))…")
        }
        if isValid {
            lines.append(terminal.paint("OK", .ok) + "  \(path): \(entries.count) entr\(entries.count == 1 ? "y" : "ies"); sequence, hash chain and signatures hold"
                         + (keyPinned ? " (signed by trusted keys)" : " (each checked with the key it names; pass --key to pin the exporters' keys)"))
        } else {
            for p in problems { lines.append(terminal.paint("FAILED", .bad) + "  \(path): \(p)") }
        }
        return lines.joined(separator: "\n")
    }

    public func json(path: String) -> String {
        var w = JSONWriter()
        w.object { o in
            o.string("log", path)
            o.bool("valid", isValid)
            o.number("entries", entries.count)
            o.bool("key_pinned", keyPinned)
            o.string("head_sha256", lastHash)
            o.array("problems") { a in for p in problems { a.object { $0.number("line", p.line); $0.string("message", p.message) } } }
        }
        return w.text
    }
}
