import CaptureFormat

/// The searchable texts of an event, read straight from its encoded payload (no structs, no
/// copies where the text is stored as one field), for PATTERN:
///
/// - requests: a statement (matched whole: `.` matches a newline), each bound parameter value;
///   an HTTP request line `METHOD TARGET`, an exec command joined by spaces (whole), a request
///   body; stdin stream data;
/// - responses: the recorded rows, values joined by tab and rows by newline (NULL empty); the
///   command tag (whole); error and notice message, detail and hint; a response body; stdout and
///   stderr stream data.
///
/// Everything but the whole texts is matched line by line, as grep does. The only bytes added
/// between stored values are tab, newline and space (TextPattern.requiredLiteral relies on it).
struct EventTexts {
    var scratch: [UInt8] = []

    /// Calls `body` with each text of the event in `scope`; stops early and returns true when `body` does.
    mutating func search(kind: EventKind?, payload: Range<Int>, in buffer: UnsafeRawBufferPointer,
                         requests: Bool, responses: Bool,
                         _ body: (UnsafeRawBufferPointer, _ whole: Bool) -> Bool) throws -> Bool {
        var r = WireReader(buffer, range: payload)
        switch kind {
        case .request where requests:
            while let (tag, t) = try r.nextField() {
                switch tag {
                case 1:
                    var pg = try r.subReader(t)
                    while let (f, ft) = try pg.nextField() {
                        switch f {
                        case 1: if body(slice(buffer, try pg.range(ft)), true) { return true }
                        case 5:
                            var param = try pg.subReader(ft)
                            while let (g, gt) = try param.nextField() {
                                if g == 1 { if body(slice(buffer, try param.range(gt)), false) { return true } } else { try param.skip(gt) }
                            }
                        default: try pg.skip(ft)
                        }
                    }
                case 2:
                    var http = try r.subReader(t)
                    if try httpRequest(&http, buffer, body) { return true }
                case 3:
                    var k8s = try r.subReader(t)
                    var command: [Range<Int>] = []
                    while let (f, ft) = try k8s.nextField() {
                        switch f {
                        case 1:
                            var http = try k8s.subReader(ft)
                            if try httpRequest(&http, buffer, body) { return true }
                        case 9: command.append(try k8s.range(ft))
                        default: try k8s.skip(ft)
                        }
                    }
                    if !command.isEmpty {
                        scratch.removeAll(keepingCapacity: true)
                        for (i, c) in command.enumerated() {
                            if i > 0 { scratch.append(32) }
                            scratch.append(contentsOf: slice(buffer, c))
                        }
                        if scratch.withUnsafeBytes({ body($0, true) }) { return true }
                    }
                default: try r.skip(t)
                }
            }
        case .response where responses:
            while let (tag, t) = try r.nextField() {
                switch tag {
                case 1:
                    var pg = try r.subReader(t)
                    scratch.removeAll(keepingCapacity: true)
                    while let (f, ft) = try pg.nextField() {
                        switch f {
                        case 2:
                            var row = try pg.subReader(ft)
                            if !scratch.isEmpty { scratch.append(10) }
                            var first = true
                            while !row.isAtEnd {
                                let n = try row.varint()
                                if !first { scratch.append(9) }
                                first = false
                                if n > 0 {
                                    let start = row.position
                                    try row.skip(bytes: n - 1)
                                    scratch.append(contentsOf: slice(buffer, start..<row.position))
                                }
                            }
                        case 4: if body(slice(buffer, try pg.range(ft)), true) { return true }
                        case 5, 6:
                            var notice = try pg.subReader(ft)
                            while let (g, gt) = try notice.nextField() {
                                if g >= 3 && g <= 5 { if body(slice(buffer, try notice.range(gt)), false) { return true } } else { try notice.skip(gt) }
                            }
                        default: try pg.skip(ft)
                        }
                    }
                    if !scratch.isEmpty, scratch.withUnsafeBytes({ body($0, false) }) { return true }
                case 2:
                    var http = try r.subReader(t)
                    while let (f, ft) = try http.nextField() {
                        if f == 3 {
                            var capped = try http.subReader(ft)
                            if try cappedData(&capped, buffer, body) { return true }
                        } else {
                            try http.skip(ft)
                        }
                    }
                default: try r.skip(t)
                }
            }
        case .streamChunk:
            var stream: UInt64 = 0
            var data: Range<Int>?
            while let (tag, t) = try r.nextField() {
                switch tag {
                case 1: stream = try r.uint(t)
                case 2: data = try r.range(t)
                default: try r.skip(t)
                }
            }
            guard let data else { return false }
            let wanted = stream == 0 ? requests : (stream == 1 || stream == 2) ? responses : false
            return wanted && body(slice(buffer, data), false)
        default:
            break
        }
        return false
    }

    private mutating func httpRequest(_ r: inout WireReader, _ buffer: UnsafeRawBufferPointer,
                                      _ body: (UnsafeRawBufferPointer, Bool) -> Bool) throws -> Bool {
        var method: Range<Int>?, target: Range<Int>?
        while let (f, ft) = try r.nextField() {
            switch f {
            case 1: method = try r.range(ft)
            case 2: target = try r.range(ft)
            case 5:
                var capped = try r.subReader(ft)
                if try cappedData(&capped, buffer, body) { return true }
            default: try r.skip(ft)
            }
        }
        scratch.removeAll(keepingCapacity: true)
        if let method { scratch.append(contentsOf: slice(buffer, method)) }
        scratch.append(32)
        if let target { scratch.append(contentsOf: slice(buffer, target)) }
        return scratch.withUnsafeBytes { body($0, true) }
    }

    private func cappedData(_ r: inout WireReader, _ buffer: UnsafeRawBufferPointer,
                            _ body: (UnsafeRawBufferPointer, Bool) -> Bool) throws -> Bool {
        while let (g, gt) = try r.nextField() {
            if g == 1 { if body(slice(buffer, try r.range(gt)), false) { return true } } else { try r.skip(gt) }
        }
        return false
    }
}

@inline(__always) func slice(_ buffer: UnsafeRawBufferPointer, _ range: Range<Int>) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(rebasing: buffer[range])
}

extension EventEnvelope {
    /// The HTTP status of a response event, read without decoding its body; nil for others.
    func httpStatus(in buffer: UnsafeRawBufferPointer) throws -> UInt16? {
        guard kind == .response else { return nil }
        var r = WireReader(buffer, range: payload)
        while let (tag, t) = try r.nextField() {
            guard tag == 2 else { try r.skip(t); continue }
            var http = try r.subReader(t)
            var status: UInt16 = 0
            while let (f, ft) = try http.nextField() {
                if f == 1 { status = UInt16(truncatingIfNeeded: try http.uint(ft)) } else { try http.skip(ft) }
            }
            return status
        }
        return nil
    }
}
