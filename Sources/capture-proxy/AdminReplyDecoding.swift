import AdminAPI
import Foundation

// Reading the admin API's documents (AdminAPI's ApprovalDocument, GrantDocument) for the readable
// views: `--json` prints what the API sent, unchanged.

extension GrantDocument {
    /// live, revoked or expired, at `now`.
    func status(at now: Date) -> String {
        if revoked != nil { return "revoked" }
        return expires > now ? "live" : "expired"
    }
}

enum AdminReplyDecoding {
    static func decode<T: Decodable>(_ type: T.Type, _ data: Data, action: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { d in
            let text = try d.singleValueContainer().decode(String.self)
            guard let micros = parseISOTime(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: d.codingPath, debugDescription: "not an ISO 8601 time: \(text)"))
            }
            return Date(timeIntervalSince1970: Double(micros) / 1_000_000)
        }
        do {
            return try decoder.decode(type, from: data)
        } catch {
            throw ToolFailure(description: "\(action): the admin API's answer is not the document this CLI reads (\(error)); --json prints it as it came")
        }
    }

    static func parseISOTime(_ text: String) -> Int64? {
        let full = ISO8601DateFormatter()
        full.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        for f in [plain, full] {
            if let d = f.date(from: text) { return Int64((d.timeIntervalSince1970 * 1_000_000).rounded()) }
        }
        return nil
    }
}

/// Text from the API made safe for a terminal: a statement or reason could hold escape
/// sequences that would rewrite the screen, so control characters are shown, not sent.
enum Printable {
    /// One line: line breaks and tabs become spaces, other control characters `?`.
    static func line(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { scalar -> Unicode.Scalar in
            if scalar == "\n" || scalar == "\r" || scalar == "\t" { return " " }
            return scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format ? "?" : scalar
        }))
    }

    /// One line for a table cell: runs of spaces (a statement's indentation) become one.
    static func cell(_ text: String) -> String {
        line(text).split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }

    /// Several lines kept (a statement as written), every other control character `?`.
    static func lines(_ text: String) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line(String($0)) }
    }

    /// At most `width` characters, `…` marking a cut.
    static func cut(_ text: String, _ width: Int) -> String {
        text.count <= width ? text : String(text.prefix(width - 1)) + "…"
    }
}
