import ProxyCore

/// A pod's log (`kubectl logs`, `logs -f`) through a `kind: kubernetes` target: masked line by line
/// and sent as each line ends (a follow stream stays open for as long as the client reads it, so
/// nothing may wait for its end), and recorded as `stdout` stream chunks as it is sent, so that a
/// stream the client cuts off is on the record up to its last line.
extension HTTPSessionHandler {
    /// The exchange's response is a pod's log.
    var isLogStream: Bool {
        guard isKubernetes, let k = exchange?.kubernetes else { return false }
        return k.isResourceRequest && k.resource == "pods" && k.subresource == "log"
    }

    /// The masked bytes just sent, on the record: as a stream chunk now, or in the response event at the end.
    func recordBody(_ bytes: [UInt8], of response: inout HTTPExchange.Response, exchange number: UInt64) {
        guard response.recordedAsStream else { response.body.append(bytes); return }
        guard !bytes.isEmpty else { return }
        core.streamed(bytes, stream: .stdout, exchange: number)
    }
}
