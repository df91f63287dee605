import ArgumentParser
import CaptureFormat
import Forensics
import Foundation

// sessexport: evidence bundles of Tollgate captures, and their verification. The engine is in
// Forensics/Export; this file only parses arguments and prints.

struct SessExport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessexport",
        abstract: "Bundle Tollgate sessions as signed, verifiable evidence, and verify such bundles offline.",
        discussion: """
            `sessexport --out DIR --key KEY [SELECTION…]` (the export subcommand is the default) writes a bundle: \
            the captures byte for byte, manifest.json with every file's SHA-256 and every session's summary and \
            integrity, manifest.sig (Ed25519 by your key), report.html, and open formats per session (events.jsonl, \
            exchanges.csv, statements.sql, http.har, exec-xN.cast). Each export is appended to a hash-chained custody log.

            `sessexport verify BUNDLE` checks a bundle without trusting whoever made it.

            Exit status: 0 ok; 1 a check failed (verify found a problem, a capture did not verify, nothing matched); \
            2 the input cannot be read or the arguments are wrong.
            """,
        subcommands: [Export.self, Verify.self, Custody.self, PublicKey.self],
        defaultSubcommand: Export.self
    )
}

/// Public keys given on the command line, read once each.
func loadPublicKeys(_ paths: [String]) throws -> [[UInt8]] {
    try paths.map { p in
        do { return try SigningKey.loadPublicKey(path: p) } catch { throw ValidationError("\(error)") }
    }
}

func fail(_ error: ExportError) -> ExitCode {
    printError("sessexport: \(error.message)")
    return ExitCode(error.exitStatus)
}

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write an evidence bundle of the selected sessions (the default subcommand).",
        discussion: """
            SELECTION is capture files, directories (every *.sesscap under them) and session ids (a unique prefix of at \
            least 8 characters will do), looked up under the directories given or $TOLLGATE_CAPTURES. When ids are given, \
            directories only say where to look.

            The filters are sessgrep's (see sessgrep --help): a session is exported when one of its exchanges matches \
            them all, as sessgrep -l lists it. With filters and no SELECTION, $TOLLGATE_CAPTURES is searched.

            Only captures that verify are exported: sealed by their writer, recovered copies, or truncated ones whose \
            every complete block verifies (the manifest declares where they were cut). Anything else is refused with the \
            verifier's findings, and nothing is written.
            """
    )

    @Option(name: .long, help: ArgumentHelp("The bundle to create: a directory, or with --tar an archive file. It must not exist.", valueName: "PATH"))
    var out: String

    @Flag(name: .long, help: "Write one tar archive (POSIX ustar/pax, deterministic) instead of a directory.")
    var tar = false

    @Option(name: .customLong("case"), help: ArgumentHelp("Case, ticket or request id, recorded in the manifest and the custody log.", valueName: "ID"))
    var caseID: String?

    @Option(name: .long, help: ArgumentHelp("Why this export was made.", valueName: "TEXT"))
    var note: String?

    @Option(name: .long, help: ArgumentHelp("Your name as the exporter (e-mail); default: your account name.", valueName: "NAME"))
    var exporter: String?

    @Option(name: .long, help: ArgumentHelp("Your Ed25519 private key (PEM) that signs the manifest; default $TOLLGATE_EXPORT_KEY. It must exist unless --create-key.", valueName: "KEY"))
    var key: String?

    @Flag(name: .customLong("create-key"), help: "Create --key (mode 0600) if it does not exist; its public key is printed on standard error.")
    var createKey = false

    @Option(name: .customLong("capture-key"), help: ArgumentHelp("A proxy public key (PEM) the captures must be signed by; repeatable.", valueName: "PUBKEY"))
    var captureKeys: [String] = []

    @Option(name: .customLong("custody-log"), help: ArgumentHelp("The custody log to append to; default $TOLLGATE_CUSTODY_LOG or ~/.local/state/tollgate/custody.jsonl.", valueName: "FILE"))
    var custodyLog: String?

    @Flag(name: .long, help: "Print the result as one JSON object.")
    var json = false

    @OptionGroup(title: "Filters (sessgrep's)")
    var filters: CaptureFilterOptions

    @Argument(help: ArgumentHelp("Capture files, directories and session ids.", valueName: "SELECTION"), completion: .file(extensions: ["sesscap"]))
    var selection: [String] = []

    func validate() throws {
        if resolvedKey == nil { throw ValidationError("--key KEY is required (or set $TOLLGATE_EXPORT_KEY): the private key that signs the manifest") }
        let query = try filters.query()
        if selection.isEmpty && query == CaptureQuery() {
            throw ValidationError("give the captures to export (files, directories or session ids), or filters to choose them")
        }
    }

    var resolvedKey: String? { key ?? ProcessInfo.processInfo.environment["TOLLGATE_EXPORT_KEY"].flatMap { $0.isEmpty ? nil : $0 } }

    func run() async throws {
        let terminal = Terminal()
        let keyPath = resolvedKey!
        let signing: SigningKey
        do {
            if !FileManager.default.fileExists(atPath: keyPath) {
                guard createKey else {
                    throw ExportError.usage("\(keyPath): no such key. Pass --create-key to create it; then give its public key (sessexport public-key --key \(keyPath)) to whoever will verify your bundles")
                }
                signing = try SigningKey.loadOrCreate(path: keyPath)
                printError("sessexport: created \(keyPath) (key \(signing.keyID)); its public key:\n" + signing.publicKeyPEM.dropLast())
            } else {
                signing = try SigningKey.load(path: keyPath)
            }
        } catch let e as ExportError {
            throw fail(e)
        } catch {
            throw fail(.usage("\(error)"))
        }
        let caseInfo = caseID == nil && note == nil ? nil : CaseInfo(id: caseID, note: note)
        let now = nowMicros()
        let query = try filters.query(now: now)
        let filter: (any SessionFilter)? = query == CaptureQuery() ? nil : QueryFilter(query)
        let request = ExportRequest(output: out, tar: tar, caseInfo: caseInfo, exporterName: exporter,
                                    selection: CaptureSelection(arguments: selection, filter: filter), captureKeys: try loadPublicKeys(captureKeys),
                                    custodyLog: custodyLog ?? CustodyLog.defaultPath(), now: now)
        let result: ExportResult
        do throws(ExportError) {
            result = try await Exporter.export(request, key: signing, progress: { terminal.status($0) }, warn: { w in
                terminal.clearStatus()
                printError("sessexport: warning: \(w)")
            })
        } catch {
            terminal.clearStatus()
            throw fail(error)
        }
        terminal.clearStatus()
        if json {
            var w = JSONWriter()
            w.object { o in
                o.string("bundle", result.output)
                o.string("format", tar ? "tar" : "directory")
                if let a = result.archiveSHA256 { o.string("sha256", a) }
                o.string("manifest_sha256", result.manifestSHA256)
                o.string("exporter_key_id", signing.keyID)
                o.string("custody_log", result.custodyLog)
                o.number("custody_entry", result.custodyEntry)
                o.array("sessions") { a in
                    for s in result.manifest.sessions {
                        a.object { $0.string("session", s.session); $0.string("capture", s.capture); $0.string("integrity", s.integrity.state.rawValue) }
                    }
                }
            }
            print(w.text)
        } else {
            for s in result.manifest.sessions {
                let i = s.integrity
                print("\(s.capture)  \(s.session)  \(s.subject) on \(s.target)  \(i.stateText), \(i.blocks) blocks, \(i.events) events, signer \(i.signerKeyId)"
                      + (i.keyPinned ? " (pinned)" : ""))
            }
            let files = result.manifest.files.count + 2
            print("wrote \(result.output): \(result.manifest.sessions.count) session\(result.manifest.sessions.count == 1 ? "" : "s"), \(files) files"
                  + (result.archiveSHA256.map { ", archive SHA-256 \($0)" } ?? "") + "; manifest SHA-256 \(result.manifestSHA256), signed by key \(signing.keyID)")
            print("custody: entry \(result.custodyEntry) in \(result.custodyLog)")
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify an evidence bundle (a directory or a tar archive) offline.",
        discussion: """
            Checks the manifest's signature (by the key the bundle names, and with --key by a key you trust), every \
            file's SHA-256 and size, that no listed file is missing and no unlisted one is present, every capture's \
            CRCs, hash chain and signatures, and completeness: sequence numbers from 1 without gaps, and a clean close \
            or exactly the truncation the manifest declares. The open formats are rendered again from the captures and \
            must be identical. Every failure is listed with its file and cause.

            Without --key, a bundle proves only that it is intact as its maker signed it, not who that was: say so \
            to whoever relies on it, or pin the exporter's key.

            Exit status: 0 every check holds; 1 a check failed; 2 the bundle cannot be read.
            """
    )

    @Option(name: .long, help: ArgumentHelp("An exporter public key (PEM) the manifest must be signed by; repeatable.", valueName: "PUBKEY"))
    var key: [String] = []

    @Option(name: .customLong("capture-key"), help: ArgumentHelp("A proxy public key (PEM) the captures must be signed by; repeatable.", valueName: "PUBKEY"))
    var captureKeys: [String] = []

    @Flag(name: .long, help: "Print the result as one JSON object.")
    var json = false

    @Argument(help: ArgumentHelp("The bundle: a directory or a .tar file.", valueName: "BUNDLE"))
    var bundle: String

    func run() throws {
        let terminal = Terminal()
        let report: BundleReport
        do {
            report = try BundleVerifier.verify(path: bundle, exporterKeys: try loadPublicKeys(key), captureKeys: try loadPublicKeys(captureKeys)) {
                terminal.status($0)
            }
        } catch let e as ExportError {
            terminal.clearStatus()
            throw fail(e)
        }
        terminal.clearStatus()
        print(json ? report.json() : report.text(terminal: terminal))
        if !report.isValid { throw ExitCode(1) }
    }
}

struct Custody: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List a custody log and check its hash chain and signatures.",
        discussion: "Exit status: 0 the chain holds; 1 it is broken (every problem is listed); 2 the log cannot be read."
    )

    @Option(name: .long, help: ArgumentHelp("The custody log; default $TOLLGATE_CUSTODY_LOG or ~/.local/state/tollgate/custody.jsonl.", valueName: "FILE"))
    var log: String?

    @Option(name: .long, help: ArgumentHelp("An exporter public key (PEM) every entry must be signed by; repeatable.", valueName: "PUBKEY"))
    var key: [String] = []

    @Flag(name: .long, help: "Print the result as one JSON object.")
    var json = false

    func run() throws {
        let path = log ?? CustodyLog.defaultPath()
        guard let data = FileManager.default.contents(atPath: path) else { throw fail(.unreadable("\(path): cannot read the custody log")) }
        let report = CustodyLog.check(data, trustedKeys: try loadPublicKeys(key))
        print(json ? report.json(path: path) : report.text(path: path, terminal: Terminal()))
        if !report.isValid { throw ExitCode(1) }
    }
}

struct PublicKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "public-key",
        abstract: "Print the public key (PEM) of an exporter's private key, to give to auditors."
    )

    @Option(name: .long, help: ArgumentHelp("The exporter's Ed25519 private key (PEM); default $TOLLGATE_EXPORT_KEY.", valueName: "KEY"))
    var key: String?

    func run() throws {
        guard let path = key ?? ProcessInfo.processInfo.environment["TOLLGATE_EXPORT_KEY"] else { throw ValidationError("--key KEY is required") }
        do {
            print(try SigningKey.load(path: path).publicKeyPEM, terminator: "")
        } catch {
            throw fail(.unreadable("\(error)"))
        }
    }
}

// `--masked` takes an optional value, as in sessgrep: rewritten before parsing.
await SessExport.asyncMainWithGrepExitCodes(arguments: CaptureFilterOptions.expandingOptionalValues(Array(CommandLine.arguments.dropFirst())))
