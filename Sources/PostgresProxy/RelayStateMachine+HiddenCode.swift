import Policy
import SQLInspection

/// The protocol side of forgetting what code the gate does not read may have changed
/// (`SQLSessionInspector.forgetHiddenState`, HiddenCode.swift): SPI reaches the server's one
/// namespace of prepared statements (`DEALLOCATE` and `PREPARE` of a protocol statement's name)
/// and of portals (`CLOSE`, then `OPEN` of a refcursor named like a portal).
extension RelayStateMachine {
    /// Follows the inspector's `forgetHiddenState` (counted in `hiddenCodeGeneration`): called at
    /// the start of each of the machine's entry points and after it applies what the server confirmed.
    mutating func followHiddenCode() {
        guard let generation = sql?.hiddenCodeGeneration, generation != hiddenCodeFollowed else { return }
        hiddenCodeFollowed = generation
        forgetNamesAfterHiddenCode()
    }

    /// Named statements and portals keep their names (the server may still hold them, so they are
    /// not free), but no longer what they hold: a Bind of such a statement is inspected as an
    /// `EXECUTE` of its name and an Execute of such a portal as a `FETCH` from it, which the
    /// inspector cannot resolve (a write, its results masked whole), and the columns are asked
    /// of the server again. The unnamed statement and portal are out of SPI's reach.
    private mutating func forgetNamesAfterHiddenCode() {
        func quoted(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        for name in relay.statements.keys where !name.isEmpty {
            relay.statements[name] = "EXECUTE " + quoted(name)
            relay.described[name] = nil
            relay.resultPlans[name] = nil
        }
        for name in relay.portals.keys where !name.isEmpty {
            relay.portals[name]?.text = "FETCH ALL FROM " + quoted(name)
            relay.portalDescribed[name] = nil
        }
    }
}

extension StatementInfo {
    /// What the policy facts show of `StatementFacts.runsHiddenCode`, before the session's facts
    /// are resolved again to follow it: a DO block, CALL, an unknown function (also one a view
    /// calls, found with the catalog), or an EXECUTE or FETCH the gate could not resolve.
    var mayRunHiddenCode: Bool {
        kind == "do" || kind == "call" || !unknownFunctions.isEmpty
            || sideEffects.contains(SideEffect.unresolvedExecute) || (kind == "fetch" && innerKind == nil)
    }
}
