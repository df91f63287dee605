import Testing
import Masking

@Suite struct CreditCardTests {
    static let valid = [
        "4111111111111111", "4012888888881881", "4242424242424242", "4222222222222", // Visa (16, 13)
        "5555555555554444", "5105105105105100", "2223003122003222",                   // Mastercard
        "378282246310005", "371449635398431",                                         // Amex
        "6011111111111117", "6011000990139424",                                       // Discover
        "30569309025904", "38520000023237",                                           // Diners
        "3530111333300000", "3566002020360505",                                       // JCB
        "6200000000000005",                                                           // UnionPay
        "2200000000000004", "4111111111111111110",                                    // Mir, Visa 19
    ]

    @Test(arguments: valid) func validCardsMaskedKeepingLast4(_ card: String) {
        let out = masked(card, only(.creditCard))
        #expect(out == String(repeating: "*", count: card.count - 4) + card.suffix(4))
    }

    @Test func separatorsKeepShape() {
        #expect(masked("4111-1111-1111-1111") == "****-****-****-1111")
        #expect(masked("4111 1111 1111 1111") == "**** **** **** 1111")
        #expect(masked("3782 822463 10005") == "**** ****** *0005")
        #expect(masked("4111111111111111") == "************1111")
    }

    @Test(arguments: ["4111111111111112", "5555555555554443", "378282246310006", "4111-1111-1111-1112"])
    func luhnOffByOneNotMasked(_ s: String) {
        #expect(fullMasker.maskText(s) == nil)
    }

    @Test func embeddedInText() {
        #expect(masked("paid with 4111 1111 1111 1111, thanks") == "paid with **** **** **** 1111, thanks")
        #expect(masked("{4111111111111111,5555555555554444}") == "{************1111,************4444}")
        #expect(masked("order 12 4111 1111 1111 1111") == "order 12 **** **** **** 1111")
    }

    @Test(arguments: [
        "0.4111111111111111", "4111111111111111.5", "x4111111111111111", "41111111111111111111111",
        "20261125202113", "1732569678128", "7111111111111114", "202611252021134",
    ])
    func nearMisses(_ s: String) {
        #expect(only(.creditCard).maskText(s) == nil)
    }
}

@Suite struct SSNTests {
    @Test(arguments: ["123-45-6789", "078-05-1120", "219-09-9999", "899-99-0001"])
    func valid(_ s: String) {
        #expect(masked(s, only(.usSSN)) == "***-**-****")
    }

    @Test(arguments: ["000-12-3456", "666-12-3456", "900-12-3456", "999-12-3456", "123-00-4567", "123-45-0000",
                      "123456789", "1123-45-6789", "123-45-67890", "2026-11-25", "123-45-6789.5", "1.123-45-6789"])
    func invalid(_ s: String) {
        #expect(only(.usSSN).maskText(s) == nil)
    }

    @Test func embedded() {
        #expect(masked("SSN: 123-45-6789.") == "SSN: ***-**-****.")
    }
}

@Suite struct EmailTests {
    @Test func masksLocalPartKeepsDomain() {
        #expect(masked("alice@example.com") == "a****@example.com")
        #expect(masked("ALICE@EXAMPLE.COM") == "A****@EXAMPLE.COM")
        #expect(masked("first.last+tag@mail.example.co.uk") == "f****@mail.example.co.uk")
        #expect(masked("x@example.org") == "x****@example.org")
        #expect(masked("Alice <alice@example.com>") == "Alice <a****@example.com>")
        #expect(masked("mailto:bob_smith-1@sub-domain.example.io.") == "mailto:b****@sub-domain.example.io.")
        #expect(masked("'alice@example.com'") == "'a****@example.com'")
        #expect(masked("alice@example.com,bob@example.net") == "a****@example.com,b****@example.net")
        #expect(masked("{alice@example.com,bob@example.net}") == "{a****@example.com,b****@example.net}")
    }

    @Test(arguments: ["user@localhost", "@example.com", "alice@", "a@b.c", "alice@example.c0m", "alice.@example.com",
                      "a..b@example.com", "alice@-example.com", "alice@10.0.0.1", "not an email", "@@"])
    func nearMisses(_ s: String) {
        #expect(only(.email).maskText(s) == nil)
    }
}

@Suite struct PhoneTests {
    @Test func valid() {
        let m = only(.phone)
        #expect(masked("+1 (555) 123-4567", m) == "+* (***) ***-**67")
        #expect(masked("+44 20 7946 0958", m) == "+** ** **** **58")
        #expect(masked("+4915123456789", m) == "+***********89")
        #expect(masked("+44 (0)20 7946 0958", m) == "+** (*)** **** **58")
        #expect(masked("(555) 123-4567", m) == "(***) ***-**67")
        #expect(masked("(555)123-4567", m) == "(***)***-**67")
        #expect(masked("555-123-4567", m) == "***-***-**67")
        #expect(masked("555.123.4567", m) == "***.***.**67")
        #expect(masked("1-800-555-0199", m) == "*-***-***-**99")
        #expect(masked("call 555-123-4567 now", m) == "call ***-***-**67 now")
    }

    @Test(arguments: [
        "2026-11-25", "2026-11-25 20:21:18+00", "2026-11-25T20:21:18.123456+00:00", "$1,234,567.89", "1234567.89",
        "192.168.100.200", "10.0.0.1", "v1.2.3", "1.23.456", "12.345.678", "order 123456789012", "ORD-2026-000123",
        "550e8400-e29b-41d4-a716-446655440000", "3.141592653589793", "+02:00", "+1234567", "5551234567",
        "+12345678901234567", "155-123-4567", "555-123-45678", "1.555.123.4567.8", "555-123.4567",
    ])
    func nearMisses(_ s: String) {
        #expect(only(.phone).maskText(s) == nil)
    }
}

@Suite struct IBANTests {
    @Test(arguments: [
        ("DE89370400440532013000", "DE****************3000"),
        ("DE89 3704 0044 0532 0130 00", "DE** **** **** **** **30 00"),
        ("GB29 NWBK 6016 1331 9268 19", "GB** **** **** **** **68 19"),
        ("GB29NWBK60161331926819", "GB****************6819"),
        ("FR1420041010050500013M02606", "FR*********************2606"),
        ("NL91ABNA0417164300", "NL************4300"),
        ("BE68539007547034", "BE**********7034"),
        ("CH9300762011623852957", "CH***************2957"),
        ("ES9121000418450200051332", "ES******************1332"),
        ("IT60X0542811101000000123456", "IT*********************3456"),
        ("NO9386011117947", "NO*********7947"),
    ])
    func valid(_ pair: (String, String)) {
        #expect(masked(pair.0, only(.iban)) == pair.1)
    }

    @Test func embedded() {
        #expect(masked("IBAN: DE89 3704 0044 0532 0130 00 (main)", only(.iban)) == "IBAN: DE** **** **** **** **30 00 (main)")
    }

    @Test(arguments: ["DE88370400440532013000", "GB28NWBK60161331926819", "DE8937040044053201300", "DE893704004405320130001",
                      "XDE89370400440532013000", "DE89-3704-0044-0532-0130-00", "ABCDEFGHIJKLMNOP1234"])
    func invalid(_ s: String) {
        #expect(only(.iban).maskText(s) == nil)
    }
}

@Suite struct SecretTokenTests {
    @Test func awsAccessKey() {
        #expect(masked("AKIAIOSFODNN7EXAMPLE") == "[REDACTED:aws_access_key]")
        #expect(masked("key=ASIAIOSFODNN7EXAMPLE;") == "key=[REDACTED:aws_access_key];")
        #expect(fullMasker.maskText("AKIAIOSFODNN7EXAMPL") == nil)          // 15 after prefix
        #expect(fullMasker.maskText("AKIAIOSFODNN7EXAMPLEX") == nil)        // too long
        #expect(fullMasker.maskText("AKIAiosfodnn7example") == nil)         // lower case
    }

    @Test func awsSecretOnlyWhenLabelled() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        #expect(masked("aws_secret_access_key = \(secret)") == "aws_secret_access_key = [REDACTED:aws_secret_key]")
        #expect(masked("{\"SecretAccessKey\": \"\(secret)\"}") == "{\"SecretAccessKey\": \"[REDACTED:aws_secret_key]\"}")
        #expect(only(.awsSecretKey).maskText(secret) == nil)
    }

    @Test func githubTokens() {
        #expect(masked("token ghp_1234567890abcdefghijABCDEFGHIJ123456") == "token [REDACTED:github_token]")
        #expect(masked("gho_1234567890abcdefghijABCDEFGHIJ123456") == "[REDACTED:github_token]")
        #expect(masked("ghs_1234567890abcdefghijABCDEFGHIJ123456") == "[REDACTED:github_token]")
        #expect(masked("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUV")
                == "[REDACTED:github_token]")
        #expect(only(.githubToken).maskText("ghp_short") == nil)
        #expect(only(.githubToken).maskText("ghx_1234567890abcdefghijABCDEFGHIJ123456") == nil)
    }

    @Test func slackTokens() {
        #expect(masked("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx") == "[REDACTED:slack_token]")
        #expect(masked("xoxp-1234567890-abc") == "[REDACTED:slack_token]")
        #expect(only(.slackToken).maskText("xoxz-123456789012") == nil)
    }

    @Test func jwts() {
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
        #expect(masked(jwt) == "[REDACTED:jwt]")
        #expect(masked("Authorization: Bearer \(jwt)") == "Authorization: Bearer [REDACTED:jwt]")
        // {"foo":"bar"} header: no "alg", not a JWT.
        #expect(only(.jwt).maskText("eyJmb28iOiJiYXIifQ.eyJ4IjoxfQ.abcdef") == nil)
        #expect(only(.jwt).maskText("eyJhbGciOiJIUzI1NiJ9") == nil) // header alone
    }

    @Test func privateKeys() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgwMbRvI0MBZhpF\n-----END RSA PRIVATE KEY-----"
        #expect(masked("key: \(pem)\nnext") == "key: [REDACTED:private_key]\nnext")
        #expect(masked("-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAA\\n-----END OPENSSH PRIVATE KEY-----")
                == "[REDACTED:private_key]")
        // Truncated: masked to the end.
        #expect(masked("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC") == "[REDACTED:private_key]")
        let cert = "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n-----END CERTIFICATE-----"
        #expect(only(.privateKey).maskText(cert) == nil)
    }
}
