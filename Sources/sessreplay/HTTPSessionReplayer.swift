import AsyncHTTPClient
import CaptureFormat
import Forensics
import Foundation
import NIOCore
import NIOHTTP1

/// What the target answered to one replayed request.
struct HTTPReplayReply: Sendable {
    var status: UInt16
    var fields: [KeyValue]
    /// The whole body (held to be masked as the gate masks it, up to `HTTPSessionReplayer.maxHeldBody`).
    var body: [UInt8]
    var micros: UInt64
}

struct HTTPReplayError: Error, CustomStringConvertible { var description: String }

/// Replays one HTTP session in its recorded order, each request no earlier than its scheduled
/// offset and its turn in the global order (as `SessionReplayer` does for PostgreSQL), through a
/// client shared by all sessions; records the replay as a capture.
struct HTTPSessionReplayer {
    /// The most of a body held for masking; past it the body is counted only (it never reaches the capture).
    static let maxHeldBody = 64 << 20

    let index: Int
    let source: HTTPReplaySource
    let entries: [ReplaySchedule.Entry]
    let client: HTTPClient
    let target: HTTPTarget
    let timeout: TimeAmount
    let recording: HTTPReplayRecorder.Setup?
    let turns: ReplayTurns
    let scale: Double
    let concurrent: Bool
    let progress: ReplayProgress
    var pacing: ReplayPacing { ReplayPacing(entries: entries, turns: turns, scale: scale, concurrent: concurrent) }

    func run(start: ContinuousClock.Instant) async -> SessionOutcome {
        var outcome = SessionOutcome(source: source.path, sessionID: source.header.sessionID, capture: recording?.path)
        var nextEntry = 0
        var recorder: HTTPReplayRecorder?
        do {
            recorder = try recording.map { try HTTPReplayRecorder($0) }
            for step in source.steps {
                guard step.replays else {
                    if case .skip(let reason) = step.disposition {
                        outcome.noteSkipped(reason, exchange: step.exchangeID)
                        try recorder?.skipped(step, reason)
                    }
                    continue
                }
                try await pacing.wait(for: nextEntry, start: start)
                let timer = pacing.releaseNextWhenLate(after: nextEntry, recordedMicros: step.recordedResponse?.durationMicros ?? 0)
                nextEntry += 1
                try recorder?.request(step)
                let reply: HTTPReplayReply
                do {
                    reply = try await send(step)
                } catch {
                    timer?.cancel()
                    let why = "\(step.http.method) \(step.http.target): \(Self.describe(error)) (\(target.display))"
                    try? recorder?.failed(step, why)
                    throw HTTPReplayError(description: why)
                }
                timer?.cancel()
                outcome.replayed += 1
                outcome.replayedMicros.append(reply.micros)
                if let recorded = step.recordedResponse { outcome.recordedMicros.append(recorded.durationMicros) }
                // An error: a 5xx, or a 4xx where the recording had none.
                let recordedStatus = step.recordedResponse?.status ?? 0
                if reply.status >= 400 {
                    outcome.errors += 1
                    if recordedStatus < 400 || (reply.status >= 500 && recordedStatus < 500) {
                        outcome.newErrors.append("exchange \(step.exchangeID): \(step.http.method) \(step.http.target) → \(reply.status) (recorded \(recordedStatus))")
                    }
                }
                try recorder?.replied(step, reply)
                progress.step()
            }
            try recorder?.finish(reason: "replay-complete", detail: "")
        } catch {
            outcome.failure = "\(error)"
            await turns.release(entries[min(nextEntry, entries.count)...].map(\.order))
            try? recorder?.finish(reason: "error", detail: "\(error)")
        }
        return outcome
    }

    func send(_ step: HTTPReplayStep) async throws -> HTTPReplayReply {
        let path = step.http.target.hasPrefix("/") || step.http.target == "*" ? step.http.target : "/" + step.http.target
        let port = (target.scheme == "https" && target.port == 443) || (target.scheme == "http" && target.port == 80) ? "" : ":\(target.port)"
        var request = HTTPClientRequest(url: "\(target.scheme)://\(target.requestHost)\(port)\(target.basePath)\(path == "*" ? "" : path)")
        request.method = HTTPMethod(rawValue: step.http.method)
        for f in step.fields { request.headers.add(name: f.key, value: f.value) }
        // The body is sent in the identity encoding: a compressed one could not be masked.
        request.headers.replaceOrAdd(name: "Accept-Encoding", value: "identity")
        if let authorization = target.authorization { request.headers.replaceOrAdd(name: "Authorization", value: authorization) }
        if !step.body.isEmpty || !["GET", "HEAD", "OPTIONS", "DELETE"].contains(step.http.method.uppercased()) {
            request.body = .bytes(step.body)
        }
        let began = ContinuousClock.now
        let response = try await client.execute(request, timeout: timeout)
        var body: [UInt8] = []
        var total = 0
        for try await chunk in response.body {
            total += chunk.readableBytes
            if body.count < Self.maxHeldBody { body += chunk.readableBytesView.prefix(Self.maxHeldBody - body.count) }
        }
        let took = ContinuousClock.now - began
        var fields = response.headers.map { KeyValue($0.name, $0.value) }
        if total > body.count { fields.append(KeyValue("X-Tollgate-Replay", "body of \(total) bytes: the first \(body.count) held and recorded")) }
        return HTTPReplayReply(status: UInt16(clamping: response.status.code), fields: fields, body: body,
                               micros: UInt64(max(0, took.components.seconds * 1_000_000 + took.components.attoseconds / 1_000_000_000_000)))
    }

    /// A transport error as a person reads it: connection refused, a TLS failure, a timeout.
    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        if let e = error as? HTTPClientError {
            switch e {
            case .connectTimeout: return "cannot connect: timed out"
            case .deadlineExceeded, .readTimeout: return "no answer in time"
            case .remoteConnectionClosed: return "the target closed the connection"
            default: return "HTTP client: \(text)"
            }
        }
        if text.contains("handshake") || text.contains("certificate") || text.contains("NIOSSL") || text.contains("BoringSSL") {
            return "TLS failed (does the target speak TLS, and is its certificate trusted for this name? --ca-file, --server-name): \(text)"
        }
        if text.contains("Connection refused") { return "cannot connect: connection refused" }
        if text.contains("connectionRefused") || text.contains("connect(") || text.contains("errno") {
            return "cannot connect: \(text)"
        }
        return text
    }
}
