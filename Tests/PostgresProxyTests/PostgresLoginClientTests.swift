import Foundation
import PostgresProxy
import PostgresWire
import ProxyCore
import Testing

/// The upstream login component alone (no gate) against the real test PostgreSQL
/// (scripts/pg-test-cluster): its SCRAM-SHA-256 and md5 roles, with the right and a wrong password.
@Suite struct PostgresLoginClientTests {
    static func settings() throws -> [String: String] {
        let state = ProcessInfo.processInfo.environment["TOLLGATE_STATE"] ?? "/tmp/tollgate-test"
        let env = try #require(try? String(contentsOfFile: "\(state)/pg.env", encoding: .utf8), "run scripts/pg-test-cluster start")
        var values: [String: String] = [:]
        for line in env.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { values[String(kv[0])] = String(kv[1]) }
        }
        return values
    }

    static func login(user: String, password: String) async throws -> PostgresLoggedIn {
        let s = try settings()
        let port = try #require(Int(s["TOLLGATE_PG_PORT"] ?? ""))
        let credentials = PostgresUpstreamLogin.Credentials(user: user, password: password,
                                                            parameters: [("user", user), ("database", s["TOLLGATE_PG_DATABASE"] ?? ""),
                                                                         ("application_name", "captures21-login-test")])
        return try await PostgresLoginClient.connect(host: "127.0.0.1", port: port, credentials: credentials)
    }

    @Test(arguments: [("TOLLGATE_PG_SCRAM_USER", "TOLLGATE_PG_SCRAM_PASSWORD"), ("TOLLGATE_PG_MD5_USER", "TOLLGATE_PG_MD5_PASSWORD")])
    func logsInAndIsRefusedAWrongPassword(userKey: String, passwordKey: String) async throws {
        let s = try Self.settings()
        let user = try #require(s[userKey]), password = try #require(s[passwordKey])
        let connection = try await Self.login(user: user, password: password)
        let names = connection.parameterStatus.compactMap { m -> String? in
            if case .parameterStatus(let name, let value) = m, name == "application_name" { return value } else { return nil }
        }
        #expect(names == ["captures21-login-test"], "the server reports the startup parameters it took")
        #expect(connection.keyData != nil)
        #expect(connection.channel.isActive)
        try await connection.channel.close()

        await #expect(throws: PostgresLoginError.self) {
            _ = try await Self.login(user: user, password: password + "-wrong")
        }
        do {
            _ = try await Self.login(user: user, password: password + "-wrong")
        } catch {
            #expect("\(error)".contains("password authentication failed"), "the server's reason: \(error)")
        }
    }
}
