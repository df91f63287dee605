import NIOCore
import PostgresWire
import ProxyCore

/// The server's side of the relay: what each message is to the result in flight, and what it answers.
extension RelayStateMachine {
    /// What a server message is to the relay. Masking what passes and recording it are the handler's.
    enum UpstreamAction {
        /// Pass it on (masked where masking applies); it opens or closes no result.
        case forward
        /// A RowDescription opening a result (a simple Query's): open it with these columns, pass it on.
        case startResult([PostgresBackendMessage.ColumnDescription])
        /// A DataRow. `opening`: no result was open (an Execute's result opens with its first row,
        /// from its portal's description): open it with these columns first.
        case row(opening: [PostgresBackendMessage.ColumnDescription]?)
        /// CommandComplete, EmptyQueryResponse, PortalSuspended or ErrorResponse: the result ends,
        /// as the response of `pending` (nil: no request is pending; nothing to record).
        case finishResult(RelayState.Pending?)
        /// The answer to the gate's own Describe: kept back from the client.
        case keepBack
        /// CopyOutResponse of a masked session: mask the rows as `layout` places their fields.
        case startCopyOut(RowStreamLayout, projections: [Projection])
        /// CopyData from the server, for `exchange` (nil: none pending).
        case copyData(exchange: UInt64?)
        /// CopyDone: the COPY's rows end.
        case copyDone
        /// ReadyForQuery: no result stays open across it. `discardResult`: one was open (a portal
        /// described but not executed); what was gathered of it is dropped.
        case ready(discardResult: Bool)
        /// Never reaches the client (the upstream's own BackendKeyData).
        case drop
        /// The gate cannot relay this safely: end the session with this error.
        case fail(code: String, message: String, reason: String)
    }

    /// What follows once a server message was passed on (or kept back).
    enum AnsweredAction {
        /// Go on: emit the refusals now due (`nextDueRefusal`).
        case relay
        /// The server ran something other than what the gate decided on: the session ends.
        case diverged(ConfirmedSessionState.Divergence)
    }

    mutating func upstreamMessage(_ message: PostgresBackendMessage) -> UpstreamAction {
        followHiddenCode()
        switch message {
        case .rowDescription(let fields):
            // In the extended protocol a RowDescription answers a Describe; the result of an Execute
            // opens with its first row, from its portal's description. In a simple Query it opens the result.
            if relay.pending.first?.simple != true, !relay.describes.isEmpty {
                return answerDescribe(fields) ? .keepBack : .forward
            }
            relay.resultStarted = true
            return .startResult(fields)
        case .noData:
            if !relay.describes.isEmpty, answerDescribe([]) { return .keepBack }
            return .forward
        case .dataRow:
            guard !relay.resultStarted else { return .row(opening: nil) }
            relay.resultStarted = true
            return .row(opening: pendingColumns())
        case .commandComplete, .emptyQueryResponse, .portalSuspended, .errorResponse:
            guard let pending = relay.pending.first else { return .finishResult(nil) }
            relay.resultStarted = false
            // A simple Query may hold several statements: it stays pending until ReadyForQuery.
            if !pending.simple { relay.pending.removeFirst() }
            return .finishResult(pending)
        case .copyOutResponse(let response):
            guard masksResults else { return .forward }
            // One layout per COPY of the request, in order.
            let head = relay.pending.startIndex
            guard !relay.pending.isEmpty, !relay.pending[head].rowStreams.isEmpty else {
                // The gate could not read the COPY's options (it let the statement through unparsed,
                // as a target without policies does): its fields cannot be placed, so no row passes.
                return .fail(code: "42501", message: "tollgate: COPY output whose options the gate could not read cannot be masked",
                             reason: "protocol-error")
            }
            let layout = relay.pending[head].rowStreams.removeFirst()
            if response.format != 0 || layout.format == .binary {
                // Refused at admission; should the server still send binary COPY rows, they must not pass.
                return .fail(code: "42501", message: "tollgate: binary COPY output cannot be masked", reason: "protocol-error")
            }
            return .startCopyOut(layout, projections: relay.pending[head].projections)
        case .copyData:
            return .copyData(exchange: relay.pending.first?.exchange)
        case .copyDone:
            return .copyDone
        case .readyForQuery(let status):
            relay.transactionStatus = status
            relay.readyForQueryCount += 1
            // Executes the server skipped after an error in their batch get no result of their own.
            let answered = relay.readyForQueryCount
            relay.batchesAnswered(through: answered)
            let open = relay.resultStarted
            relay.resultStarted = false
            // Portals end with their transaction; outside one, those of the answered batches are gone.
            if status == .idle { relay.endPortals(answeredSyncs: answered) }
            return .ready(discardResult: open)
        case .backendKeyData:
            // Never let the upstream's key reach the client.
            return .drop
        default:
            return .forward
        }
    }

    /// After a server message was passed on or kept back: what it answered, what it confirms.
    mutating func answered(_ message: PostgresBackendMessage) -> AnsweredAction {
        upstreamAnswered(message)
        if let divergence = confirmAnswered(message) { return .diverged(divergence) }
        return .relay
    }

    /// Moves past what an upstream message answers. After an error the server skips the rest
    /// of an extended batch until Sync, so those answers (and the gate's refusals among them,
    /// which the server's error supersedes) are not owed any more.
    private mutating func upstreamAnswered(_ message: PostgresBackendMessage) {
        guard let head = relay.expected.first else { return }
        switch (head, message) {
        case (.parse, .parseComplete), (.bind, .bindComplete), (.close, .closeComplete),
             (.describe, .rowDescription), (.describe, .noData),
             (.execute, .commandComplete), (.execute, .emptyQueryResponse), (.execute, .portalSuspended),
             (.sync, .readyForQuery), (.query, .readyForQuery):
            relay.expected.removeFirst()
        case (.query, _):
            break
        case (_, .errorResponse):
            if case .sync = head { return }
            while let first = relay.expected.first {
                if case .sync = first { break }
                relay.expected.removeFirst()
            }
        default:
            break
        }
    }

    /// Stores a Describe's answer. True when it was the gate's own Describe: not forwarded.
    private mutating func answerDescribe(_ fields: [PostgresBackendMessage.ColumnDescription]) -> Bool {
        let describe = relay.describes.removeFirst()
        // Kept with what it described: a Parse or Bind of the name pipelined after the Describe
        // makes a new statement or portal, whose columns this answer does not tell.
        switch describe.target {
        case .statement(let name): relay.described[name] = .init(serial: describe.serial, fields: fields)
        case .portal(let name): relay.portalDescribed[name] = .init(serial: describe.serial, fields: fields)
        }
        return describe.injected
    }

    /// The columns of the result of the Execute being answered: its portal's, from a Describe of
    /// the portal, else from its statement's Describe with the portal's formats (for recording;
    /// masking describes portals itself).
    func pendingColumns() -> [PostgresBackendMessage.ColumnDescription] {
        guard let pending = relay.pending.first, !pending.simple, let portal = pending.portal else { return [] }
        // Only an answer about the portal (and statement) this Execute ran: not an earlier or later one of the name.
        if let described = relay.portalDescribed[portal], described.serial == pending.bound?.serial ?? 0 { return described.fields }
        guard let p = pending.bound, let described = relay.described[p.statement], described.serial == p.statementSerial else { return [] }
        var fields = described.fields
        for i in fields.indices {
            fields[i].format = p.resultFormats.isEmpty ? 0 : p.resultFormats.count == 1 ? p.resultFormats[0]
                : (i < p.resultFormats.count ? p.resultFormats[i] : 0)
        }
        return fields
    }
}
