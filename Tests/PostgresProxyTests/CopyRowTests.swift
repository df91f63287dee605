import Masking
import NIOCore
import ProxyCore
import Testing
@testable import PostgresProxy

/// COPY rows split and written again exactly as PostgreSQL's CopyTo writes them, for the
/// statement's DELIMITER, QUOTE, ESCAPE and NULL.
@Suite struct CopyRowTests {
    let users = TableName(schema: "pii", name: "users")
    let masker = try! Masker(detectorNames: ["us_ssn", "email"], columnRules: ["users.secret"])
    func columns(_ names: [String]) -> CatalogLookup { CatalogLookup(columns: { _ in names }, viewColumn: { _, _ in nil }) }
    func masked(_ layout: RowStreamLayout, _ rows: [String]) -> [String] {
        var m = PostgresResultMasker(masker: masker)
        m.beginCopy(layout, projections: [], catalog: columns(["id", "secret", "note"]))
        return rows.map { row in m.maskCopyData(ByteBuffer(string: row)).map { String(buffer: $0) } ?? row }
    }

    @Test func textRowsWithAnyDelimiter() {
        // 'X' in a value is written \X; the delimiter itself is a raw X.
        let x = RowStreamLayout(format: .text, delimiter: UInt8(ascii: "X"), header: false, table: users, columns: [])
        let fields = CopyRow.split(Array("1Xs\\Xe\\\\cXa\\tb\n".utf8), layout: x)
        #expect(fields?.map { String(decoding: $0.value, as: UTF8.self) } == ["1", "sXe\\c", "a\tb"])
        #expect(masked(x, ["7Xtop secretXnote 123-45-6789\n"]) == ["7X********Xnote ***-**-****\n"])
        #expect(masked(x, ["8XSECRET\\XVALUEX\\N\n"]) == ["8X********X\\N\n"], "NULL stays NULL")
        // A mask holding the delimiter is escaped as the server would.
        let s = RowStreamLayout(format: .text, delimiter: UInt8(ascii: "*"), header: false, table: users, columns: [])
        #expect(masked(s, ["9*hidden*ok\n"]) == ["9*\\*\\*\\*\\*\\*\\*\\*\\**ok\n"])
        // An unmasked row passes byte for byte.
        #expect(masked(x, ["1X\\NXplain\\\\t\\Xext\n"]) == ["1X\\NXplain\\\\t\\Xext\n"])
    }

    @Test func textNullStringsThatAValueCouldProduceAreMaskedAsValues() {
        #expect(CopyRow.textNullIsDistinct(Array("\\N".utf8), delimiter: 0x09))
        #expect(!CopyRow.textNullIsDistinct(Array("none".utf8), delimiter: 0x09))
        #expect(!CopyRow.textNullIsDistinct([], delimiter: 0x09))
        let none = RowStreamLayout(format: .text, delimiter: 0x09, header: false, table: users, columns: [], null: Array("none".utf8))
        #expect(masked(none, ["1\tnone\tx\n"]) == ["1\t********\tx\n"], "could be the value 'none': masked")
    }

    @Test func csvRowsWithQuoteEscapeAndForceQuote() {
        let csv = RowStreamLayout(format: .csv, delimiter: UInt8(ascii: "X"), header: true, table: users, columns: [],
                                  quote: UInt8(ascii: "'"), escape: UInt8(ascii: "\\"), null: Array("NUL".utf8))
        let row = "'1'X'it\\'s X \\\\'X'NUL'\n"
        let fields = CopyRow.split(Array(row.utf8), layout: csv)
        #expect(fields?.map { String(decoding: $0.value, as: UTF8.self) } == ["1", "it's X \\", "NUL"])
        #expect(fields?.map(\.isNull) == [false, false, false], "a quoted NUL is the value")
        #expect(masked(csv, ["idXsecretXnote\n", row, "2XNULXada@example.com\n"])
                == ["idXsecretXnote\n", "'1'X'********'X'NUL'\n", "2XNULXa****@example.com\n"])
        // ESCAPE = QUOTE (the default): doubled quotes.
        let plain = RowStreamLayout(format: .csv, delimiter: UInt8(ascii: ","), header: false, table: users, columns: [])
        #expect(CopyRow.split(Array("\"a\"\"b\",,\"\"\n".utf8), layout: plain)?.map(\.isNull) == [false, true, false])
        #expect(CopyRow.split(Array("\"open\n".utf8), layout: plain) == nil, "not a row the server writes")
    }
}
