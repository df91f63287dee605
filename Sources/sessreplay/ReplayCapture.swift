import CaptureFormat
import Forensics
import Foundation
import ProxyCore

/// What every kind of replay does the same with captures: reading the original's exchanges up to
/// any damage, and opening the replay's own capture linked to the original.
enum ReplayCapture {
    /// The exchanges of `capture` up to any damage (`damage` says where), each event also given to
    /// `also`. The exchange open at the damage may lack its response or part of its body: it is left out.
    static func exchanges(of capture: CaptureFile, keepsRows: Bool,
                          also: (Event) -> Void = { _ in }) -> (exchanges: [Exchange], damage: String?) {
        var assembler = ExchangeAssembler(keepsRows: keepsRows)
        var lastSequence: UInt64 = 0
        var damage: String?
        do {
            try capture.forEachEvent { e in
                also(e)
                assembler.add(e)
                lastSequence = e.sequence
                return true
            }
        } catch {
            damage = "damaged after event \(lastSequence): \(error)"
        }
        if damage == nil, case .unsealed(let complete, let length, let reason) = capture.state {
            damage = "cut off: complete blocks end at byte \(complete) of \(length) (\(reason)); last event read \(lastSequence)"
        }
        var exchanges = assembler.exchanges
        if damage != nil, let last = exchanges.last, last.response == nil { exchanges.removeLast() }
        return (exchanges, damage)
    }

    /// The header of a replay of the session `original` (read from `path`) against `target`.
    static func header(of original: SessionHeader, path: String, finalChainHash: String?, target: String, settings: [KeyValue],
                       protocolName: String) -> SessionHeader {
        var attributes = [KeyValue("replay.of_session", original.sessionID), KeyValue("replay.of_capture", path)]
        if let finalChainHash { attributes.append(KeyValue("replay.of_chain", finalChainHash)) }
        attributes.append(KeyValue("replay.target", target))
        attributes.append(KeyValue("replay.by", ProcessInfo.processInfo.environment["USER"] ?? ""))
        attributes += settings
        return SessionHeader(sessionID: UUID().uuidString.lowercased(), target: original.target, protocolName: protocolName,
                             subject: original.subject, groups: original.groups, issuer: original.issuer, proxyID: "sessreplay",
                             startMicros: nowMicros(), writer: "sessreplay", attributes: attributes)
    }

    /// The replay's capture, opened with its session start.
    static func writer(path: String, header: SessionHeader, key: SigningKey, startupParameters: [KeyValue] = []) throws -> CaptureWriter {
        var options = WriterOptions()
        // The gate's default level (recording.compression_level): a replay at full speed records as fast as the gate.
        options.compressionLevel = Int32(TargetConfig.defaultCompressionLevel)
        let writer = try CaptureWriter(path: path, header: header, key: key, options: options)
        try writer.append(.sessionStart(SessionStart(clientAddress: "sessreplay", applicationName: "sessreplay", parameters: startupParameters)))
        return writer
    }
}
