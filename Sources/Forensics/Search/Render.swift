import CaptureFormat

/// How a found exchange is written: one readable line, or one JSON object with its full events.
public struct ExchangeRenderer: Sendable {
    public var json: Bool
    public var terminal: Terminal
    /// Coloured in the request on a terminal, as grep colours its matches.
    public var highlight: TextPattern?

    public init(json: Bool, terminal: Terminal, highlight: TextPattern? = nil) {
        self.json = json; self.terminal = terminal; self.highlight = highlight
    }

    /// `context`: shown around a match (-A/-B), not a match itself.
    func render(_ x: ExchangeEvents, capture: CaptureFile, context: Bool) -> String {
        let events = x.decoded()
        return json ? jsonLine(x, events, capture, context: context) : textLine(x, events, capture, context: context)
    }

    /// `SESSION:xN TIME SUBJECT TARGET OUTCOME REQUEST`; `-` instead of `:` marks a context line, as in grep.
    func textLine(_ x: ExchangeEvents, _ events: [Event], _ capture: CaptureFile, context: Bool) -> String {
        let h = capture.header
        let id = x.id == 0 ? "#\(x.firstSequence)" : "x\(x.id)"
        let where_ = terminal.paint(String(h.sessionID.prefix(8)) + (context ? "-" : ":") + id, .dim)
        let time = String(isoTime(micros: x.time).prefix(23)) + "Z"
        let (outcome, style) = ExchangeRenderer.outcome(events)
        var text = ExchangeRenderer.request(events, terminal: terminal)
        if terminal.colour, let h = highlight, h.searchesRequests, let marker = Highlighter(h) {
            text = marker.mark(text) { terminal.paint($0, .match) }
        }
        return "\(where_) \(time) \(h.subject) \(h.target) \(terminal.paint(outcome, style)) \(text)"
    }

    func jsonLine(_ x: ExchangeEvents, _ events: [Event], _ capture: CaptureFile, context: Bool) -> String {
        let h = capture.header
        var w = JSONWriter()
        w.object { o in
            o.string("file", capture.path)
            o.string("session", h.sessionID)
            if x.id != 0 { o.number("exchange", x.id) } else { o.null("exchange") }
            o.string("time", isoTime(micros: x.time))
            o.string("subject", h.subject)
            o.strings("groups", h.groups)
            o.string("target", h.target)
            o.string("protocol", h.protocolName)
            o.string("outcome", ExchangeRenderer.outcome(events).0)
            if context { o.bool("context", true) }
            o.array("events") { a in for e in events { a.object { e.writeJSON(&$0) } } }
        }
        return w.text
    }

    /// What the exchange came to: the decision, or the approval's outcome when it was reviewed.
    static func outcome(_ events: [Event]) -> (String, Terminal.Style) {
        var outcome = "-"
        var style = Terminal.Style.dim
        for e in events {
            switch e.payload {
            case .decision(let d):
                outcome = d.action.name
                style = d.action == .allow ? .ok : d.action == .deny ? .bad : .warn
            case .approval(let a) where a.state != .requested:
                outcome = a.state == .granted ? "approved" : a.state.name
                style = a.state.runs ? .ok : .bad
            default: break
            }
        }
        return (outcome, style)
    }

    /// The request on one line (or, for an exchange without one, its first event).
    static func request(_ events: [Event], terminal: Terminal) -> String {
        guard let first = events.first else { return "" }
        for e in events {
            guard case .request(let r) = e.payload else { continue }
            switch r {
            case .postgres(let p):
                let text = p.text.isEmpty && p.path == .functionCall ? "(function call)" : oneLine(p.text, 200)
                return text + (p.parameters.isEmpty ? "" : "  (\(p.parameters.count) params)")
            case .kubernetes(let k) where k.resource.isEmpty:
                // A non-resource URL (discovery: /api, /apis, /version): the path says what it was.
                return "\(k.verb) \(RequestFilter.path(of: k.http.target))"
            default:
                return describe(e.payload, terminal: terminal)
            }
        }
        return "\(first.payload.kind?.name ?? "kind-\(first.kindCode)") \(describe(first.payload, terminal: terminal))"
    }
}
