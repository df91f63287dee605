import CaptureFormat
import Foundation

// Scratch directories and small captures written event by event, for tests of the tools that read them.

/// A directory under the system temporary directory, removed by `remove()`.
public struct ScratchDirectory: Sendable {
    public let dir: URL

    public init(_ prefix: String = "tollgate") throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    public func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
    public func remove() { try? FileManager.default.removeItem(at: dir) }
}

/// Writes a capture of `payloads` (each with its exchange id), 1.5 ms apart, in small blocks.
@discardableResult
public func writeCapture(_ path: String, key: SigningKey, sessionID: String = UUID().uuidString.lowercased(), protocolName: String = "postgres",
                  subject: String = "alice@example.com", target: String = "analytics-db", blockBytes: Int = 512, close: Bool = true,
                  _ payloads: [(UInt64, Payload)]) throws -> [Event] {
    var options = WriterOptions()
    options.blockTargetBytes = blockBytes
    options.durability = .none
    let start: Int64 = 1_790_000_000_000_000
    let header = SessionHeader(sessionID: sessionID, target: target, protocolName: protocolName, subject: subject,
                               groups: ["ai-assistants"], proxyID: "gate-1", startMicros: start)
    let w = try CaptureWriter(path: path, header: header, key: key, options: options)
    var t = start
    var written: [Event] = []
    for (x, p) in [(UInt64(0), Payload.sessionStart(SessionStart(clientAddress: "127.0.0.1:5000", applicationName: "psql")))] + payloads
        + [(0, .sessionEnd(SessionEnd(reason: "client-terminate")))] {
        t += 1500
        var e = Event(monotonicNanos: UInt64(t - start) * 1000, wallMicros: t, exchangeID: x, payload: p)
        e.sequence = try w.append(e)
        written.append(e)
    }
    if close { try w.close() } else { try w.flush() }
    return written
}
