// The event model: responses of each protocol, their columns, notices and rows (field tags are file format).

public enum Response: Sendable, Equatable, WireMessage {
    case postgres(PostgresResponse)
    case http(HTTPResponse)
    /// A protocol added after this reader (a message field with a tag it does not know).
    case unknown(UnknownProtocol)

    public func encode(to w: inout WireWriter) {
        switch self {
        case .postgres(let p): w.message(1, p)
        case .http(let h): w.message(2, h)
        case .unknown(let u): u.encode(to: &w)
        }
    }

    /// How long the upstream took to answer, as the gate measured it (0: not measured).
    public var durationMicros: UInt64 {
        switch self {
        case .postgres(let p): p.durationMicros
        case .http(let h): h.durationMicros
        case .unknown: 0
        }
    }

    public init(wire r: inout WireReader) throws {
        var result: Response?
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: result = .postgres(try r.message(t))
            case 2: result = .http(try r.message(t))
            // A newer writer's protocol: kept, not a reason to refuse the event.
            case _ where t == .lengthDelimited && result == nil: result = .unknown(UnknownProtocol(tag: tag, bytes: try r.bytes(t)))
            default: try r.skip(t)
            }
        }
        guard let result else { throw r.fail("response has no protocol payload") }
        self = result
    }
}

public struct Column: Sendable, Equatable, WireMessage {
    public var name: String
    public var typeOID: UInt32
    public var tableOID: UInt32
    public var attributeNumber: UInt16
    public var format: UInt8

    public init(name: String, typeOID: UInt32, tableOID: UInt32 = 0, attributeNumber: UInt16 = 0, format: UInt8 = 0) {
        self.name = name; self.typeOID = typeOID; self.tableOID = tableOID
        self.attributeNumber = attributeNumber; self.format = format
    }

    public func encode(to w: inout WireWriter) {
        w.string(1, name); w.uint(2, UInt64(typeOID)); w.uint(3, UInt64(tableOID))
        w.uint(4, UInt64(attributeNumber)); w.uint(5, UInt64(format))
    }

    public init(wire r: inout WireReader) throws {
        self.init(name: "", typeOID: 0)
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: name = try r.string(t)
            case 2: typeOID = UInt32(truncatingIfNeeded: try r.uint(t))
            case 3: tableOID = UInt32(truncatingIfNeeded: try r.uint(t))
            case 4: attributeNumber = UInt16(truncatingIfNeeded: try r.uint(t))
            case 5: format = UInt8(truncatingIfNeeded: try r.uint(t))
            default: try r.skip(t)
            }
        }
    }
}

/// An ErrorResponse or NoticeResponse, after masking.
public struct PostgresNotice: Sendable, Equatable, WireMessage {
    public var severity: String
    public var sqlState: String
    public var message: String
    public var detail: String
    public var hint: String
    /// Since 1.4: whether its text was masked, or withheld (the gate replaced the message).
    public var flags: ValueFlags

    public init(severity: String, sqlState: String, message: String, detail: String = "", hint: String = "", flags: ValueFlags = []) {
        self.severity = severity; self.sqlState = sqlState; self.message = message; self.detail = detail; self.hint = hint
        self.flags = flags
    }

    public func encode(to w: inout WireWriter) {
        w.string(1, severity); w.string(2, sqlState); w.string(3, message); w.string(4, detail); w.string(5, hint)
        w.uint(6, flags.rawValue)
    }

    public init(wire r: inout WireReader) throws {
        self.init(severity: "", sqlState: "", message: "")
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: severity = try r.string(t)
            case 2: sqlState = try r.string(t)
            case 3: message = try r.string(t)
            case 4: detail = try r.string(t)
            case 5: hint = try r.string(t)
            case 6: flags = ValueFlags(rawValue: try r.uint(t))
            default: try r.skip(t)
            }
        }
    }
}

/// Rows past the recording cap: how many, how many bytes, and a SHA-256 over their packed encoding.
public struct CutRows: Sendable, Equatable, WireMessage {
    public var rows: UInt64
    public var bytes: UInt64
    public var sha256: [UInt8]

    public init(rows: UInt64, bytes: UInt64, sha256: [UInt8]) { self.rows = rows; self.bytes = bytes; self.sha256 = sha256 }

    public func encode(to w: inout WireWriter) { w.uint(1, rows); w.uint(2, bytes); w.bytes(3, sha256) }

    public init(wire r: inout WireReader) throws {
        self.init(rows: 0, bytes: 0, sha256: [])
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: rows = try r.uint(t)
            case 2: bytes = try r.uint(t)
            case 3: sha256 = try r.bytes(t)
            default: try r.skip(t)
            }
        }
    }
}

/// A row's values; nil is SQL NULL. On disk a row is one packed field:
/// for each value, varint(length + 1) then the bytes, or varint 0 for NULL.
public typealias Row = [[UInt8]?]

public struct PostgresResponse: Sendable, Equatable, WireMessage {
    public var columns: [Column]
    /// Rows as recorded (after masking), up to the cap, in their on-disk form: written and read
    /// as they are. `rows` gives them as values.
    public var packedRows: PackedRows
    /// Rows as recorded (after masking), up to the cap.
    public var rows: [Row] {
        get { packedRows.rows }
        set { packedRows = PackedRows(newValue) }
    }
    /// True number of rows the statement returned or affected.
    public var rowCount: UInt64
    public var commandTag: String
    public var error: PostgresNotice?
    public var notices: [PostgresNotice]
    public var durationMicros: UInt64
    public var cut: CutRows?
    /// Since 1.4: the recorded values that are not as sent (masked, withheld, cut at the value
    /// cap), in row then column order; a value not listed was recorded as sent.
    public var valueFlags: [FlaggedValue]

    public init(columns: [Column] = [], rows: [Row] = [], rowCount: UInt64 = 0, commandTag: String = "",
                error: PostgresNotice? = nil, notices: [PostgresNotice] = [], durationMicros: UInt64 = 0, cut: CutRows? = nil,
                valueFlags: [FlaggedValue] = []) {
        self.columns = columns; self.packedRows = PackedRows(rows); self.rowCount = rowCount; self.commandTag = commandTag
        self.error = error; self.notices = notices; self.durationMicros = durationMicros; self.cut = cut
        self.valueFlags = valueFlags
    }

    /// The flags of one recorded value (row and column 0-based); empty: recorded as sent.
    public func flags(row: Int, column: Int) -> ValueFlags {
        var lo = 0, hi = valueFlags.count
        while lo < hi {  // sorted by (row, column)
            let mid = (lo + hi) / 2, v = valueFlags[mid]
            if (v.row, v.column) < (row, column) { lo = mid + 1 } else { hi = mid }
        }
        return lo < valueFlags.count && valueFlags[lo].row == row && valueFlags[lo].column == column ? valueFlags[lo].flags : []
    }

    public static func pack(_ row: Row) -> [UInt8] {
        var w = WireWriter(capacity: row.reduce(0) { $0 + ($1?.count ?? 0) + 2 })
        packRow(row, into: &w)
        return w.bytes
    }

    /// A packed row's values.
    public static func unpackRow(_ packed: UnsafeRawBufferPointer) -> Row {
        var row: Row = []
        forEachValue(ofPacked: packed) { row.append($0.map { [UInt8]($0) }) }
        return row
    }

    /// The total length of a packed row's values, without unpacking it.
    public static func valueBytes(ofPacked packed: UnsafeRawBufferPointer) -> UInt64 {
        var total: UInt64 = 0
        forEachValue(ofPacked: packed) { total &+= UInt64($0?.count ?? 0) }
        return total
    }

    /// Each value of a packed row in order (nil for NULL), in place. The layout was checked when
    /// the row was read or made; should it not hold, the walk stops where it breaks.
    static func forEachValue(ofPacked buf: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer?) -> Void) {
        var r = WireReader(buf)
        try? walkPacked(&r) { body($0.map { UnsafeRawBufferPointer(rebasing: buf[$0]) }) }
    }

    /// The one walk over a packed row's layout (per value varint(length + 1) and the bytes, or 0
    /// for NULL): each value's range in the reader's buffer; throws where a length runs past the row.
    static func walkPacked(_ r: inout WireReader, _ body: (Range<Int>?) -> Void) throws {
        while !r.isAtEnd {
            let n = try r.varint()
            if n == 0 { body(nil); continue }
            guard n - 1 <= UInt64(r.end - r.position) else { throw r.fail("row value runs past the end") }
            let end = r.position + Int(n - 1)
            body(r.position..<end)
            r.position = end
        }
    }

    public static func packRow(_ row: Row, into w: inout WireWriter) {
        for value in row {
            if let value {
                w.varint(UInt64(value.count) + 1)
                w.append(raw: value)
            } else {
                w.varint(0)
            }
        }
    }

    public func encode(to w: inout WireWriter) {
        w.messages(1, columns)
        w.append(raw: packedRows.encoded)
        w.uint(3, rowCount); w.string(4, commandTag); w.message(5, error)
        w.messages(6, notices); w.uint(7, durationMicros); w.message(8, cut)
        if !valueFlags.isEmpty { w.bytes(9, FlaggedValue.pack(valueFlags)) }
    }

    public init(wire r: inout WireReader) throws {
        self.init()
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: columns.append(try r.message(t))
            case 2:
                var sub = try r.subReader(t)
                let start = sub.position
                try Self.walkPacked(&sub) { _ in }
                packedRows.append(packed: UnsafeRawBufferPointer(rebasing: sub.base[start..<sub.end]))
            case 3: rowCount = try r.uint(t)
            case 4: commandTag = try r.string(t)
            case 5: error = try r.message(t)
            case 6: notices.append(try r.message(t))
            case 7: durationMicros = try r.uint(t)
            case 8: cut = try r.message(t)
            case 9:
                var sub = try r.subReader(t)
                try FlaggedValue.unpack(&sub, into: &valueFlags)
            default: try r.skip(t)
            }
        }
        // A flag on a value the response does not hold is damage, not something to skip.
        if let bad = valueFlags.first(where: { $0.row >= packedRows.count }) {
            throw r.fail("value flag names row \(bad.row), past the \(packedRows.count) recorded rows")
        }
        valueFlags.sort { ($0.row, $0.column) < ($1.row, $1.column) }
    }
}

/// A response's recorded rows, back to back in one buffer in their on-disk form: each row is the
/// response's field 2 (its key, its length, then per value varint(length + 1) and the bytes, or 0
/// for NULL). Recording a row appends to the buffer and writing the response appends the buffer
/// whole, so a result of many rows costs one growing allocation instead of one per row.
public struct PackedRows: Sendable, Equatable {
    private var writer = WireWriter(capacity: 0)  // a result without rows allocates nothing
    public private(set) var count = 0

    public init() {}

    public init(_ rows: [Row]) {
        for row in rows { append(row) }
    }

    /// The rows as field 2 of a PostgresResponse, in order.
    public var encoded: [UInt8] { writer.bytes }
    public var rows: [Row] {
        var rows: [Row] = []
        rows.reserveCapacity(count)
        forEach { rows.append(PostgresResponse.unpackRow($0)) }
        return rows
    }

    public static func == (a: PackedRows, b: PackedRows) -> Bool { a.count == b.count && a.encoded == b.encoded }

    public mutating func append(_ row: Row) {
        append { PostgresResponse.packRow(row, into: &$0) }
    }

    /// Appends a row whose packed values are checked already.
    public mutating func append(packed: UnsafeRawBufferPointer) {
        append { $0.append(raw: packed) }
    }

    /// Appends one row, whose packed values `pack` writes; returns their length in bytes.
    @discardableResult
    public mutating func append(_ pack: (inout WireWriter) -> Void) -> Int {
        var packedLength = 0
        writer.message(2) { w in
            let start = w.bytes.count
            pack(&w)
            packedLength = w.bytes.count - start
        }
        count += 1
        return packedLength
    }

    /// Takes the last row back out (appended at byte `start`), returning its packed values.
    mutating func removeLast(from start: Int, packedLength: Int) -> [UInt8] {
        let values = Array(writer.bytes.suffix(packedLength))
        writer.truncate(to: start)
        count -= 1
        return values
    }

    /// Each row's packed values, in place.
    public func forEach(_ body: (UnsafeRawBufferPointer) -> Void) {
        writer.bytes.withUnsafeBytes { buf in
            var r = WireReader(buf)
            // Built by `append`, or checked when read: every field is one whole row.
            while let (_, t) = try? r.nextField(), let sub = try? r.subReader(t) {
                body(UnsafeRawBufferPointer(rebasing: buf[sub.position..<sub.end]))
            }
        }
    }
}

public struct HTTPResponse: Sendable, Equatable, WireMessage {
    public var status: UInt16
    public var headers: [KeyValue]
    public var body: CappedBytes
    public var durationMicros: UInt64

    public init(status: UInt16, headers: [KeyValue] = [], body: CappedBytes = CappedBytes(data: []), durationMicros: UInt64 = 0) {
        self.status = status; self.headers = headers; self.body = body; self.durationMicros = durationMicros
    }

    public func encode(to w: inout WireWriter) {
        w.uint(1, UInt64(status)); w.messages(2, headers)
        if body.totalSize > 0 { w.message(3, body) }
        w.uint(4, durationMicros)
    }

    public init(wire r: inout WireReader) throws {
        self.init(status: 0)
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: status = UInt16(truncatingIfNeeded: try r.uint(t))
            case 2: headers.append(try r.message(t))
            case 3: body = try r.message(t)
            case 4: durationMicros = try r.uint(t)
            default: try r.skip(t)
            }
        }
    }
}
