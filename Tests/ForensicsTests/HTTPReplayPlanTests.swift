import CaptureFormat
import Forensics
import Testing

/// What `sessreplay` replays of an HTTP or Kubernetes session, and which fields it re-sends,
/// from the exchange model's recorded facts.
@Suite("HTTP replay plan")
struct HTTPReplayPlanTests {
    static let allow = Decision(action: .allow, policy: "p", rule: "r")

    /// One exchange per request, each allowed (unless a decision is given) with a 200 response.
    static func plan(_ requests: [(Request, Decision?, [UInt8])], options: ReplayOptions = ReplayOptions()) -> [HTTPReplayStep] {
        var a = ExchangeAssembler()
        var seq: UInt64 = 0
        var bodies: [UInt64: [UInt8]] = [:]
        for (i, (request, decision, body)) in requests.enumerated() {
            let x = UInt64(i + 1)
            func add(_ p: Payload) {
                seq += 1
                a.add(Event(sequence: seq, monotonicNanos: seq, wallMicros: 1_000_000 * Int64(i + 1), exchangeID: x, payload: p))
            }
            add(.request(request))
            add(.decision(decision ?? allow))
            if !body.isEmpty { bodies[x] = body }
            add(.response(.http(HTTPResponse(status: 200))))
        }
        return HTTPReplayPlanner.plan(a.exchanges, bodies: bodies, options: options)
    }

    static func http(_ method: String, _ target: String, _ headers: [KeyValue] = []) -> Request {
        .http(HTTPRequest(method: method, target: target, host: "api", headers: headers))
    }

    static func kinds(_ steps: [HTTPReplayStep]) -> [String] {
        steps.map { if case .skip(let r) = $0.disposition { r.kind } else { "replay" } }
    }

    @Test func readsReplayWritesNeedAllowWritesDenialsNever() {
        let denied = Decision(action: .deny, policy: "p", rule: "no-admin")
        let body = Array("{\"a\":1}".utf8)
        let requests: [(Request, Decision?, [UInt8])] = [
            (Self.http("GET", "/a"), nil, []), (Self.http("HEAD", "/a"), nil, []), (Self.http("OPTIONS", "*"), nil, []),
            (Self.http("POST", "/upload", [KeyValue("Content-Length", "7")]), nil, body), (Self.http("DELETE", "/a/1"), nil, []),
            (Self.http("GET", "/admin"), denied, []),
        ]
        #expect(Self.kinds(Self.plan(requests)) == ["replay", "replay", "replay", "write", "write", "not-forwarded"])
        let writes = Self.plan(requests, options: ReplayOptions(allowWrites: true))
        #expect(Self.kinds(writes) == ["replay", "replay", "replay", "replay", "replay", "not-forwarded"])
        #expect(writes[3].body == body)
    }

    /// Masks, withheld fields and cut bodies leave marks in the recorded text; each is skipped.
    @Test func aMarkInTheTargetAFieldOrTheBodyIsSkippedAsWithheld() {
        let post = { (body: String, length: Int) -> (Request, Decision?, [UInt8]) in
            (Self.http("POST", "/upload", [KeyValue("Content-Length", "\(length)")]), nil, Array(body.utf8))
        }
        let requests: [(Request, Decision?, [UInt8])] = [
            (Self.http("GET", "/find?email=a****@example.com"), nil, []),
            (Self.http("GET", "/find?k=[REDACTED:jwt]"), nil, []),
            (Self.http("GET", "/a", [KeyValue("X-Api-Key", "[REDACTED:github_token]")]), nil, []),
            // The credentials the gate withheld are not re-sent: their "(withheld)" is no reason to skip.
            (Self.http("GET", "/a", [KeyValue("Authorization", "(withheld)"), KeyValue("Cookie", "(withheld)")]), nil, []),
            post("ssn ***-**-****", 15),
            post("xxxx…[tollgate: 70000 bytes, cut]", 70000),
            post("short", 9),
        ]
        let steps = Self.plan(requests, options: ReplayOptions(allowWrites: true))
        #expect(Self.kinds(steps) == ["withheld", "withheld", "withheld", "replay", "withheld", "withheld", "withheld"])
        if case .skip(let r) = steps[6].disposition { #expect(r.description.contains("Content-Length")) }
    }

    @Test func hopByHopCredentialsAndFramingAreNotResent() {
        let h = HTTPRequest(method: "GET", target: "/a", host: "api", headers: [
            KeyValue("Host", "gate:8080"), KeyValue("Connection", "keep-alive, X-Hop"), KeyValue("X-Hop", "1"), KeyValue("Keep-Alive", "5"),
            KeyValue("Authorization", "(withheld)"), KeyValue("Cookie", "(withheld)"), KeyValue("Accept-Encoding", "gzip"),
            KeyValue("Content-Length", "0"), KeyValue("TE", "trailers"), KeyValue("Accept", "application/json"), KeyValue("X-Trace", "t1"),
        ])
        #expect(HTTPReplayPlanner.fields(h, kubernetes: false).map(\.key) == ["Accept", "X-Trace"])
        let k = HTTPRequest(method: "GET", target: "/api/v1/pods", headers: [
            KeyValue("Accept", "application/vnd.kubernetes.protobuf, application/json"), KeyValue("Impersonate-User", "admin")])
        #expect(HTTPReplayPlanner.fields(k, kubernetes: true) == [KeyValue("Accept", "application/json")])
    }

    @Test func kubernetesReadsReplayStreamsAndUpgradesNever() {
        func kube(_ method: String, _ target: String, verb: String, subresource: String = "", headers: [KeyValue] = []) -> (Request, Decision?, [UInt8]) {
            (.kubernetes(KubernetesRequest(http: HTTPRequest(method: method, target: target, headers: headers), verb: verb, resource: "pods",
                                           namespace: "dev", subresource: subresource)), nil, [])
        }
        let requests = [
            kube("GET", "/api/v1/namespaces/dev/pods", verb: "list"),
            kube("GET", "/api/v1/namespaces/dev/pods/web", verb: "get"),
            kube("GET", "/api/v1/namespaces/dev/pods?watch=1", verb: "watch"),
            kube("GET", "/api/v1/namespaces/dev/pods/web/log?follow=true", verb: "get", subresource: "log"),
            kube("GET", "/api/v1/namespaces/dev/pods/web/log", verb: "get", subresource: "log"),
            kube("POST", "/api/v1/namespaces/dev/pods/web/exec?command=sh", verb: "create", subresource: "exec"),
            kube("GET", "/api/v1/namespaces/dev/pods/web/attach", verb: "get", subresource: "attach", headers: [KeyValue("Upgrade", "websocket")]),
            kube("DELETE", "/api/v1/namespaces/dev/pods/web", verb: "delete"),
        ]
        #expect(Self.kinds(Self.plan(requests)) == ["replay", "replay", "unsupported", "unsupported", "replay", "unsupported", "unsupported", "write"])
        #expect(Self.kinds(Self.plan(requests, options: ReplayOptions(allowWrites: true)))
                == ["replay", "replay", "unsupported", "unsupported", "replay", "unsupported", "unsupported", "replay"])
    }
}
