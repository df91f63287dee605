import CaptureFormat
import Masking

/// What every recorded value passes through before it reaches a capture: the session's own
/// masks, then the secrets pass (unless those masks already find secrets), then the value cap.
/// What is forwarded is never changed here; only what is recorded.
public struct RecordingMasks: Sendable {
    /// Applied to every capture when a session's masks do not already cover secrets.
    public static let secretsMasker = try! Masker(detectors: BuiltinDetector.secrets)

    /// The session's masks (nil: none apply to it).
    public let session: Masker?
    /// The secrets pass, when the session's masks do not already include it.
    public let secrets: Masker?
    /// Values longer than this are recorded cut, with a visible marker.
    public let maxValueBytes: Int
    let maskers: [Masker]

    public init(session: Masker?, maxValueBytes: Int) {
        self.session = session
        secrets = session.map { BuiltinDetector.secrets.isSubset(of: $0.detectors) } == true ? nil : Self.secretsMasker
        self.maxValueBytes = maxValueBytes
        maskers = [session, secrets].compactMap { $0 }
    }

    /// Client-supplied text as it may be recorded: what a mask or the secrets detectors find is masked.
    public func text(_ text: String) -> String {
        var text = text
        for masker in maskers {
            if let m = masker.maskText(text) { text = m.text }
        }
        return text
    }

    /// A recorded value after the secrets pass and the cap (a value the session's masks apply
    /// to was masked where it was sent; the record keeps what was sent).
    public func value(_ value: [UInt8]) -> [UInt8] {
        var value = value
        if let secrets, let m = secrets.mask(value) { value = m.bytes }
        return capped(value)
    }

    /// Data the client sent (COPY FROM STDIN, a request body) as recorded: masked as results are.
    public func clientData(_ data: [UInt8]) -> [UInt8] {
        var data = data
        if let session, let m = session.mask(data) { data = m.bytes }
        return value(data)
    }

    /// Values longer than the cap are recorded cut, with a visible marker, never silently.
    public func capped(_ value: [UInt8]) -> [UInt8] {
        guard value.count > maxValueBytes else { return value }
        return Array(value.prefix(maxValueBytes)) + Array("…[tollgate: \(value.count) bytes, cut]".utf8)
    }

    /// A notice or error as recorded: the client already got it through the session's masks;
    /// the record adds the secrets pass.
    public func notice(_ notice: PostgresNotice) -> PostgresNotice {
        guard let secrets else { return notice }
        var n = notice
        for keyPath in [\PostgresNotice.message, \.detail, \.hint] {
            if let m = secrets.maskText(n[keyPath: keyPath]) { n[keyPath: keyPath] = m.text; n.flags.insert(.masked) }
        }
        return n
    }

    /// A response as recorded: its diagnostics through the secrets pass.
    public func response(_ response: Response) -> Response {
        guard secrets != nil, case .postgres(var p) = response else { return response }
        if let error = p.error { p.error = notice(error) }
        p.notices = p.notices.map(notice)
        return .postgres(p)
    }

    /// An annotation as it may be recorded: masked as statement text is (it was read from the
    /// text as sent), with the session's application_name (not one a comment may claim).
    public func annotation(_ annotation: Annotation, applicationName: String) -> Annotation {
        var a = annotation
        a.promptID = text(a.promptID)
        a.traceparent = text(a.traceparent)
        a.text = text(a.text)
        a.attributes.removeAll { $0.key == Annotation.applicationNameKey }
        a.attributes = a.attributes.map { KeyValue(text($0.key), text($0.value)) }
        if !applicationName.isEmpty { a.attributes.append(KeyValue(Annotation.applicationNameKey, text(applicationName))) }
        return a
    }

    /// The request as it may be recorded: `recordedText` in place of its text, and its parameters
    /// masked as the text is (withheld entirely for a request that carries a credential). What
    /// is forwarded is the request as sent.
    /// A replaced parameter keeps its declared type and is flagged (format 1.4); its recorded
    /// value is text, whatever format it was sent in.
    public func request(_ request: consuming Request, text recordedText: String, textFlags: ValueFlags = [],
                        carriesSecret: Bool) -> Request {
        // Consumed, so the payload moves out instead of being copied (one retain per field, per request).
        var p: PostgresRequest
        switch consume request {
        case .http(var h):
            // Decided on the target as sent; recorded through the masks (a path or query may hold a value they find).
            h.target = text(h.target)
            h.headers = h.headers.map { KeyValue(text($0.key), text($0.value)) }
            return .http(h)
        case .kubernetes(var k):
            // The same for a Kubernetes call, and an exec's command line (a value typed into it is recorded masked).
            k.http.target = text(k.http.target)
            k.http.headers = k.http.headers.map { KeyValue(text($0.key), text($0.value)) }
            k.command = k.command.map { text($0) }
            return .kubernetes(k)
        case .postgres(let sent):
            p = sent
        case let other:
            return other
        }
        p.text = recordedText
        p.textFlags = textFlags
        if carriesSecret {
            p.parameters = p.parameters.map {
                // A NULL carries nothing: it stays NULL, and unflagged.
                Parameter(value: $0.value.map { _ in Array("[REDACTED]".utf8) }, format: 0, typeOID: $0.typeOID,
                          flags: $0.value == nil ? [] : .withheld)
            }
            return .postgres(p)
        }
        guard !p.parameters.isEmpty else { return .postgres(p) }
        for masker in maskers {
            // In place: a parameter nothing matched is not copied.
            for i in p.parameters.indices {
                guard let v = p.parameters[i].value, let m = masker.mask(v) else { continue }
                let old = p.parameters[i]
                p.parameters[i] = Parameter(value: old.format == 0 ? m.bytes : Array("[REDACTED]".utf8), format: 0, typeOID: old.typeOID,
                                            flags: old.flags.union(.masked))
            }
        }
        return .postgres(p)
    }
}
