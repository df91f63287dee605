import CaptureFormat
import Testing

@testable import PostgresProxy

/// The server's report of how it reads statements, and the startup packet's settings.
@Suite struct LexingSettingsTests {
    @Test func loginNeedsBothSettingsReportedWithTheGatesValues() {
        let ok = LexingSettings.login([("server_version", "15.1"), ("standard_conforming_strings", "on"), ("client_encoding", "UTF8")])
        #expect(ok.refusal == nil)
        #expect(ok.0.values == ["standard_conforming_strings": "on", "client_encoding": "UTF8"])
        let off = LexingSettings.login([("standard_conforming_strings", "off"), ("client_encoding", "UTF8")])
        #expect(off.refusal == "the database reports standard_conforming_strings = off; the gate reads statements only with standard_conforming_strings = on")
        #expect(LexingSettings.login([("standard_conforming_strings", "on"), ("client_encoding", "SJIS")]).refusal?.contains("client_encoding = SJIS") == true)
        #expect(LexingSettings.login([("client_encoding", "UTF8")]).refusal?.contains("did not report standard_conforming_strings") == true)
    }

    @Test func aChangeMidSessionToAnotherValueIsRefused() {
        var s = LexingSettings.login([("standard_conforming_strings", "on"), ("client_encoding", "UTF8")]).0
        #expect(s.report("application_name", "x") == nil)
        #expect(s.report("client_encoding", "UTF8") == nil)
        #expect(s.report("standard_conforming_strings", "on") == nil)
        #expect(s.report("client_encoding", "SJIS")?.contains("client_encoding = SJIS") == true)
        #expect(s.report("standard_conforming_strings", "off")?.contains("standard_conforming_strings = off") == true)
    }

    @Test func startupSettingsThatChangeLexingAreRefused() throws {
        for parameters in [
            [KeyValue("options", "-c standard_conforming_strings=off")], [KeyValue("options", "-cstandard_conforming_strings=off")],
            [KeyValue("options", "--standard-conforming-strings=off")], [KeyValue("options", "-c Standard_Conforming_Strings=OFF")],
            [KeyValue("standard_conforming_strings", "off")], [KeyValue("options", "-c client_encoding=SJIS")],
            [KeyValue("options", "-c backslash_quote=on")], [KeyValue("escape_string_warning", "off")],
            // The packet's key comes after options and wins.
            [KeyValue("options", "-c standard_conforming_strings=on"), KeyValue("standard_conforming_strings", "off")],
        ] {
            #expect(throws: StartupSettings.Refusal.self, "\(parameters)") { try StartupSettings.read(parameters) }
        }
        for parameters in [
            [KeyValue("options", "-c standard_conforming_strings=on -c search_path=analytics")],
            [KeyValue("client_encoding", "UTF8")], [KeyValue("options", "--client-encoding=utf-8")],
            [KeyValue("options", "-c standard_conforming_strings=off"), KeyValue("standard_conforming_strings", "on")],
        ] {
            #expect(throws: Never.self, "\(parameters)") { try StartupSettings.read(parameters) }
        }
    }
}
