import CaptureFormat
import Foundation
import Testing

@Suite struct KeyTests {
    @Test func loadOrCreateMakesA0600KeyAndLoadsItBack() throws {
        try withTempDir { dir in
            let path = dir.path("keys/nested/proxy.pem")
            let created = try SigningKey.loadOrCreate(path: path)
            #expect(try posixMode(path) == 0o600)
            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(text.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
            #expect(text.hasSuffix("-----END PRIVATE KEY-----\n"))
            let loaded = try SigningKey.loadOrCreate(path: path)
            #expect(loaded.publicKey == created.publicKey)
            #expect(loaded.keyID == created.keyID)
            #expect(try SigningKey.load(path: path).publicKey == created.publicKey)
            // The file is not rewritten by a second load.
            #expect(try String(contentsOfFile: path, encoding: .utf8) == text)
            // A signature made by the loaded key verifies with the created key's public half.
            let sig = loaded.sign(Array("message".utf8))
            #expect(SigningKey.verify(signature: sig, message: Array("message".utf8), publicKey: created.publicKey))
            #expect(!SigningKey.verify(signature: sig, message: Array("massage".utf8), publicKey: created.publicKey))
            #expect(created.keyID.count == 16)
        }
    }

    @Test func publicKeyPEMRoundTrips() throws {
        try withTempDir { dir in
            let key = SigningKey()
            let pub = dir.path("pub.pem")
            try key.publicKeyPEM.write(toFile: pub, atomically: true, encoding: .utf8)
            #expect(try SigningKey.loadPublicKey(path: pub) == key.publicKey)
            // A private key file gives its public half.
            let priv = dir.path("priv.pem")
            try key.privateKeyPEM.write(toFile: priv, atomically: true, encoding: .utf8)
            #expect(try SigningKey.loadPublicKey(path: priv) == key.publicKey)
            #expect(SigningKey.publicKeyPEM(key.publicKey) == key.publicKeyPEM)
        }
    }

    @Test func badKeyFiles() throws {
        try withTempDir { dir in
            let missing = dir.path("missing.pem")
            #expect(throws: CaptureError.self) { try SigningKey.loadPublicKey(path: missing) }
            #expect(throws: CaptureError.self) { try SigningKey.load(path: missing) }
            let garbage = dir.path("garbage.pem")
            try "-----BEGIN PUBLIC KEY-----\nnot base64!!\n-----END PUBLIC KEY-----\n".write(toFile: garbage, atomically: true, encoding: .utf8)
            #expect { try SigningKey.loadPublicKey(path: garbage) } throws: { ($0 as? CaptureError)?.kind == .key }
            // An RSA-sized DER is not an Ed25519 key.
            let rsa = dir.path("rsa.pem")
            try "-----BEGIN PUBLIC KEY-----\n\(Data(repeating: 7, count: 294).base64EncodedString())\n-----END PUBLIC KEY-----\n"
                .write(toFile: rsa, atomically: true, encoding: .utf8)
            #expect { try SigningKey.loadPublicKey(path: rsa) } throws: { ($0 as? CaptureError)?.kind == .key }
            let empty = dir.path("empty.pem")
            try "".write(toFile: empty, atomically: true, encoding: .utf8)
            #expect(throws: CaptureError.self) { try SigningKey.load(path: empty) }
        }
    }

    static var openssl: String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/openssl"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    static func run(_ tool: String, _ args: [String]) throws -> (status: Int32, out: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = args
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self))
    }

    /// The PEM files are standard: openssl derives the same public key from our private key,
    /// and we read openssl's own Ed25519 key.
    @Test(.enabled(if: KeyTests.openssl != nil, "openssl is not installed"))
    func opensslAgrees() throws {
        let openssl = try #require(Self.openssl)
        try withTempDir { dir in
            let path = dir.path("proxy.pem")
            let key = try SigningKey.loadOrCreate(path: path)
            let pub = try Self.run(openssl, ["pkey", "-in", path, "-pubout"])
            #expect(pub.status == 0)
            #expect(pub.out == key.publicKeyPEM)

            let theirs = dir.path("openssl.pem")
            let gen = try Self.run(openssl, ["genpkey", "-algorithm", "ed25519", "-out", theirs])
            #expect(gen.status == 0)
            let loaded = try SigningKey.load(path: theirs)
            let theirPub = try Self.run(openssl, ["pkey", "-in", theirs, "-pubout"])
            #expect(theirPub.out == loaded.publicKeyPEM)
        }
    }
}
