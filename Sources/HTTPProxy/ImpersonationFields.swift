/// Kubernetes impersonation (`Impersonate-User`, `-Group`, `-Uid`, `-Extra-*`) is the client's
/// way to act as someone else; through the gate only the gate may say who the caller is. Every
/// client `Impersonate-*` field is removed; when the target is configured for it, the gate sets
/// `Impersonate-User` and one `Impersonate-Group` per group from the verified identity, so that
/// Kubernetes RBAC applies to that person as well (the gate's own credential then needs the
/// `impersonate` verb on users and groups).
public enum ImpersonationFields {
    /// Who to impersonate upstream, from the verified token (never from the request).
    public struct Identity: Sendable, Equatable {
        public var user: String
        public var groups: [String]
        public init(user: String, groups: [String]) { self.user = user; self.groups = groups }
    }

    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        public var detail: String
        public var description: String { detail }
    }

    /// Whether a field is one of Kubernetes' impersonation fields.
    public static func isImpersonation(_ field: HTTPField) -> Bool { field.canonicalName.hasPrefix("impersonate-") }

    /// `fields` without any client impersonation field, then the gate's own when `identity` is
    /// given. An identity value that cannot travel in a header field (a control character, a
    /// leading or trailing space, a comma in a group name that a server might split) is refused.
    public static func rewrite(_ fields: [HTTPField], impersonating identity: Identity? = nil) throws(Refusal) -> [HTTPField] {
        var out = fields.filter { !isImpersonation($0) }
        guard let identity else { return out }
        try check(identity.user, "user")
        out.append(HTTPField("Impersonate-User", identity.user))
        for g in identity.groups {
            try check(g, "group")
            if g.contains(",") { throw Refusal(detail: "impersonation: the group '\(g)' has a comma") }
            out.append(HTTPField("Impersonate-Group", g))
        }
        return out
    }

    static func check(_ value: String, _ what: String) throws(Refusal) {
        if value.isEmpty { throw Refusal(detail: "impersonation: an empty \(what)") }
        if value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw Refusal(detail: "impersonation: the \(what) has a control character")
        }
        if value.first == " " || value.last == " " { throw Refusal(detail: "impersonation: the \(what) '\(value)' has surrounding spaces") }
    }
}
