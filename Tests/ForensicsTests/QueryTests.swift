import ArgumentParser
import CaptureFormat
@testable import Forensics
import Foundation
import Testing

@Suite("globs, times, patterns and filter options")
struct QueryTests {
    @Test func globs() {
        #expect(Glob("pii.*").matches("pii.users"))
        #expect(!Glob("pii.*").matches("public.users"))
        #expect(Glob("*@contractors.example.com").matches("erin@contractors.example.com"))
        #expect(!Glob("*@contractors.example.com").matches("erin@example.com"))
        #expect(Glob("user?").matches("users") && !Glob("user?").matches("user"))
        #expect(Glob("[a-c]*").matches("bob") && !Glob("[!a-c]*").matches("bob"))
        #expect(Glob("a\\*b").matches("a*b") && !Glob("a\\*b").matches("axb"))
        #expect(Glob("*").matches("") && Glob("").matches("") && !Glob("").matches("x"))
        #expect(Glob("a*b*c").matches("aXXbYYc") && !Glob("a*b*c").matches("aXXbYY"))
        #expect(Glob("[unclosed").matches("[unclosed"))
        #expect(Glob("Alice*", caseInsensitive: true).matches("alice@example.com"))
        #expect(Glob("pii.users").literal == "pii.users" && Glob("pii.*").literal == nil && Glob("a\\*").literal == "a*")
    }

    @Test func tableTermsNameWhatTheWriterIndexes() {
        #expect(RequestFilter.tableTerms(Glob("pii.users")) == ["table:pii.users"])
        #expect(RequestFilter.tableTerms(Glob("users")) == ["table:users"])
        #expect(RequestFilter.tableTerms(Glob("pii.*")) == ["schema:pii"])
        #expect(RequestFilter.tableTerms(Glob("*.users")) == ["table:users"])
        #expect(RequestFilter.tableTerms(Glob("user*")) == nil)
        #expect(RequestFilter.tableTerms(Glob("a.b.c*")) == nil)
        #expect(RequestFilter.tableMatches(Glob("users"), schema: "pii", name: "users"))
        #expect(RequestFilter.tableMatches(Glob("pii.users"), schema: "pii", name: "users"))
        #expect(!RequestFilter.tableMatches(Glob("pii.users"), schema: "public", name: "users"))
        #expect(RequestFilter.functionMatches(Glob("pg_sleep"), "pg_catalog.pg_sleep"))
        #expect(!RequestFilter.functionMatches(Glob("pg_catalog.pg_sleep"), "pg_sleep"))
        #expect(RequestFilter.functionTerms(Glob("pg_sleep")) == nil)
        #expect(RequestFilter.functionTerms(Glob("pg_catalog.pg_sleep")) == ["fn:pg_catalog.pg_sleep"])
    }

    @Test func times() {
        let now: Int64 = 1_795_000_000_000_000  // 2026-11-18T11:06:40Z
        let h: Int64 = 3_600_000_000
        #expect(TimeSpec.parse("2h", now: now) == now - 2 * h)
        #expect(TimeSpec.parse("7d", now: now) == now - 7 * 24 * h)
        #expect(TimeSpec.parse("1h30m", now: now) == now - 3 * h / 2)
        #expect(TimeSpec.parse("2 hours ago", now: now) == now - 2 * h)
        #expect(TimeSpec.parse("90s", now: now) == now - 90_000_000)
        #expect(TimeSpec.parse("2w", now: now) == now - 14 * 24 * h)
        #expect(TimeSpec.parse("now", now: now) == now)
        #expect(TimeSpec.parse("today", now: now) == 1_794_960_000_000_000)
        #expect(TimeSpec.parse("yesterday", now: now) == 1_794_960_000_000_000 - 24 * h)
        #expect(TimeSpec.parse("2026-11-18", now: now) == 1_794_960_000_000_000)
        #expect(TimeSpec.parse("2026-11-18T09:00:00Z", now: now) == 1_794_960_000_000_000 + 9 * h)
        #expect(TimeSpec.parse("2026-11-18 09:00", now: now) == 1_794_960_000_000_000 + 9 * h)
        #expect(TimeSpec.parse("2026-11-18T09:00:00.5+01:00", now: now) == 1_794_960_000_000_000 + 8 * h + 500_000)
        #expect(TimeSpec.parse("1795000000", now: now) == now)
        for bad in ["", "soon", "2h3", "h", "2026-13-40", "3 parsecs"] { #expect(TimeSpec.parse(bad, now: now) == nil, "\(bad)") }
    }

    @Test func requiredLiterals() {
        func lit(_ r: String) -> String? { TextPattern.longestRequiredLiteral(ofRegex: r).map { String(decoding: $0, as: UTF8.self) } }
        #expect(lit("DELETE FROM [a-z.]+") == "DELETE FROM ")
        #expect(lit("card_number") == "card_number")
        #expect(lit("abc*def") == "def")          // c may occur zero times
        #expect(lit("colou?r") == "colo")
        #expect(lit("x{0,3}yz") == "yz")
        #expect(lit("(optional)?tail") == "tail") // nothing taken from groups
        #expect(lit("a|b") == nil)                // alternation: no single required literal
        #expect(lit("\\bDELETE\\b.*WHERE") == "DELETE")
        #expect(lit("4\\.2\\.[0-9]") == "4.2.")
        #expect(lit("[]ab]cd") == "cd")
        #expect(lit("[a-z][*]{4}@example[.]org") == "@example.org")  // one-member brackets are literals; {4} may not hold one
        #expect(lit("a[.]b") == "a.b" && lit("ab[^.]cde") == "cde")
        #expect(lit("[[:digit:]]+-card") == "-card")
        // Separators the text walker inserts (tab, newline, space) split the literal.
        #expect(TextPattern(patterns: ["FROM pii.users"], fixed: true).requiredLiteral.map { String(decoding: $0, as: UTF8.self) } == "pii.users")
        #expect(TextPattern(patterns: ["Email"], fixed: true, ignoreCase: true).requiredLiteral == Array("email".utf8))
        #expect(TextPattern(patterns: ["a", "b"], fixed: true).requiredLiteral == nil)
        #expect(TextPattern(patterns: ["x"]).requiredLiteral == nil)  // too short to be worth it
        #expect(TextPattern.translated("\\d+-\\D[\\d]") == "[0-9]+-[^0-9][\\d]")
    }

    @Test func matcher() throws {
        let whole = try PatternMatcher(TextPattern(patterns: ["SELECT.*FROM"]))
        #expect(whole.matches("SELECT id\nFROM t", asLines: false))
        #expect(!whole.matches("SELECT id\nFROM t", asLines: true))
        let anchored = try PatternMatcher(TextPattern(patterns: ["^43.shipped$"]))
        #expect(anchored.matches("42\tpaid\n43\tshipped", asLines: true))
        #expect(!anchored.matches("42\tpaid\n43\tshipped", asLines: false))
        let digits = try PatternMatcher(TextPattern(patterns: ["EMP-\\d{6}"]))
        #expect(digits.matches("id EMP-123456 x", asLines: true) && !digits.matches("EMP-12345", asLines: true))
        let fixed = try PatternMatcher(TextPattern(patterns: ["a.b"], fixed: true))
        #expect(fixed.matches("xa.by", asLines: true) && !fixed.matches("xaXby", asLines: true))
        let folded = try PatternMatcher(TextPattern(patterns: ["delete from"], ignoreCase: true))
        #expect(folded.matches("DELETE FROM pii.users", asLines: false))
        let nul = try PatternMatcher(TextPattern(patterns: ["after"]))
        #expect(nul.matches(UnsafeRawBufferPointer(start: nil, count: 0), asLines: true) == false)
        let binary: [UInt8] = [0x00, 0xFF] + Array("after".utf8)
        #expect(binary.withUnsafeBytes { nul.matches($0, asLines: true) })
        #expect(throws: PatternError.self) { try TextPattern(patterns: ["(unclosed"]).validate() }
        let bytes = Array("xxabcxx".utf8)
        #expect(bytes.withUnsafeBytes { h in Array("abc".utf8).withUnsafeBytes { find($0, in: h) } })
        #expect(!bytes.withUnsafeBytes { h in Array("abd".utf8).withUnsafeBytes { find($0, in: h) } })
        #expect(bytes.withUnsafeBytes { h in Array("xx".utf8).withUnsafeBytes { find($0, in: h) } })
    }

    @Test func highlighting() throws {
        let h = try #require(Highlighter(TextPattern(patterns: ["o+"])))
        #expect(h.mark("foo boo") { "[\($0)]" } == "f[oo] b[oo]")
        // Patterns work on bytes: "M." ends inside 'ü'; the mark widens to the whole character (never splits UTF-8).
        let any = try #require(Highlighter(TextPattern(patterns: ["M."])))
        #expect(any.mark("Müller") { "[\($0)]" } == "[Mü]ller")
        let fixed = try #require(Highlighter(TextPattern(patterns: ["USERS"], fixed: true, ignoreCase: true)))
        #expect(fixed.mark("FROM pii.users u") { "<\($0)>" } == "FROM pii.<users> u")
        #expect(Highlighter(TextPattern(patterns: ["x"], invert: true)) == nil)
    }

    @Test func filterOptions() throws {
        let now: Int64 = 1_795_000_000_000_000
        let o = try CaptureFilterOptions.parse(CaptureFilterOptions.expandingOptionalValues([
            "--subject", "alice*", "--subject", "bob@example.com", "--table", "pii.*", "--decision", "granted",
            "--status", "5xx", "--masked", "--since", "2h", "--trace", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "--protocol", "Postgres", "--kind", "approval",
        ]))
        let q = try o.query(now: now)
        #expect(q.subjects.map(\.pattern) == ["alice*", "bob@example.com"])
        #expect(q.request.tables.map(\.pattern) == ["pii.*"])
        #expect(q.decisions == [.approved])
        #expect(q.statuses.map(\.description) == ["5xx"])
        #expect(q.masked.map(\.pattern) == ["*"])
        #expect(q.since == now - 7_200_000_000)
        #expect(q.traces == ["0af7651916cd43dd8448eb211c80319c"])
        #expect(q.protocols == ["postgres"])
        #expect(q.kinds == [.approval])
        #expect(try CaptureFilterOptions.parse(["--masked=credit_card"]).query().masked.map(\.pattern) == ["credit_card"])
        // After --, a bare --masked is an operand, not an option.
        #expect(CaptureFilterOptions.expandingOptionalValues(["--", "--masked"]) == ["--", "--masked"])
        for bad in [["--decision", "maybe"], ["--kind", "nonsense"], ["--status", "6xx"], ["--since", "soon"],
                    ["--protocol", "ftp"], ["--since", "1h", "--until", "2h"]] {
            #expect(throws: (any Error).self, "\(bad)") { try CaptureFilterOptions.parse(bad) }
        }
    }
}
