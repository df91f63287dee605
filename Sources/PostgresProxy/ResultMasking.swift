import Masking
import NIOCore
import PostgresWire
import ProxyCore

/// Masks one session's results as they stream: DataRow values, COPY … TO STDOUT rows,
/// notices, errors and notification payloads. Each message is rewritten on its own (re-framed
/// with its new length); nothing is held back. Unchanged messages are forwarded as they came.
///
/// A masked value stays a valid value of its column's type, so typed clients (psycopg, JDBC)
/// keep working:
/// - text-like types (text, varchar, char, name, xml, unknown, and types the gate does not know,
///   such as citext or domains) get the readable mask, in text and in binary format (where they
///   are the same UTF-8 bytes);
/// - json and jsonb are masked inside (masks contain no quote or backslash); masked whole they
///   become the JSON string `"********"`;
/// - arrays of text and records are masked inside; masked whole they become NULL;
/// - every other type (numbers, dates, booleans, uuid, bytea, arrays of those) becomes NULL when
///   a detector fires on it or a column rule covers it. Binary integers and numeric are decoded
///   to digits first, so a card number stored in a bigint is found in binary results too.
struct PostgresResultMasker {
    let masker: Masker
    var tally = MaskTally()
    var scratch = MaskScratch()

    enum Mode: Equatable {
        /// Content detectors only.
        case scan
        /// A column rule covers it: the whole value is masked.
        case whole
    }

    /// How a column's values are read and how a masked value is written back.
    enum ValueKind: Equatable {
        /// UTF-8 text after `prefix` bytes (jsonb's binary version byte).
        case text
        case json(prefix: Int)
        /// Text that holds several values (`{a,b}`, `(1,x)`): masked inside, NULL when masked whole.
        case container
        /// Integers and numeric, as text or binary: digits for the detectors, NULL when masked.
        case number(ValueDecoding)
        /// A binary array of text-like elements: each element masked as text, the array rebuilt.
        case binaryTextArray
        /// Anything else in text format: scanned as is, NULL when masked.
        case opaque
        /// Any other type in binary format: read as far as its layout can be known (arrays and
        /// records by their headers, integers and numeric decoded, anything else also tried as
        /// an integer or a numeric), NULL when anything in it is flagged.
        case binary(typeOID: UInt32)
    }

    enum ValueDecoding: Equatable { case text, binaryInteger, binaryNumeric }

    /// Plain values only (no references): a plan is copied for every value of its column.
    struct ColumnPlan {
        var mode: Mode
        var kind: ValueKind
    }

    /// A result's column plans and where each column's masks are reported, set together: a cached
    /// plan or a plan carried over a policy reload never pairs one result's plans with another's names.
    struct ResultColumns {
        var plans: [ColumnPlan] = []
        var locations: [MaskLocation] = []
    }

    var columns = ResultColumns() { didSet { columnCounts = Array(repeating: DetectorCounts(), count: columns.plans.count) } }
    /// What was masked in each column of the current result, folded into `tally` by `takeTally`.
    var columnCounts: [DetectorCounts] = []
    var copy: CopyPlan?
    /// The columns `mask(_ row:)` changed in the last row it masked (recorded as format 1.4 value flags).
    var maskedColumns: [Int] = []

    init(masker: Masker) { self.masker = masker }

    // MARK: rows

    mutating func beginResult(_ fields: [PostgresBackendMessage.ColumnDescription], sources: [ResultColumn], projections: [Projection],
                              catalog: CatalogLookup) {
        let whole = ColumnMaskPlanner.plan(sources, masker: masker, projections: projections, catalog: catalog)
        columns = ResultColumns(
            plans: fields.enumerated().map { i, f in
                ColumnPlan(mode: whole[i] ? .whole : .scan, kind: Self.kind(typeOID: f.typeOID, binary: f.format != 0))
            },
            locations: fields.enumerated().map { i, f in
                if case .table(let t, let c) = sources[i].source { return .column(ColumnRef(schema: t.schema, table: t.name, column: c)) }
                return .column(ColumnRef(column: f.name))
            })
    }

    /// Built-in type OIDs (pg_type.dat); OIDs from 16384 up are the database's own types.
    static func kind(typeOID: UInt32, binary: Bool) -> ValueKind {
        switch typeOID {
        case 25, 1043, 1042, 19, 18, 142, 705: return .text               // text, varchar, bpchar, name, "char", xml, unknown
        case 114: return .json(prefix: 0)
        case 3802: return .json(prefix: binary ? 1 : 0)                   // jsonb: binary starts with a version byte
        case 20, 21, 23, 26: return .number(binary ? .binaryInteger : .text) // int8, int2, int4, oid
        case 1700: return .number(binary ? .binaryNumeric : .text)
        case 1009, 1015, 1014, 1003, 143, 199:                            // text[], varchar[], bpchar[], name[], xml[], json[]
            return binary ? .binaryTextArray : .container
        case 3807, 2249:                                                  // jsonb[], record
            return binary ? .binary(typeOID: typeOID) : .container
        default:
            if binary { return .binary(typeOID: typeOID) }
            return typeOID >= 16384 ? .text : .opaque
        }
    }

    /// What to send instead of a value: NULL, or the first `keep` bytes of the original followed
    /// by the new bytes, which are in `scratch.out` (written out before the next value is masked).
    enum Replacement {
        case null
        case masked(keep: Int)
    }

    /// `bytes` as the new bytes of a value (for the masks not written by the masker itself).
    mutating func replaced(keep: Int, with bytes: some Sequence<UInt8>) -> Replacement {
        scratch.setOutput(bytes)
        return .masked(keep: keep)
    }

    /// The row with its values masked, or nil when nothing changed. Works on the row's bytes in
    /// place: an unchanged row costs no allocation, a changed one a single new buffer.
    mutating func mask(_ row: PostgresBackendMessage.DataRow) -> PostgresBackendMessage.DataRow? {
        var out: ByteBuffer?
        maskedColumns.removeAll(keepingCapacity: true)
        let plans = columns.plans  // one retain a row, not one a value
        row.forEachValue { index, lengthOffset, value in
            guard let value, value.count > 0 else {
                out?.writeInteger(Int32(value == nil ? -1 : 0))
                return
            }
            let bytes = value.assumingMemoryBound(to: UInt8.self)
            // Values of columns no RowDescription described: their type and format are unknown, so a
            // flagged one becomes NULL rather than risk rewriting a binary value.
            let plan = index < plans.count ? plans[index]
                : ColumnPlan(mode: masker.hasColumnRules ? .whole : .scan, kind: .opaque)
            guard let replacement = mask(bytes, plan, column: index) else {
                if out != nil { out!.writeInteger(Int32(value.count)); out!.writeBytes(value) }
                return
            }
            maskedColumns.append(index)
            if out == nil {
                // The row up to this value, as it came.
                var start = ByteBuffer()
                start.reserveCapacity(row.bytes.readableBytes + 64)
                start.writeImmutableBuffer(row.bytes.getSlice(at: row.bytes.readerIndex, length: lengthOffset)!)
                out = start
            }
            switch replacement {
            case .null:
                out!.writeInteger(Int32(-1))
            case .masked(let keep):
                out!.writeInteger(Int32(keep + scratch.out.count))
                out!.writeBytes(UnsafeBufferPointer(rebasing: bytes[0..<keep]))
                out!.writeBytes(scratch.out)
            }
        }
        return out.map { PostgresBackendMessage.DataRow(uncheckedBody: $0, columnCount: row.columnCount) }
    }

    /// Counts go to the column's own tally (no hashing per value); `takeTally` names the columns.
    mutating func count(_ counts: DetectorCounts, column: Int) {
        if column < columnCounts.count {
            columnCounts[column].add(counts)
        } else {
            tally.record(counts, at: MaskLocation("column \(column + 1)"))
        }
    }

    /// The replacement for one value, or nil when it passes unchanged.
    mutating func mask(_ value: UnsafeBufferPointer<UInt8>, _ plan: ColumnPlan, column: Int) -> Replacement? {
        switch plan.kind {
        case .text:
            return maskText(value, plan, column: column, keep: 0)
        case .json(let prefix):
            guard value.count >= prefix else { return .null }
            if plan.mode == .whole {
                count([.column: 1], column: column)
                return replaced(keep: prefix, with: #""********""#.utf8)
            }
            return maskText(value, plan, column: column, keep: prefix)
        case .container:
            if plan.mode == .whole { return wholeToNull(plan, column: column) }
            return maskText(value, plan, column: column, keep: 0)
        case .binaryTextArray:
            if plan.mode == .whole { return wholeToNull(plan, column: column) }
            guard var array = BinaryValues.TextArray(ByteBuffer(bytes: value)) else { return .null }  // malformed: not passed unchecked
            var changed = false
            for i in array.elements.indices {
                guard let element = array.elements[i], let r = masker.mask(element) else { continue }
                count(r.counts, column: column)
                array.elements[i] = r.bytes
                changed = true
            }
            return changed ? replaced(keep: 0, with: array.encoded.readableBytesView) : nil
        case .number(let decoding):
            if plan.mode == .whole { return wholeToNull(plan, column: column) }
            switch decoding {
            case .text: return flagToNull(value, plan, column: column)
            case .binaryInteger, .binaryNumeric:
                let digits = decoding == .binaryInteger ? BinaryValues.integerDigits(ByteBuffer(bytes: value))
                    : BinaryValues.numericDigits(ByteBuffer(bytes: value))
                guard let digits else { return .null }  // a malformed binary number is not passed unchecked
                return digits.withUnsafeBufferPointer { flagToNull($0, plan, column: column) }
            }
        case .opaque:
            if plan.mode == .whole { return wholeToNull(plan, column: column) }
            return flagToNull(value, plan, column: column)
        case .binary(let typeOID):
            if plan.mode == .whole { return wholeToNull(plan, column: column) }
            var counts = DetectorCounts()
            BinaryValues.inspect(Array(value), typeOID: typeOID, masker: masker, into: &counts, depth: 0)
            guard counts.total > 0 else { return nil }
            count(counts, column: column)
            return .null
        }
    }

    mutating func wholeToNull(_ plan: ColumnPlan, column: Int) -> Replacement {
        count([.column: 1], column: column)
        return .null
    }

    mutating func flagToNull(_ bytes: UnsafeBufferPointer<UInt8>, _ plan: ColumnPlan, column: Int) -> Replacement? {
        guard let counts = masker.mask(bytes, using: &scratch) else { return nil }
        count(counts, column: column)
        return .null
    }

    mutating func maskText(_ value: UnsafeBufferPointer<UInt8>, _ plan: ColumnPlan, column: Int, keep: Int) -> Replacement? {
        let body = UnsafeBufferPointer(rebasing: value[keep...])
        let counts = plan.mode == .whole ? masker.maskWholeValue(body, using: &scratch) : masker.mask(body, using: &scratch)
        guard let counts else { return nil }
        count(counts, column: column)
        return .masked(keep: keep)
    }

    // MARK: notices, errors, notifications

    /// Every field of an ErrorResponse or NoticeResponse: a failed cast echoes the value it could not read.
    mutating func mask(_ diagnostics: PostgresBackendMessage.Diagnostics, at location: MaskLocation) -> PostgresBackendMessage.Diagnostics? {
        var changed = false
        var fields = diagnostics.fields
        for i in fields.indices {
            guard let masked = masker.maskText(fields[i].value) else { continue }
            tally.record(masked.counts, at: location)
            fields[i].value = masked.text
            changed = true
        }
        return changed ? PostgresBackendMessage.Diagnostics(fields: fields) : nil
    }

    mutating func mask(text: String, at location: MaskLocation) -> String? {
        guard let masked = masker.maskText(text) else { return nil }
        tally.record(masked.counts, at: location)
        return masked.text
    }

    mutating func takeTally() -> MaskTally {
        for (i, counts) in columnCounts.enumerated() where counts.total > 0 {
            tally.record(counts, at: columns.locations[i])
            columnCounts[i] = DetectorCounts()
        }
        defer { tally = MaskTally() }
        return tally
    }

    // MARK: COPY … TO STDOUT

    /// How to find the fields of COPY rows. `whole[i]`: field i is masked whole (a column rule
    /// covers it); `allWhole`: every field is (the columns could not be identified but a rule
    /// may cover them).
    struct CopyPlan {
        var layout: RowStreamLayout
        var whole: [Bool]
        var allWhole: Bool
        var rowsSeen = 0
    }

    mutating func beginCopy(_ layout: RowStreamLayout, projections: [Projection], catalog: CatalogLookup) {
        var plan = CopyPlan(layout: layout, whole: [], allWhole: false)
        if masker.hasColumnRules {
            if let table = layout.table {
                if let names = layout.columns.isEmpty ? catalog.columns(table) : layout.columns {
                    plan.whole = ColumnMaskPlanner.plan(names.map { ResultColumn(name: $0, source: .table(table, column: $0)) },
                                                    masker: masker, projections: [], catalog: catalog)
                } else {
                    // A table the catalog does not know may hold values copied from a covered column
                    // (a temporary table made by CREATE TABLE AS): every field is masked.
                    plan.allWhole = catalog.knowsEveryRelation || masker.mayCoverColumns(ofSchema: table.schema, table: table.name)
                }
            } else if projections.count == 1, let outputs = projections[0].outputs {
                // COPY (SELECT …): each field is its select-list entry.
                plan.whole = outputs.map { refs in
                    var own = projections[0]
                    own.references = refs
                    return ColumnMaskPlanner.derivesFromCovered([own], masker: masker, catalog: catalog)
                }
            } else {
                plan.allWhole = ColumnMaskPlanner.derivesFromCovered(projections, masker: masker, catalog: catalog)
            }
        }
        copy = plan
    }

    /// One CopyData message of COPY TO STDOUT (PostgreSQL sends one row per message). The row
    /// is split into fields as the server wrote it (`CopyRow`), each field is masked on its own
    /// (whole when a column rule covers it, else by the detectors), and only changed fields are
    /// written again.
    mutating func maskCopyData(_ data: ByteBuffer) -> ByteBuffer? {
        guard var plan = copy else {
            // COPY data without a known layout: the content detectors still run.
            return maskLine(Array(data.readableBytesView))
        }
        defer { plan.rowsSeen += 1; copy = plan }
        if plan.layout.header && plan.rowsSeen == 0 { return nil }  // column names
        let line = Array(data.readableBytesView)
        let end = CopyRow.lineEnd(line)
        guard var fields = CopyRow.split(line, layout: plan.layout) else {
            // Not a row the server writes for this layout: no field can be placed, so none passes.
            let body = Array(line.dropLast(end.count))
            guard let r = masker.maskWholeValue(body) else { return nil }
            tally.record(r, at: .copyData)
            return ByteBuffer(bytes: r.bytes + end)
        }
        var changed = false
        for i in fields.indices where !fields[i].isNull {
            let whole = plan.allWhole || (i < plan.whole.count && plan.whole[i])
            let value = fields[i].value
            guard let r = whole ? masker.maskWholeValue(value) : masker.mask(value) else { continue }
            tally.record(r, at: .copyData)
            fields[i].value = r.bytes
            fields[i].changed = true
            changed = true
        }
        guard changed else { return nil }
        return ByteBuffer(bytes: CopyRow.join(fields, layout: plan.layout, lineEnd: end))
    }

    mutating func maskLine(_ line: [UInt8]) -> ByteBuffer? {
        guard let r = masker.mask(line) else { return nil }
        tally.record(r, at: .copyData)
        return ByteBuffer(bytes: r.bytes)
    }
}

/// Binary-format values the detectors need to read.
enum BinaryValues {
    static let textTypes: Set<UInt32> = [25, 1043, 1042, 19, 18, 142, 705, 114]
    static let integerTypes: Set<UInt32> = [20, 21, 23, 26]

    /// Adds what the detectors find anywhere in a binary value of `typeOID`: text as text,
    /// integers and numeric as digits, arrays and records element by element (their headers
    /// say the element types), and a value of a type the gate does not know both as its bytes
    /// and, where its length allows, as an integer or a numeric (a domain over bigint holding a
    /// card number is still found).
    static func inspect(_ value: [UInt8], typeOID: UInt32, masker: Masker, into counts: inout DetectorCounts, depth: Int) {
        func scan(_ bytes: [UInt8]) { if let r = masker.mask(bytes) { counts.add(r.counts) } }
        let buffer = ByteBuffer(bytes: value)
        if textTypes.contains(typeOID) { scan(value); return }
        if typeOID == 3802 { scan(Array(value.dropFirst())); return }
        if integerTypes.contains(typeOID) { integerDigits(buffer).map(scan); return }
        if typeOID == 1700 { numericDigits(buffer).map(scan); return }
        guard depth < 4 else { scan(value); return }
        if let boundType = rangeBounds[typeOID] {
            guard let bounds = rangeBoundValues(value) else { scan(value); return }
            for bound in bounds { inspect(bound, typeOID: boundType, masker: masker, into: &counts, depth: depth + 1) }
            return
        }
        if let rangeType = multiranges[typeOID] {
            guard let ranges = multirangeValues(value) else { scan(value); return }
            for range in ranges { inspect(range, typeOID: rangeType, masker: masker, into: &counts, depth: depth + 1) }
            return
        }
        if let (elementType, elements) = arrayElements(buffer) {
            for e in elements { if let e { inspect(e, typeOID: elementType, masker: masker, into: &counts, depth: depth + 1) } }
            return
        }
        if let fields = recordFields(buffer) {
            for (oid, f) in fields { if let f { inspect(f, typeOID: oid, masker: masker, into: &counts, depth: depth + 1) } }
            return
        }
        scan(value)
        if [2, 4, 8].contains(value.count) { integerDigits(buffer).map(scan) }
        numericDigits(buffer).map(scan)
        // A type the gate does not know may be a range over integers or numeric (a user's range type).
        if typeOID >= 16384, let bounds = rangeBoundValues(value) {
            for bound in bounds { inspect(bound, typeOID: 0, masker: masker, into: &counts, depth: depth + 1) }
        }
    }

    /// A binary array's element type and elements, when the value has an array's layout.
    static func arrayElements(_ value: ByteBuffer) -> (UInt32, [[UInt8]?])? {
        var b = value
        guard let ndim = b.readInteger(as: Int32.self), (0...6).contains(ndim), let flags = b.readInteger(as: Int32.self),
              flags == 0 || flags == 1, let elementType = b.readInteger(as: UInt32.self) else { return nil }
        var count = ndim == 0 ? 0 : 1
        for _ in 0..<Int(ndim) {
            guard let size = b.readInteger(as: Int32.self), size >= 0, b.readInteger(as: Int32.self) != nil else { return nil }
            count = count.multipliedReportingOverflow(by: Int(size)).partialValue
            guard count <= b.readableBytes / 4 else { return nil }
        }
        var elements: [[UInt8]?] = []
        for _ in 0..<count {
            guard let length = b.readInteger(as: Int32.self) else { return nil }
            if length == -1 { elements.append(nil); continue }
            guard length >= 0, let bytes = b.readBytes(length: Int(length)) else { return nil }
            elements.append(bytes)
        }
        return b.readableBytes == 0 ? (elementType, elements) : nil
    }

    /// A binary record's fields (type and value), when the value has a record's layout.
    static func recordFields(_ value: ByteBuffer) -> [(UInt32, [UInt8]?)]? {
        var b = value
        guard let n = b.readInteger(as: Int32.self), n >= 0, Int(n) <= b.readableBytes / 8 else { return nil }
        var fields: [(UInt32, [UInt8]?)] = []
        for _ in 0..<Int(n) {
            guard let oid = b.readInteger(as: UInt32.self), let length = b.readInteger(as: Int32.self) else { return nil }
            if length == -1 { fields.append((oid, nil)); continue }
            guard length >= 0, let bytes = b.readBytes(length: Int(length)) else { return nil }
            fields.append((oid, bytes))
        }
        return b.readableBytes == 0 && n > 0 ? fields : nil
    }

    /// PostgreSQL's binary array: ndim, has-null flag, element type, (size, lower bound) per
    /// dimension, then each element as Int32 length (-1: NULL) and bytes.
    struct TextArray {
        var header: ByteBuffer
        var elements: [[UInt8]?]

        init?(_ value: ByteBuffer) {
            guard let (_, elements) = BinaryValues.arrayElements(value),
                  let ndim = value.getInteger(at: value.readerIndex, as: Int32.self) else { return nil }
            // ndim, flags, element type, then (size, lower bound) per dimension.
            header = value.getSlice(at: value.readerIndex, length: 12 + 8 * Int(ndim))!
            self.elements = elements
        }

        var encoded: ByteBuffer {
            var out = header
            for e in elements {
                if let e { out.writeInteger(Int32(e.count)); out.writeBytes(e) } else { out.writeInteger(Int32(-1)) }
            }
            return out
        }
    }

    static func integerDigits(_ value: ByteBuffer) -> [UInt8]? {
        switch value.readableBytes {
        case 8: return value.getInteger(at: value.readerIndex, as: Int64.self).map { Array(String($0).utf8) }
        case 4: return value.getInteger(at: value.readerIndex, as: Int32.self).map { Array(String($0).utf8) }
        case 2: return value.getInteger(at: value.readerIndex, as: Int16.self).map { Array(String($0).utf8) }
        default: return nil
        }
    }

    /// numeric's binary form: ndigits, weight, sign, dscale (Int16 each), then base-10000 digits,
    /// the first worth 10000^weight.
    static func numericDigits(_ value: ByteBuffer) -> [UInt8]? {
        var b = value
        guard let count = b.readInteger(as: Int16.self), let weight = b.readInteger(as: Int16.self),
              let sign = b.readInteger(as: UInt16.self), let _ = b.readInteger(as: Int16.self),
              count >= 0, b.readableBytes == Int(count) * 2 else { return nil }
        if sign == 0xC000 { return Array("NaN".utf8) }
        var groups: [Int] = []
        for _ in 0..<Int(count) {
            guard let d = b.readInteger(as: Int16.self), (0..<10000).contains(d) else { return nil }
            groups.append(Int(d))
        }
        func padded(_ d: Int) -> String { let s = String(d); return String(repeating: "0", count: 4 - s.count) + s }
        var text = sign == 0x4000 ? "-" : ""
        let w = Int(weight)
        if w >= 0 {
            for g in 0...w { let d = g < groups.count ? groups[g] : 0; text += g == 0 ? String(d) : padded(d) }
        } else {
            text += "0"
        }
        if w < groups.count - 1 {
            text += "."
            if w < -1 { text += String(repeating: "0000", count: -w - 1) }
            for g in max(0, w + 1)..<groups.count { text += padded(groups[g]) }
        }
        return Array(text.utf8)
    }
}
