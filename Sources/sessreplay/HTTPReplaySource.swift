import CaptureFormat
import Forensics
import Foundation

/// One recorded HTTP or Kubernetes session read for replay: its header, planned steps, the
/// detectors its gate masked with, and where reading stopped if the capture is damaged or cut off.
struct HTTPReplaySource: Sendable {
    let path: String
    let header: SessionHeader
    let finalChainHash: String?
    var steps: [HTTPReplayStep]
    /// The detectors and rules the gate's mask summaries name, over the whole session.
    let maskedWith: Set<String>
    let damage: String?

    var isKubernetes: Bool { steps.contains { if case .kubernetes = $0.request { true } else { false } } || header.protocolName == "kubernetes" }

    static func load(path: String, options: ReplayOptions) throws -> HTTPReplaySource {
        let capture: CaptureFile
        do {
            capture = try CaptureFile(path: path)
        } catch {
            if error.kind == .unsupported { throw Failure("\(path): \(error.message) (a newer capture format: upgrade sessreplay)") }
            throw Failure("\(path): \(error)")
        }
        guard capture.minorVersion <= CaptureLayout.minorVersion else {
            throw Failure("\(path): capture format \(capture.majorVersion).\(capture.minorVersion) is newer than this sessreplay reads (1.\(CaptureLayout.minorVersion)); it could miss what the newer format marks as withheld. Upgrade sessreplay")
        }
        guard capture.header.protocolName != "postgres" else {
            throw Failure("\(path): a PostgreSQL session; an http(s):// --target replays HTTP and Kubernetes sessions (give a postgres:// --target)")
        }
        // The assembler counts stream chunks; the request bodies (stdin chunks) are kept here.
        var bodies: [UInt64: [UInt8]] = [:]
        var fired = Set<String>()
        let (exchanges, damage) = ReplayCapture.exchanges(of: capture, keepsRows: false) { e in
            switch e.payload {
            case .streamChunk(let c) where c.stream == .stdin && e.exchangeID != 0: bodies[e.exchangeID, default: []] += c.data
            case .maskSummary(let m): for entry in m.entries { fired.insert(entry.detector) }
            default: break
            }
        }
        return HTTPReplaySource(path: path, header: capture.header, finalChainHash: capture.trailer.map { hex($0.finalChainHash) },
                                steps: HTTPReplayPlanner.plan(exchanges, bodies: bodies, options: options), maskedWith: fired, damage: damage)
    }

    var replayed: [Int] { steps.indices.filter { steps[$0].replays } }
}
