/// The client side of one HTTP/1.1 connection as a value type: bytes in, events out, in the
/// manner of the PostgreSQL adapter's `RelayStateMachine`. It parses heads strictly, decides each
/// body's framing, delimits bodies, and carries on to the next request (pipelining); on any
/// refusal it stops for good, since nothing after a framing doubt can be trusted (the handler
/// answers the refusal and closes).
public struct RequestStreamMachine: Sendable, Equatable {
    public enum Event: Sendable, Equatable {
        case head(RequestHead, BodyFraming)
        case body([UInt8])
        /// The request's end; the next head may follow on the same connection.
        case end
        /// The connection is to be answered with the refusal's status and closed.
        case refuse(HTTPRefusal)
    }

    enum State: Sendable, Equatable {
        case head
        case fixed(remaining: Int, thenClose: Bool)
        case chunked(ChunkedBodyDecoder, thenClose: Bool)
        /// After `Connection: close` or HTTP/1.0 without keep-alive: bytes past the request are
        /// not another request.
        case closing
        case refused
    }

    var state: State = .head
    /// Bytes received and not yet taken by a head or body.
    var buffer: [UInt8] = []
    public let limits: HTTPLimits

    public init(limits: HTTPLimits) { self.limits = limits }

    public var isRefused: Bool { state == .refused }

    public mutating func receive(_ bytes: [UInt8]) -> [Event] {
        guard state != .refused, state != .closing else { return [] }
        buffer.append(contentsOf: bytes)
        var events: [Event] = []
        loop: while !buffer.isEmpty {
            switch state {
            case .refused, .closing:
                break loop
            case .head:
                switch RequestHeadParser.parse(buffer[...], limits: limits) {
                case .needMore:
                    break loop
                case .refused(let r):
                    return events + [refuse(r)]
                case .head(let head, let consumed):
                    buffer.removeFirst(consumed)
                    switch BodyFraming.of(head, limits: limits) {
                    case .failure(let r):
                        return events + [refuse(r)]
                    case .success(let framing):
                        events.append(.head(head, framing))
                        let closeAfter = head.closesConnection
                        switch framing {
                        case .none: events.append(.end); if closeAfter { state = .closing }
                        case .length(let n): state = .fixed(remaining: n, thenClose: closeAfter)
                        case .chunked: state = .chunked(ChunkedBodyDecoder(limits: limits), thenClose: closeAfter)
                        }
                    }
                }
            case .fixed(let remaining, let closeAfter):
                let n = min(remaining, buffer.count)
                events.append(.body(Array(buffer[..<n])))
                buffer.removeFirst(n)
                if n == remaining {
                    events.append(.end); state = closeAfter ? .closing : .head
                } else {
                    state = .fixed(remaining: remaining - n, thenClose: closeAfter)
                }
            case .chunked(var decoder, let closeAfter):
                switch decoder.feed(buffer[...]) {
                case .failure(let r):
                    return events + [refuse(r)]
                case .success(let (decoded, consumed)):
                    buffer.removeFirst(consumed)
                    for e in decoded {
                        switch e {
                        case .data(let d): events.append(.body(d))
                        case .end: events.append(.end)
                        }
                    }
                    if decoder.isDone { state = closeAfter ? .closing : .head } else { state = .chunked(decoder, thenClose: closeAfter); break loop }
                }
            }
        }
        if state == .closing { buffer = [] }
        return events
    }

    private mutating func refuse(_ r: HTTPRefusal) -> Event {
        state = .refused; buffer = []
        return .refuse(r)
    }
}
