/// Parses a request line and header section from raw bytes, strictly (RFC 9112 §2-5). The gate
/// parses heads itself rather than trusting a lenient decoder: obs-fold, a space before the colon,
/// bare CR or LF and control characters are refused, since a server behind the gate might read
/// them differently from the gate, which is how requests are smuggled.
public enum RequestHeadParser {
    public enum Outcome: Sendable, Equatable {
        /// No complete head yet and the limit is not reached.
        case needMore
        /// A head and the number of bytes it took, its final empty line included.
        case head(RequestHead, consumed: Int)
        case refused(HTTPRefusal)
    }

    public static func parse(_ bytes: ArraySlice<UInt8>, limits: HTTPLimits) -> Outcome {
        // Find the end of the head (CRLF CRLF) within the limit.
        let start = bytes.startIndex
        guard let end = headEnd(bytes) else {
            if let bare = bareLineEnding(bytes) { return .refused(bare) }
            if !bytes.contains(0x0A) && bytes.count > limits.maxHeaderBytes {
                return .refused(HTTPRefusal(.requestLineTooLong, "the request line is longer than the limit of \(limits.maxHeaderBytes) bytes"))
            }
            if bytes.count > limits.maxHeaderBytes {
                return .refused(HTTPRefusal(.headersTooLarge, "the header section is larger than the limit of \(limits.maxHeaderBytes) bytes"))
            }
            return .needMore
        }
        let consumed = end - start
        if consumed > limits.maxHeaderBytes {
            return .refused(HTTPRefusal(.headersTooLarge, "the header section (\(consumed) bytes) is larger than the limit of \(limits.maxHeaderBytes) bytes"))
        }
        // Split into lines on CRLF; a CR or LF alone anywhere is refused.
        var lines: [ArraySlice<UInt8>] = []
        var i = start, lineStart = start
        let headBytes = end - 2  // the final empty line's CRLF is not a line of its own here
        while i < headBytes {
            let b = bytes[i]
            if b == 0x0D {
                guard i + 1 < end, bytes[i + 1] == 0x0A else {
                    return .refused(HTTPRefusal(.bareLineEnding, "a CR not followed by LF in line \(lines.count + 1)"))
                }
                lines.append(bytes[lineStart..<i]); i += 2; lineStart = i; continue
            }
            if b == 0x0A { return .refused(HTTPRefusal(.bareLineEnding, "a LF not preceded by CR in line \(lines.count + 1)")) }
            i += 1
        }
        guard let requestLine = lines.first else {
            return .refused(HTTPRefusal(.malformedRequestLine, "the request line is empty"))
        }
        let parsed: (String, String, Int)
        switch parseRequestLine(requestLine) {
        case .success(let p): parsed = p
        case .failure(let r): return .refused(r)
        }
        var fields: [HTTPField] = []
        for (n, line) in lines.dropFirst().enumerated() {
            switch parseField(line, number: n + 2) {
            case .success(let f): fields.append(f)
            case .failure(let r): return .refused(r)
            }
        }
        let head = RequestHead(method: parsed.0, target: parsed.1, minorVersion: parsed.2, fields: fields)
        // RFC 9112 §3.2: exactly one Host in HTTP/1.1; two would let the gate and the server
        // disagree about which host policy was decided on.
        let hosts = fields.values("host").count
        if hosts > 1 || (parsed.2 == 1 && hosts == 0) {
            return .refused(HTTPRefusal(.missingOrRepeatedHost, hosts == 0 ? "an HTTP/1.1 request without Host" : "\(hosts) Host fields"))
        }
        return .head(head, consumed: consumed)
    }

    /// The index just past the first CRLF CRLF, if any.
    static func headEnd(_ bytes: ArraySlice<UInt8>) -> Int? {
        var i = bytes.startIndex
        while i + 3 < bytes.endIndex {
            if bytes[i] == 0x0D && bytes[i + 1] == 0x0A && bytes[i + 2] == 0x0D && bytes[i + 3] == 0x0A { return i + 4 }
            i += 1
        }
        // A head that ends in a bare LF pair never matches; the limit refuses it eventually, and
        // a LF seen early refuses it at once (below).
        return nil
    }

    /// A LF without its CR, or a CR followed by something other than LF, in what has come so far:
    /// refused at once rather than waited on until the limit.
    static func bareLineEnding(_ bytes: ArraySlice<UInt8>) -> HTTPRefusal? {
        var i = bytes.startIndex
        while i < bytes.endIndex {
            if bytes[i] == 0x0A && (i == bytes.startIndex || bytes[i - 1] != 0x0D) {
                return HTTPRefusal(.bareLineEnding, "a LF not preceded by CR in the header section")
            }
            if bytes[i] == 0x0D && i + 1 < bytes.endIndex && bytes[i + 1] != 0x0A {
                return HTTPRefusal(.bareLineEnding, "a CR not followed by LF in the header section")
            }
            i += 1
        }
        return nil
    }

    static func parseRequestLine(_ line: ArraySlice<UInt8>) -> Result<(String, String, Int), HTTPRefusal> {
        let parts = line.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty, parts[0].allSatisfy(isTokenChar) else {
            return .failure(HTTPRefusal(.malformedRequestLine, "the request line is not `method SP target SP version`"))
        }
        guard parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return .failure(HTTPRefusal(.malformedRequestLine, "the request target has a control, space or non-ASCII byte"))
        }
        // A reverse proxy takes origin-form only (and `*` for OPTIONS): with absolute-form the
        // server would take the host from the target rather than the Host field policy was
        // decided on; authority-form is CONNECT, a tunnel the gate cannot inspect.
        let isOptionsStar = parts[1].elementsEqual("*".utf8) && parts[0].elementsEqual("OPTIONS".utf8)
        guard parts[1].first == UInt8(ascii: "/") || isOptionsStar else {
            return .failure(HTTPRefusal(.malformedRequestLine, "the request target is not a path (origin-form); absolute-form and CONNECT are not taken"))
        }
        let version = String(decoding: parts[2], as: UTF8.self)
        let minor: Int
        switch version {
        case "HTTP/1.1": minor = 1
        case "HTTP/1.0": minor = 0
        default: return .failure(HTTPRefusal(.unsupportedVersion, "the gate speaks HTTP/1.1 and HTTP/1.0 only"))
        }
        return .success((String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self), minor))
    }

    static func parseField(_ line: ArraySlice<UInt8>, number: Int) -> Result<HTTPField, HTTPRefusal> {
        if let first = line.first, first == 0x20 || first == 0x09 {
            return .failure(HTTPRefusal(.obsoleteLineFolding, "line \(number) continues the previous field (obs-fold)"))
        }
        guard let colon = line.firstIndex(of: 0x3A) else {
            return .failure(HTTPRefusal(.malformedField, "line \(number) has no colon"))
        }
        let name = line[line.startIndex..<colon]
        // RFC 9112 §5.1: whitespace between the name and the colon MUST be refused with 400.
        guard !name.isEmpty, name.allSatisfy(isTokenChar) else {
            return .failure(HTTPRefusal(.malformedField, "line \(number) has a field name that is not a token"))
        }
        let value = line[(colon + 1)...]
        guard value.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
            return .failure(HTTPRefusal(.malformedField, "the value of \(String(decoding: name, as: UTF8.self)) has a control character"))
        }
        return .success(HTTPField(String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self).trimmingOWS()))
    }

    /// tchar (RFC 9110 §5.6.2).
    static func isTokenChar(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"): true
        default: false
        }
    }
}
