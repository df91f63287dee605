/// Code a statement runs that the gate does not read (third review, 2026-12-05).
///
/// A DO block, a procedure, a function PostgreSQL does not ship, or a prepared statement or
/// cursor the gate could not resolve may run any SQL through SPI, and SPI reaches the session's
/// state: it can DEALLOCATE and PREPARE a name (SQL and protocol statements share the server's
/// namespace, and prepared statements are not transactional), CLOSE a cursor or portal and OPEN
/// another under its name (`OPEN r FOR …` with `r := 'c'`), drop or create a temporary table,
/// and change `search_path` with `set_config`. None of that is reported to the client, so after
/// such a statement the gate's record of those names and of the path cannot be trusted.
extension StatementFacts {
    public var runsHiddenCode: Bool {
        if kind == "do" || kind == "call" { return true }
        if !unknownFunctions.isEmpty { return true }
        // An EXECUTE or FETCH the caller could not resolve runs a statement the gate never read.
        if sideEffects.contains(SideEffect.unresolvedExecute) { return true }
        if kind == "fetch" && innerKind == nil { return true }
        return false
    }
}
