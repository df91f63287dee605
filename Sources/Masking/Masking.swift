// Public vocabulary of the masking library: detector names, configuration inputs,
// results and the tally the capture's mask summary is built from.
// The scanners live in Detectors.swift; the engine (`Masker`) in Masker.swift.
//
// What is masked, and how (each scanner's doc comment has the exact rules):
//
//   detector        mask shape                         length
//   credit_card     ****-****-****-1111 (last 4, separators kept)   kept
//   us_ssn          ***-**-****        (all digits)                  fixed
//   email           a****@example.com  (first char + 4 stars)        independent of the local part
//   phone           +** ** **** **58   (last 2, punctuation kept)    kept
//   iban            DE** **** … **30 00 (country + last 4)           kept
//   aws_access_key, aws_secret_key, github_token, slack_token, jwt, private_key, custom regexes:
//                   [REDACTED:<name>]                                independent
//   column rules    ***-**-**** for digit-shaped values (last 4 if ≥12 digits), else ********
//
// Lengths may change: the gate re-frames every message it rewrites. Matches are found anywhere
// inside a value (JSON from row_to_json, array_agg output, concatenations, COPY rows, notices,
// error messages), not only whole values.
//
// Known gaps (close them with column rules): a value split across columns or rows, values
// transformed beyond recognition (reversed, encoded, hashed, digits spelled out), separators
// other than those documented per detector, undashed SSNs, non-NANP national phone formats
// without `+`, addresses with quoted local parts or IP/IDN domains, AWS secret keys without a
// label. Binary-format values are scanned as raw bytes, so a binary int8 card number is not
// recognisable: the gate must not let binary columns that a rule covers through unmasked.
//
// Deliberate false positives: any Luhn-valid 13–19-digit number with a card brand prefix is
// masked, including a bigint that happens to look like one; a masking gate prefers that to a leak.

/// The name a mask is reported under (`credit_card`, `us_ssn`, a custom detector's name, `column`).
/// A string wrapper rather than an enum so custom detectors share one namespace with built-ins.
public struct DetectorName: Hashable, Sendable, Comparable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }
    public var description: String { rawValue }
    public static func < (a: DetectorName, b: DetectorName) -> Bool { a.rawValue < b.rawValue }

    /// Reported when a column rule masked the whole value.
    public static let column: DetectorName = "column"
}

/// The built-in detectors. Raw values are the names used in policy files (`masks: [credit_card, us_ssn]`).
public enum BuiltinDetector: String, CaseIterable, Sendable, Hashable {
    case creditCard = "credit_card"
    case usSSN = "us_ssn"
    case email
    case phone
    case iban
    case awsAccessKey = "aws_access_key"
    case awsSecretKey = "aws_secret_key"
    case githubToken = "github_token"
    case slackToken = "slack_token"
    case jwt
    case privateKey = "private_key"

    public var name: DetectorName { DetectorName(rawValue) }

    /// The secret-token family, enabled together by the policy name `secrets`.
    public static let secrets: Set<BuiltinDetector> = [.awsAccessKey, .awsSecretKey, .githubToken, .slackToken, .jwt, .privateKey]

    /// Resolves a policy-file name: a detector's own name, `secrets` (all token shapes) or `all`.
    /// Returns nil for unknown names so configuration loading can report them.
    public static func named(_ name: String) -> Set<BuiltinDetector>? {
        switch name.lowercased() {
        case "all": return Set(allCases)
        case "secrets", "secret_tokens", "tokens": return secrets
        case "aws_keys", "aws": return [.awsAccessKey, .awsSecretKey]
        case let n: return BuiltinDetector(rawValue: n).map { [$0] }
        }
    }
}

/// A user-supplied regular expression detector (`{regex: 'EMP-\d{6}', name: employee_id}`).
public struct CustomPattern: Sendable, Hashable {
    public var name: String
    public var pattern: String
    public init(name: String, pattern: String) {
        self.name = name
        self.pattern = pattern
    }
}

public enum MaskingError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidPattern(name: String, pattern: String, reason: String)
    case emptyPatternName(pattern: String)
    case invalidColumnRule(String)
    case invalidJSONFieldRule(String)
    case unknownDetector(String)

    public var description: String {
        switch self {
        case let .invalidPattern(name, pattern, reason):
            return "masking detector '\(name)': invalid regular expression '\(pattern)': \(reason)"
        case let .emptyPatternName(pattern):
            return "masking regex '\(pattern)' has no name"
        case let .invalidColumnRule(rule):
            return "masking column rule '\(rule)' is not a glob of the form column, table.column or schema.table.column"
        case let .invalidJSONFieldRule(rule):
            return "masking json_field rule '\(rule)' is not dot-separated non-empty key globs (e.g. password, *.password, user.token)"
        case let .unknownDetector(name):
            return "unknown masking detector '\(name)' (known: \(BuiltinDetector.allCases.map(\.rawValue).joined(separator: ", ")), secrets, all)"
        }
    }
}

/// Where a value came from, as far as RowDescription tells: schema and table are nil for
/// computed columns (`concat(ssn)`, `row_to_json(t)`), which is why content detectors also run.
public struct ColumnRef: Hashable, Sendable, CustomStringConvertible {
    public var schema: String?
    public var table: String?
    public var column: String
    public init(schema: String? = nil, table: String? = nil, column: String) {
        self.schema = schema
        self.table = table
        self.column = column
    }
    public var description: String {
        [schema, table, column].compactMap { $0 }.joined(separator: ".")
    }
}

/// How many masks of each detector were applied to one value. Usually one detector fired, so
/// the first is kept inline and more go to an array: counting a masked value allocates nothing
/// and hashes nothing (this runs for every masked result value).
public struct DetectorCounts: Sendable, Sequence, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    var first: (DetectorName, Int)?
    var more: [(DetectorName, Int)] = []

    public init() {}

    public init(dictionaryLiteral elements: (DetectorName, Int)...) {
        for (d, n) in elements { add(d, n) }
    }

    public mutating func add(_ detector: DetectorName, _ n: Int = 1) {
        if let f = first {
            if f.0 == detector { first = (detector, f.1 + n); return }
            if let i = more.firstIndex(where: { $0.0 == detector }) { more[i].1 += n } else { more.append((detector, n)) }
        } else {
            first = (detector, n)
        }
    }

    public subscript(detector: DetectorName) -> Int? {
        if let f = first, f.0 == detector { return f.1 }
        return more.first { $0.0 == detector }?.1
    }

    /// Adds every count of `other` (a value's counts into a column's).
    public mutating func add(_ other: DetectorCounts) {
        for (d, n) in other { add(d, n) }
    }

    /// Walks `first` then `more` without building an array: counts are iterated per masked value.
    public struct Iterator: IteratorProtocol {
        var first: (DetectorName, Int)?
        var more: IndexingIterator<[(DetectorName, Int)]>
        public mutating func next() -> (DetectorName, Int)? {
            if let f = first { first = nil; return f }
            return more.next()
        }
    }

    public func makeIterator() -> Iterator { Iterator(first: first, more: more.makeIterator()) }
    public var total: Int { (first?.1 ?? 0) + more.reduce(0) { $0 + $1.1 } }
    public var description: String { "[" + map { "\($0.0): \($0.1)" }.joined(separator: ", ") + "]" }
}

extension DetectorCounts: Equatable {
    /// Order does not matter: the same detectors with the same counts.
    public static func == (a: DetectorCounts, b: DetectorCounts) -> Bool {
        let x = Array(a), y = Array(b)
        return x.count == y.count && x.allSatisfy { pair in b[pair.0] == pair.1 }
    }
}

/// A changed value: the new bytes and how many masks of each detector were applied.
public struct MaskResult: Sendable, Equatable {
    public var bytes: [UInt8]
    public var counts: DetectorCounts
    public init(bytes: [UInt8], counts: DetectorCounts) {
        self.bytes = bytes
        self.counts = counts
    }
    public var total: Int { counts.total }
}

/// Storage reused across values masked one after another (a session's results), so that
/// masking allocates nothing once it has grown. Owned by one session, never shared.
public struct MaskScratch: Sendable {
    var matches: [Match] = []
    /// The last masked value.
    public internal(set) var out: [UInt8] = []
    public init() {}

    /// Puts `bytes` as the masked value, for a mask its caller makes itself.
    public mutating func setOutput(_ bytes: some Sequence<UInt8>) {
        out.removeAll(keepingCapacity: true)
        out.append(contentsOf: bytes)
    }
}

/// `maskText` result, for notices and error fields.
public struct MaskedText: Sendable, Equatable {
    public var text: String
    public var counts: DetectorCounts
    public init(text: String, counts: DetectorCounts) {
        self.text = text
        self.counts = counts
    }
}

/// Where in a response a mask was applied, for the capture's summary: a result column,
/// COPY data, a notice or an error field.
public struct MaskLocation: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
    public static func column(_ ref: ColumnRef) -> MaskLocation { MaskLocation(ref.description) }
    public static let copyData = MaskLocation("copy")
    public static let notice = MaskLocation("notice")
    public static let error = MaskLocation("error")
    public static func < (a: MaskLocation, b: MaskLocation) -> Bool { a.description < b.description }
}

/// Accumulates mask counts per (detector, location) over an exchange or a session.
/// A value type so each exchange can keep its own and merge cheaply.
public struct MaskTally: Sendable, Equatable {
    public struct Key: Hashable, Sendable {
        public let detector: DetectorName
        public let location: MaskLocation
        public init(detector: DetectorName, location: MaskLocation) {
            self.detector = detector
            self.location = location
        }
    }

    public struct Entry: Sendable, Equatable {
        public let detector: DetectorName
        public let location: MaskLocation
        public let count: Int
    }

    public private(set) var counts: [Key: Int] = [:]

    public init() {}

    public mutating func record(_ counts: DetectorCounts, at location: MaskLocation) {
        for (detector, n) in counts where n > 0 {
            self.counts[Key(detector: detector, location: location), default: 0] += n
        }
    }

    public mutating func record(_ result: MaskResult, at location: MaskLocation) {
        record(result.counts, at: location)
    }

    public mutating func merge(_ other: MaskTally) {
        for (k, n) in other.counts { counts[k, default: 0] += n }
    }

    public func count(detector: DetectorName, location: MaskLocation) -> Int {
        counts[Key(detector: detector, location: location)] ?? 0
    }

    public func count(detector: DetectorName) -> Int {
        counts.reduce(0) { $0 + ($1.key.detector == detector ? $1.value : 0) }
    }

    public var total: Int { counts.values.reduce(0, +) }
    public var isEmpty: Bool { counts.isEmpty }

    /// Stable order (location, then detector) so summaries are deterministic in captures.
    public var entries: [Entry] {
        counts.map { Entry(detector: $0.key.detector, location: $0.key.location, count: $0.value) }
            .sorted { ($0.location, $0.detector) < ($1.location, $1.detector) }
    }
}
