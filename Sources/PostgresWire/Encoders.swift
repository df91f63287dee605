import NIOCore

extension PostgresFrontendMessage {
    /// Appends the message in wire format. Throws `.unencodableMessage` (leaving `buffer`
    /// unchanged) for what cannot be framed: a NUL inside a string, more than 65535 items.
    public func encode(into buffer: inout ByteBuffer) throws {
        switch self {
        case .sslRequest:
            buffer.writeMultipleIntegers(Int32(8), PostgresFrontendDecoder.sslRequestCode)
        case .gssEncRequest:
            buffer.writeMultipleIntegers(Int32(8), PostgresFrontendDecoder.gssEncRequestCode)
        case .cancelRequest(let pid, let key):
            buffer.writeMultipleIntegers(Int32(16), PostgresFrontendDecoder.cancelRequestCode, pid, key)
        case .startup(let startup):
            try buffer.writePostgresMessage(type: nil, name: messageName) { out in
                out.writeInteger(startup.protocolVersion)
                for (i, parameter) in startup.parameters.enumerated() {
                    // An empty name would read back as the list terminator.
                    guard !parameter.name.isEmpty else {
                        throw PostgresWireError(.unencodableMessage, messageName: messageName, offset: nil, reason: "parameter \(i) has an empty name")
                    }
                    try out.writeCString(parameter.name, message: messageName, field: "parameter \(i) name")
                    try out.writeCString(parameter.value, message: messageName, field: "parameter \(i) value")
                }
                out.writeInteger(UInt8(0))
            }
        default:
            try buffer.writePostgresMessage(type: typeByte!, name: messageName) { out in try encodeTypedBody(into: &out) }
        }
    }

    private func encodeTypedBody(into out: inout ByteBuffer) throws {
        switch self {
        case .sslRequest, .gssEncRequest, .cancelRequest, .startup:
            preconditionFailure("untyped messages are framed by encode(into:)")
        case .query(let text):
            try out.writeCString(text, message: messageName, field: "query text")
        case .parse(let statement, let query, let types):
            try out.writeCString(statement, message: messageName, field: "statement name")
            try out.writeCString(query, message: messageName, field: "query text")
            try out.writeCount(types.count, message: messageName, field: "parameter type count")
            for type in types { out.writeInteger(type) }
        case .bind(let bind):
            try out.writeCString(bind.portal, message: messageName, field: "portal name")
            try out.writeCString(bind.statement, message: messageName, field: "statement name")
            try out.writeCount(bind.parameterFormats.count, message: messageName, field: "parameter format count")
            for format in bind.parameterFormats { out.writeInteger(format) }
            try out.writeCount(bind.parameters.count, message: messageName, field: "parameter count")
            for value in bind.parameters { out.writeNullableValue(value) }
            try out.writeCount(bind.resultFormats.count, message: messageName, field: "result format count")
            for format in bind.resultFormats { out.writeInteger(format) }
        case .describe(let kind, let objectName), .close(let kind, let objectName):
            out.writeInteger(kind.rawValue)
            try out.writeCString(objectName, message: messageName, field: "name")
        case .execute(let portal, let maxRows):
            try out.writeCString(portal, message: messageName, field: "portal name")
            out.writeInteger(maxRows)
        case .sync, .flush, .copyDone, .terminate:
            break
        case .copyData(var data), .functionCall(var data), .password(var data), .unknown(_, var data):
            out.writeBuffer(&data)
        case .copyFail(let message):
            try out.writeCString(message, message: messageName, field: "error message")
        }
    }
}

extension PostgresBackendMessage {
    /// Appends the message in wire format. Throws `.unencodableMessage` (leaving `buffer`
    /// unchanged) for what cannot be framed: a NUL inside a string, more than 65535 items.
    public func encode(into buffer: inout ByteBuffer) throws {
        if case .sslResponse(let response) = self {
            buffer.writeInteger(response.rawValue)
            return
        }
        try buffer.writePostgresMessage(type: typeByte!, name: messageName) { out in try encodeBody(into: &out) }
    }

    private func encodeBody(into out: inout ByteBuffer) throws {
        switch self {
        case .sslResponse:
            preconditionFailure("the SSL response is framed by encode(into:)")
        case .authentication(let auth):
            out.writeInteger(auth.code)
            switch auth {
            case .ok, .cleartextPassword: break
            case .md5Password(let salt): out.writeInteger(salt)
            case .sasl(let mechanisms):
                for (i, mechanism) in mechanisms.enumerated() {
                    guard !mechanism.isEmpty else {
                        throw PostgresWireError(.unencodableMessage, messageName: messageName, offset: nil, reason: "mechanism \(i) is empty")
                    }
                    try out.writeCString(mechanism, message: messageName, field: "mechanism \(i)")
                }
                out.writeInteger(UInt8(0))
            case .saslContinue(var data), .saslFinal(var data), .other(_, var data):
                out.writeBuffer(&data)
            }
        case .backendKeyData(let pid, let key):
            out.writeMultipleIntegers(pid, key)
        case .parameterStatus(let parameter, let value):
            try out.writeCString(parameter, message: messageName, field: "parameter name")
            try out.writeCString(value, message: messageName, field: "parameter value")
        case .readyForQuery(let status):
            out.writeInteger(status.rawValue)
        case .rowDescription(let columns):
            try out.writeCount(columns.count, message: messageName, field: "field count")
            for (i, column) in columns.enumerated() {
                try out.writeCString(column.name, message: messageName, field: "field \(i) name")
                out.writeMultipleIntegers(column.tableOID, column.columnAttribute, column.typeOID,
                                          column.typeSize, column.typeModifier, column.format)
            }
        case .dataRow(let row):
            var bytes = row.bytes
            out.writeBuffer(&bytes)
        case .commandComplete(let tag):
            try out.writeCString(tag, message: messageName, field: "command tag")
        case .errorResponse(let diagnostics), .noticeResponse(let diagnostics):
            for field in diagnostics.fields {
                guard field.code != 0 else {
                    throw PostgresWireError(.unencodableMessage, messageName: messageName, offset: nil, reason: "field type 0 is the terminator")
                }
                out.writeInteger(field.code)
                try out.writeCString(field.value, message: messageName, field: "field \(typeByteLabel(field.code)) value")
            }
            out.writeInteger(UInt8(0))
        case .notificationResponse(let pid, let channel, let payload):
            out.writeInteger(pid)
            try out.writeCString(channel, message: messageName, field: "channel name")
            try out.writeCString(payload, message: messageName, field: "payload")
        case .emptyQueryResponse, .parseComplete, .bindComplete, .closeComplete, .noData, .portalSuspended, .copyDone:
            break
        case .parameterDescription(let types):
            try out.writeCount(types.count, message: messageName, field: "parameter count")
            for type in types { out.writeInteger(type) }
        case .copyInResponse(let response), .copyOutResponse(let response), .copyBothResponse(let response):
            out.writeInteger(response.format)
            try out.writeCount(response.columnFormats.count, message: messageName, field: "column count")
            for format in response.columnFormats { out.writeInteger(format) }
        case .copyData(var data), .unknown(_, var data):
            out.writeBuffer(&data)
        case .negotiateProtocolVersion(let minor, let options):
            out.writeMultipleIntegers(minor, Int32(options.count))
            for (i, option) in options.enumerated() {
                try out.writeCString(option, message: messageName, field: "option \(i)")
            }
        case .functionCallResponse(let value):
            out.writeNullableValue(value)
        }
    }
}

/// Frames `PostgresFrontendMessage`s for a pipeline (`MessageToByteHandler`): the proxy's
/// upstream side, or a test client.
public struct PostgresFrontendMessageEncoder: MessageToByteEncoder, Sendable {
    public typealias OutboundIn = PostgresFrontendMessage
    public init() {}
    public func encode(data: PostgresFrontendMessage, out: inout ByteBuffer) throws {
        try data.encode(into: &out)
    }
}

/// Frames `PostgresBackendMessage`s for a pipeline (`MessageToByteHandler`): the proxy's
/// client-facing side.
public struct PostgresBackendMessageEncoder: MessageToByteEncoder, Sendable {
    public typealias OutboundIn = PostgresBackendMessage
    public init() {}
    public func encode(data: PostgresBackendMessage, out: inout ByteBuffer) throws {
        try data.encode(into: &out)
    }
}
