import Masking
import NIOCore
import PostgresWire
import CaptureFormat
import ProxyCore
import Testing
@testable import PostgresProxy

/// Streaming result masking, message by message, without a network: which columns column
/// rules cover, how values of each type and format are rewritten, COPY rows, notices.
@Suite struct ResultMaskingTests {
    let customers = TableName(schema: "public", name: "customers")
    let masker = try! Masker(detectorNames: ["credit_card", "us_ssn", "email"], columnRules: ["customers.phone", "*.salary"])

    func field(_ name: String, type: UInt32, table: UInt32 = 0, attribute: Int16 = 0, format: Int16 = 0) -> PostgresBackendMessage.ColumnDescription {
        .init(name: name, tableOID: table, columnAttribute: attribute, typeOID: type, typeSize: -1, format: format)
    }

    func buffer(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }
    func columns(_ names: [String]) -> CatalogLookup { CatalogLookup(columns: { _ in names }, viewColumn: { _, _ in nil }) }
    func text(_ b: ByteBuffer?) -> String? { b.map { String(buffer: $0) } }

    @Test func columnRulesFollowTheRealColumnThroughAliasesAndComputedColumnsThroughTheirExpressions() {
        let projection = Projection(references: [["phone"], ["email"], ["id"]], outputs: [[["phone"]], [["email"]], [["id"]], [["phone"]]],
                                    aliases: [:], relations: [customers])
        let plan = ColumnMaskPlanner.plan([
            ResultColumn(name: "p", source: .table(customers, column: "phone")),   // SELECT phone AS p
            ResultColumn(name: "e", source: .table(customers, column: "email")),
            ResultColumn(name: "id", source: .computed),                           // id + 0
            ResultColumn(name: "upper", source: .computed),                        // upper(phone)
        ], masker: masker, projections: [projection], catalog: .none)
        #expect(plan == [true, false, false, true])
        // A column whose table the catalog does not know is covered (fail closed).
        #expect(ColumnMaskPlanner.plan([ResultColumn(name: "x", source: .unresolved)], masker: masker, projections: [],
                                       catalog: .none) == [true])
        // An output name alone (`concat(a) AS salary`) is enough for a `*.` rule.
        #expect(ColumnMaskPlanner.plan([ResultColumn(name: "salary", source: .computed)], masker: masker, projections: [],
                                       catalog: .none) == [true])
    }

    @Test func viewColumnsAreTracedToWhatTheirDefinitionReads() {
        let view = TableName(schema: "public", name: "contacts")
        let deeper = TableName(schema: "public", name: "contacts2")
        let catalog = CatalogLookup(columns: { $0 == view ? ["id", "contact"] : nil }, viewColumn: { table, column in
            switch (table, column) {
            case (view, "contact"): Projection(references: [["phone"]], aliases: [:], relations: [customers])
            case (view, "id"): Projection(references: [["id"]], aliases: [:], relations: [customers])
            case (deeper, "c2"): Projection(references: [["contact"]], aliases: [:], relations: [view])
            default: nil
            }
        })
        let plan = ColumnMaskPlanner.plan([ResultColumn(name: "contact", source: .table(view, column: "contact")),
                                           ResultColumn(name: "id", source: .table(view, column: "id")),
                                           ResultColumn(name: "c2", source: .table(deeper, column: "c2"))],
                                          masker: masker, projections: [], catalog: catalog)
        #expect(plan == [true, false, true])
        // A whole row of the view holds the covered column.
        let whole = Projection(references: [["v"]], aliases: ["v": view], relations: [view])
        #expect(ColumnMaskPlanner.plan([ResultColumn(name: "row_to_json", source: .computed)], masker: masker, projections: [whole],
                                       catalog: catalog) == [true])
    }

    @Test func wholeRowReferencesAreCoveredWhenTheRowHoldsACoveredColumn() {
        let whole = Projection(references: [["c"]], aliases: ["c": customers], relations: [customers])
        let computed = [ResultColumn(name: "row_to_json", source: .computed)]
        #expect(ColumnMaskPlanner.plan(computed, masker: masker, projections: [whole], catalog: columns(["id", "phone"])) == [true])
        #expect(ColumnMaskPlanner.plan(computed, masker: masker, projections: [whole], catalog: columns(["id", "email"])) == [false])
        // Columns unknown: any rule on the table counts.
        #expect(ColumnMaskPlanner.plan(computed, masker: masker, projections: [whole], catalog: .none) == [true])
        let orders = TableName(schema: "public", name: "orders")
        let other = Projection(references: [["o", "*"]], aliases: ["o": orders], relations: [orders])
        #expect(ColumnMaskPlanner.plan(computed, masker: try! Masker(detectorNames: [], columnRules: ["customers.phone"]),
                                       projections: [other], catalog: .none) == [false])
    }

    @Test func textValuesAreMaskedInPlaceAndTypedValuesBecomeNull() throws {
        var m = PostgresResultMasker(masker: masker)
        m.beginResult([field("email", type: 25), field("phone", type: 25, table: 1, attribute: 4), field("card", type: 20),
                       field("doc", type: 3802), field("n", type: 23)],
                      sources: [ResultColumn(name: "email", source: .table(customers, column: "email")),
                                ResultColumn(name: "phone", source: .table(customers, column: "phone")),
                                ResultColumn(name: "card", source: .computed), ResultColumn(name: "doc", source: .computed),
                                ResultColumn(name: "n", source: .computed)],
                      projections: [], catalog: .none)
        let row = PostgresBackendMessage.DataRow(columns: [buffer("ada@example.com"), buffer("+1-555-1001"), buffer("4111111111111111"),
                                                           buffer(#"{"ssn": "123-45-6789", "n": 1}"#), buffer("42")])
        let result = m.mask(row)
        let masked = try #require(result).columns
        #expect(text(masked[0]) == "a****@example.com")
        #expect(text(masked[1]) == "+*-***-****")
        #expect(masked[2] == nil, "a card number in a bigint cannot be masked in its type: NULL")
        #expect(text(masked[3]) == #"{"ssn": "***-**-****", "n": 1}"#)
        #expect(text(masked[4]) == "42")
        let tally = m.takeTally()
        #expect(tally.count(detector: "email") == 1 && tally.count(detector: .column) == 1)
        #expect(tally.count(detector: "credit_card") == 1 && tally.count(detector: "us_ssn") == 1)
        // Nothing to mask: the row is forwarded as it came (nil), with no copy.
        #expect(m.mask(PostgresBackendMessage.DataRow(columns: [buffer("x"), nil, buffer("1"), buffer("{}"), buffer("7")])) == nil)
        // NULLs and empty values before and after a rewritten one keep their place and kind.
        let rewritten = m.mask(PostgresBackendMessage.DataRow(columns: [nil, buffer(""), buffer("4111111111111111"), nil, buffer("")]))
        let mixed = try #require(rewritten)
        #expect(mixed.columnCount == 5)
        #expect(mixed.columns.map { $0.map { String(decoding: $0.readableBytesView, as: UTF8.self) } } == [nil, "", nil, nil, ""])
    }

    @Test func binaryFormatValues() throws {
        var m = PostgresResultMasker(masker: masker)
        m.beginResult([field("email", type: 25, format: 1), field("card", type: 20, format: 1), field("amount", type: 1700, format: 1),
                       field("doc", type: 3802, format: 1), field("phone", type: 1043, format: 1), field("other", type: 17, format: 1)],
                      sources: [ResultColumn(name: "email", source: .computed), ResultColumn(name: "card", source: .computed),
                                ResultColumn(name: "amount", source: .computed), ResultColumn(name: "doc", source: .computed),
                                ResultColumn(name: "phone", source: .table(customers, column: "phone")),
                                ResultColumn(name: "other", source: .computed)],
                      projections: [], catalog: .none)
        var card = ByteBuffer(); card.writeInteger(Int64(4111111111111111))
        // numeric 4012888888881881 = base-10000 groups 4012 8888 8888 1881, weight 3.
        var numeric = ByteBuffer(); for v in [Int16(4), 3, 0, 0, 4012, 8888, 8888, 1881] { numeric.writeInteger(v) }
        var jsonb = ByteBuffer(); jsonb.writeInteger(UInt8(1)); jsonb.writeString(#"{"e": "bob@example.com"}"#)
        var bytea = ByteBuffer(); bytea.writeString("mail carol@example.com")
        let result = m.mask(PostgresBackendMessage.DataRow(columns: [buffer("ada@example.com"), card, numeric, jsonb, buffer("+1 555 0100"), bytea]))
        let masked = try #require(result).columns
        #expect(text(masked[0]) == "a****@example.com")
        #expect(masked[1] == nil)
        #expect(masked[2] == nil)
        #expect(masked[3].map { Array($0.readableBytesView) } == [1] + Array(#"{"e": "b****@example.com"}"#.utf8))
        #expect(text(masked[4]) == "+* *** ****")
        #expect(masked[5] == nil)
        #expect(BinaryValues.numericDigits(numeric) == Array("4012888888881881".utf8))
        var fraction = ByteBuffer(); for v in [Int16(2), -1, 0, 2, 12, 5000] { fraction.writeInteger(v) }  // 0.00125
        #expect(BinaryValues.numericDigits(fraction) == Array("0.00125000".utf8))
    }

    @Test func wholeMasksKeepJSONValidAndNullOtherTypes() throws {
        let rules = try Masker(detectorNames: [], columnRules: ["*.secret"])
        var m = PostgresResultMasker(masker: rules)
        let fields = [field("secret", type: 114), field("secret", type: 1009), field("secret", type: 1082), field("secret", type: 25)]
        m.beginResult(fields, sources: fields.map { ResultColumn(name: $0.name, source: .computed) }, projections: [], catalog: .none)
        let result = m.mask(PostgresBackendMessage.DataRow(columns: [buffer(#"{"a":1}"#), buffer("{x,y}"), buffer("2026-01-01"), buffer("plain")]))
        let masked = try #require(result).columns
        #expect(text(masked[0]) == #""********""#)
        #expect(masked[1] == nil)
        #expect(masked[2] == nil)
        #expect(text(masked[3]) == "********")
    }

    @Test func copyRowsAreMaskedByPositionAndByContent() throws {
        var m = PostgresResultMasker(masker: masker)
        let layout = RowStreamLayout(format: .text, delimiter: 0x09, header: false, table: customers, columns: [])
        m.beginCopy(layout, projections: [], catalog: columns(["id", "email", "phone", "note"]))
        let first = m.maskCopyData(buffer("1\tada@example.com\t+1-555-1001\t\\N\n"))
        let out = try #require(first)
        #expect(text(out) == "1\ta****@example.com\t+*-***-****\t\\N\n")
        #expect(m.maskCopyData(buffer("2\tnothing\t\\N\tx\n")) == nil, "NULL stays NULL; no copy when nothing changes")

        let csv = RowStreamLayout(format: .csv, delimiter: UInt8(ascii: ","), header: true, table: customers, columns: ["phone", "note"])
        m.beginCopy(csv, projections: [], catalog: .none)
        #expect(m.maskCopyData(buffer("phone,note\n")) == nil, "the header row names columns")
        let csvRow = m.maskCopyData(buffer("\"+1, 555\",\"say \"\"hi\"\" to 123-45-6789\"\n"))
        let row = try #require(csvRow)
        #expect(text(row) == "\"********\",\"say \"\"hi\"\" to ***-**-****\"\n", "the comma made it no phone shape; quoted fields stay quoted")
        #expect(CopyRow.split(Array("a,\"b,c\",,\"\"\r\n".utf8), layout: csv).map(\.isNull) == [false, false, true, false])

        // Rows of a query: the columns cannot be placed, so a rule that may apply masks every field.
        m.beginCopy(RowStreamLayout(format: .text, delimiter: 0x09, header: false, table: nil, columns: []),
                    projections: [Projection(references: [["phone"]], aliases: [:], relations: [customers])], catalog: .none)
        #expect(text(m.maskCopyData(buffer("+1-555-1001\tok\n"))) == "+*-***-****\t********\n")
        // COPY (SELECT phone, email …): each field is its select-list entry.
        m.beginCopy(RowStreamLayout(format: .text, delimiter: 0x09, header: false, table: nil, columns: []),
                    projections: [Projection(references: [["phone"], ["email"]], outputs: [[["phone"]], [["email"]]], aliases: [:],
                                             relations: [customers])], catalog: .none)
        #expect(text(m.maskCopyData(buffer("+1-555-1001\tada@example.com\n"))) == "+*-***-****\ta****@example.com\n")
    }

    @Test func binaryTextArraysAreRebuiltWithMaskedElements() throws {
        var m = PostgresResultMasker(masker: masker)
        m.beginResult([field("emails", type: 1009, format: 1)], sources: [ResultColumn(name: "emails", source: .computed)],
                      projections: [], catalog: .none)
        var array = ByteBuffer()
        for v: Int32 in [1, 1] { array.writeInteger(v) }   // one dimension, has nulls
        array.writeInteger(UInt32(25))                      // text
        for v: Int32 in [3, 1] { array.writeInteger(v) }    // three elements from 1
        for e in ["ada@example.com", nil, "plain"] as [String?] {
            if let e { array.writeInteger(Int32(e.utf8.count)); array.writeString(e) } else { array.writeInteger(Int32(-1)) }
        }
        let result = m.mask(PostgresBackendMessage.DataRow(columns: [array]))
        let row = try #require(result)
        let masked = try #require(row.columns[0])
        let decoded = try #require(BinaryValues.TextArray(masked))
        #expect(decoded.elements == [Array("a****@example.com".utf8), nil, Array("plain".utf8)])
        var broken = array
        broken.moveWriterIndex(to: broken.writerIndex - 2)
        let truncated = m.mask(PostgresBackendMessage.DataRow(columns: [broken]))
        let truncatedRow = try #require(truncated)
        #expect(truncatedRow.columns[0] == nil, "a malformed binary array is not passed unchecked")
    }

    @Test func noticesAndErrorsAreMaskedInEveryField() throws {
        var m = PostgresResultMasker(masker: masker)
        let error = PostgresBackendMessage.Diagnostics(severity: "ERROR", sqlState: "22003",
                                                       message: #"value "4111111111111111" is out of range for type integer"#,
                                                       detail: "row of bob@example.com")
        let maskedError = m.mask(error, at: .error)
        let masked = try #require(maskedError)
        #expect(masked.message == #"value "************1111" is out of range for type integer"#)
        #expect(masked.detail == "row of b****@example.com")
        #expect(masked.sqlState == "22003")
        #expect(m.mask(PostgresBackendMessage.Diagnostics(severity: "NOTICE", sqlState: "00000", message: "all fine"), at: .notice) == nil)
    }
}

@Suite struct StartupAndBinaryTests {
    @Test func startupSettingsAreReadAsPostgreSQLReadsThem() throws {
        func read(_ p: [(String, String)]) throws -> [String: String] { try StartupSettings.read(p.map { KeyValue($0.0, $0.1) }) }
        #expect(try read([("options", "-c search_path=analytics -c SEARCH_PATH=public")])["search_path"] == "public")
        #expect(try read([("options", "--search-path=public")])["search_path"] == "public")
        #expect(try read([("options", "-c search_path=analytics"), ("search_path", "public")])["search_path"] == "public",
                "the packet's own keys come after options")
        #expect(try read([("options", #"-c application_name=a\ b"#)])["application_name"] == "a b")
        #expect(throws: StartupSettings.Refusal.self) { try read([("options", "-c role=postgres")]) }
        #expect(throws: StartupSettings.Refusal.self) { try read([("ROLE", "postgres")]) }
        #expect(throws: StartupSettings.Refusal.self) { try read([("options", "-B 100")]) }
        #expect(SearchPath.fromStartup([KeyValue("options", "-c search_path=analytics -c SEARCH_PATH=public")]).schemas == ["public"])
    }

    @Test func binaryNumbersInArraysRecordsAndUnknownTypesAreFound() {
        let masker = try! Masker(detectorNames: ["credit_card"])
        func int8(_ v: Int64) -> [UInt8] { var b = ByteBuffer(); b.writeInteger(v); return Array(b.readableBytesView) }
        var array = ByteBuffer()
        for v: Int32 in [1, 0] { array.writeInteger(v) }
        array.writeInteger(UInt32(20))                      // int8[]
        for v: Int32 in [2, 1] { array.writeInteger(v) }
        for v in [Int64(42), Int64(4111111111111111)] { array.writeInteger(Int32(8)); array.writeInteger(v) }
        var counts = DetectorCounts()
        BinaryValues.inspect(Array(array.readableBytesView), typeOID: 1016, masker: masker, into: &counts, depth: 0)
        #expect(counts["credit_card"] == 1)
        var record = ByteBuffer()
        record.writeInteger(Int32(1)); record.writeInteger(UInt32(20)); record.writeInteger(Int32(8)); record.writeInteger(Int64(4111111111111111))
        counts = DetectorCounts()
        BinaryValues.inspect(Array(record.readableBytesView), typeOID: 2249, masker: masker, into: &counts, depth: 0)
        #expect(counts["credit_card"] == 1)
        counts = DetectorCounts()
        BinaryValues.inspect(int8(4111111111111111), typeOID: 70001, masker: masker, into: &counts, depth: 0)  // a domain over bigint
        #expect(counts["credit_card"] == 1)
        counts = DetectorCounts()
        BinaryValues.inspect(int8(42), typeOID: 70001, masker: masker, into: &counts, depth: 0)
        #expect(counts.total == 0)
    }
}

@Suite struct CommandTagTests {
    @Test func rowCountsComeFromTheTagsLastWord() {
        #expect(rowCount(fromTag: "SELECT 5") == 5)
        #expect(rowCount(fromTag: "INSERT 0 1") == 1)
        #expect(rowCount(fromTag: "COPY 10") == 10)
        #expect(rowCount(fromTag: "BEGIN") == nil)
        #expect(rowCount(fromTag: "SELECT ") == nil)
        #expect(rowCount(fromTag: "FETCH x") == nil)
        #expect(rowCount(fromTag: "SELECT 99999999999999999999999") == nil)
    }
}
