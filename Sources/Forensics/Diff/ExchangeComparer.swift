import CaptureFormat
import Foundation

/// Compares two exchanges that alignment paired (the same request on each side) and says how
/// their outcomes differ: decision, error and SQLSTATE, command tag, row count, columns, values,
/// HTTP status and body, and (with a threshold) latency.
public struct ExchangeComparer: Sendable {
    /// Columns and JSON fields left out of the comparison, by name or glob.
    public var ignore: [Glob]
    /// Flag latency changes larger than this percentage (nil: latency is not compared).
    public var latencyPercent: Double?
    /// Latencies under this (µs, on both sides) are not compared: noise at that scale is not a change.
    public var latencyFloorMicros: UInt64 = 1000
    /// Lines of rows shown per values difference.
    public var maxRowLines = 10

    public init(ignore: [Glob] = [], latencyPercent: Double? = nil) {
        self.ignore = ignore; self.latencyPercent = latencyPercent
    }

    func ignored(_ name: String) -> Bool { ignore.contains { $0.matches(name) } }

    /// The differences between `a` and `b`; `notCompared` counts values compared by their
    /// recorded form only (masked, withheld or cut on either side).
    public func compare(_ a: Exchange, _ b: Exchange, at placeA: ExchangePlace, _ placeB: ExchangePlace,
                        notCompared: inout Int) -> [Difference] {
        var out: [Difference] = []
        let statement = Self.label(a)
        func add(_ kind: DifferenceKind, _ detail: String, removed: [String] = [], added: [String] = []) {
            out.append(Difference(kind: kind, a: placeA, b: placeB, statement: statement, detail: detail, removed: removed, added: added))
        }
        if let da = a.decision, let db = b.decision, da.action != db.action {
            add(.decision, "decision \(da.action.name) → \(db.action.name)",
                removed: ["decision: \(da.action.name) (\(da.policy)/\(da.rule))"], added: ["decision: \(db.action.name) (\(db.policy)/\(db.rule))"])
        }
        let ra = a.postgresResults, rb = b.postgresResults
        for i in 0..<max(ra.count, rb.count) {
            guard i < ra.count, i < rb.count else {
                add(.commandTag, "result \(i + 1) only in \(i < ra.count ? "A" : "B")",
                    removed: i < ra.count ? ["tag: \(Self.tagLine(ra[i]))"] : [], added: i < rb.count ? ["tag: \(Self.tagLine(rb[i]))"] : [])
                continue
            }
            comparePostgres(ra[i], rb[i], ordered: Self.isOrdered(a), add: add, notCompared: &notCompared)
        }
        if a.postgres != nil, b.postgres != nil { compareCopyOut(a, b, add: add, notCompared: &notCompared) }
        if case .http(let ha)? = a.response, case .http(let hb)? = b.response { compareHTTP(ha, hb, add: add) }
        if let pct = latencyPercent, let la = a.response?.durationMicros, let lb = b.response?.durationMicros,
           max(la, lb) >= latencyFloorMicros, la > 0, lb > 0 {
            let change = (Double(lb) - Double(la)) / Double(la) * 100
            if abs(change) > pct {
                add(.latency, String(format: "latency %@ → %@ (%+.0f %%)", Self.micros(la), Self.micros(lb), change),
                    removed: ["latency: \(Self.micros(la))"], added: ["latency: \(Self.micros(lb))"])
            }
        }
        return out
    }

    // MARK: PostgreSQL

    func comparePostgres(_ a: PostgresResponse, _ b: PostgresResponse, ordered: Bool,
                         add: (DifferenceKind, String, [String], [String]) -> Void, notCompared: inout Int) {
        switch (a.error, b.error) {
        case (nil, let e?): add(.error, "success → error \(e.sqlState)", ["tag: \(Self.tagLine(a))"], ["error: \(Self.errorLine(e))"]); return
        case (let e?, nil): add(.error, "error \(e.sqlState) → success", ["error: \(Self.errorLine(e))"], ["tag: \(Self.tagLine(b))"]); return
        case (let ea?, let eb?):
            if ea.sqlState != eb.sqlState {
                add(.sqlstate, "SQLSTATE \(ea.sqlState) → \(eb.sqlState)", ["error: \(Self.errorLine(ea))"], ["error: \(Self.errorLine(eb))"])
            }
            return
        case (nil, nil): break
        }
        if Self.verb(a.commandTag) != Self.verb(b.commandTag) {
            add(.commandTag, "command tag \(a.commandTag) → \(b.commandTag)", ["tag: \(a.commandTag)"], ["tag: \(b.commandTag)"])
        } else if a.rowCount != b.rowCount {
            add(.rowCount, "row count \(a.rowCount) → \(b.rowCount)", ["rows: \(a.rowCount)"], ["rows: \(b.rowCount)"])
        }
        let colsA = a.columns.enumerated().filter { !ignored($0.element.name) }
        let colsB = b.columns.enumerated().filter { !ignored($0.element.name) }
        let shapeA = colsA.map { "\($0.element.name) \(TypeNames.name($0.element.typeOID))" }
        let shapeB = colsB.map { "\($0.element.name) \(TypeNames.name($0.element.typeOID))" }
        if shapeA != shapeB {
            let removed = shapeA.filter { !shapeB.contains($0) }, added = shapeB.filter { !shapeA.contains($0) }
            add(.columns, "columns differ: " + (removed.map { "-\($0)" } + added.map { "+\($0)" }).joined(separator: ", "),
                removed.map { "column: \($0)" }, added.map { "column: \($0)" })
        }
        // Values: over the columns both sides have (by name), in A's order.
        var pairs: [(Int, Int, String)] = []
        for (ia, ca) in colsA {
            if let (ib, _) = colsB.first(where: { $0.element.name == ca.name }) { pairs.append((ia, ib, ca.name)) }
        }
        guard !pairs.isEmpty || (a.columns.isEmpty && b.columns.isEmpty) else { return }
        if let withheld = Self.withheldAgainstMasked(a, b) {
            // A replay keeps only the count and digest of rows whose original was masked: the digest
            // covers clear values the other side holds masked, so only the counts compare (above).
            notCompared += withheld
            return
        }
        let rowsA = project(a.recordedValues, pairs.map(\.0), notCompared: &notCompared)
        let rowsB = project(b.recordedValues, pairs.map(\.1), notCompared: &notCompared)
        let names = pairs.map(\.2)
        var removed: [String] = [], added: [String] = []
        var differing = 0
        if ordered {
            for i in 0..<max(rowsA.count, rowsB.count) {
                let ra = i < rowsA.count ? rowsA[i] : nil, rb = i < rowsB.count ? rowsB[i] : nil
                guard ra != rb else { continue }
                differing += 1
                if let ra, removed.count < maxRowLines { removed.append("row \(i + 1): " + Self.render(ra, names)) }
                if let rb, added.count < maxRowLines { added.append("row \(i + 1): " + Self.render(rb, names)) }
            }
        } else {
            // Without ORDER BY the server may return rows in any order: compared as multisets.
            var counts: [[RecordedValueKey]: Int] = [:]
            for r in rowsA { counts[r, default: 0] += 1 }
            var onlyB: [[RecordedValueKey]] = []
            for r in rowsB {
                if let n = counts[r], n > 0 { counts[r] = n - 1 } else { onlyB.append(r) }
            }
            let onlyA = rowsA.filter { r in
                guard let n = counts[r], n > 0 else { return false }
                counts[r] = n - 1
                return true
            }
            differing = max(onlyA.count, onlyB.count)
            removed = onlyA.prefix(maxRowLines).map { "row: " + Self.render($0, names) }
            added = onlyB.prefix(maxRowLines).map { "row: " + Self.render($0, names) }
        }
        // Rows past the recording cap: their digests say whether they are the same (only when
        // every column is compared: the digest covers whole rows).
        let cutDiffers: Bool = {
            guard pairs.count == a.columns.count, pairs.count == b.columns.count else { return false }
            switch (a.cut, b.cut) {
            case (nil, nil): return false
            case (let ca?, let cb?): return ca.rows != cb.rows || ca.sha256 != cb.sha256
            default: return true
            }
        }()
        if differing > 0 || cutDiffers {
            var detail = differing > 0 ? (differing == 1 ? "1 row differs" : "\(differing) rows differ") : ""
            if differing > 0 { detail += ordered ? " (in order: ORDER BY)" : " (order ignored: no ORDER BY)" }
            if cutDiffers {
                detail += (detail.isEmpty ? "" : "; ") + Self.cutDetail(a, b, ordered: ordered)
            }
            add(.values, detail, removed, added)
        }
    }

    /// What differing digests mean. Two replays of a request whose original results were masked
    /// keep no row, only count and digest: that is not a cap. The digest covers the rows' order,
    /// which without ORDER BY the server may change, so then it says so rather than claim the
    /// values changed.
    static func cutDetail(_ a: PostgresResponse, _ b: PostgresResponse, ordered: Bool) -> String {
        func allWithheld(_ r: PostgresResponse) -> Bool { r.packedRows.count == 0 && (r.cut?.rows ?? 0) > 0 }
        let counts = "\(a.cut?.rows ?? 0) → \(b.cut?.rows ?? 0) rows, by digest"
        guard allWithheld(a) && allWithheld(b) else { return "rows past the recording cap differ (\(counts))" }
        return "rows kept only as count and digest (the original's were masked) differ (\(counts)"
            + (ordered || max(a.cut?.rows ?? 0, b.cut?.rows ?? 0) < 2 ? ")" : "; the digest covers their order, which without ORDER BY may be all that changed)")
    }

    /// Values not compared when one side kept no row (all counted and hashed: the replay of a
    /// masked original) and the other's rows hold masked values; nil otherwise.
    static func withheldAgainstMasked(_ a: PostgresResponse, _ b: PostgresResponse) -> Int? {
        func allWithheld(_ r: PostgresResponse) -> Bool { r.packedRows.count == 0 && (r.cut?.rows ?? 0) > 0 }
        func masked(_ r: PostgresResponse) -> Bool { r.recordedValues.contains { $0.contains { $0.flags.isAltered } } }
        guard (allWithheld(a) && masked(b)) || (allWithheld(b) && masked(a)) else { return nil }
        return (allWithheld(a) ? b : a).recordedValues.reduce(0) { $0 + $1.count }
    }

    /// Rows reduced to the compared columns; a flagged value counts as not compared (it is
    /// still compared by its recorded form).
    func project(_ rows: [[RecordedValue]], _ columns: [Int], notCompared: inout Int) -> [[RecordedValueKey]] {
        rows.map { row in
            columns.map { c in
                guard c < row.count else { return RecordedValueKey(bytes: nil, altered: false) }
                let v = row[c]
                if v.flags.isAltered { notCompared += 1 }
                return RecordedValueKey(bytes: v.bytes, altered: v.flags.isAltered)
            }
        }
    }

    // MARK: HTTP

    func compareHTTP(_ a: HTTPResponse, _ b: HTTPResponse, add: (DifferenceKind, String, [String], [String]) -> Void) {
        if a.status != b.status { add(.httpStatus, "status \(a.status) → \(b.status)", ["status: \(a.status)"], ["status: \(b.status)"]) }
        let ba = JSONFields.normalized(a.body.data, ignoring: ignore), bb = JSONFields.normalized(b.body.data, ignoring: ignore)
        if ba != bb || (a.body.totalSize != b.body.totalSize && ignore.isEmpty) || (a.body.cutSHA256 != b.body.cutSHA256 && ignore.isEmpty) {
            add(.httpBody, "body differs (\(a.body.totalSize) → \(b.body.totalSize) bytes)",
                ["body: " + Self.short(ba)], ["body: " + Self.short(bb)])
        }
    }

    // MARK: Labels

    /// The statement or request line an exchange is known by in the output.
    public static func label(_ x: Exchange) -> String {
        switch x.request {
        case .postgres(let p): return short(p.text)
        case .http(let h): return "\(h.method) \(h.target)"
        case .kubernetes(let k): return "\(k.http.method) \(k.http.target)"
        case .unknown(let u): return u.name
        case nil: return "(no request)"
        }
    }

    /// Alignment key: the statement's fingerprint (its normalized text, or text, when there is none).
    public static func key(_ x: Exchange) -> String {
        switch x.request {
        case .postgres(let p): return !p.fingerprint.isEmpty ? "fp:" + p.fingerprint : !p.normalized.isEmpty ? "n:" + p.normalized : "t:" + p.text
        case .http(let h): return "http:\(h.method) \(h.target)"
        case .kubernetes(let k): return "k8s:\(k.http.method) \(k.http.target)"
        case .unknown(let u): return "unknown:\(u.tag)"
        case nil: return ""
        }
    }

    /// Whether the statement fixes its rows' order: its normalized text (or text) has ORDER BY.
    /// An ORDER BY anywhere (a subquery's too) counts: then rows are compared in order, which
    /// can only report more, never hide a difference.
    public static func isOrdered(_ x: Exchange) -> Bool {
        guard let p = x.postgres else { return true }
        return hasOrderBy(p.normalized.isEmpty ? p.text : p.normalized)
    }

    /// `ORDER`, white space, `BY`, as words, in any case (a byte scan: this runs for every pair).
    static func hasOrderBy(_ text: String) -> Bool {
        let b = Array(text.utf8), n = b.count
        func lower(_ c: UInt8) -> UInt8 { c >= 65 && c <= 90 ? c + 32 : c }
        func isWord(_ c: UInt8) -> Bool { (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c == 95 }
        func isSpace(_ c: UInt8) -> Bool { c == 32 || c == 9 || c == 10 || c == 13 }
        var i = 0
        while i + 5 <= n {
            if lower(b[i]) == 111, lower(b[i + 1]) == 114, lower(b[i + 2]) == 100, lower(b[i + 3]) == 101, lower(b[i + 4]) == 114,
               i == 0 || !isWord(b[i - 1]) {
                var j = i + 5
                guard j < n, isSpace(b[j]) else { i += 1; continue }
                while j < n, isSpace(b[j]) { j += 1 }
                if j + 2 <= n, lower(b[j]) == 98, lower(b[j + 1]) == 121, j + 2 == n || !isWord(b[j + 2]) { return true }
            }
            i += 1
        }
        return false
    }

    static func verb(_ tag: String) -> String { tag.split(separator: " ").filter { Int($0) == nil }.joined(separator: " ") }
    static func tagLine(_ r: PostgresResponse) -> String { r.commandTag.isEmpty ? "(none)" : r.commandTag }
    static func errorLine(_ e: PostgresNotice) -> String { "\(e.sqlState) \(e.message)" }
    static func micros(_ us: UInt64) -> String { us >= 1000 ? String(format: "%.1f ms", Double(us) / 1000) : "\(us) µs" }

    static func short(_ s: String, max: Int = 200) -> String {
        let line = s.split(whereSeparator: \.isNewline).joined(separator: " ")
        return line.count > max ? String(line.prefix(max)) + "…" : line
    }

    static func render(_ row: [RecordedValueKey], _ names: [String]) -> String {
        zip(names, row).map { name, v in "\(name)=\(v.display)" }.joined(separator: " ")
    }
}

/// A value as compared: its recorded bytes (masked values by their masked form) and whether
/// it was altered for the record.
struct RecordedValueKey: Hashable {
    var bytes: [UInt8]?
    var altered: Bool

    static func == (a: Self, b: Self) -> Bool { a.bytes == b.bytes }
    func hash(into h: inout Hasher) { h.combine(bytes) }

    var display: String {
        guard let bytes else { return "NULL" }
        let text = String(decoding: bytes, as: UTF8.self)
        let shown = text.utf8.elementsEqual(bytes) && !text.contains(where: { $0.isNewline })
            ? "'" + (text.count > 60 ? String(text.prefix(60)) + "…" : text) + "'"
            : "\\x" + bytes.prefix(32).map { String(format: "%02x", $0) }.joined() + (bytes.count > 32 ? "…" : "")
        return altered ? shown + "(not compared)" : shown
    }
}
