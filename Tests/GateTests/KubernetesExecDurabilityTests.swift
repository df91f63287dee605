import CaptureFormat
import Foundation
import TestSupport
import Testing

/// `recording.durability: strict` on a Kubernetes exec (issue 20): the upgrade goes to the pod only
/// once its request and decision are durable, each stdin/resize/close frame only once its record is.
/// What the Kubernetes test server got (its log, which names each stdin message) is checked against
/// what the capture holds.
@Suite("Kubernetes gate: strict recording of exec", .serialized)
struct KubernetesExecDurabilityTests {
    let provider: OIDCProvider
    let exec: KubernetesExecGateTests

    init() throws {
        provider = try sharedProvider.get()
        exec = try KubernetesExecGateTests()
    }

    /// The stdin messages the test server's exec received, in order.
    func stdinReceived(_ server: KubeTestServer) -> [String] {
        server.requests().compactMap { ($0["exec"] as? String) == "stdin" ? $0["data"] as? String : nil }
    }

    /// The stdin chunks in `gate`'s captures, read as far as they go (a killed gate leaves a capture without its end).
    func stdinRecorded(_ gate: GateProcess) throws -> [String] {
        var out: [String] = []
        for capture in try gate.captures() {
            try capture.forEachEvent { event in
                if case .streamChunk(let c) = event.payload, c.stream == .stdin { out.append(String(decoding: c.data, as: UTF8.self)) }
                return true
            }
        }
        return out
    }

    @Test func aStrictExecWithKubectlWorksAndEveryStdinTheServerGotIsRecorded() throws {
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let s = try exec.start(token: agent, rules: KubernetesExecGateTests.execAllowed, recording: "{durability: strict}")
        let r = try kubectl(s.kubeconfig, ["exec", "-i", "web-7d4b9c-x2x9q", "-n", "dev", "--", "sh", "-c", "cat; echo done-$((6*7))"],
                            stdin: "alpha-1\nbeta-2\n")
        #expect(r.status == 0 && r.stdout.contains("alpha-1\nbeta-2\n") && r.stdout.contains("done-42"), "\(r)")
        let received = stdinReceived(s.server)
        #expect(received.joined() == "alpha-1\nbeta-2\n", "\(s.server.requests())")
        #expect(s.server.requests().contains { ($0["exec"] as? String) == "stdin-closed" }, "\(s.server.requests())")
        s.gate.stop()
        let recorded = try stdinRecorded(s.gate)
        let missing = received.filter { !recorded.contains($0) }
        #expect(missing.isEmpty, "reached the pod but not recorded: \(missing); recorded \(recorded)")
        try s.gate.expectNoSecrets([agent, s.server.token])
    }

    /// A raw client floods stdin with numbered lines; the gate is killed with SIGKILL mid-stream.
    /// Every line the pod's exec got is in the capture.
    @Test func aStrictExecKilledMidStreamLosesNoForwardedStdin() throws {
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let s = try exec.start(token: agent, rules: KubernetesExecGateTests.execAllowed, recording: "{durability: strict}")
        let path = "/api/v1/namespaces/dev/pods/web-7d4b9c-x2x9q/exec?command=sh&command=-c&command=cat%20%3E/dev/null&stdin=true&stdout=true&stderr=true"
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        client.arguments = ["python3", repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/ws_exec_client.py").path, "127.0.0.1",
                            "\(s.gate.port("kube"))", s.server.certificate.path, agent, path, "v5.channel.k8s.io", "flood"]
        client.standardOutput = FileHandle.nullDevice
        client.standardError = FileHandle.nullDevice
        try client.run()
        defer { if client.isRunning { client.terminate() }; client.waitUntilExit() }
        try waitUntil("the flood to reach the pod", timeout: .seconds(60)) { stdinReceived(s.server).count >= 200 }
        sleep(2)
        kill(s.gate.process.processIdentifier, SIGKILL)
        s.gate.process.waitUntilExit()
        client.waitUntilExit()
        let received = stdinReceived(s.server)
        let recorded = Set(try stdinRecorded(s.gate))
        let missing = received.filter { !recorded.contains($0) }
        print("exec strict: \(received.count) stdin messages reached the pod, \(recorded.count) recorded, \(missing.count) missing")
        #expect(received.count >= 200)
        let lost = missing.count
        #expect(lost == 0, "reached the pod but not recorded: \(missing.prefix(10))")
    }

    /// A full capture filesystem: the exec's upgrade, whose records cannot be written, never reaches
    /// the upstream (the test server logs no exec and no request for it); the client gets the 503.
    @Test(.enabled(if: TmpfsMount.permitted, "mounting a tmpfs is not permitted here (the test needs root)"))
    func aFullCaptureDiskRefusesTheExecBeforeItReachesThePod() throws {
        let mount = try TmpfsMount(size: "1m")
        defer { mount.unmount() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let s = try exec.start(token: agent, rules: KubernetesExecGateTests.execAllowed, captures: mount.path + "/captures",
                               recording: "{durability: strict}")
        // One connection: a read (the session and its capture exist), the disk filled, then the exec's upgrade.
        // Its command line carries 8 KiB of random hex so that its record needs space the disk no longer has.
        let r = try run("python3", ["-c", """
            import http.client, os, ssl, sys
            port, ca, token, fill = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
            c = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=ssl.create_default_context(cafile=ca))
            c.request("GET", "/api/v1/namespaces/dev/pods", headers={"Authorization": "Bearer " + token})
            first = c.getresponse()
            first.read()
            assert first.status == 200, first.status
            fd = os.open(fill, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                while True:
                    os.write(fd, b"x" * 4096)
            except OSError:
                pass
            path = ("/api/v1/namespaces/dev/pods/web-7d4b9c-x2x9q/exec?command=echo&command=ran-%s"
                    "&stdout=true&stderr=true" % os.urandom(4096).hex())
            c.sock.sendall(("GET %s HTTP/1.1\\r\\nHost: 127.0.0.1:%d\\r\\nAuthorization: Bearer %s\\r\\n"
                            "Connection: Upgrade\\r\\nUpgrade: websocket\\r\\nSec-WebSocket-Version: 13\\r\\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Protocol: v5.channel.k8s.io\\r\\n\\r\\n"
                            % (path, port, token)).encode())
            answer = b""
            try:
                while True:
                    data = c.sock.recv(65536)
                    if not data:
                        break
                    answer += data
            except OSError:
                pass
            print(answer.decode("utf-8", "replace"))
            """, "\(s.gate.port("kube"))", s.server.certificate.path, agent, mount.path + "/fill"], timeout: .seconds(90))
        print("exec strict, full disk: \(r.stdout.prefix(300))")
        #expect(r.status == 0 && r.stdout.hasPrefix("HTTP/1.1 503 ") && r.stdout.contains("recording_failed"), "\(r)")
        let execs = exec.execEvents(s.server).count
        #expect(execs == 0, "the exec ran on the pod")
        let execRequests = s.server.requests().filter { ($0["path"] as? String)?.hasSuffix("/exec") == true }.count
        #expect(execRequests == 0, "the exec's upgrade reached the upstream")
        #expect(s.gate.process.isRunning, "the gate keeps running")
    }

    /// The capture filesystem fills once the stream is switched: the stdin frame whose record cannot
    /// be written never reaches the pod, the client gets a close frame with 1011, and every stdin
    /// message the pod got is in the capture.
    @Test(.enabled(if: TmpfsMount.permitted, "mounting a tmpfs is not permitted here (the test needs root)"))
    func aCaptureThatFailsMidStreamEndsItWith1011AndForwardsNothingUnrecorded() throws {
        let mount = try TmpfsMount(size: "1m")
        defer { mount.unmount() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let s = try exec.start(token: agent, rules: KubernetesExecGateTests.execAllowed, captures: mount.path + "/captures",
                               recording: "{durability: strict}")
        // One frame at a time, each waited on (the gate reads no more while one waits for its record): a
        // first one before the disk is full, then 12 KiB of random hex per frame until the gate answers.
        let r = try run("python3", ["-c", """
            import base64, json, os, select, socket, ssl, struct, sys
            port, ca, token, fill = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
            ctx = ssl.create_default_context(cafile=ca)
            sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30), server_hostname="127.0.0.1")
            path = ("/api/v1/namespaces/dev/pods/web-7d4b9c-x2x9q/exec?command=sh&command=-c&command=cat%20%3E/dev/null"
                    "&stdin=true&stdout=true&stderr=true")
            sock.sendall(("GET %s HTTP/1.1\\r\\nHost: 127.0.0.1:%d\\r\\nAuthorization: Bearer %s\\r\\n"
                          "Connection: Upgrade\\r\\nUpgrade: websocket\\r\\nSec-WebSocket-Version: 13\\r\\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Protocol: v5.channel.k8s.io\\r\\n\\r\\n"
                          % (path, port, token)).encode())
            buf = b""
            while b"\\r\\n\\r\\n" not in buf:
                buf += sock.recv(65536)
            head, _, buf = buf.partition(b"\\r\\n\\r\\n")
            assert b" 101 " in head.split(b"\\r\\n")[0], head
            def frame(payload):
                mask = os.urandom(4)
                n = len(payload)
                h = bytes([0x82]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n))
                return h + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            def answered():
                r, _, _ = select.select([sock], [], [], 2)
                return bool(r)
            sock.sendall(frame(b"\\x00first\\n"))
            assert not answered()
            fd = os.open(fill, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                while True:
                    os.write(fd, b"x" * 4096)
            except OSError:
                pass
            sent = 0
            while sent < 20 and not answered():
                sock.sendall(frame(b"\\x00" + os.urandom(6000).hex().encode() + b"\\n"))
                sent += 1
            data = buf
            try:
                while True:
                    more = sock.recv(65536)
                    if not more:
                        break
                    data += more
            except OSError:
                pass
            close = None
            if len(data) >= 4 and data[0] & 0x0F == 8:
                close = [struct.unpack("!H", data[2:4])[0], data[4:2 + data[1]].decode("utf-8", "replace")]
            print(json.dumps({"sent": sent, "close": close}))
            """, "\(s.gate.port("kube"))", s.server.certificate.path, agent, mount.path + "/fill"], timeout: .seconds(90))
        print("exec strict, disk full mid-stream: \(r.stdout) \(r.stderr.suffix(300))")
        let result = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any] ?? [:]
        #expect((result["close"] as? [Any])?.first as? Int == 1011, "\(r)")
        #expect(s.gate.process.isRunning, "the gate keeps running")
        let received = stdinReceived(s.server)
        #expect(received.first == "first\n", "the first frame reached the pod")
        var recorded = Set<String>()
        let root = mount.path + "/captures"
        let files = (FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? []).filter { $0.hasSuffix(".sesscap") }
        for file in files {
            try CaptureFile(path: root + "/" + file).forEachEvent { event in
                if case .streamChunk(let c) = event.payload, c.stream == .stdin { recorded.insert(String(decoding: c.data, as: UTF8.self)) }
                return true
            }
        }
        let missing = received.filter { !recorded.contains($0) }.count
        #expect(missing == 0, "\(missing) of \(received.count) stdin messages reached the pod unrecorded")
    }
}
