import Foundation
import Synchronization

/// A receiver that answers each POST with the next of `statuses` ("hang": never answers; the
/// last status repeats) and prints what it got, with its verdict on the signature, as a JSON line.
public final class WebhookReceiver: Sendable {
    public let process: Process
    public let port: Int
    final class Lines: Sendable {
        let all = Mutex<[String]>([])
        let partial = Mutex<String>("")

        func add(_ chunk: String) {
            let complete = partial.withLock { p -> [String] in
                p += chunk
                var parts = p.components(separatedBy: "\n")
                p = parts.removeLast()
                return parts
            }
            all.withLock { $0 += complete }
        }
    }
    let lines = Lines()

    public init(secret: String, statuses: [String]) throws {
        port = try freePort()
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-u", "-c", Self.script, "\(port)", secret, statuses.joined(separator: ",")]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        let lines = self.lines
        out.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            // At end of file the handler would be called again and again; its dispatch source,
            // left armed past the handle's life, crashed libdispatch.
            guard !data.isEmpty else { handle.readabilityHandler = nil; return }
            lines.add(String(decoding: data, as: UTF8.self))
        }
        try process.run()
        try waitForPort(port)
    }

    static let script = #"""
        import hashlib, hmac, json, signal, sys, threading, time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        # The spawning test thread's blocked signals are inherited: unblock them, or stop()'s SIGTERM never arrives.
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        port, secret, statuses = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3].split(",")
        lock = threading.Lock()
        class H(BaseHTTPRequestHandler):
            def log_message(self, *a): pass
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ts = self.headers.get("Tollgate-Timestamp", "")
                expected = "sha256=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
                valid = hmac.compare_digest(expected, self.headers.get("Tollgate-Signature", ""))
                with lock:
                    status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
                print(json.dumps({"event": self.headers.get("Tollgate-Event"), "delivery": self.headers.get("Tollgate-Delivery"),
                                  "valid": valid, "skew": abs(time.time() - int(ts or 0)), "body": json.loads(body), "answer": status}), flush=True)
                if status == "hang":
                    time.sleep(3600)
                self.send_response(int(status)); self.send_header("Content-Length", "0"); self.end_headers()
        ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
        """#

    /// Each delivery as the receiver printed it (JSON text): what to search for a value that must not be there.
    public var rawLines: [String] { lines.all.withLock { $0 } }

    public var received: [[String: Any]] {
        lines.all.withLock { $0 }.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
    }

    /// Waits without holding a thread of the cooperative pool: the dispatcher's tasks run there
    /// (a blocking wait on a 2-core machine under the full suite starved them).
    public func waitFor(_ n: Int) async throws -> [[String: Any]] {
        let deadline = ContinuousClock.now + .seconds(120)
        while received.count < n {
            guard ContinuousClock.now < deadline else { throw HarnessError(description: "timed out waiting for \(n) deliveries") }
            try await Task.sleep(for: .milliseconds(20))
        }
        return received
    }

    /// The same, blocking (for tests that run no Swift concurrency of their own, as the gate tests).
    public func waitForBlocking(_ n: Int, timeout: Duration = .seconds(120)) throws -> [[String: Any]] {
        try waitUntil("\(n) webhook deliveries", timeout: timeout) { received.count >= n }
        return received
    }

    public func stop() {
        guard process.isRunning else { return }
        process.terminate()
        // Polled, not `waitUntilExit()`: its run loop crashed in libdispatch here once a gate test had ended.
        for _ in 0..<200 where process.isRunning { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    deinit { process.terminate() }
}
