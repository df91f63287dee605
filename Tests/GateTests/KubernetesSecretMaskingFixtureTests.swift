import Foundation
import Masking
import TestSupport
import Testing

// Secret masking (`KubernetesSecretMasking`) on the JSON the Kubernetes test server sends real
// clients: a SecretList, a single Secret, a watch stream; the masked Secret still read by kubectl.

@Suite("Kubernetes Secret masking on the test server's answers", .serialized)
struct KubernetesSecretMaskingFixtureTests {
    /// Every `data` value of every object in `json` (a Secret, a SecretList, or a watch event).
    func dataValues(_ json: Any) -> [String] {
        if let o = json as? [String: Any] {
            return ((o["data"] as? [String: String]).map { Array($0.values) } ?? []) + o.filter { $0.key != "data" }.flatMap { dataValues($0.value) }
        }
        if let a = json as? [Any] { return a.flatMap(dataValues) }
        return []
    }

    @Test func aListASecretAndAWatchStreamComeOutMasked() throws {
        let server = try KubeTestServer()
        let config = try server.kubeconfig()
        for path in ["/api/v1/namespaces/dev/secrets", "/api/v1/secrets", "/api/v1/namespaces/dev/secrets/db-credentials"] {
            let r = try kubectl(config, ["get", "--raw", path])
            #expect(r.status == 0, "\(r.stderr)")
            let values = dataValues(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)))
            #expect(values.contains(Data("hunter2-Sup3rSecret!".utf8).base64EncodedString()), "the fixture sends real data")
            let masked = try KubernetesSecretMasking.mask(Array(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).utf8))
            let text = String(decoding: masked.bytes, as: UTF8.self)
            #expect(masked.masked == values.count)
            for v in values { #expect(!text.contains(v), "\(path)") }
            #expect(Set(dataValues(try JSONSerialization.jsonObject(with: Data(masked.bytes)))) == [KubernetesSecretMasking.dataMask])
        }
        // A watch: one event per line, each masked as it is framed.
        let watch = try kubectl(config, ["get", "--raw", "/api/v1/secrets?watch=1&timeoutSeconds=1"])
        var framer = JSONLineFramer()
        let lines = try framer.append(Array(watch.stdout.utf8))
        #expect(lines.count == 2, "\(watch.stdout)")
        for line in lines {
            let masked = try KubernetesSecretMasking.mask(line)
            let event = try #require(try JSONSerialization.jsonObject(with: Data(masked.bytes)) as? [String: Any])
            #expect(event["type"] as? String == "ADDED")
            #expect(Set(dataValues(event)) == [KubernetesSecretMasking.dataMask])
            #expect(!String(decoding: masked.bytes, as: UTF8.self).contains(Data("AKIAIOSFODNN7EXAMPLE".utf8).base64EncodedString()))
        }
    }
}
