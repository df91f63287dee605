/// The start of a test gate's configuration: its `proxy:` section (captures and signing key in
/// the gate's own directory unless `captures` says where) and the test OIDC issuer as its
/// identity, at column 0, for a test's YAML to go on with `targets:`.
/// `proxySettings`: lines added to the `proxy:` section (`threads: 1`).
func gateConfigHead(id: String = "test-gate", captures: String = "captures", issuer: String, proxySettings: String = "") -> String {
    var lines = ["proxy:", "  id: \(id)", "  captures: \(captures)", "  signing_key: signing.key", "  shutdown_grace: 5s"]
    lines += proxySettings.split(separator: "\n").map { "  " + $0 }
    lines += ["identity:", "  issuer: \(issuer)", "  audiences: [tollgate]"]
    return lines.joined(separator: "\n")
}
