/// Whether the values of Kubernetes Secrets (`data`, `stringData`) reach the client: masked unless
/// a policy says otherwise (`kubernetes_secrets: reveal`).
public enum KubernetesSecrets: String, Sendable, Hashable, CaseIterable {
    case mask, reveal
}

extension PolicySet {
    /// Masks add up (one policy cannot loosen another's), so Secret values are revealed only when
    /// every policy that applies to `who` on `target` says `reveal`; none applying: masked.
    public func revealsKubernetesSecrets(to who: Principal, target: String) -> Bool {
        let applicable = applicable(to: who, target: target)
        return !applicable.isEmpty && applicable.allSatisfy { $0.kubernetesSecrets == .reveal }
    }
}
