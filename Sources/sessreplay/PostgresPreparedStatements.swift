import CaptureFormat
import PostgresWire

/// The named prepared statements a replay connection holds, so that a named statement is
/// parsed once and re-bound on each execution, as the client did (its server-side plan cache
/// included), instead of re-parsed every time. The gate records each execution with the
/// statement's name, text and parameter types; the first execution on this connection (or one
/// whose text or types differ from what the name holds: the client re-prepared it) sends the
/// Parse, preceded by a Close of the name so a stale or half-made one cannot get in the way.
struct PostgresPreparedStatements {
    struct Prepared: Equatable {
        var text: String
        var types: [UInt32]
    }

    private var held: [String: Prepared] = [:]
    /// Parses sent, for the summary.
    private(set) var parses = 0

    /// The messages that make `name` hold `p`'s statement on the target, before its Bind: none
    /// when it already does.
    mutating func prepare(_ p: PostgresRequest) -> [PostgresFrontendMessage] {
        let wanted = Prepared(text: p.text, types: p.parameters.map(\.typeOID))
        guard held[p.statementName] != wanted else { return [] }
        held[p.statementName] = wanted
        parses += 1
        return [.close(.statement, name: p.statementName),
                .parse(name: p.statementName, query: p.text, parameterTypes: wanted.types.allSatisfy { $0 == 0 } ? [] : wanted.types)]
    }

    /// What is held after a request ran: a failed request that sent a Parse may not have made the
    /// statement (it is parsed again next time); DEALLOCATE or DISCARD drop what the session held.
    mutating func ran(_ p: PostgresRequest, parsed: Bool, failed: Bool) {
        if parsed && failed { held.removeValue(forKey: p.statementName) }
        if p.statementKinds.contains(where: { $0 == "deallocate" || $0 == "discard" }) { held.removeAll() }
    }
}
