import CaptureFormat
import NIOCore
import PostgresWire

/// The frontend messages that replay one recorded request. A simple Query is sent as it was; an
/// extended one as an unnamed Parse/Bind/Describe/Execute/Sync with the recorded parameters,
/// their formats and type OIDs (when recorded), and the recorded result formats. A named
/// prepared statement is parsed once per connection (`PostgresPreparedStatements`) and bound by
/// name on each execution, as the client did.
enum ReplayMessages {
    static func messages(for p: PostgresRequest, recordedResults: [PostgresResponse],
                         prepared: inout PostgresPreparedStatements) -> [PostgresFrontendMessage] {
        switch p.path {
        case .simple, .functionCall:
            return [.query(p.text)]
        case .extended:
            let types = p.parameters.map(\.typeOID)
            let formats = p.parameters.map { Int16($0.format) }
            let resultFormats = recordedResults.first(where: { !$0.columns.isEmpty })?.columns.map { Int16($0.format) } ?? []
            let bind = PostgresFrontendMessage.Bind(
                portal: "", statement: p.statementName,
                parameterFormats: formats.allSatisfy { $0 == 0 } ? [] : formats,
                parameters: p.parameters.map { $0.value.map { ByteBuffer(bytes: $0) } },
                resultFormats: resultFormats.allSatisfy { $0 == 0 } ? [] : resultFormats)
            let parse: [PostgresFrontendMessage] = p.statementName.isEmpty
                ? [.parse(name: "", query: p.text, parameterTypes: types.allSatisfy { $0 == 0 } ? [] : types)]
                : prepared.prepare(p)
            return parse + [.bind(bind), .describe(.portal, name: ""), .execute(portal: "", maxRows: 0), .sync]
        }
    }
}
