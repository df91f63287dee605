import CaptureFormat
import Foundation
import HTTPProxy
import Testing

@Suite("HTTP fields forwarded and recorded")
struct UpstreamFieldsTests {
    let head = RequestHead(method: "GET", target: "/data.json", fields: [
        HTTPField("Host", "api.test"),
        HTTPField("Authorization", "Bearer client-oidc-token"),
        HTTPField("Connection", "keep-alive, X-Secret-Hop"),
        HTTPField("X-Secret-Hop", "1"),
        HTTPField("Keep-Alive", "timeout=5"),
        HTTPField("TE", "trailers"),
        HTTPField("Trailer", "X-T"),
        HTTPField("Upgrade", "websocket"),
        HTTPField("Proxy-Authorization", "Basic eDp5"),
        HTTPField("Proxy-Connection", "keep-alive"),
        HTTPField("X-Forwarded-For", "6.6.6.6"),
        HTTPField("Via", "1.1 edge"),
        HTTPField("Cookie", "sid=abc"),
        HTTPField("Accept", "application/json"),
    ])

    /// `hasName` (the lookup without lowercasing) answers as comparing `canonicalName` does,
    /// for ASCII names in any case and for a name that only Unicode lowercasing folds.
    @Test func aFieldNameIsMatchedAsItsLowercasedFormIs() {
        let names = ["Content-Length", "CONTENT-LENGTH", "content-length", "Content-Lengt", "Content-Lengths", "Ccontent-Length",
                     "Content_Length", "\u{212A}eep-Alive", "Keep-Alive", "X-\u{e9}", "", "connection"]
        for name in names {
            for lookup in ["content-length", "keep-alive", "x-\u{e9}", "connection", ""] {
                let field = HTTPField(name, "v")
                #expect(field.hasName(lookup) == (field.canonicalName == lookup), "\(name) / \(lookup)")
            }
        }
        #expect([HTTPField("TE", "a"), HTTPField("Accept", "b"), HTTPField("te", "c")].values("Te") == ["a", "c"])
    }

    @Test func hopByHopFieldsAndTheClientTokenAreNotForwarded() {
        let out = UpstreamRequestFields.make(head, framing: .none, credential: .bearer("upstream-secret"), clientAddress: "127.0.0.1")
        let names = Set(out.map(\.canonicalName))
        for gone in ["connection", "x-secret-hop", "keep-alive", "te", "trailer", "upgrade", "proxy-authorization", "proxy-connection"] {
            #expect(!names.contains(gone), "\(gone) is hop-by-hop")
        }
        #expect(out.values("authorization") == ["Bearer upstream-secret"])
        #expect(!out.contains { $0.value.contains("client-oidc-token") })
        #expect(out.values("x-forwarded-for") == ["127.0.0.1"], "the client's own X-Forwarded-For is not believed")
        #expect(out.values("via") == ["1.1 edge, 1.1 tollgate"])
        #expect(out.values("accept") == ["application/json"])
        #expect(out.values("cookie") == ["sid=abc"], "end-to-end fields pass")
        #expect(out.values("host") == ["api.test"])
    }

    @Test func basicCredentialAndFraming() {
        let out = UpstreamRequestFields.make(head, framing: .chunked, credential: .basic(user: "svc", password: "pw"), clientAddress: "::1")
        #expect(out.values("authorization") == ["Basic " + Data("svc:pw".utf8).base64EncodedString()])
        #expect(out.values("transfer-encoding") == ["chunked"])
        let fixed = UpstreamRequestFields.make(head, framing: .length(7), credential: .none, clientAddress: "::1")
        #expect(fixed.values("content-length") == ["7"])
        #expect(fixed.values("authorization").isEmpty)
    }

    @Test func recordingWithholdsCredentials() {
        let recorded = RecordedFields.record(head.fields + [HTTPField("set-cookie", "k=v")])
        for name in ["Authorization", "Proxy-Authorization", "Cookie", "set-cookie"] {
            #expect(recorded.first { $0.key == name }?.value == RecordedFields.withheldValue)
        }
        #expect(recorded.first { $0.key == "Accept" }?.value == "application/json")
        #expect(!recorded.contains { $0.value.contains("client-oidc-token") || $0.value.contains("sid=abc") })
    }

    @Test func bearerTokenExtraction() throws {
        func h(_ values: [String]) -> RequestHead {
            RequestHead(method: "GET", target: "/", fields: [HTTPField("Host", "h")] + values.map { HTTPField("Authorization", $0) })
        }
        #expect(try BearerCredential.token(in: h(["Bearer abc.def.ghi"])).get() == "abc.def.ghi")
        #expect(try BearerCredential.token(in: h(["bearer abc"])).get() == "abc")
        #expect(BearerCredential.token(in: h([])) == .failure(.missing))
        #expect(BearerCredential.token(in: h(["Basic eDp5"])) == .failure(.invalid("the Authorization scheme is not Bearer")))
        #expect(BearerCredential.token(in: h(["Bearer a", "Bearer b"])) == .failure(.invalid("more than one Authorization field")))
        #expect(BearerCredential.token(in: h(["Bearer a\"b"])) == .failure(.invalid("the bearer token is malformed")))
    }

    @Test func unauthorizedCarriesTheChallenge() {
        let r = GateResponse.unauthorized(realm: "tollgate", .invalid("the token has expired \"now\""))
        #expect(r.status == 401)
        #expect(r.fields.values("www-authenticate") == ["Bearer realm=\"tollgate\", error=\"invalid_token\", error_description=\"the token has expired now\""])
        let text = String(decoding: r.serialized, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 401 Unauthorized\r\n"))
        #expect(text.contains("Content-Length: \(r.body.count)\r\n"))
    }

    @Test func refusalAndDenialBodiesNameWhatAndWhere() throws {
        let r = GateResponse.refusal(HTTPRefusal(.lengthAndTransferEncoding, "the request has both Content-Length and Transfer-Encoding"))
        #expect(r.status == 400 && r.closesConnection)
        #expect(r.fields.values("connection") == ["close"])
        let body = try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: String]
        #expect(body?["error"] == "content_length_and_transfer_encoding")
        let d = GateResponse.denied(policy: "api", rule: "no-admin", detail: "GET /admin is denied")
        let dbody = try JSONSerialization.jsonObject(with: Data(d.body)) as? [String: String]
        #expect(d.status == 403 && dbody?["policy"] == "api" && dbody?["rule"] == "no-admin")
    }
}
