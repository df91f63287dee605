import Masking
import PostgresWire
import ProxyCore

/// Errors and notices of a statement whose lineage touches a column a rule covers keep no text.
///
/// PostgreSQL quotes values in its messages (`invalid input syntax for type integer: "…"`, a
/// unique key's `Key (card)=(…) already exists`, a PL/pgSQL context line), and a value echoed
/// there may be transformed beyond what detectors recognise (`reverse(card)::int`). So while
/// such a statement runs, an ErrorResponse or NoticeResponse keeps its severity, SQLSTATE,
/// position and the names of the schema, table, column, type and constraint, and its message
/// says the text was withheld; detail, hint, context and internal query are dropped. The
/// detectors then run on what is left, as for every other error.
extension PostgresResultMasker {
    static let withheldCodes: Set<UInt8> = [
        PostgresBackendMessage.Diagnostics.FieldCode.detail, PostgresBackendMessage.Diagnostics.FieldCode.hint,
        PostgresBackendMessage.Diagnostics.FieldCode.context, PostgresBackendMessage.Diagnostics.FieldCode.internalQuery,
        PostgresBackendMessage.Diagnostics.FieldCode.internalPosition,
    ]

    /// `diagnostics` with its text withheld when `withhold`, then masked by the detectors; nil when unchanged.
    mutating func mask(_ diagnostics: PostgresBackendMessage.Diagnostics, at location: MaskLocation,
                       withhold: Bool) -> PostgresBackendMessage.Diagnostics? {
        guard withhold else { return mask(diagnostics, at: location) }
        let code = diagnostics.fields.first { $0.code == PostgresBackendMessage.Diagnostics.FieldCode.sqlState }?.value ?? ""
        var fields: [(code: UInt8, value: String)] = []
        for field in diagnostics.fields where !Self.withheldCodes.contains(field.code) {
            if field.code == PostgresBackendMessage.Diagnostics.FieldCode.message {
                fields.append((field.code, "tollgate: message withheld (SQLSTATE \(code)): the statement reads a column a masking rule covers"))
            } else {
                fields.append(field)
            }
        }
        tally.record([.column: 1], at: location)
        let withheld = PostgresBackendMessage.Diagnostics(fields: fields)
        return mask(withheld, at: location) ?? withheld
    }
}

extension PostgresSessionHandler {
    /// True when the request being answered (`pending`) touches a covered column (see `ColumnMaskPlanner.touchesCovered`).
    func withholdsDiagnostics(_ pending: RelayState.Pending?) -> Bool {
        guard let masker = masking?.masker, masker.hasColumnRules else { return false }
        return ColumnMaskPlanner.touchesCovered(pending?.projections ?? [.unknown], masker: masker,
                                                catalog: catalogLookup())
    }
}
