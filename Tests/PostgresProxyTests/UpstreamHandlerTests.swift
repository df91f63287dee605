import Logging
import NIOCore
import NIOEmbedded
import PostgresWire
import Testing
@testable import PostgresProxy

/// The brokered upstream login on an EmbeddedChannel: the database's messages are written in the
/// test, and what the handler sends and reports to its session is checked. No database.
@Suite struct UpstreamHandlerTests {
    /// A session as the test sees it: what the handler reported, in order.
    final class Session: UpstreamSession {
        var upstreamLogin: UpstreamLogin?
        let logger = Logger(label: "upstream-handler-tests")
        let targetName = "db"
        var ready: (keyData: (Int32, Int32)?, parameterStatus: [PostgresBackendMessage], ready: PostgresBackendMessage)?
        var failures: [String] = []
        var relayed: [PostgresBackendMessage] = []
        var closed: [Bool] = []
        var flushes = 0

        init(password: String?) {
            upstreamLogin = UpstreamLogin(user: "gate_login", password: password,
                                          parameters: [("user", "gate_login"), ("database", "app"), ("client_encoding", "UTF8")])
        }

        func catalogToRead() -> CatalogCache? { nil }
        func upstreamReady(keyData: (Int32, Int32)?, parameterStatus: [PostgresBackendMessage], ready: PostgresBackendMessage) {
            self.ready = (keyData, parameterStatus, ready)
        }
        func upstreamLoginFailed(_ detail: String) { failures.append(detail) }
        func upstreamMessage(_ message: PostgresBackendMessage, frame: ByteBuffer) { relayed.append(message) }
        func upstreamClosed(afterFatal: Bool) { closed.append(afterFatal) }
        func flushClient() { flushes += 1 }
        func upstreamWritabilityChanged(_ writable: Bool) {}
    }

    /// The handler on an EmbeddedChannel, after `begin` (plaintext: upstream_tls disable).
    static func connect(_ session: Session) throws -> (EmbeddedChannel, UpstreamHandler<Session>) {
        let handler = UpstreamHandler(session: session, maxMessageSize: 1 << 20, tlsMode: .disable, tlsContext: nil, serverName: nil)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(handler)
        handler.begin(context: channel)
        return (channel, handler)
    }

    /// What the handler wrote to the database, decoded.
    static func sent(_ channel: EmbeddedChannel, phase: PostgresFrontendDecoder.Phase) throws -> [PostgresFrontendMessage] {
        var frames = FramedDecoding(PostgresFrontendDecoder(phase: phase, maxMessageSize: 1 << 20))
        while let bytes = try channel.readOutbound(as: ByteBuffer.self) { frames.append(bytes) }
        var messages: [PostgresFrontendMessage] = []
        while let (message, _) = try frames.next() { messages.append(message) }
        return messages
    }

    /// The database's messages, in one read.
    static func receive(_ channel: EmbeddedChannel, _ messages: [PostgresBackendMessage]) throws {
        var buffer = ByteBuffer()
        for m in messages { try m.encode(into: &buffer) }
        try channel.writeInbound(buffer)
    }

    @Test func md5LoginReportsTheServersParametersAndKeyOnce() throws {
        let session = Session(password: "s3cret")
        let (channel, _) = try Self.connect(session)
        let startup = try Self.sent(channel, phase: .startup)
        guard case .startup(let message)? = startup.first, startup.count == 1 else { Issue.record("no startup: \(startup)"); return }
        #expect(message.parameter("user") == "gate_login" && message.parameter("database") == "app")

        try Self.receive(channel, [.authentication(.md5Password(salt: 0x0102_0304))])
        let password = try Self.sent(channel, phase: .typed)
        guard case .password(let body)? = password.first else { Issue.record("no password message: \(password)"); return }
        #expect(try PostgresFrontendMessage.parseCleartextPassword(body)
                == PostgresAuthentication.md5Password(user: "gate_login", password: "s3cret", salt: 0x0102_0304))
        #expect(session.ready == nil)

        try Self.receive(channel, [.authentication(.ok), .parameterStatus(name: "server_version", value: "15.4"),
                                   .parameterStatus(name: "standard_conforming_strings", value: "on"),
                                   .backendKeyData(processID: 4242, secretKey: 99), .readyForQuery(.idle)])
        let ready = try #require(session.ready)
        #expect(ready.keyData?.0 == 4242 && ready.keyData?.1 == 99)
        #expect(ready.parameterStatus == [.parameterStatus(name: "server_version", value: "15.4"),
                                          .parameterStatus(name: "standard_conforming_strings", value: "on")])
        #expect(ready.ready == .readyForQuery(.idle))
        #expect(session.relayed.isEmpty && session.failures.isEmpty)
        #expect(try Self.sent(channel, phase: .typed).isEmpty)  // nothing else sent: the catalog is not needed

        // Relaying: every message goes to the session, and the read's end flushes the client.
        let flushes = session.flushes
        try Self.receive(channel, [.commandComplete(tag: "SELECT 1"), .readyForQuery(.idle)])
        #expect(session.relayed == [.commandComplete(tag: "SELECT 1"), .readyForQuery(.idle)])
        #expect(session.flushes > flushes)
        // A FATAL from the database, then its close: the session ends as the server ended it.
        try Self.receive(channel, [.errorResponse(.init(severity: "FATAL", sqlState: "57P01", message: "terminating connection"))])
        try channel.close().wait()
        #expect(session.closed == [true])
    }

    @Test func aPasswordRequestWithoutAPasswordFailsTheLogin() throws {
        let session = Session(password: nil)
        let (channel, _) = try Self.connect(session)
        _ = try Self.sent(channel, phase: .startup)
        try Self.receive(channel, [.authentication(.cleartextPassword)])
        #expect(session.failures == ["the database asks for a password and the target has none configured"])
        #expect(try Self.sent(channel, phase: .typed).isEmpty)  // no password sent
        #expect(session.ready == nil)
        #expect(!channel.isActive)
    }

    @Test func aLoginErrorFromTheDatabaseIsReportedAndNothingIsRelayed() throws {
        let session = Session(password: "s3cret")
        let (channel, _) = try Self.connect(session)
        _ = try Self.sent(channel, phase: .startup)
        try Self.receive(channel, [.authentication(.cleartextPassword)])
        guard case .password(let body)? = try Self.sent(channel, phase: .typed).first else { Issue.record("no password"); return }
        #expect(try PostgresFrontendMessage.parseCleartextPassword(body) == "s3cret")
        try Self.receive(channel, [.errorResponse(.init(severity: "FATAL", sqlState: "28P01", message: "password authentication failed")),
                                   .readyForQuery(.idle)])
        #expect(session.failures == ["password authentication failed"])
        #expect(session.ready == nil && session.relayed.isEmpty)
        #expect(!channel.isActive)
    }
}
