// The event model: the session start and end, and the session's totals (field tags are file format).

public struct TLSInfo: Sendable, Equatable, WireMessage {
    public var version: String
    public var cipher: String
    public var serverName: String
    public init(version: String, cipher: String, serverName: String = "") {
        self.version = version; self.cipher = cipher; self.serverName = serverName
    }

    public func encode(to w: inout WireWriter) {
        w.string(1, version); w.string(2, cipher); w.string(3, serverName)
    }

    public init(wire r: inout WireReader) throws {
        version = ""; cipher = ""; serverName = ""
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: version = try r.string(t)
            case 2: cipher = try r.string(t)
            case 3: serverName = try r.string(t)
            default: try r.skip(t)
            }
        }
    }
}

public struct SessionStart: Sendable, Equatable, WireMessage {
    public var clientAddress: String
    public var applicationName: String
    public var tls: TLSInfo?
    /// Protocol parameters the client sent (PostgreSQL startup parameters, HTTP user agent…), never secrets.
    public var parameters: [KeyValue]

    public init(clientAddress: String, applicationName: String = "", tls: TLSInfo? = nil, parameters: [KeyValue] = []) {
        self.clientAddress = clientAddress; self.applicationName = applicationName
        self.tls = tls; self.parameters = parameters
    }

    public func encode(to w: inout WireWriter) {
        w.string(1, clientAddress); w.string(2, applicationName)
        w.message(3, tls); w.messages(4, parameters)
    }

    public init(wire r: inout WireReader) throws {
        self.init(clientAddress: "")
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: clientAddress = try r.string(t)
            case 2: applicationName = try r.string(t)
            case 3: tls = try r.message(t)
            case 4: parameters.append(try r.message(t))
            default: try r.skip(t)
            }
        }
    }
}

public struct SessionEnd: Sendable, Equatable, WireMessage {
    /// Why the session ended: client-terminate, client-disconnect, upstream-closed, idle-timeout, shutdown, error…
    public var reason: String
    public var detail: String
    /// What passed through the gate in the session; nil from writers that do not count.
    public var counts: SessionCounts?

    public init(reason: String, detail: String = "", counts: SessionCounts? = nil) {
        self.reason = reason; self.detail = detail; self.counts = counts
    }

    public func encode(to w: inout WireWriter) { w.string(1, reason); w.string(2, detail); w.message(3, counts) }

    public init(wire r: inout WireReader) throws {
        reason = ""; detail = ""; counts = nil
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: reason = try r.string(t)
            case 2: detail = try r.string(t)
            case 3: counts = try r.message(t)
            default: try r.skip(t)
            }
        }
    }
}

/// A session's totals as the gate saw them on the wire, whatever the recording caps kept: an
/// auditor can tell a capped record from a short session, and compare with the footer's summary.
public struct SessionCounts: Sendable, Equatable, WireMessage {
    /// Requests the client sent, one exchange each (PostgreSQL: simple Queries, Executes, function
    /// calls, and Parses the gate refused).
    public var requests: UInt64
    /// Requests the gate did not forward (denied, or waiting for an approval it could not get).
    public var refused: UInt64
    /// Error responses, from the database or the gate.
    public var errors: UInt64
    /// Result rows passed to the client.
    public var rows: UInt64
    public var bytesFromClient: UInt64
    public var bytesToClient: UInt64

    public init(requests: UInt64 = 0, refused: UInt64 = 0, errors: UInt64 = 0, rows: UInt64 = 0,
                bytesFromClient: UInt64 = 0, bytesToClient: UInt64 = 0) {
        self.requests = requests; self.refused = refused; self.errors = errors; self.rows = rows
        self.bytesFromClient = bytesFromClient; self.bytesToClient = bytesToClient
    }

    public func encode(to w: inout WireWriter) {
        w.uint(1, requests); w.uint(2, refused); w.uint(3, errors); w.uint(4, rows)
        w.uint(5, bytesFromClient); w.uint(6, bytesToClient)
    }

    public init(wire r: inout WireReader) throws {
        self.init()
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: requests = try r.uint(t)
            case 2: refused = try r.uint(t)
            case 3: errors = try r.uint(t)
            case 4: rows = try r.uint(t)
            case 5: bytesFromClient = try r.uint(t)
            case 6: bytesToClient = try r.uint(t)
            default: try r.skip(t)
            }
        }
    }
}
