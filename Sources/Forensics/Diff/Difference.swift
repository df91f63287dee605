import CaptureFormat

/// What kind of difference `sessdiff` found between two aligned exchanges (or an exchange on one
/// side only). The names are the tool's output vocabulary (text, `--summary`, `--json`).
public enum DifferenceKind: String, Sendable, CaseIterable, Codable {
    case onlyInA = "only-in-a"
    case onlyInB = "only-in-b"
    case decision
    case error
    case sqlstate
    case commandTag = "command-tag"
    case rowCount = "row-count"
    case columns
    case values
    case httpStatus = "http-status"
    case httpBody = "http-body"
    case latency
}

/// Where an exchange is in its capture: its position among the capture's exchanges (from 1),
/// its exchange id and the sequence number of its request event.
public struct ExchangePlace: Sendable, Equatable {
    public var index: Int
    public var exchange: UInt64
    public var sequence: UInt64

    public init(index: Int, exchange: UInt64, sequence: UInt64) { self.index = index; self.exchange = exchange; self.sequence = sequence }
}

/// One difference: its kind, where it is on each side, the statement, a one-line detail, and
/// the lines only in A (`removed`) and only in B (`added`), as `diff -u` shows them.
public struct Difference: Sendable, Equatable {
    public var kind: DifferenceKind
    public var a: ExchangePlace?
    public var b: ExchangePlace?
    public var statement: String
    public var detail: String
    public var removed: [String]
    public var added: [String]

    public init(kind: DifferenceKind, a: ExchangePlace?, b: ExchangePlace?, statement: String, detail: String,
                removed: [String] = [], added: [String] = []) {
        self.kind = kind; self.a = a; self.b = b; self.statement = statement; self.detail = detail
        self.removed = removed; self.added = added
    }
}

/// Totals over a whole comparison, as pt-upgrade's report gives them.
public struct DiffTotals: Sendable, Equatable {
    public var exchangesA = 0
    public var exchangesB = 0
    public var paired = 0
    /// Pairs whose statement fingerprints differ but were paired by position (same sequence).
    public var counts: [DifferenceKind: Int] = [:]
    /// Values compared by their recorded (masked, withheld or cut) form only.
    public var notCompared = 0
    /// Exchanges whose request was masked or withheld (compared by what was recorded).
    public var alteredRequests = 0

    public init() {}

    public var differences: Int { counts.values.reduce(0, +) }
    public var same: Bool { differences == 0 }
}
