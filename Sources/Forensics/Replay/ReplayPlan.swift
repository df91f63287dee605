import CaptureFormat

/// One recorded PostgreSQL request of a session, as `sessreplay` will treat it: replayed, or
/// skipped with the reason. Built from the one exchange model (`Exchange`), so what counts as
/// allowed, withheld or a write is read from the recorded facts, never re-derived from bytes.
public struct ReplayStep: Sendable, Equatable {
    /// The exchange id in the original capture (kept in the replay's capture, for `sessdiff`).
    public var exchangeID: UInt64
    public var request: PostgresRequest
    /// When the original request was recorded (µs since the epoch).
    public var recordedMicros: Int64
    /// The original results, in order (one per statement result, as the gate recorded them).
    public var recordedResults: [PostgresResponse]
    /// The recorded statement's time at the database: its results' durations added up.
    public var recordedDurationMicros: UInt64
    /// Whether the original results had masks applied (their replayed rows are then not stored in clear).
    public var masked: Bool
    public var disposition: Disposition
    /// A COPY FROM STDIN's recorded data, one chunk per CopyData (see `ReplayCopy`); nil for
    /// any other request (a COPY FROM STDIN the target asks data for is then failed).
    public var copyIn: [[UInt8]]? = nil

    public enum Disposition: Sendable, Equatable {
        case replay
        case skip(SkipReason)
    }

    public var replays: Bool { disposition == .replay }
}

/// Why a recorded request is not replayed. `kind` is a stable name (JSON, the replay's capture).
public enum SkipReason: Error, Sendable, Equatable, CustomStringConvertible {
    /// The gate did not forward it: denied, or a review that was not granted.
    case notForwarded(String)
    /// It writes, and `--allow-writes` was not given.
    case write(String)
    /// Its text or parameters were withheld or masked in the recording: the original cannot be re-sent.
    case withheld(String)
    /// Transaction control inside `--rollback`'s wrapping transaction would end it.
    case transactionControl(String)
    /// Something the replay does not do (COPY data, function calls, another protocol).
    case unsupported(String)
    /// Outside `--from`/`--to`.
    case outsideWindow

    public var kind: String {
        switch self {
        case .notForwarded: "not-forwarded"
        case .write: "write"
        case .withheld: "withheld"
        case .transactionControl: "transaction-control"
        case .unsupported: "unsupported"
        case .outsideWindow: "outside-window"
        }
    }

    public var description: String {
        switch self {
        case .notForwarded(let d), .write(let d), .withheld(let d), .transactionControl(let d), .unsupported(let d): d
        case .outsideWindow: "outside --from/--to"
        }
    }
}

public struct ReplayOptions: Sendable, Equatable {
    public var allowWrites = false
    public var rollback = false
    public var fromMicros: Int64?
    public var toMicros: Int64?
    public init(allowWrites: Bool = false, rollback: Bool = false, fromMicros: Int64? = nil, toMicros: Int64? = nil) {
        self.allowWrites = allowWrites; self.rollback = rollback; self.fromMicros = fromMicros; self.toMicros = toMicros
    }
}

public enum ReplayPlanner {
    /// Statement kinds that neither change data nor end `--rollback`'s transaction (with no
    /// resource recorded as written). Anything else, an unknown kind included, counts as a write.
    static let readKinds: Set<String> = ["select", "show", "explain", "set", "reset", "fetch", "begin", "commit", "rollback", "savepoint",
                                         "prepare", "execute", "deallocate", "listen"]
    static let transactionKinds: Set<String> = ["begin", "commit", "rollback", "savepoint"]

    /// The steps of one session's exchanges, in recorded order: every PostgreSQL request, each
    /// replayed or skipped with its reason.
    /// `flagsRecorded`: the capture is format 1.4 or later, whose value flags say what was withheld
    /// or masked; earlier captures are read by the markers the gate wrote.
    public static func plan(_ exchanges: [Exchange], options: ReplayOptions, flagsRecorded: Bool = false) -> [ReplayStep] {
        exchanges.compactMap { x -> ReplayStep? in
            guard let p = x.postgres, let micros = x.requestMicros else { return nil }
            let results = x.postgresResults
            let masked = !x.masks.isEmpty || !(x.decision?.masks.isEmpty ?? true)
            var step = ReplayStep(exchangeID: x.id, request: p, recordedMicros: micros, recordedResults: results,
                                  recordedDurationMicros: results.reduce(0) { $0 + $1.durationMicros }, masked: masked,
                                  disposition: .replay)
            if let reason = skipReason(x, p, options: options, flagsRecorded: flagsRecorded) {
                step.disposition = .skip(reason)
            } else if Set(p.statementKinds).contains("copy"), ReplayCopy.direction(p) == .fromStdin, case .success(let data) = ReplayCopy.data(x, p) {
                step.copyIn = data
            }
            return step
        }
    }

    static func skipReason(_ x: Exchange, _ p: PostgresRequest, options: ReplayOptions, flagsRecorded: Bool) -> SkipReason? {
        if !x.forwarded {
            let d = x.decision
            let why = d.map { "\($0.action == .deny ? "denied" : "not approved") by \($0.policy)/\($0.rule)" } ?? "not forwarded"
            return .notForwarded(why)
        }
        if let from = options.fromMicros, x.requestMicros! < from { return .outsideWindow }
        if let to = options.toMicros, x.requestMicros! >= to { return .outsideWindow }
        if p.path == .functionCall {
            return .unsupported("a function call (FunctionCall message): the capture records neither the function's OID nor its arguments")
        }
        if let reason = flagsRecorded ? RecordedWithholding.flaggedReason(p) : RecordedWithholding.reason(p) { return .withheld(reason) }
        let kinds = Set(p.statementKinds)
        if kinds.contains("copy") {
            switch ReplayCopy.direction(p) {
            case .server: return .unsupported("COPY to or from a server file or program is not replayed (it would touch the target's files)")
            case .toStdout: break
            case .fromStdin: if case .failure(let why) = ReplayCopy.data(x, p) { return why }
            }
        }
        if options.rollback, !kinds.isDisjoint(with: transactionKinds) {
            return .transactionControl("\(kinds.intersection(transactionKinds).sorted().joined(separator: ", ")) would end the --rollback transaction")
        }
        if !options.allowWrites, isWrite(p) {
            let written = p.resources.filter { $0.access == .write }.map { $0.schema.isEmpty ? $0.name : "\($0.schema).\($0.name)" }
            let what = kinds.isEmpty ? "no statement kind recorded" : p.statementKinds.joined(separator: ", ")
            return .write("writes (\(what)\(written.isEmpty ? "" : " on \(written.joined(separator: ", "))")); give --allow-writes")
        }
        return nil
    }

    /// From the gate's recorded facts: a statement kind outside the read kinds, a resource
    /// recorded as written, or no kind at all (nothing says it only reads).
    public static func isWrite(_ p: PostgresRequest) -> Bool {
        if p.statementKinds.isEmpty { return true }
        // COPY … TO STDOUT only reads (the gate records a written resource for any COPY that writes).
        let copyOut = p.statementKinds.contains("copy") && ReplayCopy.direction(p) == .toStdout
        if p.statementKinds.contains(where: { !readKinds.contains($0) && !(copyOut && $0 == "copy") }) { return true }
        return p.resources.contains { $0.access == .write }
    }
}

/// What the recording says could not be kept of a request: from format 1.4 its value flags; in
/// earlier captures the markers the gate wrote in place of what it withheld or masked.
public enum RecordedWithholding {
    static let textMarkers = ["[tollgate: statement text withheld", "[REDACTED", "…[tollgate:", "'…'", "***"]
    static let valueMarkers = ["[REDACTED", "…[tollgate:", "***"]

    public static func flaggedReason(_ p: PostgresRequest) -> String? {
        if !p.textFlags.isEmpty { return "the recorded text is \(p.textFlags.names.joined(separator: ", "))" }
        if let (i, parameter) = p.parameters.enumerated().first(where: { !$0.element.flags.isEmpty }) {
            return "parameter $\(i + 1) is \(parameter.flags.names.joined(separator: ", "))"
        }
        return normalizedInPlaceOfText(p)
    }

    /// A credential-bearing simple Query is recorded as its normalized text: placeholders and no parameters.
    static func normalizedInPlaceOfText(_ p: PostgresRequest) -> String? {
        guard p.path == .simple, p.parameters.isEmpty, !p.normalized.isEmpty, p.text == p.normalized, p.text.contains("$1") else { return nil }
        return "the recorded text is the normalized text (its literals were withheld)"
    }

    public static func reason(_ p: PostgresRequest) -> String? {
        if let m = textMarkers.first(where: { p.text.contains($0) }) {
            return "the recorded text is withheld or masked (it holds \"\(m)\")"
        }
        if let reason = normalizedInPlaceOfText(p) { return reason }
        for (i, parameter) in p.parameters.enumerated() {
            // A masked parameter is recorded as text (format 0), whatever format it was sent in.
            guard parameter.format == 0, let v = parameter.value else { continue }
            let text = String(decoding: v, as: UTF8.self)
            if let m = valueMarkers.first(where: { text.contains($0) }) {
                return "parameter $\(i + 1) is withheld or masked (it holds \"\(m)\")"
            }
        }
        return nil
    }
}
