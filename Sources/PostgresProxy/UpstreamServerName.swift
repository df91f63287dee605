import NIOSSL

/// verify-full's name check, as libpq's: the certificate must carry the expected DNS name.
/// NIOSSL's own check also accepts a certificate whose IP name is the address connected to,
/// whatever name was expected; a gate told to expect `db.internal` must not accept a
/// certificate for 10.0.0.5 alone. NIOSSL has verified the chain (and its name check) before this runs.
enum UpstreamServerName {
    /// Whether `certificate` names `expected` (a DNS name): a DNS subject alternative name equal
    /// to it, or a wildcard for its leftmost label; without any subject alternative name NIOSSL
    /// has checked the common name, which is then all there is.
    static func matches(_ certificate: NIOSSLCertificate, expected: String) -> Bool {
        let wanted = expected.lowercased().trimmingSuffix(".")
        var sawName = false
        for name in certificate._subjectAlternativeNames() {
            sawName = true
            guard name.nameType == .dnsName else { continue }
            let dns = String(decoding: Array(name.contents), as: UTF8.self).lowercased().trimmingSuffix(".")
            if dns == wanted { return true }
            if dns.hasPrefix("*."), let dot = wanted.firstIndex(of: "."), wanted[wanted.startIndex..<dot].count > 0,
               wanted[dot...] == dns.dropFirst() {
                return true
            }
        }
        return !sawName
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}
