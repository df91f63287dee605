import Crypto
import Foundation

/// The proxy's Ed25519 key. Stored as standard PEM (PKCS#8 private key,
/// SubjectPublicKeyInfo public key), so `openssl pkey` reads both.
public struct SigningKey: Sendable {
    public let privateKey: Curve25519.Signing.PrivateKey

    public init() { privateKey = Curve25519.Signing.PrivateKey() }

    public init(seed: [UInt8]) throws {
        privateKey = try Curve25519.Signing.PrivateKey(rawRepresentation: seed)
    }

    public var publicKey: [UInt8] { Array(privateKey.publicKey.rawRepresentation) }
    public var keyID: String { SigningKey.keyID(of: publicKey) }

    public func sign(_ message: [UInt8]) -> [UInt8] {
        // Ed25519 signing fails only for malformed keys, which the initialisers refuse.
        Array(try! privateKey.signature(for: message))
    }

    /// First 8 bytes of SHA-256 of the raw public key, in hex: short enough to print, long enough to tell keys apart.
    public static func keyID(of publicKey: [UInt8]) -> String {
        hex(Array(SHA256.hash(data: publicKey).prefix(8)))
    }

    public static func verify(signature: [UInt8], message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return false }
        return key.isValidSignature(signature, for: message)
    }

    // DER prefixes of RFC 8410 structures for Ed25519 (OID 1.3.101.112).
    static let pkcs8Prefix: [UInt8] = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]
    static let spkiPrefix: [UInt8] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]

    public var privateKeyPEM: String { pem("PRIVATE KEY", SigningKey.pkcs8Prefix + Array(privateKey.rawRepresentation)) }
    public var publicKeyPEM: String { SigningKey.publicKeyPEM(publicKey) }

    public static func publicKeyPEM(_ raw: [UInt8]) -> String { pem("PUBLIC KEY", spkiPrefix + raw) }

    /// Reads a private key PEM file.
    public static func load(path: String) throws(CaptureError) -> SigningKey {
        try privateKey(pem: try readText(path), path: path)
    }

    static func privateKey(pem text: String, path: String) throws(CaptureError) -> SigningKey {
        let der = try parsePEM(text, path: path, label: "PRIVATE KEY", prefix: pkcs8Prefix)
        do { return try SigningKey(seed: der) } catch { throw CaptureError(.key, "\(path): not an Ed25519 private key") }
    }

    /// Reads the key at `path`, or creates one there (mode 0600, parent directories 0700).
    public static func loadOrCreate(path: String) throws(CaptureError) -> SigningKey {
        if FileManager.default.fileExists(atPath: path) { return try load(path: path) }
        let key = SigningKey()
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty {
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw CaptureError(.io, "\(path): cannot create key file: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        try writeAll(fd: fd, Array(key.privateKeyPEM.utf8), path: path)
        guard fsync(fd) == 0 else { throw CaptureError(.io, "\(path): fsync failed: \(String(cString: strerror(errno)))") }
        return key
    }

    /// Reads a public key PEM file (or a private key file, whose public half is taken).
    public static func loadPublicKey(path: String) throws(CaptureError) -> [UInt8] {
        // Read once: the path may be a pipe.
        let text = try readText(path)
        if text.contains("BEGIN PRIVATE KEY") { return try privateKey(pem: text, path: path).publicKey }
        return try parsePEM(text, path: path, label: "PUBLIC KEY", prefix: spkiPrefix)
    }

    /// A public key from PEM text (SubjectPublicKeyInfo), such as one quoted in a manifest.
    public static func publicKey(pem text: String) throws(CaptureError) -> [UInt8] {
        try parsePEM(text, path: "public key", label: "PUBLIC KEY", prefix: spkiPrefix)
    }

    /// Reads a key file; also a pipe, such as `--key <(capture-proxy public-key …)`.
    static func readText(_ path: String) throws(CaptureError) -> String {
        guard let handle = FileHandle(forReadingAtPath: path), let data = try? handle.readToEnd(),
              let text = String(data: data, encoding: .utf8) else {
            throw CaptureError(.io, "\(path): cannot read key file")
        }
        return text
    }

    static func parsePEM(_ text: String, path: String, label: String, prefix: [UInt8]) throws(CaptureError) -> [UInt8] {
        let begin = "-----BEGIN \(label)-----", end = "-----END \(label)-----"
        guard let b = text.range(of: begin), let e = text.range(of: end), b.upperBound <= e.lowerBound else {
            throw CaptureError(.key, "\(path): no \"\(begin)\" block")
        }
        let body = text[b.upperBound..<e.lowerBound].filter { !$0.isWhitespace }
        guard let der = Data(base64Encoded: String(body)).map(Array.init), der.count == prefix.count + 32,
              der.starts(with: prefix) else {
            throw CaptureError(.key, "\(path): \(label) is not an Ed25519 key")
        }
        return Array(der.suffix(32))
    }
}

func pem(_ label: String, _ der: [UInt8]) -> String {
    "-----BEGIN \(label)-----\n\(Data(der).base64EncodedString(options: .lineLength64Characters))\n-----END \(label)-----\n"
}

public func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0xF)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Writes every byte, retrying short writes and EINTR.
func writeAll(fd: Int32, _ bytes: [UInt8], path: String) throws(CaptureError) {
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
        if n < 0 {
            if errno == EINTR { continue }
            throw CaptureError(.io, "\(path): write failed: \(String(cString: strerror(errno)))")
        }
        done += n
    }
}
