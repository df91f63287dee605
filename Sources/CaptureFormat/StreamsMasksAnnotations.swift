// The event model: stream chunks, mask summaries, annotations and divergences (field tags are file format).

public struct StreamChunk: Sendable, Equatable, WireMessage {
    public enum Stream: UInt8, Sendable, CaseIterable {
        case stdin = 0, stdout = 1, stderr = 2, resize = 3
        public var name: String {
            switch self { case .stdin: "stdin"; case .stdout: "stdout"; case .stderr: "stderr"; case .resize: "resize" }
        }
    }
    public var stream: Stream
    public var data: [UInt8]
    /// Terminal size, for `resize` (and optionally any chunk).
    public var columns: UInt16
    public var rows: UInt16

    public init(stream: Stream, data: [UInt8] = [], columns: UInt16 = 0, rows: UInt16 = 0) {
        self.stream = stream; self.data = data; self.columns = columns; self.rows = rows
    }

    public func encode(to w: inout WireWriter) {
        // Stream 0 (stdin) is written explicitly: absence must not be read as a default.
        w.key(1, .varint); w.varint(UInt64(stream.rawValue))
        if !data.isEmpty { w.bytes(2, data) }
        w.uint(3, UInt64(columns)); w.uint(4, UInt64(rows))
    }

    public init(wire r: inout WireReader) throws {
        self.init(stream: .stdout)
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: stream = Stream(rawValue: UInt8(truncatingIfNeeded: try r.uint(t))) ?? .stdout
            case 2: data = try r.bytes(t)
            case 3: columns = UInt16(truncatingIfNeeded: try r.uint(t))
            case 4: rows = UInt16(truncatingIfNeeded: try r.uint(t))
            default: try r.skip(t)
            }
        }
    }
}

public struct MaskCount: Sendable, Equatable, WireMessage {
    /// The detector or rule that fired (credit_card, us_ssn, email, column:*.phone…).
    public var detector: String
    public var count: UInt64
    /// Where: a column name, a header or a JSON field.
    public var location: String

    public init(detector: String, count: UInt64, location: String = "") {
        self.detector = detector; self.count = count; self.location = location
    }

    public func encode(to w: inout WireWriter) { w.string(1, detector); w.uint(2, count); w.string(3, location) }

    public init(wire r: inout WireReader) throws {
        self.init(detector: "", count: 0)
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: detector = try r.string(t)
            case 2: count = try r.uint(t)
            case 3: location = try r.string(t)
            default: try r.skip(t)
            }
        }
    }
}

public struct MaskSummary: Sendable, Equatable, WireMessage {
    public var entries: [MaskCount]
    public init(entries: [MaskCount]) { self.entries = entries }

    public func encode(to w: inout WireWriter) { w.messages(1, entries) }

    public init(wire r: inout WireReader) throws {
        entries = []
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: entries.append(try r.message(t))
            default: try r.skip(t)
            }
        }
    }
}

/// Links an exchange to what produced it: an assistant's prompt, a W3C trace, free text.
public struct Annotation: Sendable, Equatable, WireMessage {
    public var promptID: String
    /// W3C traceparent (version-traceid-spanid-flags).
    public var traceparent: String
    public var text: String
    public var attributes: [KeyValue]

    public init(promptID: String = "", traceparent: String = "", text: String = "", attributes: [KeyValue] = []) {
        self.promptID = promptID; self.traceparent = traceparent; self.text = text; self.attributes = attributes
    }

    /// The attribute that holds the client's application name (PostgreSQL `application_name`) as
    /// the gate knew it when it recorded the annotation.
    public static let applicationNameKey = "application_name"

    /// The client's application name, when the annotation carries it.
    public var applicationName: String? { attributes.first { $0.key == Annotation.applicationNameKey }?.value }

    /// The 32-hex-digit trace id inside `traceparent`, if well-formed.
    public var traceID: String? {
        let parts = traceparent.split(separator: "-")
        guard parts.count >= 4, parts[1].count == 32 else { return nil }
        return String(parts[1])
    }

    public func encode(to w: inout WireWriter) {
        w.string(1, promptID); w.string(2, traceparent); w.string(3, text); w.messages(4, attributes)
    }

    public init(wire r: inout WireReader) throws {
        self.init()
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: promptID = try r.string(t)
            case 2: traceparent = try r.string(t)
            case 3: text = try r.string(t)
            case 4: attributes.append(try r.message(t))
            default: try r.skip(t)
            }
        }
    }
}

/// The server's answer did not match the gate's reading of a request (a command tag the statement
/// kind the gate decided on cannot return, or more or fewer completions than statements): the
/// gate ended the session. Recorded against the exchange whose answer diverged.
public struct Divergence: Sendable, Equatable, WireMessage {
    /// The statement's position in its request, from 0 (or the completion's, past the last statement).
    public var statement: UInt64
    /// What the gate decided on: the statement kind, or a count of statements.
    public var expected: String
    /// What the server answered: the command tag, or a count of completions.
    public var actual: String

    public init(statement: UInt64 = 0, expected: String = "", actual: String = "") {
        self.statement = statement; self.expected = expected; self.actual = actual
    }

    public func encode(to w: inout WireWriter) {
        w.uint(1, statement); w.string(2, expected); w.string(3, actual)
    }

    public init(wire r: inout WireReader) throws {
        self.init()
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: statement = try r.uint(t)
            case 2: expected = try r.string(t)
            case 3: actual = try r.string(t)
            default: try r.skip(t)
            }
        }
    }
}
