import CaptureFormat
import Crypto
import Foundation

/// A file being written into a bundle (or, in `verify`, only measured): bytes go through a
/// SHA-256 and, when there is a path, to disk through a buffer. A class because renderers
/// hand it on while it accumulates state; it never leaves the thread that made it.
public final class DigestWriter {
    let fd: Int32?
    let path: String
    var hasher = SHA256()
    var buffer: [UInt8] = []
    public private(set) var size: UInt64 = 0

    /// Creates `path` (it must not exist; mode 0644, bundles are meant to be read), or only hashes when `path` is nil.
    public init(path: String?) throws(ExportError) {
        self.path = path ?? "-"
        if let path {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw ExportError.io("\(path): cannot create: \(String(cString: strerror(errno)))") }
            self.fd = fd
        } else {
            fd = nil
        }
        buffer.reserveCapacity(1 << 16)
    }

    deinit { if let fd { close(fd) } }

    public func write(_ s: String) throws(ExportError) { try write(bytes: Array(s.utf8)) }

    public func write(bytes: [UInt8]) throws(ExportError) {
        hasher.update(data: bytes)
        size += UInt64(bytes.count)
        guard fd != nil else { return }
        buffer += bytes
        if buffer.count >= 1 << 16 { try flush() }
    }

    func flush() throws(ExportError) {
        guard let fd, !buffer.isEmpty else { return }
        var done = 0
        while done < buffer.count {
            let n = buffer.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + done, buffer.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ExportError.io("\(path): write failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes, syncs and returns the hex SHA-256.
    public func finish() throws(ExportError) -> String {
        try flush()
        if let fd, fsync(fd) != 0 { throw ExportError.io("\(path): fsync failed: \(String(cString: strerror(errno)))") }
        return hex(Array(hasher.finalize()))
    }
}

/// One open-format file rendered from a capture.
public struct RenderedFile: Sendable, Equatable {
    /// Name inside the session's directory.
    public var name: String
    public var kind: String
    public var sha256: String
    public var size: UInt64
}

/// One line of a session's timeline for the report.
public struct TimelineEntry: Sendable {
    public var sequence: UInt64
    public var micros: Int64
    public var exchange: UInt64
    public var kind: String
    public var text: String
}

/// What rendering one capture produced: its files, and what the report shows of it.
public struct SessionRendering: Sendable {
    public var files: [RenderedFile] = []
    public var exchanges: [Exchange] = []
    public var timeline: [TimelineEntry] = []
    public var timelineOmitted: UInt64 = 0
    public var approvals: [String: UInt64] = [:]
}

/// Renders the open formats of one session in one pass over its events: events.jsonl as it
/// goes, then exchanges.csv, statements.sql (PostgreSQL), http.har (HTTP and Kubernetes) and
/// one exec-xN.cast per terminal stream. The output depends only on the capture's bytes, so
/// `verify` can render again and compare.
public enum SessionRenderer {
    /// `timeline`: how many events to keep for the report's timeline (0 in `verify`, which renders no report).
    public static func render(_ capture: CaptureFile, capturePath: String, timeline timelineLimit: Int = 0,
                              open: (String) throws(ExportError) -> DigestWriter) throws(ExportError) -> SessionRendering {
        var result = SessionRendering()
        var assembler = ExchangeAssembler(keepsRows: false)
        var casts: [UInt64: AsciicastBuilder] = [:]
        var castOrder: [UInt64] = []
        let plain = Terminal(environment: ["NO_COLOR": "1"])
        let events = try open("events.jsonl")
        do {
            try capture.forEachEvent { e in
                try events.write(e.jsonLine() + "\n")
                assembler.add(e)
                if case .approval(let a) = e.payload { result.approvals[a.state.name, default: 0] += 1 }
                if case .streamChunk(let chunk) = e.payload, e.exchangeID != 0 {
                    if casts[e.exchangeID] == nil {
                        casts[e.exchangeID] = AsciicastBuilder()
                        castOrder.append(e.exchangeID)
                    }
                    casts[e.exchangeID]!.add(chunk, event: e)
                }
                if result.timeline.count < timelineLimit {
                    result.timeline.append(TimelineEntry(sequence: e.sequence, micros: e.wallMicros, exchange: e.exchangeID,
                                                         kind: e.payload.kind?.name ?? "kind-\(e.kindCode)", text: describe(e.payload, terminal: plain)))
                } else {
                    result.timelineOmitted += 1
                }
                return true
            }
        } catch let error as ExportError {
            throw error
        } catch {
            throw ExportError.capture("\(capturePath): \(error)")
        }
        result.files.append(RenderedFile(name: "events.jsonl", kind: "events", sha256: try events.finish(), size: events.size))
        result.exchanges = assembler.exchanges

        func emit(_ name: String, _ kind: String, _ text: String) throws(ExportError) {
            let w = try open(name)
            try w.write(text)
            result.files.append(RenderedFile(name: name, kind: kind, sha256: try w.finish(), size: w.size))
        }
        try emit("exchanges.csv", "exchanges-csv", CSV.exchanges(result.exchanges, session: capture.header.sessionID))
        if let sql = SQLScript.render(result.exchanges, header: capture.header, capturePath: capturePath) {
            try emit("statements.sql", "sql", sql)
        }
        // Casts only for terminal streams (exec, attach); a PostgreSQL COPY's chunks are data, in events.jsonl.
        var castNames: [UInt64: String] = [:]
        let exchangesByID = Dictionary(result.exchanges.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for id in castOrder where exchangesByID[id]?.isTerminalStream == true && casts[id]?.isEmpty == false {
            castNames[id] = "exec-x\(id).cast"
        }
        if let har = HAR.render(result.exchanges, header: capture.header, casts: castNames) {
            try emit("http.har", "har", har)
        }
        for id in castOrder {
            guard let name = castNames[id], let cast = casts[id] else { continue }
            try emit(name, "asciicast", cast.render(header: capture.header, exchange: exchangesByID[id]))
        }
        return result
    }
}
