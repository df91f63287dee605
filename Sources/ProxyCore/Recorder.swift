import CaptureFormat
import Foundation

/// Records one session to its capture file off the event loop: protocol handlers
/// call `record` (cheap, ordered, never blocks on disk); one task per session
/// appends to the writer, seals blocks by age, and closes the file at the end.
public final class SessionRecorder: Sendable {
    enum Item: Sendable {
        case event(Event)
        case tick
    }

    public let path: String
    public let sessionID: String
    let continuation: AsyncStream<Item>.Continuation
    let consumer: Task<CaptureError?, Never>
    let ticker: Task<Void, Never>
    let started = ContinuousClock.now

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
        consumer = Task {
            var failure: CaptureError?
            for await item in stream where failure == nil {
                do throws(CaptureError) {
                    switch item {
                    case .event(let e): try writer.append(e)
                    case .tick: try writer.sealIfDue()
                    }
                } catch {
                    failure = error
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
        let mono = UInt64((ContinuousClock.now - started).components.seconds) * 1_000_000_000
            + UInt64((ContinuousClock.now - started).components.attoseconds / 1_000_000_000)
        continuation.yield(.event(Event(monotonicNanos: mono, wallMicros: nowMicros(), exchangeID: exchange, payload: payload)))
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
