import ArgumentParser
import AsyncHTTPClient
import CaptureFormat
import Forensics
import Foundation
import NIOCore

// The HTTP and Kubernetes replay: an http(s):// --target. It shares the PostgreSQL replay's
// selection, schedule, turns, progress and summary; only connecting, sending and recording differ.
extension SessReplay {
    func runHTTP() async throws {
        let terminal = Terminal()
        if rollback { throw Failure("--rollback is for a postgres:// target: an HTTP request cannot be rolled back") }
        let destination = try HTTPTarget.parse(target, options: http)
        if !(http.requestTimeout > 0 && http.requestTimeout.isFinite) { throw Failure("--request-timeout must be a positive number") }
        var options = ReplayOptions(allowWrites: allowWrites)
        try window(&options)
        let paths = try await capturePaths()
        let sources = try paths.map { try HTTPReplaySource.load(path: $0, options: options) }
        let damage = sources.compactMap { s in s.damage.map { "\(s.path): \($0); only what precedes it is replayed" } }
        for d in damage { printError("sessreplay: \(d)") }
        // Known before anything is sent: a mask the replay cannot apply refuses the whole replay.
        let masks = try sources.map { try ReplayMasks.make(fired: $0.maskedWith, options: http, kubernetes: $0.isKubernetes) }

        let schedule = ReplaySchedule(starts: sources.map { s in s.replayed.map { s.steps[$0].recordedMicros } }, timing: timing)
        if dryRun {
            print(ReplayPlanOutput(sources: sources, schedule: schedule, target: destination.display).render(json: json, terminal: terminal))
            throw ExitCode(damage.isEmpty ? 0 : 2)
        }
        let key: SigningKey
        do { key = try SigningKey.load(path: signingKey!) } catch { throw Failure("--signing-key: \(error)") }
        do {
            try FileManager.default.createDirectory(atPath: out!, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch { throw Failure("--out \(out!): cannot create: \(error.localizedDescription)") }

        var configuration = HTTPClient.Configuration(tlsConfiguration: try destination.tls(http), redirectConfiguration: .disallow,
                                                     timeout: .init(connect: .seconds(10)), decompression: .disabled)
        configuration.httpVersion = .http1Only
        // --server-name: the URL names the certificate's host, connected to at the target's address.
        if let name = destination.serverName { configuration.dnsOverride = [name: destination.host] }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)

        let settings = [KeyValue("replay.timing", timingName), KeyValue("replay.allow_writes", "\(allowWrites)"),
                        KeyValue("replay.credential", destination.credentialSource)]
        let turns = ReplayTurns(count: schedule.entries.count)
        let progress = ReplayProgress()
        let total = schedule.entries.count
        let scale: Double = if case .speed(let x) = timing { x } else { 1 }
        let timeout = TimeAmount.nanoseconds(Int64(http.requestTimeout * 1e9))
        var replayers: [HTTPSessionReplayer] = []
        for (i, s) in sources.enumerated() {
            let path = (out! as NSString).appendingPathComponent("replay-\(s.header.sessionID)-\(UUID().uuidString.prefix(8).lowercased()).sesscap")
            let setup = HTTPReplayRecorder.Setup(path: path, header: HTTPReplayRecorder.header(of: s, target: destination.display, settings: settings),
                                                 key: key, maxBodyBytes: maxValueBytes, masks: masks[i])
            replayers.append(HTTPSessionReplayer(index: i, source: s, entries: schedule.entries(ofSession: i), client: client, target: destination,
                                                 timeout: timeout, recording: setup, turns: turns, scale: scale,
                                                 concurrent: sources.count > 1, progress: progress))
        }
        let started = ContinuousClock.now
        let outcomes = await ReplayRun.outcomes(of: replayers, total: total, progress: progress, terminal: terminal, start: started)
        try? await client.shutdown()
        let summary = ReplaySummary(outcomes: outcomes, damage: damage, target: destination.display, seconds: ReplayRun.seconds(since: started))
        print(json ? summary.json : summary.text(terminal))
        for f in summary.failures { printError("sessreplay: \(f)") }
        if !summary.failures.isEmpty || !damage.isEmpty { throw ExitCode(2) }
        if !summary.newErrors.isEmpty { throw ExitCode(1) }
    }
}
