import CaptureFormat
import Foundation
import TestSupport
import Testing

/// `sessinfo --play` on the Kubernetes sample's recorded exec terminals: the bytes the operator's
/// terminal got, in order; the keys of a real pseudo-terminal; and the answers when there is no terminal.
@Suite struct SessInfoPlaybackTests {
    let sample = repositoryRoot.appendingPathComponent("samples/kubernetes-exec.sesscap").path

    /// stdout and stderr chunks of one exchange, straight from the reader.
    func recordedOutput(exchange: UInt64) throws -> String {
        var bytes: [UInt8] = []
        try CaptureFile(path: sample).forEachEvent { e in
            if e.exchangeID == exchange, case .streamChunk(let c) = e.payload, c.stream == .stdout || c.stream == .stderr { bytes += c.data }
            return true
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func playsTheFirstTerminalByDefaultAndAnotherByExchange() throws {
        let first = try sessinfo(["--play", "--no-wait", sample])
        #expect(first.status == 0, "\(first.stderr)")
        let expected = try recordedOutput(exchange: 8)
        #expect(!expected.isEmpty)
        #expect(first.stdout == expected)
        let second = try sessinfo(["--play", "--no-wait", "--exchange", "10", sample])
        #expect(second.status == 0)
        #expect(second.stdout == (try recordedOutput(exchange: 10)))
        // With the recorded timing, much faster: the same bytes.
        let timed = try sessinfo(["--play", "--speed", "1000", sample])
        #expect(timed.stdout == expected)
    }

    @Test func noTerminalOrAnotherKindOfExchangeExitsOneAndSaysWhy() throws {
        let other = try sessinfo(["--play", "--exchange", "1", sample])
        #expect(other.status == 1)
        #expect(other.stderr.contains("exchange 1 is not an exec or attach terminal; terminals recorded: 8, 10"))
        let postgres = try sessinfo(["--play", repositoryRoot.appendingPathComponent("samples/postgres-analytics.sesscap").path])
        #expect(postgres.status == 1)
        #expect(postgres.stderr.contains("no exec or attach terminal is recorded in this capture"))
        for bad in [["--play", "--speed", "0", sample], ["--play", "--json", sample], ["--speed", "2", sample], ["--play", sample, sample]] {
            #expect(try sessinfo(bad).status == 2, "\(bad)")
        }
        let missing = try sessinfo(["--play", "/nonexistent.sesscap"])
        #expect(missing.status == 2 && missing.stderr.contains("/nonexistent.sesscap"))
    }

    func playInPTY(keys: String, _ arguments: [String]) throws -> [String: Any] {
        let script = repositoryRoot.appendingPathComponent("Tests/ToolTests/Fixtures/play_in_pty.py").path
        let out = try run("python3", [script, tool("sessinfo").path, sample, keys] + arguments, timeout: .seconds(180))
        #expect(out.status == 0, "\(out.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
    }

    /// At a thousandth of the speed nothing would show for a long time: pause, then '.' twice,
    /// shows exactly the first two outputs (the prompt, then `cat`'s); q stops; the terminal's
    /// echo and line mode are back.
    @Test func onATerminalSpacePausesDotStepsAndQStops() throws {
        let result = try playInPTY(keys: " ..q", ["--speed", "0.001"])
        #expect(result["status"] as? Int == 0)
        #expect(result["restored"] as? Bool == true)
        let shown = try #require(result["shown"] as? String)
        #expect(shown.contains("space pause, . step, q quit"))
        #expect(shown.contains("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\""))
        #expect(!shown.contains("healthz"), "only two outputs were stepped: \(shown)")
        #expect(shown.contains("stopped"))
    }
}
