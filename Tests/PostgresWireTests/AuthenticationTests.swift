import Crypto
import NIOCore
@testable import PostgresWire
import Testing

@Suite("Authentication")
struct AuthenticationTests {
    @Test func md5MatchesAnIndependentComputation() {
        // Expected value from Python's hashlib: "md5" + md5(md5(pw + user).hex + salt).hex
        let hash = PostgresAuthentication.md5Password(user: "copilot_ro", password: "s3cr3t-Pa55", salt: 0x0102_FEFF)
        #expect(hash == "md57cce76bee51bca7a996012c929a4090f")
    }

    @Test func scramRFC7677TestVector() throws {
        var client = SCRAMSHA256Client(username: "user", password: "pencil", clientNonce: "rOprNGfwEbeRWgbNEkqO")
        #expect(String(decoding: try client.clientFirstMessage(), as: UTF8.self) == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        let serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        let clientFinal = try client.clientFinalMessage(serverFirst: Array(serverFirst.utf8))
        #expect(String(decoding: clientFinal, as: UTF8.self)
            == "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        #expect(!client.isAuthenticated)
        try client.verifyServerFinal(Array("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8))
        #expect(client.isAuthenticated)
    }

    @Test func scramPostgresStyleRoundTripWithATestServer() throws {
        let password = "brokered-Pa55word"
        var client = SCRAMSHA256Client(password: password)
        let clientFirst = String(decoding: try client.clientFirstMessage(), as: UTF8.self)
        #expect(clientFirst.hasPrefix("n,,n=,r="))
        var server = try TestSCRAMServer(password: password, clientFirst: clientFirst)
        let clientFinal = try client.clientFinalMessage(serverFirst: ByteBuffer(string: server.serverFirst).readableBytesView)
        let serverFinal = server.verify(clientFinal: String(decoding: clientFinal, as: UTF8.self))
        #expect(serverFinal != nil)
        try client.verifyServerFinal(Array((serverFinal ?? "").utf8))
        #expect(client.isAuthenticated)

        // A wrong password gives a proof the server refuses.
        var wrong = SCRAMSHA256Client(password: "not-it")
        let wrongFirst = String(decoding: try wrong.clientFirstMessage(), as: UTF8.self)
        var wrongServer = try TestSCRAMServer(password: password, clientFirst: wrongFirst)
        let wrongFinal = try wrong.clientFinalMessage(serverFirst: Array(wrongServer.serverFirst.utf8))
        #expect(wrongServer.verify(clientFinal: String(decoding: wrongFinal, as: UTF8.self)) == nil)
    }

    @Test func scramRejectsAServerThatDoesNotKnowThePassword() throws {
        // An impostor server: it answers with a signature computed from another password.
        var client = SCRAMSHA256Client(password: "right")
        let first = String(decoding: try client.clientFirstMessage(), as: UTF8.self)
        let impostor = try TestSCRAMServer(password: "guess", clientFirst: first)
        let final = String(decoding: try client.clientFinalMessage(serverFirst: Array(impostor.serverFirst.utf8)), as: UTF8.self)
        let forged = impostor.signature(clientFinal: final)
        #expect(throws: SCRAMError(kind: .serverSignatureMismatch, reason: "the server signature does not match")) {
            try client.verifyServerFinal(Array(forged.utf8))
        }
        #expect(!client.isAuthenticated)
    }

    @Test func scramProtocolErrors() throws {
        func started(_ nonce: String = "abc") throws -> SCRAMSHA256Client {
            var client = SCRAMSHA256Client(password: "pw", clientNonce: nonce)
            _ = try client.clientFirstMessage()
            return client
        }
        func kind(_ body: () throws -> Void) -> SCRAMError.Kind? {
            do { try body(); return nil } catch let error as SCRAMError { return error.kind } catch { return nil }
        }
        var c = try started()
        #expect(kind { _ = try c.clientFinalMessage(serverFirst: Array("r=xyz123,s=c2FsdA==,i=4096".utf8)) } == .nonceMismatch)
        c = try started()
        #expect(kind { _ = try c.clientFinalMessage(serverFirst: Array("r=abc,s=c2FsdA==,i=4096".utf8)) } == .nonceMismatch)
        c = try started()
        #expect(kind { _ = try c.clientFinalMessage(serverFirst: Array("r=abcdef,s=c2FsdA==,i=0".utf8)) } == .invalidIterationCount)
        c = try started()
        #expect(kind { _ = try c.clientFinalMessage(serverFirst: Array("r=abcdef,s=c2FsdA==,i=99999999999".utf8)) } == .invalidIterationCount)
        c = try started()
        #expect(kind { _ = try c.clientFinalMessage(serverFirst: Array("r=abcdef,s=!!!,i=4096".utf8)) } == .malformedServerMessage)
        c = try started()
        #expect(kind { _ = try c.clientFinalMessage(serverFirst: Array("m=ext,r=abcdef,s=c2FsdA==,i=4096".utf8)) } == .malformedServerMessage)
        c = try started()
        _ = try c.clientFinalMessage(serverFirst: Array("r=abcdef,s=c2FsdA==,i=1".utf8))
        #expect(kind { try c.verifyServerFinal(Array("e=invalid-proof".utf8)) } == .serverError)

        var fresh = SCRAMSHA256Client(password: "pw")
        #expect(kind { try fresh.verifyServerFinal(Array("v=AAAA".utf8)) } == .unexpectedState)
        var twice = try started()
        #expect(kind { _ = try twice.clientFirstMessage() } == .unexpectedState)
    }

    @Test func scramUsernameIsEscaped() throws {
        var client = SCRAMSHA256Client(username: "a=b,c", password: "pw", clientNonce: "n")
        #expect(String(decoding: try client.clientFirstMessage(), as: UTF8.self) == "n,,n=a=3Db=2Cc,r=n")
    }

    @Test func base64() {
        let vectors = ["": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE=", "foobar": "Zm9vYmFy"]
        for (plain, encoded) in vectors {
            #expect(Base64.encode(Array(plain.utf8)) == encoded)
            #expect(Base64.decode(encoded) == Array(plain.utf8))
        }
        let bytes = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        #expect(Base64.decode(Base64.encode(bytes)) == bytes)
        for bad in ["Zg", "Zg=", "Z===", "Zh==", "Zm9v\n", "Zm=v", "Zm9*"] {
            #expect(Base64.decode(bad) == nil, "accepted \(bad)")
        }
    }
}

/// The server side of SCRAM-SHA-256, written from RFC 5802 independently of the client's
/// internals (only base64 is shared).
struct TestSCRAMServer {
    let serverFirst: String
    private let clientFirstBare: String
    private let nonce: String
    private let storedKey: [UInt8]
    private let serverKey: [UInt8]

    init(password: String, clientFirst: String, salt: [UInt8] = Array("tollgate-salt".utf8), iterations: Int = 4096) throws {
        guard clientFirst.hasPrefix("n,,") else { throw TestError.badClientFirst }
        clientFirstBare = String(clientFirst.dropFirst(3))
        guard let nonceAttribute = clientFirstBare.split(separator: ",").first(where: { $0.hasPrefix("r=") }) else {
            throw TestError.badClientFirst
        }
        let clientNonce = nonceAttribute.dropFirst(2)
        nonce = clientNonce + "Srv+Nonce/123"
        serverFirst = "r=\(nonce),s=\(Base64.encode(salt)),i=\(iterations)"

        // Hi(): PBKDF2-HMAC-SHA-256 written out plainly.
        let key = SymmetricKey(data: Array(password.utf8))
        var u = Array(HMAC<SHA256>.authenticationCode(for: salt + [0, 0, 0, 1], using: key))
        var salted = u
        for _ in 1..<iterations {
            u = Array(HMAC<SHA256>.authenticationCode(for: u, using: key))
            salted = zip(salted, u).map { $0 ^ $1 }
        }
        let saltedKey = SymmetricKey(data: salted)
        let clientKey = Array(HMAC<SHA256>.authenticationCode(for: Array("Client Key".utf8), using: saltedKey))
        storedKey = Array(SHA256.hash(data: clientKey))
        serverKey = Array(HMAC<SHA256>.authenticationCode(for: Array("Server Key".utf8), using: saltedKey))
    }

    private func authMessage(_ clientFinal: String) -> [UInt8] {
        let withoutProof = clientFinal.components(separatedBy: ",p=")[0]
        return Array("\(clientFirstBare),\(serverFirst),\(withoutProof)".utf8)
    }

    /// The server-final-message if the client's proof is right, else nil.
    mutating func verify(clientFinal: String) -> String? {
        let parts = clientFinal.split(separator: ",")
        guard parts.count == 3, parts[0] == "c=biws", parts[1] == "r=\(nonce)",
              parts[2].hasPrefix("p="), let proof = Base64.decode(parts[2].dropFirst(2)) else { return nil }
        let clientSignature = Array(HMAC<SHA256>.authenticationCode(for: authMessage(clientFinal), using: SymmetricKey(data: storedKey)))
        let clientKey = zip(proof, clientSignature).map { $0 ^ $1 }
        guard Array(SHA256.hash(data: clientKey)) == storedKey else { return nil }
        return signature(clientFinal: clientFinal)
    }

    /// server-final-message for `clientFinal`, whether or not the proof was right.
    func signature(clientFinal: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: authMessage(clientFinal), using: SymmetricKey(data: serverKey))
        return "v=" + Base64.encode(Array(mac))
    }

    enum TestError: Error { case badClientFirst }
}
