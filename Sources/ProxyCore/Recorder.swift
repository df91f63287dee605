import CaptureFormat
import Foundation
import Synchronization

/// Records one session to its capture file off the event loop: protocol handlers
/// call `record` (cheap, ordered, never blocks on disk); one task per session
/// appends to the writer, seals blocks by age, and closes the file at the end.
///
/// Events are handed over in batches: `record` appends under a lock and wakes the
/// writer task only when the batch was empty, and the task lets 50 ms of events gather
/// before it drains them (far below the 2 s block age that bounds what a crash loses). At thousands of statements a second this is
/// one wake-up per batch instead of one per event (measured: the per-event wake-ups
/// cost the gate a third of its throughput).
public final class SessionRecorder: Sendable {
    enum Item: Sendable {
        case wake
        case tick
    }

    struct Batch {
        var events: [Event] = []
        var signalled = false
    }

    /// The hand-over buffer, shared by `record` and the writer task.
    final class SharedBatch: Sendable {
        let mutex = Mutex(Batch())
        func withLock<R>(_ body: (inout Batch) -> R) -> R { mutex.withLock { body(&$0) } }
    }

    public let path: String
    public let sessionID: String
    let continuation: AsyncStream<Item>.Continuation
    let consumer: Task<CaptureError?, Never>
    let ticker: Task<Void, Never>
    let started = ContinuousClock.now
    let batch = SharedBatch()
    static let gatherDelay = Duration.milliseconds(50)

    /// Creates DIR/YYYY/MM/DD/SESSION-ID.sesscap (directories 0700, file 0600) and writes its header.
    public init(directory: String, header: SessionHeader, key: SigningKey, options: WriterOptions = WriterOptions()) throws(CaptureError) {
        let dir = SessionRecorder.datedDirectory(directory, micros: header.startMicros)
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw CaptureError(.io, "\(dir): cannot create capture directory: \(error.localizedDescription)")
        }
        path = (dir as NSString).appendingPathComponent("\(header.sessionID).sesscap")
        sessionID = header.sessionID
        let writer = try CaptureWriter(path: path, header: header, key: key, options: options)
        let (stream, continuation) = AsyncStream<Item>.makeStream()
        self.continuation = continuation
        let batch = self.batch
        consumer = Task {
            var failure: CaptureError?
            for await item in stream {
                do throws(CaptureError) {
                    switch item {
                    case .wake:
                        try? await Task.sleep(for: SessionRecorder.gatherDelay)
                        let events = batch.withLock { b in
                            defer { b.events = []; b.signalled = false }
                            return b.events
                        }
                        for e in events where failure == nil { try writer.append(e) }
                    case .tick:
                        try writer.sealIfDue()
                    }
                } catch {
                    failure = failure ?? error
                }
            }
            do throws(CaptureError) { try writer.close() } catch { failure = failure ?? error }
            return failure
        }
        ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                continuation.yield(.tick)
            }
        }
    }

    static func datedDirectory(_ base: String, micros: Int64) -> String {
        let day = String(isoTime(micros: micros).prefix(10)).replacingOccurrences(of: "-", with: "/")
        return (base as NSString).appendingPathComponent(day)
    }

    /// Stamps `payload` now and queues it.
    public func record(_ payload: Payload, exchange: UInt64 = 0) {
        let mono = UInt64(max(0, (ContinuousClock.now - started).nanoseconds))
        let event = Event(monotonicNanos: mono, wallMicros: nowMicros(), exchangeID: exchange, payload: payload)
        let wake = batch.withLock { b in
            b.events.append(event)
            defer { b.signalled = true }
            return !b.signalled
        }
        if wake { continuation.yield(.wake) }
    }

    /// Records the session end, seals and closes the file. Returns the first write error, if any.
    @discardableResult
    public func finish(reason: String, detail: String = "") async -> CaptureError? {
        record(.sessionEnd(SessionEnd(reason: reason, detail: detail)))
        ticker.cancel()
        continuation.finish()
        return await consumer.value
    }
}
