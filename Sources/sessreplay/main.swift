import ArgumentParser
import CaptureFormat
import Forensics
import Foundation
import NIOSSL
import PostgresProxy
import PostgresWire
import ProxyCore

// sessreplay: replays recorded PostgreSQL sessions against another database (staging) and
// records the replay as new captures. The plan, schedule and global order are in
// Forensics/Replay; this target connects, runs and prints.

struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

struct SessReplay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessreplay",
        abstract: "Replay recorded PostgreSQL, HTTP and Kubernetes sessions against another target, and record the replay as a capture.",
        discussion: """
            Each session's requests are replayed in recorded order on a connection of its own; sessions run \
            concurrently, and no request starts before one recorded before it (in any session) has started, unless \
            that session's previous statement runs longer than it did when recorded. Only requests the gate allowed or \
            approved are replayed. Requests that write are skipped unless --allow-writes; requests whose text or \
            parameters were withheld or masked in the recording are skipped and reported.

            An http:// or https:// --target replays HTTP and Kubernetes captures (see HTTP targets below and \
            sessreplay(1)): only GET, HEAD and OPTIONS (Kubernetes get and list) unless --allow-writes; upgrades, \
            watches and exec/attach/port-forward are skipped; the credential comes from --token-file or the \
            environment (SESSREPLAY_TOKEN, SESSREPLAY_BASIC_USER and SESSREPLAY_BASIC_PASSWORD).

            The password comes from PGPASSWORD, the password file (PGPASSFILE, default ~/.pgpass) or a service file \
            (PGSERVICE / service=NAME, PGSERVICEFILE, default ~/.pg_service.conf), never from the command line: a \
            password in the URL is refused.

            Each replayed session is written to --out as a capture signed with --signing-key (an Ed25519 private key \
            in PEM, as the gate's signing_key), with header attributes replay.of_session, replay.of_capture, \
            replay.of_chain, replay.target: compare it with the original with sessdiff.

            Exit status: 0 every replayed request succeeded where the recording did; 1 some replayed request \
            errored where the recording succeeded; 2 an error (bad arguments, a capture that cannot be read, is \
            damaged (replayed up to the damage) or from a newer format, the target unreachable, a failed login, a \
            connection lost).
            """
    )

    @Option(name: .long, help: ArgumentHelp("postgres://[USER@]HOST[:PORT]/DATABASE[?sslmode=…&sslrootcert=…&service=…], or http(s)://HOST[:PORT][/PREFIX]", valueName: "URL"))
    var target: String

    @Option(name: .long, help: ArgumentHelp("Replay at the recorded pacing scaled by X (2: twice as fast). The default is 1.", valueName: "X"))
    var speed: Double?

    @Option(name: .long, help: ArgumentHelp("Start N requests per second across all sessions, in recorded order.", valueName: "N"))
    var rate: Double?

    @Flag(name: .long, help: "As fast as possible, keeping the recorded order.")
    var fast = false

    @Option(name: .long, help: ArgumentHelp("Under --fast without --rollback: requests each session sends ahead of the answers (default \(SessionReplayer.fastWindow); 1: wait for each).", valueName: "N"))
    var pipeline = SessionReplayer.fastWindow

    @Option(name: .long, help: ArgumentHelp("Replay only requests recorded at or after TIME (RFC 3339, a date, or Unix seconds).", valueName: "TIME"))
    var from: String?

    @Option(name: .long, help: ArgumentHelp("Replay only requests recorded before TIME.", valueName: "TIME"))
    var to: String?

    @Flag(name: .customLong("allow-writes"), help: "Replay requests that write (by the gate's recorded statement kinds and resources).")
    var allowWrites = false

    @Flag(name: .long, help: "Run each session in a transaction that is rolled back at the end (each request under a savepoint); recorded transaction control is then skipped.")
    var rollback = false

    @Flag(name: .customLong("dry-run"), help: "Print the plan (what would be replayed or skipped, and when) and connect to nothing.")
    var dryRun = false

    @Option(name: .customLong("signing-key"), help: ArgumentHelp("The Ed25519 private key (PEM) that signs the replay's captures.", valueName: "FILE"))
    var signingKey: String?

    @Option(name: .long, help: ArgumentHelp("The directory the replay's captures are written to (created 0700).", valueName: "DIR"))
    var out: String?

    @Option(name: .customLong("max-rows"), help: ArgumentHelp("Rows recorded per result (the rest counted and hashed), as the gate's recording.max_rows.", valueName: "N"))
    var maxRows = 1000

    @Option(name: .customLong("max-value-bytes"), help: ArgumentHelp("Bytes recorded per value, as the gate's recording.max_value_bytes.", valueName: "N"))
    var maxValueBytes = 64 << 10

    @Flag(name: .long, help: "Print the summary (or with --dry-run the plan) as one JSON object.")
    var json = false

    @OptionGroup(title: "HTTP targets")
    var http: HTTPReplayOptions

    @Argument(help: ArgumentHelp("Capture files, directories (every *.sesscap under them) and session ids (looked up under the directories given or $TOLLGATE_CAPTURES).", valueName: "CAPTURE|DIR|SESSION-ID"))
    var selection: [String] = []

    func validate() throws {
        if selection.isEmpty { throw ValidationError("give the sessions to replay: capture files, directories or session ids") }
        if [speed != nil, rate != nil, fast].filter({ $0 }).count > 1 { throw ValidationError("give one of --speed, --rate and --fast") }
        if let speed, !(speed > 0 && speed.isFinite) { throw ValidationError("--speed must be a positive number") }
        if let rate, !(rate > 0 && rate.isFinite) { throw ValidationError("--rate must be a positive number") }
        if !dryRun && (signingKey == nil || out == nil) {
            throw ValidationError("--signing-key FILE and --out DIR are required: the replay is recorded as signed captures (or use --dry-run)")
        }
        if http.given && !HTTPTarget.isHTTP(target) { throw ValidationError("--token-file, --ca-file, --server-name, --insecure-skip-tls-verify, --mask and --mask-regex are for an http(s):// --target") }
        if !(1...4096).contains(pipeline) { throw ValidationError("--pipeline takes 1 to 4096") }
        if maxRows < 0 || maxValueBytes < 16 { throw ValidationError("--max-rows must be at least 0 and --max-value-bytes at least 16") }
    }

    var timing: ReplaySchedule.Timing {
        if fast { return .fast }
        if let rate { return .rate(rate) }
        return .speed(speed ?? 1)
    }

    var timingName: String {
        switch timing {
        case .fast: "fast"
        case .rate(let n): "rate=\(n)"
        case .speed(let x): "speed=\(x)"
        }
    }

    func run() async throws {
        if HTTPTarget.isHTTP(target) { return try await runHTTP() }
        let terminal = Terminal()
        let destination: PostgresTarget
        do { destination = try PostgresTarget.parse(target) } catch { throw Failure("\(error)") }
        var options = ReplayOptions(allowWrites: allowWrites, rollback: rollback)
        try window(&options)

        let paths = try await capturePaths()
        var sources: [ReplaySource] = []
        for p in paths {
            do { sources.append(try ReplaySource.load(path: p, options: options)) } catch { throw Failure("\(error)") }
        }
        let damage = sources.compactMap { s in s.damage.map { "\(s.path): \($0); only what precedes it is replayed" } }
        for d in damage { printError("sessreplay: \(d)") }

        let schedule = ReplaySchedule(starts: sources.map { s in s.replayed.map { s.steps[$0].recordedMicros } }, timing: timing)
        if dryRun {
            print(ReplayPlanOutput(sources: sources, schedule: schedule).render(json: json, terminal: terminal))
            throw ExitCode(damage.isEmpty ? 0 : 2)
        }

        let key: SigningKey
        do { key = try SigningKey.load(path: signingKey!) } catch { throw Failure("--signing-key: \(error)") }
        do {
            try FileManager.default.createDirectory(atPath: out!, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch { throw Failure("--out \(out!): cannot create: \(error.localizedDescription)") }

        // Every session logs in before any statement runs: a bad target or login stops nothing half-way.
        let tls = try Self.tlsContext(destination)
        let recording = ReplayResultRecording(maxRows: maxRows, masks: RecordingMasks(session: nil, maxValueBytes: maxValueBytes))
        var connections: [ReplayConnection] = []
        for s in sources {
            do {
                let loggedIn = try await PostgresLoginClient.connect(
                    host: destination.host, port: destination.port,
                    credentials: .init(user: destination.user, password: destination.password, parameters: Self.startup(s, destination)),
                    tls: destination.sslMode, tlsContext: tls,
                    serverName: destination.sslMode == .verifyFull && !Self.isAddress(destination.host) ? destination.host : nil)
                connections.append(try await ReplayConnection(loggedIn, recording: recording))
            } catch {
                for c in connections { await c.close() }
                throw Failure("cannot log in to \(destination.display) (password: \(destination.passwordSource)): \(error)")
            }
        }

        let settings = [KeyValue("replay.timing", timingName), KeyValue("replay.allow_writes", "\(allowWrites)"),
                        KeyValue("replay.rollback", "\(rollback)")]
        let turns = ReplayTurns(count: schedule.entries.count)
        let progress = ReplayProgress()
        let total = schedule.entries.count
        let scale: Double = if case .speed(let x) = timing { x } else { 1 }
        let started = ContinuousClock.now
        var replayers: [SessionReplayer] = []
        for (i, s) in sources.enumerated() {
            let path = (out! as NSString).appendingPathComponent("replay-\(s.header.sessionID)-\(UUID().uuidString.prefix(8).lowercased()).sesscap")
            var replayer = SessionReplayer(index: i, source: s, entries: schedule.entries(ofSession: i), connection: connections[i],
                                           recording: .init(path: path, header: ReplayRecorder.header(of: s, target: destination.display, settings: settings), key: key),
                                           turns: turns, rollback: rollback, scale: scale, concurrent: sources.count > 1, progress: progress)
            if fast && !rollback { replayer.window = pipeline }
            replayers.append(replayer)
        }
        let outcomes = await ReplayRun.outcomes(of: replayers, total: total, progress: progress, terminal: terminal, start: started)
        let summary = ReplaySummary(outcomes: outcomes, damage: damage, target: destination.display, seconds: ReplayRun.seconds(since: started))
        print(json ? summary.json : summary.text(terminal))
        if !summary.failures.isEmpty || !damage.isEmpty { throw ExitCode(2) }
        if !summary.newErrors.isEmpty { throw ExitCode(1) }
    }

    /// The original session's startup parameters (its settings: DateStyle, search_path in
    /// options…), with the target's user and database.
    static func startup(_ s: ReplaySource, _ t: PostgresTarget) -> [(name: String, value: String)] {
        var parameters: [(name: String, value: String)] = [("user", t.user), ("database", t.database)]
        for p in s.startupParameters where !["user", "database", "replication", "application_name"].contains(p.key) {
            parameters.append((p.key, p.value))
        }
        parameters.append(("application_name", "sessreplay"))
        return parameters
    }

    static func isAddress(_ host: String) -> Bool { host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." } }

    /// As libpq's sslmode: prefer and require encrypt without verifying; verify-ca and verify-full check sslrootcert.
    static func tlsContext(_ t: PostgresTarget) throws -> NIOSSLContext? {
        guard t.sslMode != .disable else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        if t.sslMode.verifies {
            let roots: [NIOSSLCertificate]
            do { roots = try NIOSSLCertificate.fromPEMFile(t.sslRootCert!) } catch { throw Failure("sslrootcert \(t.sslRootCert!): \(error)") }
            tls.trustRoots = .certificates(roots)
            tls.certificateVerification = t.sslMode == .verifyFull ? .fullVerification : .noHostnameVerification
        } else {
            tls.certificateVerification = .none
        }
        do { return try NIOSSLContext(configuration: tls) } catch { throw Failure("TLS setup: \(error)") }
    }
}

await SessReplay.asyncMainWithGrepExitCodes()
