/// Why the gate refuses a statement whatever the policy says (issue 17): one list per statement
/// (`StatementFacts.refusals`), each with its kind, and one place (below) that says what each
/// kind becomes for the client and the record.
public struct Refusal: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        /// An option or clause the gate cannot read as the server would (EXPLAIN, COPY): the
        /// gate's reading of the statement is not trusted at all, so the request is refused as
        /// one it cannot parse (rule `unparseable`; its literals are withheld from the record).
        case cannotFollow = "cannot-follow"
        /// A change to how the server reads later statements (`ParserSettings`): denied by the
        /// gate's own rule `parser-settings`; the statement's facts are still read and recorded.
        case parserSettings = "parser-settings"
    }

    public var kind: Kind
    public var reason: String

    public init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }
}

extension StatementFacts {
    /// The refusal that makes the whole request unparseable: `SQLInspector.statementFacts`
    /// throws it as the parse error, which the policy stage denies as `unparseable`.
    public var parseRefusal: Refusal? { refusals.first { $0.kind == .cannotFollow } }

    /// The reasons the policy stage denies the statement as rule `parser-settings`
    /// (`StatementInfo.refusal`), joined; nil when there are none.
    public var policyRefusal: String? {
        let reasons = refusals.filter { $0.kind == .parserSettings }.map(\.reason)
        return reasons.isEmpty ? nil : reasons.joined(separator: "; ")
    }
}
