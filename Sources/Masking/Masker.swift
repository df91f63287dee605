import Foundation // NSRegularExpression, for user-supplied patterns only; never on the built-in path.

/// NSRegularExpression is immutable after creation and documented thread-safe; the box only
/// tells the compiler so, keeping `Masker` Sendable.
private final class RegexBox: @unchecked Sendable {
    let regex: NSRegularExpression
    init(_ regex: NSRegularExpression) { self.regex = regex }
}

/// A literal every match of `pattern` must start with, or nil when that cannot be shown simply.
/// Lets the masker skip NSRegularExpression (and the String it needs) for values that do not
/// contain it: `EMP-\d{6}` → `EMP-`. Conservative: any `|`, an inline flag or a quantifier on
/// the last literal character shortens or cancels the prefix.
func requiredPrefix(_ pattern: String) -> [UInt8]? {
    let p = Array(pattern.utf8)
    if p.contains(UInt8(ascii: "|")) { return nil }
    var lit: [UInt8] = []
    var i = 0
    while i < p.count {
        let c = p[i]
        if isAlnum(c) || c == dash || c == UInt8(ascii: "_") || c == UInt8(ascii: ":") || c == UInt8(ascii: "=")
            || c == UInt8(ascii: "#") || c == UInt8(ascii: "@") || c == UInt8(ascii: "/") {
            lit.append(c); i += 1; continue
        }
        break
    }
    if i < p.count && (p[i] == UInt8(ascii: "?") || p[i] == UInt8(ascii: "*") || p[i] == UInt8(ascii: "{")) && !lit.isEmpty {
        lit.removeLast()
    }
    return lit.isEmpty ? nil : lit
}

@inline(__always) func contains(_ b: UnsafeBufferPointer<UInt8>, _ needle: [UInt8]) -> Bool {
    let m = needle.count
    guard m > 0, b.count >= m else { return m == 0 }
    let first = needle[0]
    var i = 0
    outer: while i <= b.count - m {
        if b[i] == first {
            for k in 1..<m where b[i + k] != needle[k] { i += 1; continue outer }
            return true
        }
        i += 1
    }
    return false
}

/// A compiled column rule: a glob per name part, lower-cased (PostgreSQL folds unquoted names).
struct ColumnGlob: Sendable, Hashable {
    let parts: [[UInt8]] // 1: column; 2: table.column; 3: schema.table.column

    init?(_ rule: String) {
        let parts = rule.lowercased().split(separator: ".", omittingEmptySubsequences: false).map { Array($0.utf8) }
        guard (1...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        self.parts = parts
    }

    /// `column` rules match the column name wherever it comes from; `table.column` needs the
    /// table, except that a `*` table part also matches computed columns (no table), so `*.ssn`
    /// covers `SELECT concat(a) AS ssn`; the schema part works the same way.
    func matches(_ ref: ColumnRef) -> Bool {
        let names: [String?]
        switch parts.count {
        case 1: names = [ref.column]
        case 2: names = [ref.table, ref.column]
        default: names = [ref.schema, ref.table, ref.column]
        }
        for (pattern, name) in zip(parts, names) {
            guard let name else {
                if pattern == [UInt8(ascii: "*")] { continue }
                return false
            }
            // Native strings are contiguous: no copy on the per-value path.
            let ok = name.utf8.withContiguousStorageIfAvailable { glob(pattern, $0) }
                ?? Array(name.utf8).withUnsafeBufferPointer { glob(pattern, $0) }
            if !ok { return false }
        }
        return true
    }

    /// Whether some column of `schema.table` could match: the rule's table (and schema) parts
    /// match, or it names a column only. For whole-row references (`row_to_json(t)`) whose
    /// columns are not known.
    func mayMatchTable(schema: String?, table: String) -> Bool {
        func part(_ pattern: [UInt8], _ name: String) -> Bool { Array(name.utf8).withUnsafeBufferPointer { glob(pattern, $0) } }
        switch parts.count {
        case 1: return true
        case 2: return part(parts[0], table)
        default: return part(parts[1], table) && (schema.map { part(parts[0], $0) } ?? true)
        }
    }
}

/// `*` any run, `?` one byte; ASCII case-insensitive. Iterative with single backtrack point: linear-ish, no recursion.
func glob(_ p: [UInt8], _ s: UnsafeBufferPointer<UInt8>) -> Bool {
    var pi = 0, si = 0, starP = -1, starS = 0
    @inline(__always) func lower(_ c: UInt8) -> UInt8 { isUpper(c) ? c | 0x20 : c }
    while si < s.count {
        if pi < p.count && (p[pi] == UInt8(ascii: "?") || (p[pi] != UInt8(ascii: "*") && p[pi] == lower(s[si]))) {
            pi += 1; si += 1
        } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
            starP = pi; starS = si; pi += 1
        } else if starP >= 0 {
            pi = starP + 1; starS += 1; si = starS
        } else {
            return false
        }
    }
    while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
    return pi == p.count
}

/// Masks sensitive values in result data, COPY data, notices and errors.
///
/// Decisions:
/// - Masks are not length-preserving in general (the gate re-frames messages): tokens become
///   `[REDACTED:<detector>]`, emails `a****@domain`, SSNs `***-**-****`; cards, phones and IBANs
///   keep their own shape because their length is not secret and the shape stays readable.
/// - Overlapping detections are merged: if one contains the others its mask is used, otherwise
///   the union becomes `[REDACTED:<first detector>]`, so no fragment of either stays clear.
/// - Input is bytes; invalid UTF-8 is fine (built-in scanners are ASCII-driven, custom regexes
///   see invalid input as Latin-1 so offsets still map 1:1 to bytes).
/// The shortest value each built-in detector can match: the length guards in `Masker.scan`,
/// and for the detectors guarded by their byte counts, the length those counts imply
/// (13 digits for a card, 9 digits and 2 dashes for an SSN, `+` and 8 digits for a phone,
/// `a@b.cd` for an e-mail, which is also the shortest value scanned at all).
enum ShortestMatch {
    static let privateKey = 30, jwt = 16, github = 33, slack = 15, awsKey = 20, awsSecret = 55, iban = 15
    static let email = 6, card = 13, ssn = 11, phone = 9
}

public final class Masker: Sendable {
    public let detectors: Set<BuiltinDetector>
    public let customPatterns: [CustomPattern]
    public let columnRules: [String]
    /// JSON field-name rules: the HTTP gate masks the values of the members they name in JSON bodies.
    public let jsonFieldRules: [JSONFieldRule]

    private let enabled: (card: Bool, ssn: Bool, email: Bool, phone: Bool, iban: Bool, awsKey: Bool,
                          awsSecret: Bool, github: Bool, slack: Bool, jwt: Bool, pem: Bool)
    /// The shortest value any enabled built-in detector can match (each detector's own length
    /// guard in `scan`): shorter values skip the byte statistics. For the secrets pass that
    /// every recorded value gets, most short values (ids, dates, names) cost one comparison.
    private let scanFrom: Int
    private let regexes: [(name: DetectorName, box: RegexBox, prefix: [UInt8]?)]
    private let globs: [ColumnGlob]

    /// Compiles custom patterns and column globs once. Throws `MaskingError` naming the bad entry.
    public init(detectors: Set<BuiltinDetector> = Set(BuiltinDetector.allCases),
                customPatterns: [CustomPattern] = [],
                columnRules: [String] = [], jsonFieldRules: [String] = []) throws {
        self.detectors = detectors
        self.jsonFieldRules = try jsonFieldRules.map { r in
            guard let rule = JSONFieldRule(r) else { throw MaskingError.invalidJSONFieldRule(r) }
            return rule
        }
        self.customPatterns = customPatterns
        self.columnRules = columnRules
        let e = (card: detectors.contains(.creditCard), ssn: detectors.contains(.usSSN), email: detectors.contains(.email),
                 phone: detectors.contains(.phone), iban: detectors.contains(.iban), awsKey: detectors.contains(.awsAccessKey),
                 awsSecret: detectors.contains(.awsSecretKey), github: detectors.contains(.githubToken), slack: detectors.contains(.slackToken),
                 jwt: detectors.contains(.jwt), pem: detectors.contains(.privateKey))
        enabled = e
        typealias L = ShortestMatch
        let shortest = [(e.pem, L.privateKey), (e.jwt, L.jwt), (e.github, L.github), (e.slack, L.slack), (e.awsKey, L.awsKey),
                        (e.awsSecret, L.awsSecret), (e.email, L.email), (e.card, L.card), (e.ssn, L.ssn), (e.phone, L.phone),
                        (e.iban, L.iban)].filter(\.0).map(\.1).min()
        scanFrom = shortest ?? Int.max
        var regexes: [(DetectorName, RegexBox, [UInt8]?)] = []
        for p in customPatterns {
            guard !p.name.isEmpty else { throw MaskingError.emptyPatternName(pattern: p.pattern) }
            do {
                let re = try NSRegularExpression(pattern: p.pattern, options: [])
                regexes.append((DetectorName(p.name), RegexBox(re), requiredPrefix(p.pattern)))
            } catch {
                throw MaskingError.invalidPattern(name: p.name, pattern: p.pattern, reason: "\(error.localizedDescription)")
            }
        }
        self.regexes = regexes
        var globs: [ColumnGlob] = []
        for r in columnRules {
            guard let g = ColumnGlob(r) else { throw MaskingError.invalidColumnRule(r) }
            globs.append(g)
        }
        self.globs = globs
    }

    /// Builds a masker from policy-file names (`credit_card`, `secrets`, …).
    public convenience init(detectorNames: [String], customPatterns: [CustomPattern] = [], columnRules: [String] = [],
                            jsonFieldRules: [String] = []) throws {
        var set: Set<BuiltinDetector> = []
        for name in detectorNames {
            guard let d = BuiltinDetector.named(name) else { throw MaskingError.unknownDetector(name) }
            set.formUnion(d)
        }
        try self.init(detectors: set, customPatterns: customPatterns, columnRules: columnRules, jsonFieldRules: jsonFieldRules)
    }

    /// Whether a column rule covers this column. The gate can call this once per RowDescription
    /// (and for binary-format columns, to choose its safe behaviour) instead of per value.
    public func coversColumn(_ ref: ColumnRef) -> Bool {
        globs.contains { $0.matches(ref) }
    }

    /// True when column rules are configured (so result columns need to be identified).
    public var hasColumnRules: Bool { !globs.isEmpty }

    /// Whether a column rule could cover some column of `schema.table` (for a whole-row
    /// reference to it whose columns are unknown).
    public func mayCoverColumns(ofSchema schema: String?, table: String) -> Bool {
        globs.contains { $0.mayMatchTable(schema: schema, table: table) }
    }

    /// Masks one value. Returns nil when nothing changed: the common path allocates nothing.
    public func mask(_ value: [UInt8], column: ColumnRef? = nil) -> MaskResult? {
        if let column, !globs.isEmpty, coversColumn(column) { return maskWholeValue(value) }
        return value.withUnsafeBufferPointer { scan($0) }
    }

    /// Masks one value given as a buffer (e.g. a slice of a DataRow without copying).
    public func mask(_ value: UnsafeBufferPointer<UInt8>, column: ColumnRef? = nil) -> MaskResult? {
        if let column, !globs.isEmpty, coversColumn(column) { return maskWholeValue(Array(value)) }
        return scan(value)
    }

    /// Convenience for notice/error fields and other text.
    public func maskText(_ text: String, column: ColumnRef? = nil) -> MaskedText? {
        guard let r = mask(Array(text.utf8), column: column) else { return nil }
        return MaskedText(text: String(decoding: r.bytes, as: UTF8.self), counts: r.counts)
    }

    /// A column rule's mask, regardless of content. Digit-shaped values (digits with ` -().+/`)
    /// keep their punctuation with digits starred, and the last 4 digits when there are ≥12
    /// (card-like: the PCI-accepted shape); anything else becomes a fixed `********`, so the
    /// value's length does not leak. An empty value is left as is (nothing to hide).
    public func maskWholeValue(_ value: [UInt8]) -> MaskResult? {
        value.withUnsafeBufferPointer { v in Self.once { maskWholeValue(v, using: &$0) } }
    }

    /// `maskWholeValue` into `scratch.out`; returns the counts, or nil for an empty value.
    public func maskWholeValue(_ value: UnsafeBufferPointer<UInt8>, using scratch: inout MaskScratch) -> DetectorCounts? {
        guard !value.isEmpty else { return nil }
        var digits = 0, digitShaped = true
        for c in value {
            if isDigit(c) { digits += 1 }
            else if !(c == space || c == dash || c == UInt8(ascii: "(") || c == UInt8(ascii: ")")
                      || c == dot || c == UInt8(ascii: "+") || c == UInt8(ascii: "/")) { digitShaped = false; break }
        }
        scratch.out.removeAll(keepingCapacity: true)
        if digitShaped && digits > 0 {
            maskDigits(value, 0, value.count, keep: digits >= 12 ? 4 : 0, into: &scratch.out)
        } else {
            ("********" as StaticString).withUTF8Buffer { scratch.out.append(contentsOf: $0) }
        }
        return [.column: 1]
    }

    /// Masks one value by content into `scratch.out`; returns the counts, or nil when nothing
    /// changed. With one scratch reused across values (a session's results), masking allocates
    /// nothing once the scratch has grown.
    public func mask(_ value: UnsafeBufferPointer<UInt8>, using scratch: inout MaskScratch) -> DetectorCounts? {
        scan(value, using: &scratch)
    }

    private func scan(_ b: Bytes) -> MaskResult? {
        Self.once { scan(b, using: &$0) }
    }

    /// One value masked with a scratch of its own, as a `MaskResult` (the callers that mask a value now and then).
    private static func once(_ mask: (inout MaskScratch) -> DetectorCounts?) -> MaskResult? {
        var s = MaskScratch()
        guard let counts = mask(&s) else { return nil }
        return MaskResult(bytes: s.out, counts: counts)
    }

    private func scan(_ b: Bytes, using s: inout MaskScratch) -> DetectorCounts? {
        let n = b.count
        s.matches.removeAll(keepingCapacity: true)
        if n >= scanFrom {
            let st = ByteStats(b)
            let e = enabled
            typealias L = ShortestMatch
            if e.pem && st.dashes >= 10 && n >= L.privateKey { scanPrivateKeys(b, into: &s.matches) }
            if e.jwt && st.dots >= 2 && n >= L.jwt { scanJWTs(b, into: &s.matches) }
            if e.github && st.underscore && n >= L.github { scanGitHubTokens(b, into: &s.matches) }
            if e.slack && st.dashes >= 1 && n >= L.slack { scanSlackTokens(b, into: &s.matches) }
            if e.awsKey && st.upper >= 4 && n >= L.awsKey { scanAWSAccessKeys(b, into: &s.matches) }
            if e.awsSecret && n >= L.awsSecret { scanAWSSecretKeys(b, into: &s.matches) }
            if e.email && st.at { scanEmails(b, into: &s.matches) }
            if e.card && st.digits >= 13 { scanCards(b, into: &s.matches) }
            if e.ssn && st.digits >= 9 && st.dashes >= 2 { scanSSN(b, into: &s.matches) }
            if e.phone && ((st.plus && st.digits >= 8) || st.digits >= 10) { scanPhones(b, into: &s.matches) }
            if e.iban && st.digits >= 2 && st.letters >= 2 && n >= L.iban { scanIBANs(b, into: &s.matches) }
        }
        if !regexes.isEmpty && n > 0 { customMatches(b, into: &s.matches) }
        guard !s.matches.isEmpty else { return nil }
        return apply(&s, to: b)
    }

    private func customMatches(_ b: Bytes, into out: inout [Match]) {
        // Only the patterns whose required literal occurs; usually none, and then no String is built.
        let relevant = { (r: (name: DetectorName, box: RegexBox, prefix: [UInt8]?)) in r.prefix.map { contains(b, $0) } ?? true }
        guard regexes.contains(where: relevant) else { return }
        let candidates = regexes.filter(relevant)
        // Valid UTF-8: search the String and map indices back to UTF-8 offsets.
        // Invalid: decode as Latin-1 (one UTF-16 unit per byte), so NSRange offsets are byte offsets.
        // (String(validating:) needs macOS 15; decoding and comparing works on every platform.)
        let decoded = String(decoding: b, as: UTF8.self)
        if decoded.utf8.elementsEqual(b) {
            let text = decoded
            let whole = NSRange(text.startIndex..<text.endIndex, in: text)
            for (name, box, _) in candidates {
                for m in box.regex.matches(in: text, options: [], range: whole) where m.range.length > 0 {
                    guard let r = Range(m.range, in: text) else { continue }
                    let s = text.utf8.distance(from: text.utf8.startIndex, to: r.lowerBound)
                    let e = text.utf8.distance(from: text.utf8.startIndex, to: r.upperBound)
                    out.append(Match(start: s, end: e, detector: name, replacement: .redacted))
                }
            }
        } else {
            var scalars = String.UnicodeScalarView()
            for c in b { scalars.append(Unicode.Scalar(c)) }
            let text = String(scalars)
            let ns = text as NSString
            for (name, box, _) in candidates {
                for m in box.regex.matches(in: text, options: [], range: NSRange(location: 0, length: ns.length))
                where m.range.length > 0 {
                    out.append(Match(start: m.range.location, end: m.range.location + m.range.length,
                                     detector: name, replacement: .redacted))
                }
            }
        }
    }

    /// Writes `b` with `s.matches` replaced into `s.out`.
    private func apply(_ s: inout MaskScratch, to b: Bytes) -> DetectorCounts {
        if s.matches.count > 1 { s.matches.sort { $0.start != $1.start ? $0.start < $1.start : $0.end > $1.end } }
        s.out.removeAll(keepingCapacity: true)
        s.out.reserveCapacity(b.count + 32)
        var counts = DetectorCounts()
        var pos = 0, idx = 0
        while idx < s.matches.count {
            let m = s.matches[idx]
            idx += 1
            var end = m.end, merged = false
            while idx < s.matches.count && s.matches[idx].start < end {
                if s.matches[idx].end > end { end = s.matches[idx].end; merged = true }
                idx += 1
            }
            s.out.append(contentsOf: UnsafeBufferPointer(rebasing: b[pos..<m.start]))
            (merged ? .redacted : m.replacement).write(m, of: b, into: &s.out)
            counts.add(m.detector)
            pos = end
        }
        s.out.append(contentsOf: UnsafeBufferPointer(rebasing: b[pos..<b.count]))
        return counts
    }
}
