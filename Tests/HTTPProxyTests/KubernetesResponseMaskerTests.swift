import HTTPProxy
import Masking
import Testing

/// Kubernetes response bodies masked before the client gets any of them: a whole document at the
/// end, a watch stream line by line as its chunks arrive (cut anywhere), and refusals for what is
/// not JSON or too large.
@Suite("Kubernetes response masker")
struct KubernetesResponseMaskerTests {
    static let secret = #"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"db"},"data":{"password":"aHVudGVyMg=="}}"#
    static let pod = #"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web"}}"#

    func feedAll(_ m: inout KubernetesResponseMasker, _ pieces: [[UInt8]]) -> (sent: [[UInt8]], failed: String?) {
        var sent: [[UInt8]] = []
        for p in pieces {
            switch m.feed(p) {
            case .success(let out): sent.append(out)
            case .failure(let f): return (sent, f.detail)
            }
        }
        switch m.finish() {
        case .success(let out): sent.append(out)
        case .failure(let f): return (sent, f.detail)
        }
        return (sent, nil)
    }

    @Test func aWholeBodyIsMaskedOnlyAtTheEnd() {
        var m = KubernetesResponseMasker(watch: false, limit: 1 << 20, revealSecrets: false, text: nil)
        let bytes = Array(Self.secret.utf8)
        let (sent, failed) = feedAll(&m, [Array(bytes[..<20]), Array(bytes[20...])])
        #expect(failed == nil)
        let early = sent.dropLast().allSatisfy { $0.isEmpty }
        #expect(early, "nothing before the end")
        let out = String(decoding: sent.last ?? [], as: UTF8.self)
        #expect(out.contains(#""password":"W1JFREFDVEVEXQ==""#) && !out.contains("aHVudGVyMg=="), "\(out)")
        #expect(m.tally.count(detector: KubernetesSecretMasking.detectorName) == 1)
    }

    @Test func revealedSecretsPassButTheBodyMustStillBeJSON() {
        var m = KubernetesResponseMasker(watch: false, limit: 1 << 20, revealSecrets: true, text: nil)
        let revealed = String(decoding: feedAll(&m, [Array(Self.secret.utf8)]).sent.joined(), as: UTF8.self)
        #expect(revealed == Self.secret)
        var bad = KubernetesResponseMasker(watch: false, limit: 1 << 20, revealSecrets: true, text: nil)
        let refused = feedAll(&bad, [Array("not json {".utf8)]).failed
        #expect(refused?.contains("not JSON") == true, "\(String(describing: refused))")
    }

    @Test func watchEventsAreMaskedLineByLineWhereverTheChunksCut() {
        let stream = Array(#"{"type":"ADDED","object":\#(Self.secret)}"#.utf8) + [0x0A]
            + Array(#"{"type":"ADDED","object":\#(Self.pod)}"#.utf8) + [0x0A]
        for cut in [1, 7, 50, stream.count - 1] {
            var m = KubernetesResponseMasker(watch: true, limit: 1 << 20, revealSecrets: false, text: nil)
            let (sent, failed) = feedAll(&m, [Array(stream[..<cut]), Array(stream[cut...])])
            #expect(failed == nil)
            let out = String(decoding: sent.joined(), as: UTF8.self)
            let lines = out.split(separator: "\n")
            #expect(lines.count == 2 && out.hasSuffix("\n") && out.contains("W1JFREFDVEVEXQ==") && !out.contains("aHVudGVyMg=="), "\(cut): \(out)")
            // A whole event goes out as soon as its line ends, not at the end of the stream.
            let firstLine = stream.firstIndex(of: 0x0A)! + 1
            if cut >= firstLine {
                #expect(String(decoding: sent[0], as: UTF8.self) == String(lines[0]) + "\n", "\(cut)")
            }
        }
    }

    @Test func aBodyOverTheLimitOrAnEventThatIsNotJSONIsRefused() {
        var whole = KubernetesResponseMasker(watch: false, limit: 64, revealSecrets: false, text: nil)
        let over = feedAll(&whole, [Array(Self.secret.utf8)]).failed
        #expect(over?.contains("limit") == true, "\(String(describing: over))")
        var watch = KubernetesResponseMasker(watch: true, limit: 1 << 20, revealSecrets: false, text: nil)
        let r = feedAll(&watch, [Array("{\"type\":\"ADDED\",\"object\":{}}\nnot json\n".utf8)])
        #expect(r.failed != nil && r.sent.count == 0, "\(r)")
    }
}
