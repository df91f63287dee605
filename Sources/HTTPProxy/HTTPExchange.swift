import CaptureFormat
import NIOCore

/// One request through the gate and its response, as the session handler follows it.
struct HTTPExchange {
    let number: UInt64
    let head: RequestHead
    let framing: BodyFraming
    let started: NIODeadline
    /// The client has sent the whole request body.
    var requestEnded = false
    var response: Response?
    /// A `kind: kubernetes` target's facts of the request.
    var kubernetes: KubernetesRequestInfo?

    /// The upstream's response as it is relayed.
    struct Response {
        var status: Int
        var recordedFields: [KeyValue]
        /// The client gets the body chunked (the gate set the framing: a masked body's length changes).
        var chunked: Bool
        /// HEAD, 204, 304: no body whatever the fields say.
        var bodiless: Bool
        var masker: StreamingBodyMasker?
        /// A Kubernetes JSON body (in place of `masker`).
        var kubernetes: KubernetesResponseMasker?
        /// A whole Kubernetes body is masked before anything is sent: its head waits here.
        var heldHead: [UInt8]?
        var body: BodyRecording
        /// The body is recorded as `stdout` stream chunks as it is sent (a pod's log, which may
        /// stream for hours), not in the response event at its end.
        var recordedAsStream = false
        /// A gzip or deflate body, decoded before it is masked (the client gets it decoded).
        var decoder: ContentDecoder?
        /// The client's connection ends after this response (the upstream said close, or the body runs to the close).
        var closeAfter: Bool
    }

    init(number: UInt64, head: RequestHead, framing: BodyFraming, started: NIODeadline) {
        self.number = number; self.head = head; self.framing = framing; self.started = started
    }
}
