import Foundation
import Testing
@testable import SQLInspection

/// `TreeJSON` replaces `JSONSerialization` for speed; this checks it reads
/// every corpus parse tree (and some hostile strings) exactly as Foundation does.
@Suite struct TreeJSONTests {
    static let extra = [
        "SELECT 'a\u{1}b\\\"c', E'\\n\\t', U&'\\0041', 1.5e10, -3, true, false, NULL",
        "SELECT \"\u{7f}\u{1F600}\" FROM \"a\u{2028}b\"",
    ]

    @Test(arguments: corpus.map(\.sql) + extra)
    func readsParseTreesLikeFoundation(_ sql: String) throws {
        let json = try PgQuery.parseJSON(sql)
        let ours = try #require(TreeJSON.parse(json))
        let foundation = try JSONSerialization.jsonObject(with: Data(json.utf8))
        #expect(canon(ours) == canon(foundation))
    }

    @Test func rejectsMalformedJSON() {
        for bad in ["", "{", "{\"a\":}", "[1,]", "\"abc", "{\"a\":1} x", "\"\\q\""] {
            #expect(TreeJSON.parse(bad) == nil, "\(bad)")
        }
        #expect(TreeJSON.parse("{\"a\":[1,2.5,\"\\ud83d\\ude00\",null]}") != nil)
    }

    func canon(_ v: JSON) -> String {
        switch v {
        case .obj(let o): return "{" + o.pairs.sorted { $0.0 < $1.0 }.map { "\($0.0):\(canon($0.1))" }.joined(separator: ",") + "}"
        case .arr(let a): return "[" + a.map(canon).joined(separator: ",") + "]"
        case .str(let s): return "s" + s
        case .int(let i): return "n\(i)"
        case .dbl(let d): return "n\(d)"
        case .bool(let b): return b ? "n1" : "n0"
        case .null: return "null"
        }
    }

    func canon(_ v: Any) -> String {
        if let o = v as? [String: Any] {
            return "{" + o.keys.sorted().map { "\($0):\(canon(o[$0]!))" }.joined(separator: ",") + "}"
        }
        if let a = v as? [Any] { return "[" + a.map { canon($0) }.joined(separator: ",") + "]" }
        if let s = v as? String { return "s" + s }
        if let i = v as? Int { return "n\(i)" }
        if let b = v as? Bool { return b ? "n1" : "n0" }
        if let d = v as? Double { return "n\(d)" }
        return "null"
    }
}
