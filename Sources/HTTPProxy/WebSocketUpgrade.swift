import Crypto
import Foundation

/// The WebSocket opening handshake of an exec or attach through the gate (RFC 6455 §4): what the
/// client asked for, what the gate sends upstream as the upstream's client (its own key, only the
/// subprotocols it can follow, no extension), and whether the upstream's answer is one it takes.
struct WebSocketUpgrade: Equatable, Sendable {
    /// The client's key, answered in the gate's 101.
    let clientKey: String
    /// The subprotocols the client offered that the gate follows, in the client's order.
    let offered: [KubernetesStreamRelay.Subprotocol]
    /// The gate's own key upstream.
    let upstreamKey: String

    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    static let handshakeFields: Set<String> = ["sec-websocket-key", "sec-websocket-version", "sec-websocket-protocol",
                                               "sec-websocket-extensions", "sec-websocket-accept"]

    /// The client's upgrade request (`GET` with `Upgrade: websocket`, checked by `KubernetesRequestFacts`),
    /// or why the gate cannot follow it.
    static func request(_ head: RequestHead) -> Result<WebSocketUpgrade, KubernetesRequestRefusal> {
        let versions = head.fields.listElements("sec-websocket-version")
        guard versions == ["13"] else {
            return .failure(.init("a WebSocket upgrade needs Sec-WebSocket-Version: 13 (got \(versions.isEmpty ? "none" : versions.joined(separator: ", ")))"))
        }
        let keys = head.fields.values("sec-websocket-key")
        guard keys.count == 1, let key = keys.first, Data(base64Encoded: key)?.count == 16 else {
            return .failure(.init("a WebSocket upgrade needs one Sec-WebSocket-Key of 16 bytes in base64"))
        }
        let asked = head.fields.listElements("sec-websocket-protocol")
        let followed = asked.compactMap { KubernetesStreamRelay.Subprotocol(rawValue: $0) }
        guard !followed.isEmpty else {
            return .failure(.init("the gate follows the stream protocols \(KubernetesStreamRelay.Subprotocol.allCases.map(\.rawValue).joined(separator: " and ")) only; "
                                  + "the client offered \(asked.isEmpty ? "none" : asked.joined(separator: ", "))"))
        }
        return .success(WebSocketUpgrade(clientKey: key, offered: followed, upstreamKey: Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()))
    }

    static func accept(_ key: String) -> String {
        Data(Insecure.SHA1.hash(data: Data((key + guid).utf8))).base64EncodedString()
    }

    /// The client's fields as they go upstream: the client's handshake fields replaced by the gate's.
    func upstreamFields(_ fields: [HTTPField]) -> [HTTPField] {
        fields.filter { !Self.handshakeFields.contains($0.canonicalName) } + [
            HTTPField("Connection", "Upgrade"), HTTPField("Upgrade", "websocket"), HTTPField("Sec-WebSocket-Version", "13"),
            HTTPField("Sec-WebSocket-Key", upstreamKey), HTTPField("Sec-WebSocket-Protocol", offered.map(\.rawValue).joined(separator: ", ")),
        ]
    }

    /// The gate's 101 to the client.
    func switching(to chosen: KubernetesStreamRelay.Subprotocol) -> [UInt8] {
        Array(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               + "Sec-WebSocket-Accept: \(Self.accept(clientKey))\r\nSec-WebSocket-Protocol: \(chosen.rawValue)\r\n\r\n").utf8)
    }

    /// The upstream's response head, read up to its blank line.
    struct ResponseHead: Equatable, Sendable {
        var status: Int
        var reason: String
        var fields: [HTTPField]
    }

    /// Where the head ends (after its CRLFCRLF) in `bytes`, if it has.
    static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 { return i + 4 }
        return nil
    }

    static func parseHead(_ bytes: [UInt8]) -> ResponseHead? {
        let lines = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n").filter { !$0.isEmpty }
        guard let first = lines.first else { return nil }
        let parts = first.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else { return nil }
        var fields: [HTTPField] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            fields.append(HTTPField(String(line[..<colon]), line[line.index(after: colon)...].trimmingOWS()))
        }
        return ResponseHead(status: status, reason: parts.count > 2 ? String(parts[2]) : "", fields: fields)
    }

    /// The subprotocol of an upstream 101 the gate takes, or why not: the upgrade to websocket, the
    /// accept value for the gate's key, and one of the subprotocols offered.
    func accepted(_ head: ResponseHead) -> Result<KubernetesStreamRelay.Subprotocol, KubernetesRequestRefusal> {
        guard head.status == 101 else { return .failure(.init("the upstream answered \(head.status)")) }
        guard head.fields.listElements("upgrade").map({ $0.lowercased() }) == ["websocket"] else {
            return .failure(.init("the upstream switched to another protocol than websocket"))
        }
        guard head.fields.values("sec-websocket-accept") == [Self.accept(upstreamKey)] else {
            return .failure(.init("the upstream's Sec-WebSocket-Accept does not answer the gate's key"))
        }
        guard head.fields.values("sec-websocket-extensions").isEmpty else {
            return .failure(.init("the upstream chose a WebSocket extension the gate did not offer"))
        }
        guard let name = head.fields.values("sec-websocket-protocol").first, let chosen = KubernetesStreamRelay.Subprotocol(rawValue: name),
              offered.contains(chosen) else {
            return .failure(.init("the upstream chose no stream protocol the gate offered (\(offered.map(\.rawValue).joined(separator: ", ")))"))
        }
        return .success(chosen)
    }
}
