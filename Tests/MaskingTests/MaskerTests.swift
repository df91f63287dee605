import Testing
import Masking

@Suite struct MaskerTests {
    @Test func rowToJSON() {
        #expect(masked(#"{"ssn":"123-45-6789","card":"4111 1111 1111 1111"}"#)
                == #"{"ssn":"***-**-****","card":"**** **** **** 1111"}"#)
        #expect(masked(#"{"id":7,"email":"ALICE@EXAMPLE.COM","phone":"+1 555-123-4567","created":"2026-11-25T20:21:18+00:00"}"#)
                == #"{"id":7,"email":"A****@EXAMPLE.COM","phone":"+* ***-***-**67","created":"2026-11-25T20:21:18+00:00"}"#)
    }

    @Test func arrayAggAndCase() {
        #expect(masked("{123-45-6789,234-56-7890}") == "{***-**-****,***-**-****}")
        #expect(masked(#"{"alice@example.com","BOB@EXAMPLE.ORG"}"#) == #"{"a****@example.com","B****@EXAMPLE.ORG"}"#)
        #expect(masked("de89370400440532013000", only(.iban)) == "de****************3000")
        #expect(masked(#"{"phone": "(555) 123-4567"}"#) == #"{"phone": "(***) ***-**67"}"#)
    }

    @Test func concatenations() {
        #expect(masked("Alice Smith <alice@example.com> 123-45-6789 4111111111111111")
                == "Alice Smith <a****@example.com> ***-**-**** ************1111")
        #expect(masked("ssn=123-45-6789;card=5555-5555-5555-4444") == "ssn=***-**-****;card=****-****-****-4444")
    }

    @Test(arguments: [
        "", "42", "Alice", "hello world", "2026-11-25", "2026-11-25 20:21:18.123456+00", "19.99", "-1234567.89",
        "550e8400-e29b-41d4-a716-446655440000", "192.168.1.20", "10.0.0.1/24", "v2.14.3", "1.2.3-beta.4",
        "ORD-2026-000123", "INV-123456789", "t", "{1,2,3}", "(1,2)", "3.141592653589793", "0.30000000000000004",
        "1732569678123", "9223372036854775807", "https://example.com/path?q=1", "\\x deadbeef",
    ])
    func noChangeReturnsNil(_ s: String) {
        #expect(fullMasker.mask(Array(s.utf8)) == nil)
    }

    @Test func copyDataNoticesAndErrors() {
        // COPY text format: tab-separated columns, newline-terminated rows.
        #expect(masked("7\t4111111111111111\talice@example.com\t123-45-6789\n")
                == "7\t************1111\ta****@example.com\t***-**-****\n")
        // COPY CSV.
        #expect(masked("7,\"4111 1111 1111 1111\",bob@example.org\n") == "7,\"**** **** **** 1111\",b****@example.org\n")
        // An error from a failed cast echoes the value.
        #expect(masked(#"invalid input syntax for type integer: "123-45-6789""#)
                == #"invalid input syntax for type integer: "***-**-****""#)
        #expect(masked("NOTICE:  card 5555555555554444 for carol@example.com")
                == "NOTICE:  card ************4444 for c****@example.com")
    }

    @Test func customRegex() throws {
        #expect(masked("employee EMP-123456 joined") == "employee [REDACTED:employee_id] joined")
        #expect(fullMasker.maskText("EMP-12345") == nil)
        let r = try #require(fullMasker.mask(Array("EMP-000001 EMP-000002".utf8)))
        #expect(r.counts == ["employee_id": 2])
        // Non-ASCII before the match: offsets are mapped back to UTF-8 bytes correctly.
        #expect(masked("Zoë – EMP-123456 ✓") == "Zoë – [REDACTED:employee_id] ✓")
    }

    @Test func customRegexLiteralPrefilterIsConservative() throws {
        let m = try Masker(detectors: [], customPatterns: [
            CustomPattern(name: "alt", pattern: #"EMP-\d{6}|CUST-\d{4}"#),
            CustomPattern(name: "opt", pattern: #"ORDX?-\d{3}"#),
            CustomPattern(name: "ci", pattern: #"(?i)secret-\d+"#),
            CustomPattern(name: "anchored", pattern: #"^\d{3}$"#),
        ])
        #expect(m.maskText("id CUST-1234")?.text == "id [REDACTED:alt]")
        #expect(m.maskText("ORD-123")?.text == "[REDACTED:opt]")
        #expect(m.maskText("ORDX-123")?.text == "[REDACTED:opt]")
        #expect(m.maskText("a SECRET-9")?.text == "a [REDACTED:ci]")
        #expect(m.maskText("123")?.text == "[REDACTED:anchored]")
        #expect(m.maskText("nothing here") == nil)
    }

    @Test func invalidRegexThrowsNamingDetector() {
        #expect(throws: MaskingError.self) {
            _ = try Masker(customPatterns: [CustomPattern(name: "broken_one", pattern: "EMP-(")])
        }
        do {
            _ = try Masker(customPatterns: [CustomPattern(name: "broken_one", pattern: "[a-")])
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("broken_one"))
        }
        #expect(throws: MaskingError.self) { _ = try Masker(columnRules: ["a.b.c.d"]) }
        #expect(throws: MaskingError.unknownDetector("credit_cards")) { _ = try Masker(detectorNames: ["credit_cards"]) }
    }

    /// A masker with fewer detectors skips values shorter than any of them can match: it must
    /// still find everything those detectors find when every detector is on (and values are
    /// scanned from 6 bytes).
    @Test func aDetectorAloneFindsWhatItFindsAmongAll() throws {
        let samples = ["123-45-6789", "ssn 123-45-6789.", "4111111111111111", "a@b.io", "mail: x@example.com", "+1 415 555 0100",
                       "(415) 555-0100", "GB82WEST12345698765432", "AKIAIOSFODNN7EXAMPLE", "ghp_" + String(repeating: "a1B2", count: 9),
                       "xoxb-123-456-abcdef", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
                       "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                       "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n-----END PRIVATE KEY-----", "id 42", "2026-12-01"]
        let all = try Masker()
        for detector in BuiltinDetector.allCases {
            let alone = try Masker(detectors: [detector])
            var anywhere = 0
            for v in samples {
                let found = all.mask(Array(v.utf8))?.counts[DetectorName(detector.rawValue)] ?? 0
                let foundAlone = alone.mask(Array(v.utf8))?.counts[DetectorName(detector.rawValue)] ?? 0
                #expect(foundAlone >= found, "\(detector) in \(v)")
                anywhere += found
            }
            #expect(anywhere > 0, "no sample has a \(detector)")
        }
    }

    @Test func detectorNames() throws {
        let m = try Masker(detectorNames: ["credit_card", "us_ssn", "email"])
        #expect(m.detectors == [.creditCard, .usSSN, .email])
        #expect(BuiltinDetector.named("secrets") == BuiltinDetector.secrets)
        #expect(m.maskText("AKIAIOSFODNN7EXAMPLE") == nil) // not enabled
    }

    @Test func columnRulesByGlob() {
        let users = { (c: String) in ColumnRef(schema: "public", table: "users", column: c) }
        #expect(masked("anything at all", column: users("ssn")) == "********")
        #expect(masked("123-45-6789", column: users("ssn")) == "***-**-****")
        #expect(masked("bob", column: users("email")) == "********")
        #expect(masked("Bob", column: ColumnRef(table: "Users", column: "EMAIL")) == "********")
        #expect(masked("bob", column: ColumnRef(table: "orders", column: "email")) == "bob")
        #expect(masked("555 0199", column: ColumnRef(table: "contacts", column: "phone")) == "*** ****")
        #expect(masked("4111 1111 1111 1111", column: ColumnRef(table: "t", column: "card_number")) == "**** **** **** 1111")
        // Computed column named ssn (no table): `*.ssn` still covers it.
        #expect(masked("x", column: ColumnRef(column: "ssn")) == "********")
        #expect(fullMasker.mask([], column: users("ssn")) == nil)
        let r = fullMasker.mask(Array("zzz".utf8), column: users("ssn"))
        #expect(r?.counts == [.column: 1])
        #expect(fullMasker.coversColumn(users("ssn")))
        #expect(!fullMasker.coversColumn(users("name")))

        let m = try! Masker(detectors: [], columnRules: ["pay?oll.*", "hr.*.salary", "secret_*"])
        #expect(m.coversColumn(ColumnRef(table: "payroll", column: "amount")))
        #expect(m.coversColumn(ColumnRef(schema: "hr", table: "staff", column: "salary")))
        #expect(!m.coversColumn(ColumnRef(schema: "public", table: "staff", column: "salary")))
        #expect(m.coversColumn(ColumnRef(column: "SECRET_note")))
        #expect(!m.coversColumn(ColumnRef(column: "note")))
    }

    @Test func countsAndTally() throws {
        let r = try #require(fullMasker.mask(Array("a@b.com c@d.org 123-45-6789 4111111111111111".utf8)))
        #expect(r.counts == ["email": 2, "us_ssn": 1, "credit_card": 1])
        #expect(r.total == 4)

        var tally = MaskTally()
        let ssnCol = ColumnRef(table: "users", column: "ssn")
        tally.record(r, at: .column(ColumnRef(table: "users", column: "notes")))
        tally.record(try #require(fullMasker.mask(Array("x".utf8), column: ssnCol)), at: .column(ssnCol))
        tally.record(try #require(fullMasker.mask(Array("y".utf8), column: ssnCol)), at: .column(ssnCol))
        tally.record(try #require(fullMasker.maskText("bad value: 123-45-6789")).counts, at: .error)
        #expect(tally.count(detector: "email", location: MaskLocation("users.notes")) == 2)
        #expect(tally.count(detector: .column, location: .column(ssnCol)) == 2)
        #expect(tally.count(detector: "us_ssn") == 2)
        #expect(tally.total == 7)
        var other = MaskTally()
        other.record(["email": 1], at: .notice)
        tally.merge(other)
        #expect(tally.total == 8)
        #expect(tally.entries.map(\.location.description) == ["error", "notice", "users.notes", "users.notes", "users.notes", "users.ssn"])
    }

    @Test func overlapsAreMergedNeverPartial() throws {
        // A card whose digits also form a phone-like tail; one mask, nothing clear.
        let r = try #require(fullMasker.mask(Array("+1 4111 1111 1111 1111".utf8)))
        let s = String(decoding: r.bytes, as: UTF8.self)
        #expect(!s.contains("4111 1111"))
        // Crossing matches (email and a custom pattern): the union is redacted as one.
        let m = try Masker(customPatterns: [CustomPattern(name: "tail", pattern: #"ample\.com tail"#)])
        #expect(m.maskText("alice@example.com tail end")?.text == "[REDACTED:email] end")
        // Contained match: the outer mask wins.
        #expect(masked("EMP-123456@example.com") == "E****@example.com")
    }

    @Test func invalidUTF8DoesNotCrash() throws {
        let junk: [UInt8] = [0xFF, 0xFE, 0xC3, 0x28, 0x80]
        let value = junk + Array(" 4111111111111111 EMP-123456 ".utf8) + [0xE2, 0x82] + Array("a@b.com".utf8)
        let r = try #require(fullMasker.mask(value))
        #expect(Array(r.bytes.prefix(5)) == junk)
        let tail = String(decoding: r.bytes.dropFirst(5), as: UTF8.self)
        #expect(tail.contains("************1111"))
        #expect(tail.contains("[REDACTED:employee_id]"))
        #expect(tail.hasSuffix("a****@b.com"))
        // Random bytes: no crash, and any output is well-formed enough to return.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0..<200, using: &rng)).map { _ in
                Bool.random(using: &rng) ? UInt8.random(in: 0...255, using: &rng) : Array("0123456789-@. +()AKIAeyJgh_x".utf8).randomElement(using: &rng)!
            }
            _ = fullMasker.mask(bytes)
            _ = fullMasker.mask(bytes, column: ColumnRef(column: "ssn"))
        }
    }

    @Test func bufferPointerAPI() {
        let v = Array("card 4111111111111111".utf8)
        let r = v.withUnsafeBufferPointer { fullMasker.mask($0) }
        #expect(r.map { String(decoding: $0.bytes, as: UTF8.self) } == "card ************1111")
    }

    /// One scratch reused across values, as a session masks its results: each value comes out as
    /// it does alone, whatever was masked before it (longer or shorter, with or without matches).
    @Test func aReusedScratchMasksEachValueAsAlone() {
        let values = ["card 4111 1111 1111 1111 and mail person7@example.com", "42", "123-45-6789", "",
                      "x@example.org; 078-05-1120; +1 415 555 0100", "no secrets here at all", "5555555555554444",
                      "ghp_" + String(repeating: "a1B2", count: 9), "(415) 555-0100 / 219-09-9999"]
        var scratch = MaskScratch()
        for v in values + values.reversed() {
            let bytes = Array(v.utf8)
            let alone = fullMasker.mask(bytes)
            let counts = bytes.withUnsafeBufferPointer { fullMasker.mask($0, using: &scratch) }
            #expect(counts == alone?.counts, "\(v)")
            if alone != nil { #expect(scratch.out == alone?.bytes, "\(v)") }
            let whole = fullMasker.maskWholeValue(bytes)
            let wholeCounts = bytes.withUnsafeBufferPointer { fullMasker.maskWholeValue($0, using: &scratch) }
            #expect(wholeCounts == whole?.counts, "\(v)")
            if whole != nil { #expect(scratch.out == whole?.bytes, "\(v)") }
        }
    }
}
