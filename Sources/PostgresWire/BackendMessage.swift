import NIOCore

/// A message sent by a PostgreSQL server (protocol 3.0).
public enum PostgresBackendMessage: Sendable, Hashable {
    case authentication(Authentication)
    case backendKeyData(processID: Int32, secretKey: Int32)
    case parameterStatus(name: String, value: String)
    case readyForQuery(TransactionStatus)
    case rowDescription([ColumnDescription])
    case dataRow(DataRow)
    case commandComplete(tag: String)
    case emptyQueryResponse
    case errorResponse(Diagnostics)
    case noticeResponse(Diagnostics)
    case notificationResponse(processID: Int32, channel: String, payload: String)
    case parseComplete
    case bindComplete
    case closeComplete
    case noData
    case portalSuspended
    case parameterDescription([UInt32])
    case copyInResponse(CopyResponse)
    case copyOutResponse(CopyResponse)
    case copyBothResponse(CopyResponse)
    case copyData(ByteBuffer)
    case copyDone
    case negotiateProtocolVersion(newestMinorVersion: Int32, unrecognizedOptions: [String])
    /// `nil` is a NULL result.
    case functionCallResponse(ByteBuffer?)
    /// The single byte answering an SSLRequest. Only decoded when the decoder expects it.
    case sslResponse(SSLResponse)
    /// A typed message this library does not know, passed on untouched.
    case unknown(type: UInt8, body: ByteBuffer)

    /// The 'R' message. Codes with no case of their own (Kerberos 2, SCM 6, GSS 7, GSSContinue 8,
    /// SSPI 9) come out as `other`; an `other` with a code that has a case does not round-trip.
    public enum Authentication: Sendable, Hashable {
        case ok
        case cleartextPassword
        /// The four salt bytes, big-endian as on the wire.
        case md5Password(salt: UInt32)
        /// Mechanisms the server offers, e.g. `SCRAM-SHA-256`, `SCRAM-SHA-256-PLUS`.
        case sasl(mechanisms: [String])
        case saslContinue(data: ByteBuffer)
        case saslFinal(data: ByteBuffer)
        case other(code: Int32, data: ByteBuffer)

        public var code: Int32 {
            switch self {
            case .ok: 0
            case .cleartextPassword: 3
            case .md5Password: 5
            case .sasl: 10
            case .saslContinue: 11
            case .saslFinal: 12
            case .other(let code, _): code
            }
        }
    }

    public enum TransactionStatus: UInt8, Sendable, Hashable {
        case idle = 0x49           // 'I'
        case inTransaction = 0x54  // 'T'
        case failed = 0x45         // 'E'
    }

    public enum SSLResponse: UInt8, Sendable, Hashable {
        case supported = 0x53     // 'S': go on with a TLS handshake
        case notSupported = 0x4E  // 'N': go on in plaintext (or give up)
    }

    /// One field of a RowDescription.
    public struct ColumnDescription: Sendable, Hashable {
        public var name: String
        /// OID of the table, or 0 when the column is not a table column.
        public var tableOID: UInt32
        /// Attribute number of the column in its table, or 0.
        public var columnAttribute: Int16
        public var typeOID: UInt32
        /// `pg_type.typlen`; negative for variable-width types.
        public var typeSize: Int16
        public var typeModifier: Int32
        /// 0 text, 1 binary.
        public var format: Int16

        public init(name: String, tableOID: UInt32 = 0, columnAttribute: Int16 = 0, typeOID: UInt32,
                    typeSize: Int16, typeModifier: Int32 = -1, format: Int16 = 0) {
            self.name = name
            self.tableOID = tableOID
            self.columnAttribute = columnAttribute
            self.typeOID = typeOID
            self.typeSize = typeSize
            self.typeModifier = typeModifier
            self.format = format
        }
    }

    /// CopyInResponse / CopyOutResponse / CopyBothResponse.
    public struct CopyResponse: Sendable, Hashable {
        /// 0 text, 1 binary.
        public var format: Int8
        public var columnFormats: [Int16]

        public init(format: Int8, columnFormats: [Int16]) {
            self.format = format
            self.columnFormats = columnFormats
        }
    }
}

// MARK: - DataRow

extension PostgresBackendMessage {
    /// A DataRow, kept as its wire body so that forwarding it costs no copy. The layout is
    /// validated once on creation, so iterating the columns cannot fail.
    public struct DataRow: Sendable, Hashable, Sequence {
        /// The message body: Int16 column count, then per column an Int32 length (-1: NULL)
        /// and the bytes.
        public let bytes: ByteBuffer
        public let columnCount: Int

        /// Validates `body` as a DataRow body.
        public init(validating body: ByteBuffer) throws {
            var reader = MessageBodyReader(body: body, headerSize: 5, type: UInt8(ascii: "D"), names: PostgresBackendMessage.messageName(type:))
            let count = try reader.readCount(itemSize: 4, "column count")
            for column in 0..<count {
                let lengthOffset = reader.offset
                let length = try reader.readInteger(as: Int32.self, "column \(column) length")
                if length == -1 { continue }
                guard length >= 0 else { throw reader.malformed("column \(column) has negative length \(length)", at: lengthOffset) }
                _ = try reader.readSlice(length: Int(length), "column \(column) value")
            }
            try reader.expectEnd()
            self.bytes = body
            self.columnCount = count
        }

        /// A body the caller built in the DataRow layout itself (Int16 count, then per column an
        /// Int32 length or -1 and the bytes): not validated again.
        public init(uncheckedBody body: ByteBuffer, columnCount: Int) {
            self.bytes = body
            self.columnCount = columnCount
        }

        /// Builds a row from column values (`nil` is SQL NULL), e.g. after masking.
        public init<Columns: Collection>(columns: Columns) where Columns.Element == ByteBuffer? {
            precondition(columns.count <= Int(UInt16.max), "a DataRow has at most 65535 columns")
            var body = ByteBuffer()
            body.reserveCapacity(2 + columns.reduce(0) { $0 + 4 + ($1?.readableBytes ?? 0) })
            body.writeInteger(UInt16(columns.count))
            for column in columns { body.writeNullableValue(column) }
            self.bytes = body
            self.columnCount = columns.count
        }

        /// Calls `body` with each column's index, the offset in `bytes` of its length field (where
        /// a rewritten row starts to differ) and its value in place (`nil` for NULL): no slice or
        /// copy per value, for the paths that read every value of every row.
        @inlinable
        public func forEachValue(_ body: (_ index: Int, _ lengthOffset: Int, _ value: UnsafeRawBufferPointer?) -> Void) {
            bytes.withUnsafeReadableBytes { raw in
                var offset = 2
                for index in 0..<columnCount {
                    let lengthOffset = offset
                    // Safe to read unchecked: the layout was validated when the row was made.
                    let length = Int(Int32(bigEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
                    offset += 4
                    guard length >= 0 else { body(index, lengthOffset, nil); continue }
                    body(index, lengthOffset, UnsafeRawBufferPointer(rebasing: raw[offset..<offset + length]))
                    offset += length
                }
            }
        }

        /// Column values as slices of `bytes` (no copy); `nil` is SQL NULL.
        public struct Iterator: IteratorProtocol {
            var buffer: ByteBuffer

            public mutating func next() -> ByteBuffer?? {
                // Safe to force: the layout was validated when the row was made.
                guard let length = buffer.readInteger(as: Int32.self) else { return nil }
                if length < 0 { return .some(nil) }
                return .some(buffer.readSlice(length: Int(length))!)
            }
        }

        public func makeIterator() -> Iterator {
            var buffer = bytes
            buffer.moveReaderIndex(forwardBy: 2)
            return Iterator(buffer: buffer)
        }

        public var underestimatedCount: Int { columnCount }

        /// All column values, in order.
        public var columns: [ByteBuffer?] { Array(self) }

        public static func == (lhs: Self, rhs: Self) -> Bool { lhs.bytes == rhs.bytes }
        public func hash(into hasher: inout Hasher) { hasher.combine(bytes) }
    }
}

// MARK: - ErrorResponse / NoticeResponse fields

extension PostgresBackendMessage {
    /// The fields of an ErrorResponse or NoticeResponse, in wire order.
    public struct Diagnostics: Sendable, Hashable {
        /// Field type codes, from the protocol's "Error and Notice Message Fields".
        public enum FieldCode {
            public static let severity = UInt8(ascii: "S")
            public static let severityNonLocalized = UInt8(ascii: "V")
            public static let sqlState = UInt8(ascii: "C")
            public static let message = UInt8(ascii: "M")
            public static let detail = UInt8(ascii: "D")
            public static let hint = UInt8(ascii: "H")
            public static let position = UInt8(ascii: "P")
            public static let internalPosition = UInt8(ascii: "p")
            public static let internalQuery = UInt8(ascii: "q")
            public static let context = UInt8(ascii: "W")
            public static let schemaName = UInt8(ascii: "s")
            public static let tableName = UInt8(ascii: "t")
            public static let columnName = UInt8(ascii: "c")
            public static let dataTypeName = UInt8(ascii: "d")
            public static let constraintName = UInt8(ascii: "n")
            public static let file = UInt8(ascii: "F")
            public static let line = UInt8(ascii: "L")
            public static let routine = UInt8(ascii: "R")
        }

        public var fields: [(code: UInt8, value: String)]

        public init(fields: [(code: UInt8, value: String)]) {
            self.fields = fields
        }

        /// The fields a gate needs to report its own error or notice.
        /// `severity` is e.g. `ERROR`, `FATAL`, `NOTICE`; it is sent both localized and not.
        public init(severity: String, sqlState: String, message: String, detail: String? = nil, hint: String? = nil) {
            var fields: [(code: UInt8, value: String)] = [
                (FieldCode.severity, severity), (FieldCode.severityNonLocalized, severity),
                (FieldCode.sqlState, sqlState), (FieldCode.message, message),
            ]
            if let detail { fields.append((FieldCode.detail, detail)) }
            if let hint { fields.append((FieldCode.hint, hint)) }
            self.fields = fields
        }

        /// The first field with `code`.
        public subscript(code: UInt8) -> String? {
            fields.first { $0.code == code }?.value
        }

        /// The non-localized severity ('V', sent since 9.6) or, failing that, the localized one.
        public var severity: String? { self[FieldCode.severityNonLocalized] ?? self[FieldCode.severity] }
        public var sqlState: String? { self[FieldCode.sqlState] }
        public var message: String? { self[FieldCode.message] }
        public var detail: String? { self[FieldCode.detail] }
        public var hint: String? { self[FieldCode.hint] }
        /// 1-based character position in the statement.
        public var position: Int? { self[FieldCode.position].flatMap { Int($0) } }

        public static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.fields.elementsEqual(rhs.fields) { $0.code == $1.code && $0.value == $1.value }
        }

        public func hash(into hasher: inout Hasher) {
            for field in fields {
                hasher.combine(field.code)
                hasher.combine(field.value)
            }
        }
    }
}

// MARK: - Names

extension PostgresBackendMessage {
    /// The message's type byte, or `nil` for the untyped SSL response.
    public var typeByte: UInt8? {
        switch self {
        case .authentication: UInt8(ascii: "R")
        case .backendKeyData: UInt8(ascii: "K")
        case .parameterStatus: UInt8(ascii: "S")
        case .readyForQuery: UInt8(ascii: "Z")
        case .rowDescription: UInt8(ascii: "T")
        case .dataRow: UInt8(ascii: "D")
        case .commandComplete: UInt8(ascii: "C")
        case .emptyQueryResponse: UInt8(ascii: "I")
        case .errorResponse: UInt8(ascii: "E")
        case .noticeResponse: UInt8(ascii: "N")
        case .notificationResponse: UInt8(ascii: "A")
        case .parseComplete: UInt8(ascii: "1")
        case .bindComplete: UInt8(ascii: "2")
        case .closeComplete: UInt8(ascii: "3")
        case .noData: UInt8(ascii: "n")
        case .portalSuspended: UInt8(ascii: "s")
        case .parameterDescription: UInt8(ascii: "t")
        case .copyInResponse: UInt8(ascii: "G")
        case .copyOutResponse: UInt8(ascii: "H")
        case .copyBothResponse: UInt8(ascii: "W")
        case .copyData: UInt8(ascii: "d")
        case .copyDone: UInt8(ascii: "c")
        case .negotiateProtocolVersion: UInt8(ascii: "v")
        case .functionCallResponse: UInt8(ascii: "V")
        case .sslResponse: nil
        case .unknown(let type, _): type
        }
    }

    /// Protocol name of a backend type byte, e.g. `DataRow ('D')`.
    public static func messageName(type: UInt8) -> String {
        let name: String
        switch type {
        case UInt8(ascii: "R"): name = "Authentication"
        case UInt8(ascii: "K"): name = "BackendKeyData"
        case UInt8(ascii: "S"): name = "ParameterStatus"
        case UInt8(ascii: "Z"): name = "ReadyForQuery"
        case UInt8(ascii: "T"): name = "RowDescription"
        case UInt8(ascii: "D"): name = "DataRow"
        case UInt8(ascii: "C"): name = "CommandComplete"
        case UInt8(ascii: "I"): name = "EmptyQueryResponse"
        case UInt8(ascii: "E"): name = "ErrorResponse"
        case UInt8(ascii: "N"): name = "NoticeResponse"
        case UInt8(ascii: "A"): name = "NotificationResponse"
        case UInt8(ascii: "1"): name = "ParseComplete"
        case UInt8(ascii: "2"): name = "BindComplete"
        case UInt8(ascii: "3"): name = "CloseComplete"
        case UInt8(ascii: "n"): name = "NoData"
        case UInt8(ascii: "s"): name = "PortalSuspended"
        case UInt8(ascii: "t"): name = "ParameterDescription"
        case UInt8(ascii: "G"): name = "CopyInResponse"
        case UInt8(ascii: "H"): name = "CopyOutResponse"
        case UInt8(ascii: "W"): name = "CopyBothResponse"
        case UInt8(ascii: "d"): name = "CopyData"
        case UInt8(ascii: "c"): name = "CopyDone"
        case UInt8(ascii: "v"): name = "NegotiateProtocolVersion"
        case UInt8(ascii: "V"): name = "FunctionCallResponse"
        default: name = "unknown backend message"
        }
        return "\(name) (\(typeByteLabel(type)))"
    }

    public var messageName: String {
        if let typeByte { return Self.messageName(type: typeByte) }
        return "SSL response"
    }
}

extension PostgresBackendMessage: CustomStringConvertible, CustomDebugStringConvertible {
    /// Shows sizes rather than the contents of rows and COPY data: they are the unmasked
    /// results until the gate has masked them.
    public var description: String {
        switch self {
        case .dataRow(let row): return "DataRow(\(row.columnCount) columns, \(row.bytes.readableBytes) bytes)"
        case .copyData(let data): return "CopyData(\(data.readableBytes) bytes)"
        case .functionCallResponse(let value): return "FunctionCallResponse(\(value.map { "\($0.readableBytes) bytes" } ?? "NULL"))"
        case .authentication(let auth): return "Authentication(code \(auth.code))"
        case .backendKeyData(let pid, _): return "BackendKeyData(processID: \(pid), secretKey: <redacted>)"
        case .unknown(let type, let body): return "\(Self.messageName(type: type))(\(body.readableBytes) bytes)"
        case .errorResponse(let d), .noticeResponse(let d):
            let fields = d.fields.map { "\(typeByteLabel($0.code))=\($0.value)" }.joined(separator: ", ")
            return "\(messageName)(\(fields))"
        case .rowDescription(let columns): return "RowDescription(\(columns.map(\.name)))"
        case .parameterStatus(let name, let value): return "ParameterStatus(\(name)=\(value))"
        case .readyForQuery(let status): return "ReadyForQuery(\(status))"
        case .commandComplete(let tag): return "CommandComplete(\(tag))"
        case .notificationResponse(let pid, let channel, let payload):
            return "NotificationResponse(processID: \(pid), channel: \(channel), payload: \(payload.utf8.count) bytes)"
        case .parameterDescription(let types): return "ParameterDescription(\(types))"
        case .copyInResponse(let r), .copyOutResponse(let r), .copyBothResponse(let r):
            return "\(messageName)(format: \(r.format), columnFormats: \(r.columnFormats))"
        case .negotiateProtocolVersion(let minor, let options):
            return "NegotiateProtocolVersion(newestMinorVersion: \(minor), unrecognizedOptions: \(options))"
        case .sslResponse(let response): return "SSLResponse(\(response))"
        case .emptyQueryResponse, .parseComplete, .bindComplete, .closeComplete, .noData, .portalSuspended, .copyDone:
            return messageName
        }
    }

    public var debugDescription: String { description }
}
