import CaptureFormat
import Foundation
import TestSupport
import Testing

/// `recording.durability: strict` on an HTTP target (issue 20), tested the way it fails: the real
/// gate killed with SIGKILL under load. What nginx received (its access log) is counted against
/// what the captures hold, read with the project's reader.
@Suite("HTTP gate: strict recording", .serialized)
struct HTTPRecordingDurabilityTests {
    let provider: OIDCProvider

    init() throws { provider = try sharedProvider.get() }

    /// Four keep-alive clients sending numbered GETs through a gate with `durability`; SIGKILL
    /// after a few seconds of load; then the requests nginx got against the requests recorded.
    func killUnderLoad(durability: String) throws -> (reached: Set<String>, recorded: Set<String>) {
        let s = try HTTPGateMaskingTests.start(provider: provider, files: ["small.json": #"{"ok": true}"#],
                                               masks: "[]\n    recording: {durability: \(durability)}")
        defer { s.nginx.stop() }
        let token = try provider.token("loader@example.com", groups: ["ai-assistants"])
        let script = """
            import http.client, sys, threading
            port, token = int(sys.argv[1]), sys.argv[2]
            def load(w):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                for i in range(1000000):
                    try:
                        c.request("GET", "/small.json?n=%d-%d" % (w, i), headers={"Authorization": "Bearer " + token})
                        c.getresponse().read()
                    except Exception:
                        return
            ts = [threading.Thread(target=load, args=(w,)) for w in range(4)]
            for t in ts: t.start()
            for t in ts: t.join()
            """
        let loader = Process()
        loader.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        loader.arguments = ["python3", "-c", script, "\(s.gate.port("api"))", token]
        loader.standardOutput = FileHandle.nullDevice
        loader.standardError = FileHandle.nullDevice
        try loader.run()
        defer { if loader.isRunning { loader.terminate() }; loader.waitUntilExit() }
        try waitUntil("the load to reach nginx", timeout: .seconds(60)) { s.nginx.accessLog.count >= 200 }
        sleep(3)
        kill(s.gate.process.processIdentifier, SIGKILL)
        s.gate.process.waitUntilExit()
        loader.waitUntilExit()
        let reached = Set(s.nginx.accessLog.compactMap { line -> String? in
            let parts = line.split(separator: " ")
            return parts.count > 1 && parts[1].hasPrefix("/small.json?n=") ? String(parts[1]) : nil
        })
        var recorded = Set<String>()
        for capture in try s.gate.captures() {
            try capture.forEachEvent { event in
                if case .request(.http(let h)) = event.payload { recorded.insert(h.target) }
                return true
            }
        }
        print("http \(durability): \(reached.count) reached nginx, \(recorded.count) recorded, \(reached.subtracting(recorded).count) missing")
        return (reached, recorded)
    }

    /// Strict: every request nginx received is in a capture, however the gate died.
    @Test func strictLosesNoForwardedRequestWhenTheGateIsKilled() throws {
        let r = try killUnderLoad(durability: "strict")
        #expect(r.reached.count >= 200)
        let missing = r.reached.subtracting(r.recorded)
        #expect(missing.isEmpty, "forwarded but not recorded: \(missing.sorted().prefix(10))")
    }

    /// A full capture filesystem (a small tmpfs) under strict recording: the request whose record
    /// cannot be written is not forwarded (nginx never sees it) and the client gets a 503 `recording_failed`.
    @Test(.enabled(if: TmpfsMount.permitted, "mounting a tmpfs is not permitted here (the test needs root)"))
    func aFullCaptureDiskRefusesTheRequestBeforeItIsForwarded() throws {
        let mount = try TmpfsMount(size: "1m")
        defer { mount.unmount() }
        let nginx = try NginxServer(files: ["ok.json": #"{"ok": true}"#])
        defer { nginx.stop() }
        let port = try freePort()
        let gate = try GateProcess(config: """
            \(gateConfigHead(id: "k8smore20-gate", captures: "\(mount.path)/captures", issuer: provider.issuer))
            targets:
              api:
                protocol: http
                listen: 127.0.0.1:\(port)
                upstream: 127.0.0.1:\(nginx.port)
                upstream_tls: disable
                recording: {durability: strict}
            policies:
              - name: api-agents
                who: {groups: [ai-assistants]}
                target: api
                rules:
                  - {name: reads, when: {method: [GET]}, then: allow}

            """, ports: ["api": port])
        defer { gate.stop() }
        let token = try provider.token("filler@example.com", groups: ["ai-assistants"])
        // One connection: a first request (the session and its capture exist), the disk filled, then requests until one is not a 200.
        let r = try run("python3", ["-c", """
            import http.client, os, sys
            port, token, fill = int(sys.argv[1]), sys.argv[2], sys.argv[3]
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            def get(n):
                c.request("GET", "/ok.json?n=%d" % n, headers={"Authorization": "Bearer " + token})
                r = c.getresponse()
                return r.status, r.read()
            assert get(0)[0] == 200
            fd = os.open(fill, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                while True:
                    os.write(fd, b"x" * 4096)
            except OSError:
                pass
            for n in range(1, 200):
                try:
                    status, body = get(n)
                except Exception as e:
                    print("refused", n, "closed")
                    break
                if status != 200:
                    print("refused", n, status, body.decode())
                    break
            """, "\(port)", token, mount.path + "/fill"], timeout: .seconds(90))
        print("http strict, full disk: \(r.stdout)")
        let words = r.stdout.split(separator: " ")
        #expect(r.status == 0 && words.first == "refused", "\(r)")
        let refused = words.count > 1 ? String(words[1]) : "?"
        #expect(r.stdout.contains(" 503 ") && r.stdout.contains("recording_failed"), "\(r.stdout)")
        // The refused request never reached nginx.
        #expect(!nginx.accessLog.contains { $0.contains("/ok.json?n=\(refused) ") }, "\(nginx.accessLog)")
        #expect(gate.process.isRunning, "the gate keeps running")
    }
}
