import Foundation
import Masking
import Testing

/// Secret values masked in Kubernetes JSON: a SecretList as kube-apiserver answers `kubectl get
/// secrets -o yaml`, a watch event line, a Table row with the object, the last-applied annotation;
/// everything else byte for byte as it came; malformed JSON refused.
@Suite("Kubernetes Secret masking")
struct KubernetesSecretMaskingTests {
    static func secret(_ name: String, data: String, kind: Bool = true, extra: String = "") -> String {
        let head = kind ? #""kind":"Secret","apiVersion":"v1","# : ""
        return #"{\#(head)"metadata":{"name":"\#(name)","namespace":"dev","uid":"6b1f5c1e-0d0a-4a51-9f57-2f0e3a1c9d10","#
            + #""resourceVersion":"1041","creationTimestamp":"2026-12-01T09:00:00Z"\#(extra)},"data":\#(data),"type":"Opaque"}"#
    }

    func masked(_ text: String) throws -> (String, Int) {
        let r = try KubernetesSecretMasking.mask(Array(text.utf8))
        return (String(decoding: r.bytes, as: UTF8.self), r.masked)
    }

    @Test func aListOfThreeSecretsKeepsKeysAndLosesValues() throws {
        // Items of a list carry no kind: the SecretList says what they are.
        let items = [
            Self.secret("db-credentials", data: #"{"password":"aHVudGVyMg==","username":"YXBw"}"#, kind: false),
            Self.secret("api-token", data: #"{"token":"Z2hwX0FCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFla"}"#, kind: false),
            Self.secret("tls", data: #"{"tls.crt":"LS0tLS1CRUdJTi==","tls.key":"LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t"}"#, kind: false),
        ]
        let list = #"{"kind":"SecretList","apiVersion":"v1","metadata":{"resourceVersion":"1050"},"items":["# + items.joined(separator: ",") + "]}"
        let (out, count) = try masked(list)
        #expect(count == 5)
        for value in ["aHVudGVyMg==", "YXBw", "Z2hwX0FCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFla", "LS0tLS1CRUdJTi==", "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t"] {
            #expect(!out.contains(value))
        }
        let o = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let parsed = try #require(o["items"] as? [[String: Any]])
        #expect(parsed.map { ($0["data"] as? [String: String])?.keys.sorted() ?? [] } == [["password", "username"], ["token"], ["tls.crt", "tls.key"]])
        #expect(parsed.allSatisfy { ($0["data"] as? [String: String])?.values.allSatisfy { $0 == KubernetesSecretMasking.dataMask } == true })
        // The mask is base64, so typed clients still decode the Secret.
        #expect(String(decoding: Data(base64Encoded: KubernetesSecretMasking.dataMask)!, as: UTF8.self) == "[REDACTED]")
        // Everything else as it came: metadata, type, key order.
        #expect(out.contains(#""metadata":{"name":"tls","namespace":"dev","uid":"6b1f5c1e-0d0a-4a51-9f57-2f0e3a1c9d10","#))
        #expect(out.hasPrefix(#"{"kind":"SecretList","apiVersion":"v1","metadata":{"resourceVersion":"1050"},"items":[{"metadata""#))
    }

    @Test func aWatchEventLine() throws {
        let line = #"{"type":"MODIFIED","object":"# + Self.secret("db-credentials", data: #"{"password":"aHVudGVyMg=="}"#) + "}"
        let (out, count) = try masked(line)
        #expect(count == 1)
        #expect(out == line.replacingOccurrences(of: "aHVudGVyMg==", with: KubernetesSecretMasking.dataMask))
        // As they come off a watch stream: split into lines, each masked.
        var framer = JSONLineFramer(maxLineBytes: 4096)
        let stream = Array((line + "\n" + #"{"type":"BOOKMARK","object":{"kind":"Secret","apiVersion":"v1","metadata":{"resourceVersion":"12"}}}"# + "\n").utf8)
        var lines = try framer.append(stream[..<100])
        lines += try framer.append(stream[100...])
        #expect(lines.count == 2 && framer.finish().isEmpty)
        #expect(try lines.map { String(decoding: try KubernetesSecretMasking.mask($0).bytes, as: UTF8.self) } == [out, #"{"type":"BOOKMARK","object":{"kind":"Secret","apiVersion":"v1","metadata":{"resourceVersion":"12"}}}"#])
    }

    @Test func aWatchLineOverTheLimitIsRefusedNotBuffered() {
        var framer = JSONLineFramer(maxLineBytes: 64)
        #expect(throws: JSONLineFramer.Overflow.self) { _ = try framer.append(Array(repeating: UInt8(ascii: "x"), count: 65)) }
    }

    @Test func stringDataTableRowsAndTheLastAppliedAnnotation() throws {
        let lastApplied = #","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"stringData\":{\"password\":\"hunter2\"}}"}"#
        let secret = #"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s""# + lastApplied + #"},"stringData":{"password":"hunter2"},"data":null}"#
        let (out, count) = try masked(secret)
        #expect(!out.contains("hunter2") && count == 2, "\(out)")
        #expect(out.contains(#""stringData":{"password":"[REDACTED]"}"#) && out.contains(#""data":null"#))
        // kubectl get secrets -o wide with includeObject=Object: the Secret inside a Table row.
        let table = #"{"kind":"Table","apiVersion":"meta.k8s.io/v1","columnDefinitions":[],"rows":[{"cells":["s","Opaque",1,"5m"],"object":"#
            + Self.secret("s", data: #"{"k":"dmFsdWU="}"#) + "}]}"
        let (t, n) = try masked(table)
        #expect(n == 1 && !t.contains("dmFsdWU="))
    }

    @Test func aKindRepeatedOrEscapedStillCounts() throws {
        // JSON readers differ on repeated keys; either reading must not leak.
        let (a, _) = try masked(#"{"kind":"ConfigMap","kind":"Secret","data":{"k":"c2VjcmV0"}}"#)
        #expect(!a.contains("c2VjcmV0"))
        let (b, _) = try masked(#"{"kind":"Secr\u0065t","d\u0061ta":{"k":"c2VjcmV0"}}"#)
        #expect(!b.contains("c2VjcmV0"))
        // A data value that is not a map is replaced whole.
        let (c, _) = try masked(#"{"kind":"Secret","data":["c2VjcmV0"]}"#)
        #expect(c == #"{"kind":"Secret","data":"\#(KubernetesSecretMasking.dataMask)"}"#)
    }

    @Test func anythingButASecretIsUntouched() throws {
        let configMap = #"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"app"},"data":{"password":"not-masked-here"}}"#
        let pods = #"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9"},"items":[{"metadata":{"name":"web"},"data":{"x":"1"}}]}"#
        let spaced = " {\n  \"kind\" : \"Pod\" ,\"n\":[1.5e3, -0, true, false, null] }\n"
        for doc in [configMap, pods, spaced] {
            let r = try KubernetesSecretMasking.mask(Array(doc.utf8))
            #expect(r.masked == 0 && r.bytes == Array(doc.utf8))
        }
    }

    @Test(arguments: [#"{"kind":"Secret","data":{"k":"v"}"#, #"{"kind":"Secret",}"#, "not json", #"{"a":01}"#, #"{"a":"\ud800"}"#,
                      #"{"a":1} {"b":2}"#, "", #"{"a":"x"#, String(repeating: "[", count: 300) + String(repeating: "]", count: 300)])
    func malformedJSONIsRefused(_ doc: String) {
        #expect(throws: KubernetesSecretMasking.Refusal.self) { _ = try KubernetesSecretMasking.mask(Array(doc.utf8)) }
    }

    @Test func aDocumentOverTheLimitIsRefused() {
        let doc = Array(Self.secret("s", data: #"{"k":"dmFsdWU="}"#).utf8)
        #expect(throws: KubernetesSecretMasking.Refusal.self) { _ = try KubernetesSecretMasking.mask(doc, maxBytes: doc.count - 1) }
    }
}
