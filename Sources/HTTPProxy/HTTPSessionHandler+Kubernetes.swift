import CaptureFormat
import Foundation
import ProxyCore

/// What a target of `kind: kubernetes` adds to the HTTP gate: the request's API facts (recorded as
/// a `.kubernetes` request), a Kubernetes `Status` for every refusal so kubectl prints the reason,
/// no client impersonation upstream, JSON asked for (never protobuf), and Secret values masked in
/// the response. exec and attach over WebSocket are relayed (HTTPSessionHandler+PodStream); SPDY and port-forward are refused.
extension HTTPSessionHandler {
    var isKubernetes: Bool { settings.kind == "kubernetes" }

    /// The request as the core decides and records it: `.kubernetes` around the HTTP record. A
    /// request the gate cannot follow (a refused path) or a stream into a pod is answered here with
    /// a Status and recorded, and nil returned.
    func kubernetesRequest(_ request: Request, head: RequestHead) -> Request? {
        guard case .http(let http) = request else { return request }
        switch KubernetesRequestFacts.parse(head) {
        case .failure(let refusal):
            kubernetesRefused(head, info: nil, rule: "kubernetes-request", reason: refusal.detail, status: .badRequest(refusal))
            return nil
        case .success(let info):
            exchange?.kubernetes = info
            let recorded = Request.kubernetes(info.captureRequest(http: http))
            if let reason = impersonationRefusal() {
                let status = KubernetesStatus.forbidden(policy: "tollgate", rule: "kubernetes-impersonation", reason: reason, request: info)
                kubernetesRefused(head, info: info, rule: "kubernetes-impersonation", reason: reason, status: status, recorded: recorded)
                return nil
            }
            if info.isStreaming || info.upgrade != nil, let reason = Self.streamRefusal(info, head: head) {
                // kubectl falls back to SPDY when its WebSocket upgrade is refused, and prints what the SPDY
                // request got: a policy's denial must be that answer too, not "not built".
                if core.preview(recorded).action == .deny { return recorded }
                let status = KubernetesStatus.forbidden(policy: "tollgate", rule: "kubernetes-streams", reason: reason, request: info)
                kubernetesRefused(head, info: info, rule: "kubernetes-streams", reason: reason, status: status, recorded: recorded)
                return nil
            }
            return recorded
        }
    }

    /// Why a stream into a pod cannot go through the gate, or nil for exec and attach over
    /// WebSocket with a subprotocol the gate follows (decided by the policy, then relayed).
    static func streamRefusal(_ info: KubernetesRequestInfo, head: RequestHead) -> String? {
        switch (info.subresource, info.upgrade) {
        case ("exec", .websocket), ("attach", .websocket):
            if case .failure(let why) = WebSocketUpgrade.request(head) { return why.detail }
            return nil
        case ("portforward", _):
            return "port-forward through the gate is not built yet"
        case (_, .spdy):
            return "\(info.subresource) over SPDY (Upgrade: SPDY/3.1) through the gate is not built; the gate follows WebSocket "
                + "(v5.channel.k8s.io, v4.channel.k8s.io), which kubectl 1.30 and later use unless KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false"
        default:
            let what = info.subresource.isEmpty ? "a protocol upgrade" : info.subresource
            return "\(what) through the gate is not built yet"
        }
    }

    /// Answers with `status`, records the refusal, and goes on with the next request once this one's body is read.
    func kubernetesRefused(_ head: RequestHead, info: KubernetesRequestInfo?, rule: String, reason: String, status: KubernetesStatus,
                           recorded: Request? = nil) {
        guard let ex = exchange else { return }
        var request = recordedRequest(head)
        if let recorded, case .kubernetes(var k) = recorded, case .http(let h) = request {
            k.http = h
            k.command = k.command.map { core.recording.text($0) }
            request = .kubernetes(k)
        }
        core.record(.request(request), exchange: ex.number)
        core.record(.decision(Decision(action: .deny, policy: "tollgate", rule: rule, reason: reason)), exchange: ex.number)
        core.record(.response(.http(HTTPResponse(status: UInt16(status.code)))), exchange: ex.number)
        core.countRefusal()
        logger.notice("Kubernetes request refused", metadata: ["client": "\(clientAddress)", "target": "\(target.name)",
                                                                "rule": "\(rule)", "reason": "\(reason)"])
        write(status.response.serialized)
        exchange = nil
        step = ex.requestEnded ? .idle : .discarding(closeAfter: head.closesConnection)
        submitRecorded()
        pump()
    }

    /// The deny body kubectl prints: `Error from server (Forbidden): tollgate: … denied by policy "p" rule "r": …`.
    func kubernetesDenied(_ decision: Decision?, message: String) -> GateResponse {
        KubernetesStatus.forbidden(policy: decision?.policy ?? "", rule: decision?.rule ?? "tollgate", reason: decision?.reason ?? message,
                                   request: exchange?.kubernetes).response
    }

    /// The client's fields as they go upstream: no `Impersonate-*` (only the gate says who the
    /// caller is), and `Accept` without protobuf (the gate masks JSON; it cannot read protobuf).
    static func kubernetesUpstreamFields(_ fields: [HTTPField]) -> [HTTPField] {
        // With no identity to impersonate, rewrite only removes fields: it cannot throw.
        var out = (try? ImpersonationFields.rewrite(fields, impersonating: nil)) ?? fields.filter { !ImpersonationFields.isImpersonation($0) }
        let accepted = out.filter { $0.canonicalName == "accept" }.flatMap { $0.value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        let json = accepted.filter { !$0.lowercased().contains("protobuf") }
        out.removeAll { $0.canonicalName == "accept" }
        out.append(HTTPField("Accept", json.isEmpty ? "application/json" : json.joined(separator: ", ")))
        return out
    }

    /// A Kubernetes response body: JSON is masked by `KubernetesResponseMasker`; text (logs) by the
    /// target's masks; anything else (protobuf, octet streams) is refused.
    static func kubernetesBodyHandling(_ fields: [HTTPField]) -> (ResponseBodyHandling, json: Bool) {
        let general = ResponseBodyHandling.of(fields)
        if case .refuse = general { return (general, false) }
        let media = fields.values("content-type").first.map {
            $0.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        } ?? ""
        if media == "application/json" || media.hasSuffix("+json") { return (.maskText, true) }
        // No type (an empty answer): masked as text, as for plain HTTP (a client may sniff it).
        if media.hasPrefix("text/") || media.isEmpty { return (.maskText, false) }
        return (.refuse("the Kubernetes response is `\(media.isEmpty ? "untyped" : media)`, which the gate cannot read to mask Secrets (only JSON and text pass)"), false)
    }

    /// The masker for a JSON response: Secret values masked unless every policy for this caller reveals them.
    func kubernetesMasker() -> KubernetesResponseMasker {
        var reveal = false
        if let session = core.context, let enforcement = gate.policies.current.pipeline.policy as? PolicyEnforcement {
            reveal = enforcement.policies.revealsKubernetesSecrets(to: .init(subject: session.subject, groups: session.groups), target: target.name)
        }
        return KubernetesResponseMasker(watch: exchange?.kubernetes?.verb == "watch", limit: settings.maxBodyBytes,
                                        revealSecrets: reveal, text: core.recording.session)
    }

    /// A JSON response the gate could not mask before sending any of it: 502 Status, recorded; the upstream connection dropped.
    func kubernetesUnmaskable(_ reason: String) {
        guard let ex = exchange else { return }
        dropUpstream()
        core.responded(.http(HTTPResponse(status: 502, headers: [KeyValue("X-Tollgate-Error", reason)], durationMicros: micros(since: ex.started))),
                       exchange: ex.number)
        core.countError()
        submitRecorded()
        exchange = nil
        endReason = "unmaskable-response"
        logger.warning("Kubernetes response refused: it cannot be masked", metadata: ["target": "\(target.name)", "detail": "\(reason)"])
        var status = KubernetesStatus(message: "tollgate: \(reason)", reason: "InternalError", code: 502)
        status.details = nil
        var response = status.response
        response.fields.append(HTTPField("Connection", "close"))
        answerAndClose(response)
    }
}
