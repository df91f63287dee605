import Foundation

/// A Kubernetes `Status` object (meta/v1), the body the API server sends with a failure, so that
/// kubectl and client libraries print the gate's reason as they print the server's:
/// `Error from server (Forbidden): <message>`.
public struct KubernetesStatus: Sendable, Equatable, Encodable {
    public struct Details: Sendable, Equatable, Encodable {
        public var name: String?
        public var group: String?
        /// The resource (`pods`, `secrets`), as the API server fills it in for Forbidden.
        public var kind: String?
    }

    public var kind = "Status"
    public var apiVersion = "v1"
    /// Always empty; present because clients expect it.
    public var metadata: [String: String] = [:]
    public var status = "Failure"
    public var message: String
    /// Forbidden, BadRequest, Timeout… (metav1.StatusReason).
    public var reason: String
    public var details: Details?
    public var code: Int

    public init(message: String, reason: String, code: Int, details: Details? = nil) {
        self.message = message; self.reason = reason; self.code = code; self.details = details
    }

    /// A policy denied the call: 403 Forbidden, the message naming policy and rule, the details
    /// naming the object when the request names one.
    public static func forbidden(policy: String, rule: String, reason: String, request info: KubernetesRequestInfo?) -> KubernetesStatus {
        var what = ""
        var details: Details?
        if let info, info.isResourceRequest {
            let resource = info.subresource.isEmpty ? info.resource : "\(info.resource)/\(info.subresource)"
            what = "\(info.verb) \(resource)"
            if !info.name.isEmpty { what += " \"\(info.name)\"" }
            if !info.namespace.isEmpty { what += " in namespace \"\(info.namespace)\"" }
            details = Details(name: info.name.isEmpty ? nil : info.name, group: info.apiGroup.isEmpty ? nil : info.apiGroup, kind: info.resource)
        } else if let info {
            what = "\(info.verb) \(info.path)"
        }
        let who = policy.isEmpty ? "rule \"\(rule)\"" : "policy \"\(policy)\" rule \"\(rule)\""
        let message = "tollgate: \(what.isEmpty ? "request" : what) denied by \(who): \(reason)"
        return KubernetesStatus(message: message, reason: "Forbidden", code: 403, details: details)
    }

    /// The gate cannot follow the request (a refused path, an odd query): 400 BadRequest.
    public static func badRequest(_ refusal: KubernetesRequestRefusal) -> KubernetesStatus {
        KubernetesStatus(message: "tollgate: refused: \(refusal.detail)", reason: "BadRequest", code: 400)
    }

    public var json: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // A struct of strings and an integer always encodes.
        return Array((try? encoder.encode(self)) ?? Data(#"{"kind":"Status","apiVersion":"v1","status":"Failure","code":500}"#.utf8))
    }

    /// The whole response: the Status with its code; the connection stays open (nothing of the
    /// request's framing is in doubt).
    public var response: GateResponse {
        let body = json
        return GateResponse(status: code, fields: [HTTPField("Content-Type", "application/json"), HTTPField("Content-Length", String(body.count))],
                            body: body, closesConnection: false)
    }
}
