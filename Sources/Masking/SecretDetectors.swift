// Byte-level scanners for secrets: cloud and chat tokens, JWTs and private keys, each
// validated by its shape (prefixes, lengths, a JWT's header) so that ordinary data passes
// untouched. The shared matching types and byte classes are in Detectors.swift.

// MARK: - secret tokens

@inline(__always) private func hasPrefix(_ b: Bytes, _ i: Int, _ p: StaticString) -> Bool {
    let len = p.utf8CodeUnitCount
    guard i + len <= b.count else { return false }
    let s = p.utf8Start
    for k in 0..<len where b[i + k] != s[k] { return false }
    return true
}

@inline(__always) private func hasPrefixCI(_ b: Bytes, _ i: Int, _ p: StaticString) -> Bool {
    let len = p.utf8CodeUnitCount
    guard i + len <= b.count else { return false }
    let s = p.utf8Start
    for k in 0..<len {
        let c = b[i + k]
        if (isAlpha(c) ? c | 0x20 : c) != s[k] { return false }
    }
    return true
}

/// AWS access key IDs: `AKIA` (long-term) or `ASIA` (temporary) + 16 of [A-Z0-9], delimited.
func scanAWSAccessKeys(_ b: Bytes, into out: inout [Match]) {
    let n = b.count
    var i = 0
    while i + 20 <= n {
        if b[i] == UInt8(ascii: "A") && (hasPrefix(b, i, "AKIA") || hasPrefix(b, i, "ASIA"))
            && (i == 0 || !isAlnum(b[i - 1])) && (i + 20 == n || !isAlnum(b[i + 20])) {
            var ok = true
            for k in (i + 4)..<(i + 20) where !(isUpper(b[k]) || isDigit(b[k])) { ok = false; break }
            if ok {
                out.append(Match(start: i, end: i + 20, detector: BuiltinDetector.awsAccessKey.name,
                                 replacement: .redacted))
                i += 20
                continue
            }
        }
        i += 1
    }
}

/// AWS secret access keys are 40 base64 characters with no prefix, indistinguishable from other
/// hashes, so they are detected only when labelled: `aws_secret_access_key`, `secret_access_key`,
/// `SecretAccessKey`, `aws_secret_key` (any case), then up to 6 of `"' :=`, then exactly 40 of
/// [A-Za-z0-9/+]. Only the value is replaced.
func scanAWSSecretKeys(_ b: Bytes, into out: inout [Match]) {
    let n = b.count
    var i = 0
    while i < n {
        // Every label starts with `a` or `s` in either case (`c | 0x20` is `a` only for a/A, `s`
        // only for s/S): the four label comparisons run at those bytes alone, not at every byte.
        let first = b[i] | 0x20
        guard first == UInt8(ascii: "a") || first == UInt8(ascii: "s") else { i += 1; continue }
        var labelEnd = -1
        if hasPrefixCI(b, i, "aws_secret_access_key") { labelEnd = i + 21 }
        else if hasPrefixCI(b, i, "secret_access_key") { labelEnd = i + 17 }
        else if hasPrefixCI(b, i, "secretaccesskey") { labelEnd = i + 15 }
        else if hasPrefixCI(b, i, "aws_secret_key") { labelEnd = i + 14 }
        guard labelEnd >= 0 else { i += 1; continue }
        var j = labelEnd, seps = 0
        while j < n && seps < 6, b[j] == UInt8(ascii: "\"") || b[j] == UInt8(ascii: "'") || b[j] == space
                || b[j] == UInt8(ascii: ":") || b[j] == UInt8(ascii: "=") || b[j] == UInt8(ascii: "\t") {
            j += 1; seps += 1
        }
        var k = j
        // Capped at 41 so a hostile run of labels stays linear.
        while k < n && k - j <= 40 && (isAlnum(b[k]) || b[k] == UInt8(ascii: "/") || b[k] == UInt8(ascii: "+")) { k += 1 }
        if seps > 0 && k - j == 40 && (k == n || b[k] != UInt8(ascii: "=")) {
            out.append(Match(start: j, end: k, detector: BuiltinDetector.awsSecretKey.name,
                             replacement: .redacted))
            i = k
            continue
        }
        i = labelEnd
    }
}

/// GitHub: `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_` + ≥30 alphanumerics (classic tokens carry 36),
/// and fine-grained `github_pat_` + ≥22 of [A-Za-z0-9_].
func scanGitHubTokens(_ b: Bytes, into out: inout [Match]) {
    let n = b.count
    var i = 0
    while i + 4 < n {
        guard b[i] == UInt8(ascii: "g"), i == 0 || !isBase64URL(b[i - 1]) else { i += 1; continue }
        var j = -1
        if b[i + 1] == UInt8(ascii: "h"), i + 3 < n, b[i + 3] == UInt8(ascii: "_"),
           "pousr".utf8.contains(b[i + 2]) {
            var k = i + 4
            while k < n && isAlnum(b[k]) { k += 1 }
            if k - (i + 4) >= 30 && (k == n || b[k] != UInt8(ascii: "_")) { j = k }
        } else if hasPrefix(b, i, "github_pat_") {
            var k = i + 11
            while k < n && (isAlnum(b[k]) || b[k] == UInt8(ascii: "_")) { k += 1 }
            if k - (i + 11) >= 22 { j = k }
        }
        if j > 0 {
            out.append(Match(start: i, end: j, detector: BuiltinDetector.githubToken.name,
                             replacement: .redacted))
            i = j
        } else {
            i += 1
        }
    }
}

/// Slack: `xox[abposr]-` + ≥10 of [A-Za-z0-9-] (bot, user, app-level, refresh tokens).
func scanSlackTokens(_ b: Bytes, into out: inout [Match]) {
    let n = b.count
    var i = 0
    while i + 15 <= n {
        if hasPrefix(b, i, "xox") && "abposr".utf8.contains(b[i + 3]) && b[i + 4] == dash
            && (i == 0 || !isAlnum(b[i - 1])) {
            var k = i + 5
            while k < n && (isAlnum(b[k]) || b[k] == dash) { k += 1 }
            if k - (i + 5) >= 10 {
                out.append(Match(start: i, end: k, detector: BuiltinDetector.slackToken.name,
                                 replacement: .redacted))
                i = k
                continue
            }
        }
        i += 1
    }
}

/// JWT/JWS/JWE: `eyJ…` base64url header that decodes to a JSON object containing `"alg"`, then
/// 2–4 more dot-separated base64url segments (the last may be empty: unsigned `alg: none`).
func scanJWTs(_ b: Bytes, into out: inout [Match]) {
    let n = b.count
    var i = 0
    while i + 16 <= n {
        guard b[i] == UInt8(ascii: "e"), hasPrefix(b, i, "eyJ"), i == 0 || !isBase64URL(b[i - 1]) else { i += 1; continue }
        var k = i
        while k < n && isBase64URL(b[k]) { k += 1 }
        let headerEnd = k
        var segments = 1
        while k < n && b[k] == dot && segments < 5 {
            var m = k + 1
            while m < n && isBase64URL(b[m]) { m += 1 }
            if m == k + 1 && segments < 2 { break } // payload must not be empty
            segments += 1
            k = m
        }
        if segments >= 3 && jwtHeaderOK(b, i, headerEnd) {
            out.append(Match(start: i, end: k, detector: BuiltinDetector.jwt.name,
                             replacement: .redacted))
            i = k
            continue
        }
        i = headerEnd
    }
}

private func b64Value(_ c: UInt8) -> UInt32? {
    if isUpper(c) { return UInt32(c - 65) }
    if isLower(c) { return UInt32(c - 97 + 26) }
    if isDigit(c) { return UInt32(c - 48 + 52) }
    if c == dash || c == UInt8(ascii: "+") { return 62 }
    if c == UInt8(ascii: "_") || c == UInt8(ascii: "/") { return 63 }
    return nil
}

/// Decodes at most the first 768 header characters and looks for a JSON object with `"alg"`.
private func jwtHeaderOK(_ b: Bytes, _ s: Int, _ e: Int) -> Bool {
    var decoded: [UInt8] = []
    decoded.reserveCapacity(min(e - s, 768) * 3 / 4)
    var acc: UInt32 = 0, bits = 0
    for k in s..<min(e, s + 768) {
        guard let v = b64Value(b[k]) else { return false }
        acc = (acc << 6) | v
        bits += 6
        if bits >= 8 { bits -= 8; decoded.append(UInt8((acc >> UInt32(bits)) & 0xFF)) }
    }
    guard decoded.first == UInt8(ascii: "{") else { return false }
    let needle: [UInt8] = Array("\"alg\"".utf8)
    guard decoded.count >= needle.count else { return false }
    for k in 0...(decoded.count - needle.count) where decoded[k..<(k + needle.count)].elementsEqual(needle) {
        return true
    }
    return false
}

/// PEM private keys: `-----BEGIN <label>PRIVATE KEY-----` (RSA, EC, DSA, OPENSSH, ENCRYPTED…)
/// through the matching `-----END …-----`; with no END (a truncated value) to the end of the
/// value, since a partial key is still a secret. Public keys and certificates are left alone.
func scanPrivateKeys(_ b: Bytes, into out: inout [Match]) {
    let n = b.count
    var i = 0
    while i + 30 <= n {
        guard b[i] == dash, hasPrefix(b, i, "-----BEGIN ") else { i += 1; continue }
        var k = i + 11
        while k < n && k - i < 64 && (isUpper(b[k]) || b[k] == space) { k += 1 }
        guard hasPrefix(b, k, "-----"), k - i >= 22, hasPrefix(b, k - 11, "PRIVATE KEY") else { i += 1; continue }
        var end = n
        var m = k + 5
        while m + 9 <= n {
            if b[m] == dash && hasPrefix(b, m, "-----END ") {
                var q = m + 9
                while q < n && q - m < 64 && (isUpper(b[q]) || b[q] == space) { q += 1 }
                if hasPrefix(b, q, "-----") { end = q + 5; break }
            }
            m += 1
        }
        out.append(Match(start: i, end: end, detector: BuiltinDetector.privateKey.name,
                         replacement: .redacted))
        i = end
    }
}
