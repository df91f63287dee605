import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Identity
import Synchronization
import Testing

/// Errors of the test harness itself (a missing python3 fails the tests with this message).
struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `Fixtures/oidc_fixture.py`: keys, signatures, the provider's login flow, and servers.
enum Fixture {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/oidc_fixture.py").path

    static let requirement = "IdentityTests need python3 with the PyPI packages oidc-provider-mock (0.3.4) and "
        + "cryptography (scripts/bootstrap installs them: pip install oidc-provider-mock==0.3.4)"

    static func makeProcess(_ arguments: [String]) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONDONTWRITEBYTECODE"] = "1"  // no __pycache__ in the source tree
        environment["PYTHONWARNINGS"] = "ignore"
        process.environment = environment
        return process
    }

    /// Runs the script to completion and returns its stdout; a failure carries its stderr.
    static func run(_ arguments: [String], input: Data? = nil) async throws -> Data {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                let process = makeProcess(arguments)
                let stdout = Pipe(), stderr = Pipe(), stdin = Pipe()
                process.standardOutput = stdout
                process.standardError = stderr
                process.standardInput = stdin
                do {
                    try process.run()
                } catch {
                    continuation.resume(throwing: FixtureError("cannot start python3 (\(error)). \(requirement)"))
                    return
                }
                if let input { stdin.fileHandleForWriting.write(input) }
                try? stdin.fileHandleForWriting.close()
                // Both pipes are drained concurrently so that neither can fill up and block the child.
                let errors = Mutex(Data())
                let group = DispatchGroup()
                DispatchQueue.global().async(group: group) {
                    let data = stderr.fileHandleForReading.readDataToEndOfFile()
                    errors.withLock { $0 = data }
                }
                let output = stdout.fileHandleForReading.readDataToEndOfFile()
                group.wait()
                process.waitUntilExit()
                guard process.terminationStatus == 0 else {
                    let text = String(decoding: errors.withLock { $0 }, as: UTF8.self)
                    continuation.resume(throwing: FixtureError(
                        "oidc_fixture.py \(arguments.first ?? "") exited \(process.terminationStatus): \(text). \(requirement)"))
                    return
                }
                continuation.resume(returning: output)
            }
        }
    }

    /// Fails (never skips) when python3 or the provider package is missing: CI installs them.
    static func requirePython() async throws {
        do {
            _ = try await run(["check"])
        } catch {
            throw FixtureError("\(requirement). Probe failed: \(error)")
        }
    }
}

/// A fresh temporary directory per test.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-identity-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Keys made by Python's `cryptography`, so the verifier is checked against another implementation.
struct TestKeys {
    let directory: URL

    /// `specs` like `["rsa-1:rsa", "ec-1:ec", "ed-1:ed"]`; each key's `kid` is its name.
    static func make(_ specs: [String], in directory: URL) async throws -> TestKeys {
        _ = try await Fixture.run(["keys", directory.path] + specs)
        return TestKeys(directory: directory)
    }

    func privateKeyPath(_ name: String) -> String { directory.appendingPathComponent(name + ".pem").path }

    func publicJWK(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: directory.appendingPathComponent(name + ".pub.json"))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    /// Writes a JWKS holding these keys' public halves (plus `extra` entries verbatim).
    @discardableResult
    func writeJWKS(_ names: [String], to url: URL, extra: [[String: Any]] = []) throws -> URL {
        let keys = try names.map(publicJWK) + extra
        let data = try JSONSerialization.data(withJSONObject: ["keys": keys])
        try data.write(to: url, options: .atomic)
        return url
    }
}

/// One token to sign: the header is `{"alg", "typ": "JWT"}` plus `header`.
struct SignSpec {
    var key: String?
    var alg: String
    var header: [String: Any] = [:]
    var claims: Any
    var hmacSecretJWK: [String: Any]? = nil

    var json: [String: Any] {
        var spec: [String: Any] = ["alg": alg, "header": header, "claims": claims]
        if let key { spec["key"] = key }
        if let hmacSecretJWK { spec["hmac_secret_jwk"] = hmacSecretJWK }
        return spec
    }
}

func sign(_ specs: [SignSpec]) async throws -> [String] {
    let input = try JSONSerialization.data(withJSONObject: specs.map(\.json))
    let output = try await Fixture.run(["sign"], input: input)
    return try JSONSerialization.jsonObject(with: output) as! [String]
}

func sign(_ spec: SignSpec) async throws -> String { try await sign([spec])[0] }

/// A time the tests control: TTLs and refetch intervals are crossed without sleeping.
final class TestClock: Sendable {
    private let time: Mutex<Date>
    init(_ start: Date) { time = Mutex(start) }
    var now: Date { time.withLock { $0 } }
    func advance(_ seconds: TimeInterval) { time.withLock { $0 += seconds } }
    var closure: @Sendable () -> Date { { self.now } }
}

/// A fixture server (the real OIDC provider, or a static issuer): a subprocess on a free loopback
/// port, stopped by closing its stdin (so it also dies with a crashed test process).
final class FixtureServer: @unchecked Sendable {
    let process: Process
    let stdin: Pipe
    let port: Int
    var base: String { "http://127.0.0.1:\(port)" }

    private init(process: Process, stdin: Pipe, port: Int) {
        self.process = process
        self.stdin = stdin
        self.port = port
    }

    static func start(_ arguments: [String], readyPath: String) async throws -> FixtureServer {
        let stderrFile = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-fixture-\(UUID()).log")
        _ = FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: stderrFile) }
        let process = Fixture.makeProcess(arguments)
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = try FileHandle(forWritingTo: stderrFile)
        do {
            try process.run()
        } catch {
            throw FixtureError("cannot start python3 (\(error)). \(Fixture.requirement)")
        }

        // The first stdout line is {"port": N}, printed once the socket listens. A watchdog ends a
        // child that never prints it, which ends the read with EOF.
        let watchdog = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 30, execute: watchdog)
        let line: Data = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var data = Data()
                while !data.contains(UInt8(ascii: "\n")) {
                    let chunk = stdout.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    data.append(chunk)
                }
                continuation.resume(returning: data)
            }
        }
        watchdog.cancel()
        guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any],
              let port = object["port"] as? Int else {
            let server = FixtureServer(process: process, stdin: stdin, port: 0)
            server.stop()
            let log = (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? ""
            throw FixtureError("fixture server \(arguments.first ?? "") did not start: \(log.suffix(2000)). \(Fixture.requirement)")
        }
        let server = FixtureServer(process: process, stdin: stdin, port: port)
        do {
            try await server.waitUntilAnswering(readyPath)
            server.countsAtReady = try await server.requestCounts()
        } catch {
            server.stop()
            throw error
        }
        return server
    }

    /// The real OIDC provider (oidc-provider-mock).
    static func provider() async throws -> FixtureServer {
        try await start(["serve-provider"], readyPath: "/.well-known/openid-configuration")
    }

    /// Serves `directory` as an issuer whose documents the test writes.
    static func staticIssuer(_ directory: URL) async throws -> FixtureServer {
        try await start(["serve-static", directory.path], readyPath: "/_fixture/requests")
    }

    private func waitUntilAnswering(_ path: String) async throws {
        var lastProblem = ""
        for _ in 0..<100 {
            do {
                let (_, response) = try await URLSession.shared.data(from: URL(string: base + path)!)
                if (response as? HTTPURLResponse)?.statusCode == 200 { return }
                lastProblem = "HTTP \((response as? HTTPURLResponse)?.statusCode ?? 0)"
            } catch {
                lastProblem = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw FixtureError("\(base)\(path) never answered: \(lastProblem)")
    }

    /// Requests the server has received since it answered the readiness probe, as `"GET /jwks": count`.
    func requestCounts() async throws -> [String: Int] {
        let (data, _) = try await URLSession.shared.data(from: URL(string: base + "/_fixture/requests")!)
        var counts = try JSONSerialization.jsonObject(with: data) as? [String: Int] ?? [:]
        for (request, count) in countsAtReady { counts[request, default: 0] -= count }
        return counts.filter { $0.value != 0 }
    }

    /// What the readiness probe itself requested, subtracted from `requestCounts()`.
    private var countsAtReady: [String: Int] = [:]

    func stop() {
        try? stdin.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            process.terminate()
            usleep(200_000)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
    }
}

/// Runs `body` with a fixture server and always stops it.
func withServer<T>(_ start: () async throws -> FixtureServer, _ body: (FixtureServer) async throws -> T) async throws -> T {
    let server = try await start()
    defer { server.stop() }
    return try await body(server)
}

/// The provider's token endpoint answer after a real authorization-code login.
struct ProviderLogin {
    let idToken: String
    let accessToken: String

    static func run(provider: FixtureServer, subject: String, clientID: String, claims: [String: Any]) async throws -> ProviderLogin {
        let claimsJSON = String(decoding: try JSONSerialization.data(withJSONObject: claims), as: UTF8.self)
        let output = try await Fixture.run(["login", provider.base, subject, clientID, claimsJSON])
        guard let answer = try JSONSerialization.jsonObject(with: output) as? [String: Any],
              let idToken = answer["id_token"] as? String, let accessToken = answer["access_token"] as? String else {
            throw FixtureError("token endpoint answer without id_token/access_token: \(String(decoding: output, as: UTF8.self))")
        }
        return ProviderLogin(idToken: idToken, accessToken: accessToken)
    }
}

// MARK: - Token surgery

enum JWT {
    static func segments(_ token: String) -> [String] { token.split(separator: ".", omittingEmptySubsequences: false).map(String.init) }

    static func encode(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ segment: String) -> Data {
        var text = segment.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        return Data(base64Encoded: text)!
    }

    static func object(_ segment: String) -> [String: Any] {
        try! JSONSerialization.jsonObject(with: decode(segment)) as! [String: Any]
    }

    static func encode(_ object: [String: Any]) -> String {
        encode(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    /// The token with its payload changed and its signature kept.
    static func tamperingPayload(_ token: String, _ change: (inout [String: Any]) -> Void) -> String {
        let parts = segments(token)
        var payload = object(parts[1])
        change(&payload)
        return [parts[0], encode(payload), parts[2]].joined(separator: ".")
    }

    /// The token with its header changed and everything else kept.
    static func replacingHeader(_ token: String, _ header: [String: Any]) -> String {
        let parts = segments(token)
        return [encode(header), parts[1], parts[2]].joined(separator: ".")
    }
}

// MARK: - Expectations

/// Verifies that `token` is refused for `reason`, and that nothing in the error repeats the token,
/// its signature, its payload, or any of `secrets` (claim values the client must not get back).
@discardableResult
func expectRefusal(_ verifier: OIDCVerifier, _ token: String, _ reason: IdentityError.Reason,
                   secrets: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) async -> IdentityError? {
    do {
        let identity = try await verifier.verify(token: token)
        Issue.record("expected \(reason), but the token was accepted for \(identity.subject)", sourceLocation: sourceLocation)
        return nil
    } catch {
        #expect(error.reason == reason, "\(error)", sourceLocation: sourceLocation)
        expectNoLeak(error, token: token, secrets: secrets, sourceLocation: sourceLocation)
        return error
    }
}

func expectNoLeak(_ error: IdentityError, token: String, secrets: [String] = [],
                  sourceLocation: SourceLocation = #_sourceLocation) {
    let texts = [error.description, error.message, error.operatorDetail ?? "", "\(error)", String(reflecting: error.message)]
    let parts = JWT.segments(token).filter { $0.count >= 8 }
    for text in texts {
        #expect(!text.contains(token), "error repeats the token", sourceLocation: sourceLocation)
        for part in parts {
            #expect(!text.contains(part), "error repeats a token segment", sourceLocation: sourceLocation)
        }
        for secret in secrets where !secret.isEmpty {
            #expect(!text.contains(secret), "error repeats \(secret)", sourceLocation: sourceLocation)
        }
    }
}
