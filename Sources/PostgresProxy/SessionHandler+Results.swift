import CaptureFormat
import Masking
import NIOCore
import PostgresWire
import ProxyCore

/// Results as the gate records and masks them: opened and closed where the relay's state machine
/// says, each row masked for the client and packed for the capture.
extension PostgresSessionHandler {
    /// The result masker follows the core's masks: after a reload, the new ones. A result or COPY
    /// in flight keeps the plan it was opened with; the new masks apply from the next one. (A
    /// plan dropped in the middle would let the rest of a COPY through.)
    func syncMasking() {
        guard let generation = core.policy?.generation, generation != maskingGeneration else { return }
        maskingGeneration = generation
        let previous = masking
        masking = core.recording.session.map { PostgresResultMasker(masker: $0) }
        machine.masksResults = masking != nil
        if let previous, masking != nil {
            masking!.tally = previous.tally
            masking!.columns = previous.columns
            masking!.columnCounts = previous.columnCounts
            masking!.copy = previous.copy
        }
    }

    /// The target's catalog as masking sees it; while it is stale (DDL went through the gate),
    /// views cannot be traced and count as untraceable.
    func catalogLookup() -> CatalogLookup {
        guard let catalog, let snapshot = catalog.snapshot else { return .none }
        return snapshot.lookup(stale: catalog.isStale)
    }

    /// Opens a result: its columns for the capture, and which of them column rules mask.
    func startResult(_ fields: [PostgresBackendMessage.ColumnDescription]) {
        // A prepared statement's every Execute has the same columns: their plan is made once
        // (for the same masks and catalog), not per result.
        let head = machine.relay.pending.first
        let statement = head == nil || head!.simple ? nil : head!.statement
        let generation = (core.policy?.generation ?? -1, catalog?.generation ?? 0, core.inspection?.generation ?? 0)
        if let statement, let cached = machine.resultPlan(statement), cached.fields == fields, cached.generation == generation {
            recorded.beginResult(columns: cached.columns)
            if let plan = cached.masking { masking?.columns = plan }
            return
        }
        recorded.beginResult(columns: fields.map { Column(name: $0.name, typeOID: $0.typeOID, tableOID: $0.tableOID,
                                                          attributeNumber: UInt16(bitPattern: $0.columnAttribute), format: UInt8(truncatingIfNeeded: $0.format)) })
        defer {
            if let statement {
                machine.keepResultPlan(RelayState.ResultPlan(fields: fields, generation: generation, columns: recorded.columns,
                                                             masking: masking?.columns), for: statement)
            }
        }
        guard masking != nil else { return }
        let snapshot = catalog?.snapshot
        var stale = false
        let sources = fields.map { f -> ResultColumn in
            guard f.tableOID != 0 else { return ResultColumn(name: f.name, source: .computed) }
            guard let (table, column) = snapshot?.column(tableOID: f.tableOID, attribute: f.columnAttribute) else {
                stale = true
                return ResultColumn(name: f.name, source: .unresolved)
            }
            return ResultColumn(name: f.name, source: .table(table, column: column))
        }
        if stale && masking!.masker.hasColumnRules { catalog?.markStale() }
        masking!.beginResult(fields, sources: sources, projections: head?.projections ?? [.unknown],
                             catalog: catalogLookup())
    }

    /// A DataRow: masked for the client, packed for the capture. Returns the masked row, if masking changed it.
    func recordRow(_ row: PostgresBackendMessage.DataRow) -> PostgresBackendMessage? {
        var sent = row
        var replacement: PostgresBackendMessage?
        var maskedColumns: [Int] = []
        if masking != nil, let masked = masking!.mask(row) {
            sent = masked; replacement = .dataRow(masked); maskedColumns = masking!.maskedColumns
        }
        let kept = !recorded.rows.isFull
        let index = recorded.rows.packedRows.count
        var altered: [FlaggedValue] = []  // empty (no allocation) unless the record changes a value
        recorded.rows.add { packForRecording(sent, kept: kept, into: &$0, altered: &altered) }
        if recorded.rows.packedRows.count > index, !maskedColumns.isEmpty || !altered.isEmpty {
            recorded.flag(row: index, maskedColumns: maskedColumns, altered: altered)
        }
        return replacement
    }

    /// The end of a result (CommandComplete, EmptyQueryResponse, PortalSuspended, ErrorResponse),
    /// recorded as the response of `pending`. Returns the error as masking rewrote it, if it did.
    func finishResult(_ message: PostgresBackendMessage, pending: RelayState.Pending?) -> PostgresBackendMessage? {
        var tag = "", error: CaptureFormat.PostgresNotice?, replacement: PostgresBackendMessage?
        switch message {
        case .commandComplete(let t): tag = t
        case .portalSuspended: tag = "(portal suspended)"
        case .errorResponse(var fields):
            var flags: ValueFlags = []
            let withhold = masking != nil && withholdsDiagnostics(pending)
            if masking != nil, let masked = masking!.mask(fields, at: .error, withhold: withhold) {
                fields = masked; replacement = .errorResponse(masked); flags = withhold ? .withheld : .masked
            }
            error = fields.notice
            error?.flags = flags
        default: break
        }
        guard let pending else {
            if error != nil { core.countError() }
            return replacement
        }
        var response = recorded.takeResult()
        response.commandTag = tag
        response.error = error
        // Every DataRow of the result is either kept or counted in the cut.
        let rowsSent = UInt64(response.packedRows.count) + (response.cut?.rows ?? 0)
        response.rowCount = rowCount(fromTag: tag) ?? rowsSent
        response.durationMicros = UInt64(max(0, (NIODeadline.now() - pending.started).nanoseconds / 1000))
        core.responded(.postgres(response), exchange: pending.exchange, rows: rowsSent, masked: masking?.takeTally())
        return replacement
    }

    func recordCopy(_ stream: StreamChunk.Stream, _ data: ByteBuffer, exchange: UInt64) {
        recorded.copyChunks += 1
        guard recorded.copyChunks <= target.recordMaxRows else { return }
        // Data sent to the database is recorded as masked as results are: the client's masks apply to the record.
        core.streamed(Array(data.readableBytesView), stream: stream, exchange: exchange)
    }

    /// Writes a row in the capture's packed form straight from the DataRow's bytes; returns the
    /// total length of its values as sent. A row that is kept gets each value capped and the
    /// secrets pass; a row past the cap is only hashed, as sent.
    /// `altered`: the values the record changed (secrets pass, value cap), for format 1.4's flags.
    func packForRecording(_ row: PostgresBackendMessage.DataRow, kept: Bool, into w: inout WireWriter,
                          altered: inout [FlaggedValue]) -> Int {
        // Read once, not per value inside the closure (each read of a property is a retain).
        let secrets = kept ? core.recording.secrets : nil, maxValue = target.recordMaxValueBytes
        var valueBytes = 0
        row.forEachValue { column, _, value in
            guard let value else { w.varint(0); return }
            valueBytes += value.count
            // Secrets first, then the cap: a token across the cut would no longer be recognised.
            // Scanned in place; only a value the pass or the cap changes is copied.
            let secret = secrets?.mask(value.assumingMemoryBound(to: UInt8.self))
            if kept && (secret != nil || value.count > maxValue) {
                let recorded = core.recording.capped(secret?.bytes ?? Array(value))
                var flags: ValueFlags = secret == nil ? [] : .masked
                if (secret?.bytes.count ?? value.count) > maxValue { flags.insert(.cut) }
                altered.append(FlaggedValue(row: 0, column: column, flags: flags))
                w.varint(UInt64(recorded.count) + 1)
                w.append(raw: recorded)
            } else {
                w.varint(UInt64(value.count) + 1)
                w.append(raw: value)
            }
        }
        return valueBytes
    }
}

func rowCount(fromTag tag: String) -> UInt64? {
    // "SELECT 5", "UPDATE 3", "INSERT 0 1", "COPY 10": the count is the last word (read without
    // Foundation: this runs for every result).
    guard let space = tag.utf8.lastIndex(of: UInt8(ascii: " ")) else { return nil }
    return UInt64(Substring(tag.utf8[tag.utf8.index(after: space)...]))
}

extension PostgresBackendMessage.Diagnostics {
    /// As recorded: the fields an investigator needs, after masking.
    var notice: CaptureFormat.PostgresNotice {
        CaptureFormat.PostgresNotice(severity: severity ?? "", sqlState: sqlState ?? "", message: message ?? "",
                                     detail: detail ?? "", hint: hint ?? "")
    }
}
