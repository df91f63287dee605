// Byte-level scanners for personal data: card numbers, US SSNs, email addresses, phone numbers
// and IBANs, each validated exactly (Luhn, SSA rules, mod-97) so that ordinary data passes
// untouched. The shared matching types and byte classes are in Detectors.swift.

// MARK: - credit cards

/// Card numbers: 13–19 digits, alone or in groups of ≥3 separated by single spaces or dashes;
/// Luhn-valid and with a known brand prefix/length (see `isCardNumber`), not joined to a
/// neighbouring word or decimal point. Masked keeping the last 4 digits and separators.
func scanCards(_ b: Bytes, into out: inout [Match]) {
    let n = b.count
    var i = 0
    while i < n {
        guard isDigit(b[i]), i == 0 || !isDigit(b[i - 1]) else { i += 1; continue }
        // Measure the run first without storing anything; most runs are short.
        var j = i, digits = 0
        while j < n {
            if isDigit(b[j]) { digits += 1; j += 1; continue }
            if (b[j] == space || b[j] == dash) && j + 1 < n && isDigit(b[j + 1]) && j > i { j += 1; continue }
            break
        }
        let runEnd = j
        if digits >= 13 { cardCandidates(b, i, runEnd, into: &out) }
        i = max(runEnd, i + 1)
    }
}

private func cardCandidates(_ b: Bytes, _ runStart: Int, _ runEnd: Int, into out: inout [Match]) {
    var groups: [(start: Int, end: Int)] = []
    var k = runStart
    while k < runEnd {
        let s = k
        while k < runEnd && isDigit(b[k]) { k += 1 }
        groups.append((s, k))
        k += 1 // separator
    }
    let lead = leadOK(b, runStart, dashJoins: false)
    let trail = trailOK(b, runEnd, dashJoins: false)
    var s = 0
    while s < groups.count {
        if s == 0 && !lead { s += 1; continue }
        // Widest span from s with at most 19 digits; each group has ≥1 digit, so this is
        // bounded by 19 groups and hostile runs ("1 2 3 …") stay linear.
        var digits = 0, eMax = s - 1, e = s
        while e < groups.count {
            let len = groups[e].end - groups[e].start
            if digits + len > 19 { break }
            digits += len; eMax = e; e += 1
        }
        var found = -1
        e = eMax
        while e >= s && digits >= 13 {
            var groupsOK = true
            if e > s { for g in s...e where groups[g].end - groups[g].start < 3 { groupsOK = false } }
            if groupsOK && (e < groups.count - 1 || trail) && isCardNumber(b, groups[s].start, groups[e].end) {
                found = e
                break
            }
            digits -= groups[e].end - groups[e].start
            e -= 1
        }
        if found >= 0 {
            let st = groups[s].start, en = groups[found].end
            out.append(Match(start: st, end: en, detector: BuiltinDetector.creditCard.name,
                             replacement: .digits(keep: 4)))
            s = found + 1
        } else {
            s += 1
        }
    }
}

/// Brand prefix and length (Visa 4: 13/16/19; Mastercard 51–55, 2221–2720: 16; Mir 2200–2204: 16;
/// Amex 34/37: 15; Diners 30/36/38/39: 14–19; JCB 35: 16–19; Discover/UnionPay/Maestro 5x/6x:
/// 16–19; RuPay 81/82: 16), then Luhn. Not covered: 12-digit Maestro, UATP (1…), Troy (9792).
/// The brand table spares Luhn-valid IDs and compact timestamps (one in ten numbers passes Luhn).
func isCardNumber(_ b: Bytes, _ s: Int, _ e: Int) -> Bool {
    var lead = 0, count = 0
    for i in s..<e where isDigit(b[i]) {
        if count < 4 { lead = lead * 10 + Int(b[i] &- 48) }
        count += 1
    }
    let d1 = lead / 1000, d2 = lead / 100
    let brandOK: Bool
    switch d1 {
    case 4: brandOK = count == 13 || count == 16 || count == 19
    case 2: brandOK = count == 16 && ((lead >= 2221 && lead <= 2720) || (lead >= 2200 && lead <= 2204)) // + Mir
    case 3:
        if d2 == 34 || d2 == 37 { brandOK = count == 15 }
        else if d2 == 30 || d2 == 36 || d2 == 38 || d2 == 39 { brandOK = count >= 14 }
        else if d2 == 35 { brandOK = count >= 16 }
        else { brandOK = false }
    case 5, 6: brandOK = count >= 16
    case 8: brandOK = count == 16 && (d2 == 81 || d2 == 82) // RuPay
    default: brandOK = false
    }
    guard brandOK else { return false }
    var sum = 0, double = false
    var i = e - 1
    while i >= s {
        let c = b[i]
        if isDigit(c) {
            var d = Int(c &- 0x30)
            if double { d *= 2; if d > 9 { d -= 9 } }
            sum += d
            double.toggle()
        }
        i -= 1
    }
    return sum % 10 == 0
}

// MARK: - US SSN

/// `AAA-GG-SSSS` only (dashed; bare 9 digits are too common as IDs). SSA rules: area not 000,
/// 666 or 900–999; group not 00; serial not 0000. Masked entirely as `***-**-****`: the last
/// four are the part used as a knowledge factor, and area/group are guessable from birth data.
func scanSSN(_ b: Bytes, into out: inout [Match]) {
    let n = b.count
    guard n >= 11 else { return }
    var i = 0
    while i + 11 <= n {
        if isDigit(b[i]) && isDigit(b[i + 1]) && isDigit(b[i + 2]) && b[i + 3] == dash
            && isDigit(b[i + 4]) && isDigit(b[i + 5]) && b[i + 6] == dash
            && isDigit(b[i + 7]) && isDigit(b[i + 8]) && isDigit(b[i + 9]) && isDigit(b[i + 10])
            && leadOK(b, i, dashJoins: true) && trailOK(b, i + 11, dashJoins: true) {
            let area = Int(b[i] &- 48) * 100 + Int(b[i + 1] &- 48) * 10 + Int(b[i + 2] &- 48)
            let group = Int(b[i + 4] &- 48) * 10 + Int(b[i + 5] &- 48)
            let serial = (Int(b[i + 7] &- 48) * 1000 + Int(b[i + 8] &- 48) * 100
                + Int(b[i + 9] &- 48) * 10 + Int(b[i + 10] &- 48))
            if area != 0 && area != 666 && area < 900 && group != 0 && serial != 0 {
                out.append(Match(start: i, end: i + 11, detector: BuiltinDetector.usSSN.name,
                                 replacement: .fixed("***-**-****")))
                i += 11
                continue
            }
        }
        i += 1
    }
}

// MARK: - email

@inline(__always) private func isLocalChar(_ c: UInt8) -> Bool {
    // Practical subset: alnum . _ % + -. Quotes, braces, `=`, `/` excluded so JSON, arrays,
    // query strings and URLs around an address do not get swallowed into the local part.
    isAlnum(c) || c == dot || c == UInt8(ascii: "_") || c == UInt8(ascii: "%") || c == UInt8(ascii: "+") || c == dash
}

/// `local@domain.tld`: local part of alnum and `._%+-` (1–64, no leading/trailing/double dot),
/// domain of ≥2 LDH labels (1–63, no edge hyphen) with an alphabetic TLD of ≥2 letters.
/// Not detected: quoted local parts, IP-literal domains, non-ASCII (IDN/EAI) addresses.
/// Masked as first character + `****` + `@domain` (length-independent: hides the local length).
func scanEmails(_ b: Bytes, into out: inout [Match]) {
    let n = b.count
    var searchFrom = 0
    var p = 0
    while p < n {
        guard b[p] == UInt8(ascii: "@") else { p += 1; continue }
        defer { p += 1 }
        // local part, leftwards, not crossing a previous match
        var s = p
        while s > searchFrom && isLocalChar(b[s - 1]) && p - s < 64 { s -= 1 }
        while s < p && b[s] == dot { s += 1 }
        guard s < p, b[p - 1] != dot else { continue }
        var doubleDot = false
        for k in s..<(p - 1) where b[k] == dot && b[k + 1] == dot { doubleDot = true }
        if doubleDot { continue }
        // domain, rightwards
        var j = p + 1
        var labels = 0
        var lastLabelStart = j, lastLabelEnd = j
        var valid = true
        while j < n {
            let ls = j
            guard isAlnum(b[j]) else { break }
            while j < n && (isAlnum(b[j]) || b[j] == dash) && j - ls < 63 { j += 1 }
            if b[j - 1] == dash { valid = false; break }
            labels += 1
            lastLabelStart = ls; lastLabelEnd = j
            if j + 1 < n && b[j] == dot && isAlnum(b[j + 1]) { j += 1; continue }
            break
        }
        guard valid, labels >= 2, lastLabelEnd - lastLabelStart >= 2 else { continue }
        var alphaTLD = true
        for k in lastLabelStart..<lastLabelEnd where !isAlpha(b[k]) { alphaTLD = false }
        guard alphaTLD, lastLabelEnd - (p + 1) <= 253 else { continue }
        if lastLabelEnd < n && (isAlnum(b[lastLabelEnd]) || b[lastLabelEnd] == dash) { continue }
        out.append(Match(start: s, end: lastLabelEnd, detector: BuiltinDetector.email.name, replacement: .keepFirst(from: p)))
        searchFrom = lastLabelEnd
        p = lastLabelEnd - 1
    }
}

// MARK: - phone

/// E.164: `+` then 8–15 digits (first 1–9), groups separated by a single space or dash, one
/// optional parenthesised group (`+44 (0)20 7946 0958`, `+1 (555) 123-4567`).
/// North American: `(AAA) EEE-SSSS`, `(AAA)EEE-SSSS`, `AAA-EEE-SSSS`, `AAA.EEE.SSSS` with an
/// optional leading `1-`/`1 `/`1.`; area code first digit 2–9.
/// Not detected (on purpose, to spare dates, amounts, IDs, versions, IPs): bare digit strings
/// without `+`, national formats other than NANP, space-only NANP (`555 123 4567`), anything
/// adjacent to letters/digits, or joined to a neighbouring number by `.`/`-`.
/// Masked keeping the last 2 digits and all punctuation: `+** ** **** **58`, `(***) ***-**67`.
func scanPhones(_ b: Bytes, into out: inout [Match]) {
    let n = b.count
    var i = 0
    while i < n {
        let c = b[i]
        if c == UInt8(ascii: "+"), let e = parseE164(b, i) {
            out.append(Match(start: i, end: e, detector: BuiltinDetector.phone.name, replacement: .digits(keep: 2)))
            i = e
            continue
        }
        if c == UInt8(ascii: "(") || isDigit(c) {
            var e: Int? = nil
            if c == UInt8(ascii: "1") && i + 2 < n && (b[i + 1] == dash || b[i + 1] == space || b[i + 1] == dot)
                && leadOK(b, i, dashJoins: true) {
                e = parseNANP(b, i + 2, prefixed: true)
            }
            if e == nil && (c == UInt8(ascii: "(") ? (i == 0 || !isAlnum(b[i - 1])) : leadOK(b, i, dashJoins: true)) {
                e = parseNANP(b, i, prefixed: false)
            }
            if let e {
                out.append(Match(start: i, end: e, detector: BuiltinDetector.phone.name, replacement: .digits(keep: 2)))
                i = e
                continue
            }
        }
        i += 1
    }
}

private func parseE164(_ b: Bytes, _ i: Int) -> Int? {
    let n = b.count
    guard i + 1 < n, b[i + 1] &- 0x31 < 9 else { return nil }
    if i > 0 && (isAlnum(b[i - 1]) || b[i - 1] == UInt8(ascii: "+")) { return nil }
    var j = i + 1, digits = 0, lastDigitEnd = i + 1, parens = 0
    while j < n {
        let c = b[j]
        if isDigit(c) { digits += 1; j += 1; lastDigitEnd = j; continue }
        if (c == space || c == dash) && j + 1 < n && (isDigit(b[j + 1]) || b[j + 1] == UInt8(ascii: "("))
            && (isDigit(b[j - 1]) || b[j - 1] == UInt8(ascii: ")")) { j += 1; continue }
        if c == UInt8(ascii: "("), parens == 0 {
            var k = j + 1
            while k < n && isDigit(b[k]) && k - j <= 4 { k += 1 }
            guard k > j + 1, k < n, b[k] == UInt8(ascii: ")") else { break }
            digits += k - j - 1
            parens += 1
            j = k + 1
            lastDigitEnd = j
            continue
        }
        break
    }
    guard digits >= 8, digits <= 15 else { return nil }
    // A trailing `)` group is not a phone ending; require the match to end on a digit.
    guard isDigit(b[lastDigitEnd - 1]), trailOK(b, lastDigitEnd, dashJoins: false) else { return nil }
    return lastDigitEnd
}

@inline(__always) private func digitsAt(_ b: Bytes, _ i: Int, _ count: Int) -> Bool {
    guard i + count <= b.count else { return false }
    for k in i..<(i + count) where !isDigit(b[k]) { return false }
    return true
}

private func parseNANP(_ b: Bytes, _ i: Int, prefixed: Bool) -> Int? {
    let n = b.count
    var j = i
    if j < n && b[j] == UInt8(ascii: "(") {
        guard digitsAt(b, j + 1, 3), j + 4 < n, b[j + 4] == UInt8(ascii: ")") else { return nil }
        guard b[j + 1] >= UInt8(ascii: "2") else { return nil }
        j += 5
        if j < n && b[j] == space { j += 1 }
        guard digitsAt(b, j, 3), j + 3 < n else { return nil }
        let sep = b[j + 3]
        guard sep == dash || sep == space || sep == dot, digitsAt(b, j + 4, 4) else { return nil }
        j += 8
    } else {
        guard digitsAt(b, j, 3), b[j] >= UInt8(ascii: "2"), j + 3 < n else { return nil }
        let sep = b[j + 3]
        if prefixed && b[i - 1] != sep { return nil } // 1-555-123-4567: one separator style
        guard sep == dash || sep == dot, digitsAt(b, j + 4, 3), j + 7 < n, b[j + 7] == sep,
              digitsAt(b, j + 8, 4) else { return nil }
        j += 12
    }
    guard trailOK(b, j, dashJoins: true) else { return nil }
    return j
}

// MARK: - IBAN

/// Lengths for IBAN countries (ISO 13616 registry). Unknown country codes are accepted with any
/// length 15–34 so an unlisted country leaks nothing; mod-97 still has to pass.
private let ibanLengths: [UInt16: Int] = {
    let table: [(String, Int)] = [
        ("AD", 24), ("AE", 23), ("AL", 28), ("AT", 20), ("AZ", 28), ("BA", 20), ("BE", 16), ("BG", 22),
        ("BH", 22), ("BR", 29), ("CH", 21), ("CR", 22), ("CY", 28), ("CZ", 24), ("DE", 22), ("DK", 18),
        ("DO", 28), ("EE", 20), ("EG", 29), ("ES", 24), ("FI", 18), ("FO", 18), ("FR", 27), ("GB", 22),
        ("GE", 22), ("GI", 23), ("GL", 18), ("GR", 27), ("GT", 28), ("HR", 21), ("HU", 28), ("IE", 22),
        ("IL", 23), ("IS", 26), ("IT", 27), ("JO", 30), ("KW", 30), ("KZ", 20), ("LB", 28), ("LI", 21),
        ("LT", 20), ("LU", 20), ("LV", 21), ("MC", 27), ("MD", 24), ("ME", 22), ("MK", 19), ("MR", 27),
        ("MT", 31), ("MU", 30), ("NL", 18), ("NO", 15), ("PK", 24), ("PL", 28), ("PS", 29), ("PT", 25),
        ("QA", 29), ("RO", 24), ("RS", 22), ("SA", 24), ("SE", 24), ("SI", 19), ("SK", 24), ("SM", 27),
        ("TN", 24), ("TR", 26), ("UA", 29), ("VG", 24), ("XK", 20),
    ]
    var d: [UInt16: Int] = [:]
    for (cc, len) in table {
        let u = Array(cc.utf8)
        d[UInt16(u[0]) << 8 | UInt16(u[1])] = len
    }
    return d
}()

/// Country code (letters, either case) + 2 check digits + BBAN, contiguous or in groups of 4
/// separated by single spaces; length per country; ISO 7064 mod-97 == 1.
/// Masked keeping the country code and the last 4 characters, spaces kept: `DE** **** … **30 00`.
func scanIBANs(_ b: Bytes, into out: inout [Match]) {
    let n = b.count
    var i = 0
    while i + 15 <= n {
        guard isAlpha(b[i]), isAlpha(b[i + 1]), isDigit(b[i + 2]), isDigit(b[i + 3]),
              i == 0 || !isAlnum(b[i - 1]) else { i += 1; continue }
        // Collect positions of up to 35 alphanumerics, allowing a space after every 4th.
        var positions: [Int] = []
        positions.reserveCapacity(35)
        var j = i
        while j < n && positions.count < 35 {
            if isAlnum(b[j]) { positions.append(j); j += 1; continue }
            if b[j] == space && positions.count % 4 == 0 && j + 1 < n && isAlnum(b[j + 1]) { j += 1; continue }
            break
        }
        let cc = UInt16(b[i] & 0xDF) << 8 | UInt16(b[i + 1] & 0xDF)
        var length: Int? = nil
        if let known = ibanLengths[cc] {
            if positions.count == known {
                length = known
            } else if positions.count > known && positions[known] > positions[known - 1] + 1 {
                length = known // a space follows: the IBAN ends on a group boundary
            }
        } else if positions.count >= 15 && positions.count <= 34 {
            length = positions.count
        }
        if let length, ibanChecksumOK(b, positions, length) {
            let end = positions[length - 1] + 1
            if end >= n || !isAlnum(b[end]) {
                var rep = [UInt8](); rep.reserveCapacity(end - i)
                var idx = 0
                let keepFrom = length - 4
                for k in i..<end {
                    if b[k] == space { rep.append(space); continue }
                    rep.append(idx < 2 || idx >= keepFrom ? b[k] : star)
                    idx += 1
                }
                out.append(Match(start: i, end: end, detector: BuiltinDetector.iban.name, replacement: .bytes(rep)))
                i = end
                continue
            }
        }
        i += 1
    }
}

private func ibanChecksumOK(_ b: Bytes, _ positions: [Int], _ length: Int) -> Bool {
    guard length >= 15 && length <= 34 && positions.count >= length else { return false }
    var rem = 0
    // Rearranged: BBAN first, then country code and check digits; letters count A=10 … Z=35.
    for idx in 0..<length {
        let c = b[positions[(idx + 4) % length]]
        if isDigit(c) {
            rem = (rem * 10 + Int(c &- 48)) % 97
        } else {
            rem = (rem * 100 + Int((c & 0xDF) &- 55)) % 97
        }
    }
    return rem == 1
}
