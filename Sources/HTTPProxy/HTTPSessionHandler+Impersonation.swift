/// `impersonate: true` on a `kind: kubernetes` target: the gate tells the API server who the
/// verified caller is (`Impersonate-User`: the token's subject; one `Impersonate-Group` per group
/// of the identity), so Kubernetes RBAC applies to that person too. The client's own
/// `Impersonate-*` fields are always removed (`ImpersonationFields`).
extension HTTPSessionHandler {
    /// Who the gate impersonates upstream: the session's verified identity, when the target says so.
    var impersonatedIdentity: ImpersonationFields.Identity? {
        guard settings.impersonate, let session = core.context else { return nil }
        return .init(user: session.subject, groups: session.groups)
    }

    /// Why this request cannot be sent impersonating its caller (no verified identity, or a
    /// subject or group that cannot travel in a header field), or nil. Checked before the request
    /// is admitted, so that `impersonating` below cannot fail.
    func impersonationRefusal() -> String? {
        guard settings.impersonate else { return nil }
        guard let identity = impersonatedIdentity else { return "impersonation: the session has no verified identity" }
        do { _ = try ImpersonationFields.rewrite([], impersonating: identity) } catch { return error.detail }
        return nil
    }

    /// The upstream fields with the gate's impersonation added (the client's were removed before).
    func impersonating(_ fields: [HTTPField]) -> [HTTPField] {
        guard let identity = impersonatedIdentity, let out = try? ImpersonationFields.rewrite(fields, impersonating: identity) else { return fields }
        return out
    }
}
