import CaptureFormat
import Foundation

// kubectl against the production cluster through the gate: discovery, list and
// get, logs (capped), exec with terminal streams, and changes that policy holds or refuses.

enum K8s {
    static let userAgent = "kubectl/v1.32.0 (linux/amd64) kubernetes/70d3cc9"
    static let host = "prod-cluster.tollgate.example.com"
    static let namespaces: [(String, [String])] = [
        ("payments", ["payments-api", "payments-worker", "ledger-sync"]),
        ("checkout", ["checkout-web", "cart-service"]),
        ("search", ["search-api", "indexer"]),
    ]
    static let tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"

    enum Op: CaseIterable { case listPods, getPod, getDeployment, logs, events, exec, execOnce, deletePod, secrets, scale, restart }
    static let weights: [Op: Double] = [.listPods: 24, .getPod: 8, .getDeployment: 10, .logs: 15, .events: 8, .exec: 8, .execOnce: 6,
                                        .deletePod: 4, .secrets: 3, .scale: 4, .restart: 3]

    static let shellSessions: [[(String, String)]] = [
        [("ps aux", "USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND\r\napp          1  2.1  3.4 1284312 281044 ?     Ssl  Nov18  61:12 /app/server --config /app/config/server.yaml\r\napp         47  0.0  0.0   2580   924 pts/0    Ss   09:14   0:00 /bin/sh\r\napp         53  0.0  0.0   8648  3176 pts/0    R+   09:14   0:00 ps aux\r\n"),
         ("df -h /data", "Filesystem      Size  Used Avail Use% Mounted on\r\n/dev/nvme1n1     98G   71G   27G  73% /data\r\n")],
        [("cat /etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\r\nNAME=\"Debian GNU/Linux\"\r\nVERSION_ID=\"12\"\r\nVERSION=\"12 (bookworm)\"\r\nID=debian\r\n"),
         ("curl -s localhost:8080/healthz", "{\"status\":\"ok\",\"db\":\"ok\",\"queue_lag_ms\":41}\r\n"),
         ("ls -la /app/config", "total 16\r\ndrwxr-xr-x 2 app app 4096 Nov 18 07:02 .\r\ndrwxr-xr-x 1 app app 4096 Nov 18 07:02 ..\r\n-rw-r--r-- 1 app app 1873 Nov 18 07:02 server.yaml\r\n-rw-r--r-- 1 app app  412 Nov 18 07:02 features.yaml\r\n")],
        [("env | grep -i ^DB_ | cut -d= -f1", "DB_HOST\r\nDB_NAME\r\nDB_POOL_SIZE\r\nDB_USER\r\n"),
         ("tail -n 3 /var/log/app/error.log", "2026-11-20T08:58:41Z ERROR ledger: upstream timeout after 5000ms (attempt 1/3)\r\n2026-11-20T08:58:46Z ERROR ledger: upstream timeout after 5000ms (attempt 2/3)\r\n2026-11-20T08:58:47Z WARN  ledger: recovered after retry\r\n"),
         ("nslookup ledger.payments.svc", "sh: 1: nslookup: not found\r\n")],
    ]
    static let onceCommands: [([String], String)] = [
        (["cat", "/etc/os-release"], "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n"),
        (["sh", "-c", "ps aux | head -5"], "USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND\napp          1  2.0  3.4 1284312 281044 ?     Ssl  Nov18  61:10 /app/server --config /app/config/server.yaml\n"),
        (["date", "-u"], "Fri Nov 20 09:21:07 UTC 2026\n"),
        (["sh", "-c", "du -sh /data/*"], "12G\t/data/ledger\n59G\t/data/wal\n"),
    ]
    static let logMessages = [
        "http request method=GET path=/v1/payments/%ID status=200 duration_ms=%MS",
        "http request method=POST path=/v1/payments status=201 duration_ms=%MS",
        "payment captured order_id=%ID amount_cents=%MS customer=%EMAIL",
        "retrying ledger sync batch=%ID attempt=2",
        "http request method=GET path=/v1/orders/%ID status=404 duration_ms=%MS",
        "db pool stats in_use=%MS idle=4 waiting=0",
        "webhook delivered endpoint=https://hooks.example.com/pay status=200 user=%EMAIL",
    ]
}

extension SessionGenerator {
    mutating func k8sRequest(method: String, path: String, verb: String, group: String = "", version: String = "v1",
                             resource: String, namespace: String = "", name: String = "", subresource: String = "",
                             command: [String] = [], container: String = "", accept: String = "application/json",
                             kubectlCommand: String, body: [UInt8] = []) -> KubernetesRequest {
        var headers = [KeyValue("Accept", accept), KeyValue("User-Agent", K8s.userAgent),
                       KeyValue("Kubectl-Command", kubectlCommand), KeyValue("Kubectl-Session", k8sSession)]
        if !body.isEmpty { headers.append(KeyValue("Content-Type", method == "PATCH" ? "application/strategic-merge-patch+json" : "application/json")) }
        let http = HTTPRequest(method: method, target: path, host: K8s.host, headers: headers, body: CappedBytes(data: body))
        return KubernetesRequest(http: http, verb: verb, apiGroup: group, apiVersion: version, resource: resource,
                                 namespace: namespace, name: name, subresource: subresource, command: command, container: container)
    }

    mutating func podName(_ deployment: String) -> String {
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        var suffix = ""
        for _ in 0..<5 { suffix.append(alphabet[rng.below(alphabet.count)]) }
        return "\(deployment)-\(rng.hex(9).replacingOccurrences(of: "a", with: "c"))-\(suffix)"
    }

    mutating func httpResponse(_ status: UInt16, _ body: [UInt8], contentType: String = "application/json", duration: Int) -> HTTPResponse {
        let capped = CappedBytes(capping: body, at: Self.bodyCap)
        var headers = [KeyValue("Audit-Id", rng.uuid()), KeyValue("Cache-Control", "no-cache, private")]
        if !body.isEmpty { headers.append(KeyValue("Content-Type", contentType)) }
        return HTTPResponse(status: status, headers: headers, body: capped, durationMicros: UInt64(duration))
    }

    func statusBody(_ code: Int, reason: String, message: String) -> [UInt8] {
        Array("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"\(message)\",\"reason\":\"\(reason)\",\"code\":\(code)}".utf8)
    }

    mutating func podTable(_ namespace: String, deployments: [String]) -> [UInt8] {
        var rows: [String] = []
        for d in deployments {
            for _ in 0..<rng.int(1...3) {
                let name = podName(d)
                let ready = rng.chance(0.93) ? "2/2" : "1/2"
                let status = ready == "2/2" ? "Running" : rng.pick(["Running", "CrashLoopBackOff"])
                let restarts = ready == "2/2" ? rng.skewed(0...3, power: 3) : rng.int(3...40)
                let age = "\(rng.int(1...9))d\(rng.int(0...23))h"
                rows.append("{\"cells\":[\"\(name)\",\"\(ready)\",\"\(status)\",\(restarts),\"\(age)\"],\"object\":{\"kind\":\"PartialObjectMetadata\",\"apiVersion\":\"meta.k8s.io/v1\",\"metadata\":{\"name\":\"\(name)\",\"namespace\":\"\(namespace)\",\"uid\":\"\(rng.uuid())\",\"resourceVersion\":\"\(rng.int(40_000_000...49_999_999))\",\"labels\":{\"app\":\"\(d)\"}}}}")
            }
        }
        let columns = "[{\"name\":\"Name\",\"type\":\"string\",\"format\":\"name\",\"description\":\"Name must be unique within a namespace.\",\"priority\":0},{\"name\":\"Ready\",\"type\":\"string\",\"format\":\"\",\"description\":\"The aggregate readiness state of this pod for accepting traffic.\",\"priority\":0},{\"name\":\"Status\",\"type\":\"string\",\"format\":\"\",\"description\":\"The aggregate status of the containers in this pod.\",\"priority\":0},{\"name\":\"Restarts\",\"type\":\"string\",\"format\":\"\",\"description\":\"The number of times the containers in this pod have been restarted.\",\"priority\":0},{\"name\":\"Age\",\"type\":\"string\",\"format\":\"\",\"description\":\"CreationTimestamp is a timestamp representing the server time when this object was created.\",\"priority\":0}]"
        return Array("{\"kind\":\"Table\",\"apiVersion\":\"meta.k8s.io/v1\",\"metadata\":{\"resourceVersion\":\"\(rng.int(40_000_000...49_999_999))\"},\"columnDefinitions\":\(columns),\"rows\":[\(rows.joined(separator: ","))]}".utf8)
    }

    mutating func logBody(lines: Int) -> (body: [UInt8], emails: UInt64) {
        var b = ByteBuilder(capacity: lines * 110)
        var emails: UInt64 = 0
        var t = now - Int64(lines) * Int64(rng.int(200_000...3_000_000))
        for _ in 0..<lines {
            t += Int64(rng.int(1_000...6_000_000))
            let c = Civil(micros: t)
            b.date(c); b.put("T"); b.int(c.hour, width: 2); b.put(":"); b.int(c.minute, width: 2); b.put(":"); b.int(c.second, width: 2)
            b.put("."); b.int(c.micro / 1000, width: 3); b.put("Z ")
            let msg = rng.pick(K8s.logMessages)
            b.put(msg.contains("404") || msg.contains("retrying") ? "WARN  " : "INFO  ")
            var line = msg.replacingOccurrences(of: "%ID", with: String(rng.int(4_000_000...4_999_999)))
            line = line.replacingOccurrences(of: "%MS", with: String(rng.skewed(1...900, power: 3)))
            if line.contains("%EMAIL") {
                emails += 1
                let e = Value.maskedEmail.make(&rng, now: now)!
                line = line.replacingOccurrences(of: "%EMAIL", with: String(decoding: e, as: UTF8.self))
            }
            b.put(line); b.put("\n")
        }
        return (b.bytes, emails)
    }

    mutating func k8sDecision(_ op: K8s.Op) -> (Decision, [String]) {
        switch op {
        case .listPods, .getPod, .getDeployment, .events:
            return (Decision(action: .allow, policy: "sre-prod", rule: "read-workloads"), [])
        case .logs:
            return (Decision(action: .allow, policy: "sre-prod", rule: "read-logs", masks: ["email", "bearer_token"]), [])
        case .exec, .execOnce:
            return (Decision(action: .review, policy: "sre-prod", rule: "exec-needs-approval",
                             reason: "pods/exec in namespace with label tier=critical"), ["sre-leads"])
        case .scale, .restart:
            return (Decision(action: .review, policy: "sre-prod", rule: "changes-need-approval",
                             reason: "write to apps/deployments in production"), ["sre-leads"])
        case .deletePod:
            return (Decision(action: .deny, policy: "sre-prod", rule: "no-delete-in-prod", reason: "delete of pods is not allowed on prod-cluster"), [])
        case .secrets:
            return (Decision(action: .deny, policy: "sre-prod", rule: "secrets-never", reason: "secrets are never readable through the gate"), [])
        }
    }

    mutating func kubernetesExchange(into out: inout [Event]) {
        let id = nextExchangeID
        nextExchangeID += 1
        if !discovered {
            // kubectl's discovery on a cold cache.
            discovered = true
            let req = k8sRequest(method: "GET", path: "/api?timeout=32s", verb: "get", version: "", resource: "", accept: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json", kubectlCommand: "kubectl get")
            out.append(make(.request(.kubernetes(req)), exchange: id))
            advance(rng.int(30...200))
            out.append(make(.decision(Decision(action: .allow, policy: "sre-prod", rule: "discovery")), exchange: id))
            let d = rng.int(2_000...12_000)
            advance(d)
            let body = Array("{\"kind\":\"APIVersions\",\"versions\":[\"v1\"],\"serverAddressByClientCIDRs\":[{\"clientCIDR\":\"0.0.0.0/0\",\"serverAddress\":\"10.0.0.1:6443\"}]}".utf8)
            out.append(make(.response(.http(httpResponse(200, body, duration: d))), exchange: id))
            advance(rng.int(1_000...5_000))
            return
        }
        let ops = K8s.Op.allCases
        let op = ops[rng.weighted(ops.map { K8s.weights[$0]! })]
        let (ns, deployments) = rng.pick(K8s.namespaces)
        let deployment = rng.pick(deployments)
        let pod = podName(deployment)
        var streams: [(StreamChunk.Stream, String)] = []
        var request: KubernetesRequest
        var okBody: [UInt8] = []
        var okStatus: UInt16 = 200
        var contentType = "application/json"
        var maskedEmails: UInt64 = 0
        switch op {
        case .listPods:
            request = k8sRequest(method: "GET", path: "/api/v1/namespaces/\(ns)/pods?limit=500", verb: "list", resource: "pods",
                                 namespace: ns, accept: K8s.tableAccept, kubectlCommand: "kubectl get")
            okBody = podTable(ns, deployments: deployments)
        case .getPod:
            request = k8sRequest(method: "GET", path: "/api/v1/namespaces/\(ns)/pods/\(pod)", verb: "get", resource: "pods",
                                 namespace: ns, name: pod, accept: K8s.tableAccept, kubectlCommand: "kubectl get")
            okBody = podTable(ns, deployments: [deployment])
        case .getDeployment:
            request = k8sRequest(method: "GET", path: "/apis/apps/v1/namespaces/\(ns)/deployments/\(deployment)", verb: "get", group: "apps",
                                 resource: "deployments", namespace: ns, name: deployment, kubectlCommand: "kubectl describe")
            let replicas = rng.int(2...6)
            okBody = Array("{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\",\"metadata\":{\"name\":\"\(deployment)\",\"namespace\":\"\(ns)\",\"generation\":\(rng.int(10...400)),\"labels\":{\"app\":\"\(deployment)\",\"tier\":\"critical\"}},\"spec\":{\"replicas\":\(replicas),\"strategy\":{\"type\":\"RollingUpdate\"},\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"registry.example.com/\(deployment):2026.11.\(rng.int(1...19))\",\"resources\":{\"limits\":{\"cpu\":\"2\",\"memory\":\"2Gi\"}}}]}}},\"status\":{\"replicas\":\(replicas),\"readyReplicas\":\(replicas),\"updatedReplicas\":\(replicas)}}".utf8)
        case .logs:
            let tail = rng.pick([50, 100, 200, 500])
            request = k8sRequest(method: "GET", path: "/api/v1/namespaces/\(ns)/pods/\(pod)/log?container=app&tailLines=\(tail)", verb: "get",
                                 resource: "pods", namespace: ns, name: pod, subresource: "log", container: "app", kubectlCommand: "kubectl logs")
            let logs = logBody(lines: tail)
            okBody = logs.body
            maskedEmails = logs.emails
            contentType = "text/plain"
        case .events:
            request = k8sRequest(method: "GET", path: "/api/v1/namespaces/\(ns)/events?limit=500", verb: "list", resource: "events",
                                 namespace: ns, accept: K8s.tableAccept, kubectlCommand: "kubectl get")
            var rows: [String] = []
            for _ in 0..<rng.int(2...8) {
                let (reason, msg) = rng.pick([("Pulled", "Container image already present on machine"), ("BackOff", "Back-off restarting failed container app"),
                                              ("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503"), ("Scheduled", "Successfully assigned \(ns)/\(pod) to node-eu1-\(rng.int(1...12))")])
                rows.append("{\"cells\":[\"\(rng.int(1...59))m\",\"\(reason == "Scheduled" || reason == "Pulled" ? "Normal" : "Warning")\",\"\(reason)\",\"pod/\(pod)\",\"\(msg)\"]}")
            }
            okBody = Array("{\"kind\":\"Table\",\"apiVersion\":\"meta.k8s.io/v1\",\"rows\":[\(rows.joined(separator: ","))]}".utf8)
        case .exec:
            request = k8sRequest(method: "POST", path: "/api/v1/namespaces/\(ns)/pods/\(pod)/exec?command=%2Fbin%2Fsh&container=app&stdin=true&stdout=true&tty=true",
                                 verb: "create", resource: "pods", namespace: ns, name: pod, subresource: "exec", command: ["/bin/sh"], container: "app",
                                 accept: "*/*", kubectlCommand: "kubectl exec")
            okStatus = 101
            streams.append((.resize, ""))
            streams.append((.stdout, "$ "))
            for (cmd, output) in rng.pick(K8s.shellSessions) {
                streams.append((.stdin, cmd + "\r"))
                streams.append((.stdout, cmd + "\r\n" + output + "$ "))
            }
            streams.append((.stdin, "exit\r"))
            streams.append((.stdout, "exit\r\n"))
        case .execOnce:
            let (command, output) = rng.pick(K8s.onceCommands)
            let query = command.map { "command=" + $0.replacingOccurrences(of: "/", with: "%2F").replacingOccurrences(of: " ", with: "+").replacingOccurrences(of: "|", with: "%7C").replacingOccurrences(of: "*", with: "%2A") }.joined(separator: "&")
            request = k8sRequest(method: "POST", path: "/api/v1/namespaces/\(ns)/pods/\(pod)/exec?\(query)&container=app&stdout=true&stderr=true",
                                 verb: "create", resource: "pods", namespace: ns, name: pod, subresource: "exec", command: command, container: "app",
                                 accept: "*/*", kubectlCommand: "kubectl exec")
            okStatus = 101
            streams.append((.stdout, output))
            if command.first == "sh" && rng.chance(0.3) { streams.append((.stderr, "du: cannot read directory '/data/lost+found': Permission denied\n")) }
        case .deletePod:
            request = k8sRequest(method: "DELETE", path: "/api/v1/namespaces/\(ns)/pods/\(pod)", verb: "delete", resource: "pods",
                                 namespace: ns, name: pod, kubectlCommand: "kubectl delete")
        case .secrets:
            request = k8sRequest(method: "GET", path: "/api/v1/namespaces/\(ns)/secrets?limit=500", verb: "list", resource: "secrets",
                                 namespace: ns, accept: K8s.tableAccept, kubectlCommand: "kubectl get")
        case .scale:
            let replicas = rng.int(2...8)
            request = k8sRequest(method: "PATCH", path: "/apis/apps/v1/namespaces/\(ns)/deployments/\(deployment)/scale", verb: "patch", group: "apps",
                                 resource: "deployments", namespace: ns, name: deployment, subresource: "scale", kubectlCommand: "kubectl scale",
                                 body: Array("{\"spec\":{\"replicas\":\(replicas)}}".utf8))
            okBody = Array("{\"kind\":\"Scale\",\"apiVersion\":\"autoscaling/v1\",\"metadata\":{\"name\":\"\(deployment)\",\"namespace\":\"\(ns)\"},\"spec\":{\"replicas\":\(replicas)},\"status\":{\"replicas\":\(replicas),\"selector\":\"app=\(deployment)\"}}".utf8)
        case .restart:
            request = k8sRequest(method: "PATCH", path: "/apis/apps/v1/namespaces/\(ns)/deployments/\(deployment)?fieldManager=kubectl-rollout", verb: "patch", group: "apps",
                                 resource: "deployments", namespace: ns, name: deployment, kubectlCommand: "kubectl rollout",
                                 body: Array("{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"kubectl.kubernetes.io/restartedAt\":\"2026-11-20T09:30:00Z\"}}}}}".utf8))
            okBody = Array("{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\",\"metadata\":{\"name\":\"\(deployment)\",\"namespace\":\"\(ns)\"}}".utf8)
        }
        out.append(make(.request(.kubernetes(request)), exchange: id))
        advance(rng.int(30...250))
        let (decision, approvers) = k8sDecision(op)
        out.append(make(.decision(decision), exchange: id))
        var refusal = ""
        var forward = decision.action == .allow
        if decision.action == .review {
            forward = approval(exchange: id, approvers: approvers, into: &out, refusal: &refusal,
                               reasons: ["INC-7731: checking ledger lag", "ok, read-only look around", "approved for the incident", "matches CHG-1207"])
        } else if decision.action == .deny {
            refusal = "tollgate: denied by policy \"sre-prod\" rule \"\(decision.rule)\""
        }
        if !forward {
            advance(rng.int(20...120))
            let body = statusBody(403, reason: "Forbidden", message: refusal.replacingOccurrences(of: "\"", with: "\\\""))
            out.append(make(.response(.http(httpResponse(403, body, duration: 0))), exchange: id))
        } else {
            let d = rng.int(1_500...(op == .logs ? 180_000 : 40_000))
            advance(d)
            var response = httpResponse(okStatus, okBody, contentType: contentType, duration: d)
            if okStatus == 101 {
                response.headers = [KeyValue("Upgrade", "websocket"), KeyValue("Connection", "Upgrade"), KeyValue("Sec-Websocket-Protocol", "v5.channel.k8s.io")]
            }
            out.append(make(.response(.http(response)), exchange: id))
            if maskedEmails > 0 {
                advance(rng.int(10...60))
                out.append(make(.maskSummary(MaskSummary(entries: [MaskCount(detector: "email", count: maskedEmails, location: "body")])), exchange: id))
            }
            for (stream, text) in streams {
                switch stream {
                case .stdin: advance(seconds: rng.logUniform(1.5, 12))  // typing
                case .resize: advance(rng.int(1_000...10_000))
                default: advance(rng.int(400...25_000))
                }
                let chunk = stream == .resize ? StreamChunk(stream: .resize, columns: 120, rows: 40) : StreamChunk(stream: stream, data: Array(text.utf8))
                out.append(make(.streamChunk(chunk), exchange: id))
            }
        }
        advance(seconds: rng.logUniform(1, 30))
    }
}
