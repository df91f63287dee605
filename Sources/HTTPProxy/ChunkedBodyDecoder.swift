/// Decodes a chunked request body (RFC 9112 §7.1) as its bytes arrive, strictly: a chunk size
/// that is not hex digits, too long, past the body limit, or a chunk not ended by CRLF is
/// refused, since a server that reads the size differently would take the rest for another
/// request. Chunk extensions are read past (bounded by the line limit); trailer fields are
/// parsed and dropped (the gate forwards none, RFC 9110 §6.5.1 lets it).
public struct ChunkedBodyDecoder: Sendable, Equatable {
    public enum Event: Sendable, Equatable {
        case data([UInt8])
        /// The body's end (last chunk and trailer section read).
        case end
    }

    enum State: Sendable, Equatable {
        case sizeLine(line: [UInt8])
        case data(remaining: Int)
        case dataCR
        case dataLF
        case trailerLine(line: [UInt8])
        case done
    }

    var state: State = .sizeLine(line: [])
    public private(set) var decodedBytes = 0
    let limits: HTTPLimits

    public init(limits: HTTPLimits) { self.limits = limits }

    public var isDone: Bool { state == .done }

    /// Consumes bytes from `input` up to the body's end; returns what they decode to and how many
    /// bytes were taken (bytes past the end belong to the next request).
    public mutating func feed(_ input: ArraySlice<UInt8>) -> Result<(events: [Event], consumed: Int), HTTPRefusal> {
        var events: [Event] = []
        var i = input.startIndex
        while i < input.endIndex {
            switch state {
            case .done:
                return .success((events, i - input.startIndex))
            case .sizeLine(var line):
                let b = input[i]; i += 1
                if b == 0x0A {
                    guard line.last == 0x0D else { return .failure(HTTPRefusal(.badChunk, "a chunk-size line ends in LF without CR")) }
                    line.removeLast()
                    switch chunkSize(line) {
                    case .failure(let r): return .failure(r)
                    case .success(let size):
                        if size > limits.maxBodyBytes - decodedBytes {
                            return .failure(HTTPRefusal(.bodyTooLarge, "the chunked body is larger than the limit of \(limits.maxBodyBytes) bytes"))
                        }
                        state = size == 0 ? .trailerLine(line: []) : .data(remaining: size)
                    }
                } else {
                    line.append(b)
                    if line.count > limits.maxChunkLineBytes {
                        return .failure(HTTPRefusal(.badChunk, "a chunk-size line is longer than \(limits.maxChunkLineBytes) bytes"))
                    }
                    state = .sizeLine(line: line)
                }
            case .data(let remaining):
                let n = min(remaining, input.endIndex - i)
                events.append(.data(Array(input[i..<(i + n)])))
                decodedBytes += n; i += n
                state = remaining == n ? .dataCR : .data(remaining: remaining - n)
            case .dataCR:
                guard input[i] == 0x0D else { return .failure(HTTPRefusal(.badChunk, "a chunk's data is longer than its size")) }
                i += 1; state = .dataLF
            case .dataLF:
                guard input[i] == 0x0A else { return .failure(HTTPRefusal(.badChunk, "a chunk's data is not followed by CRLF")) }
                i += 1; state = .sizeLine(line: [])
            case .trailerLine(var line):
                let b = input[i]; i += 1
                if b == 0x0A {
                    guard line.last == 0x0D else { return .failure(HTTPRefusal(.badChunk, "a trailer line ends in LF without CR")) }
                    line.removeLast()
                    if line.isEmpty { state = .done; events.append(.end); continue }
                    if case .failure(let r) = RequestHeadParser.parseField(line[...], number: 0) {
                        return .failure(HTTPRefusal(.badChunk, "a malformed trailer field: \(r.detail)"))
                    }
                    state = .trailerLine(line: [])
                } else {
                    line.append(b)
                    if line.count > limits.maxChunkLineBytes {
                        return .failure(HTTPRefusal(.badChunk, "a trailer line is longer than \(limits.maxChunkLineBytes) bytes"))
                    }
                    state = .trailerLine(line: line)
                }
            }
        }
        return .success((events, i - input.startIndex))
    }

    /// `chunk-size [ chunk-ext ]`: 1*HEXDIG, at most 15 digits (no overflow), then nothing or
    /// `;` and extensions. Whitespace before the size, a sign, `0x` or an empty size are refused.
    func chunkSize(_ line: [UInt8]) -> Result<Int, HTTPRefusal> {
        var digits = 0, value = 0, i = 0
        while i < line.count, let d = hexValue(line[i]) {
            digits += 1
            if digits > 15 { return .failure(HTTPRefusal(.badChunk, "a chunk size has more than 15 hex digits")) }
            value = value * 16 + d; i += 1
        }
        guard digits > 0 else { return .failure(HTTPRefusal(.badChunk, "a chunk size is not a hex number")) }
        var rest = line[i...]
        while let c = rest.first, c == 0x20 || c == 0x09 { rest.removeFirst() }  // BWS before `;`
        guard rest.isEmpty || rest.first == UInt8(ascii: ";") else {
            return .failure(HTTPRefusal(.badChunk, "a chunk size is followed by something other than an extension"))
        }
        guard rest.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
            return .failure(HTTPRefusal(.badChunk, "a chunk extension has a control character"))
        }
        return .success(value)
    }

    func hexValue(_ b: UInt8) -> Int? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(b - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
