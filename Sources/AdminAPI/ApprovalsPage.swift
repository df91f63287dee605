import Approvals
import Foundation
import Hummingbird
import HTTPTypes
import Identity
import Logging
import ProxyCore

/// The approvals page on the admin listener: people log in through the gate's OIDC provider
/// (authorization code, PKCE, state, nonce), get a server-side session in an HttpOnly cookie, and
/// approve or deny with plain forms (CSRF token per session). Who may decide is the approvals
/// service's rule, as for the API; this type only renders and forwards.
struct ApprovalsPage: Sendable {
    let approvals: Approvals
    let operators: Set<String>
    let login: OIDCLogin
    let sessions: PageSessions
    /// The open sessions' last exchanges (the gate feeds it when the page is served).
    let recent: RecentExchanges
    let secureCookies: Bool
    let logger: Logger

    static let sessionCookie = "tollgate_page"
    static let loginCookie = "tollgate_login"

    func register(on router: Router<AdminContext>) {
        router.get("page/app.css") { _, _ in Self.asset(ApprovalsPageAssets.css, type: "text/css; charset=utf-8") }
        router.get("page/app.js") { _, _ in Self.asset(ApprovalsPageAssets.js, type: "text/javascript; charset=utf-8") }
        router.get("login") { request, _ in try await startLogin(returnTo: request.uri.queryParameters.get("return") ?? "/approvals") }
        router.get("login/callback") { request, _ in try await callback(request) }
        router.post("logout") { request, context in try await logout(request, context) }
        router.get("approvals") { request, _ in try await listPage(request) }
        router.get("approvals/:id") { request, context in try await onePage(request, id: try context.parameters.require("id")) }
        router.post("approvals/:id/decision") { request, context in
            try await decide(request, context, id: try context.parameters.require("id"))
        }
        router.get("page/pending") { request, _ in try await pendingFragment(request) }
    }

    // MARK: login

    /// Only paths of this page: never another site (an open redirect) nor `//host`.
    static func safeReturn(_ path: String) -> String {
        guard path.hasPrefix("/approvals"), !path.hasPrefix("//"), !path.contains("\\"),
              !path.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7F }) else { return "/approvals" }
        return path
    }

    func startLogin(returnTo: String) async throws -> Response {
        let endpoints: OIDCLogin.Endpoints
        do { endpoints = try await login.endpoints() } catch {
            logger.error("approvals page: cannot reach the identity provider", metadata: ["error": "\(error)"])
            return html(.badGateway, ApprovalsPageHTML.message(title: "Login unavailable", "The identity provider cannot be reached: \(error)", link: nil))
        }
        let (state, pending) = await sessions.beginLogin(returnTo: Self.safeReturn(returnTo))
        guard let url = login.authorizationURL(endpoints, state: state, login: pending) else {
            return html(.internalServerError, ApprovalsPageHTML.message(title: "Login unavailable", "The provider's authorization endpoint is not a usable URL", link: nil))
        }
        var response = redirect(url.absoluteString, status: .found)
        // Binds the login to this browser: a state from someone else's login link is refused.
        response.headers.append(HTTPField(name: .setCookie, value: cookie(Self.loginCookie, state, maxAge: Int(PageSessions.loginLifetime))))
        return response
    }

    func callback(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        if let error = query.get("error") {
            return html(.forbidden, ApprovalsPageHTML.message(title: "Login refused", "The identity provider refused the login (\(error)).", link: ("/login", "Try again")))
        }
        guard let state = query.get("state"), let code = query.get("code"), !state.isEmpty, !code.isEmpty else {
            return html(.badRequest, ApprovalsPageHTML.message(title: "Login failed", "The provider's answer has no code or state.", link: ("/login", "Try again")))
        }
        guard let bound = Self.cookies(request)[Self.loginCookie], PageSessions.constantTimeEqual(bound, state),
              let pending = await sessions.finishLogin(state: state) else {
            return html(.badRequest, ApprovalsPageHTML.message(title: "Login failed", "This login was not started in this browser, was already used, or is too old.", link: ("/login", "Try again")))
        }
        let identity: VerifiedIdentity
        do {
            identity = try await login.identity(code: code, login: pending)
        } catch {
            logger.warning("approvals page: login refused", metadata: ["error": "\(error)"])
            return html(.forbidden, ApprovalsPageHTML.message(title: "Login failed", "\(error)", link: ("/login", "Try again")))
        }
        let (id, session) = await sessions.open(identity, lifetime: login.settings.sessionLifetime.seconds)
        logger.info("approvals page: logged in", metadata: ["subject": "\(identity.subject)"])
        var response = redirect(pending.returnTo)
        let maxAge = max(1, Int(session.expires.timeIntervalSinceNow.rounded(.down)))
        response.headers.append(HTTPField(name: .setCookie, value: cookie(Self.sessionCookie, id, maxAge: maxAge)))
        response.headers.append(HTTPField(name: .setCookie, value: cookie(Self.loginCookie, "", maxAge: 0)))
        return response
    }

    func logout(_ request: Request, _ context: AdminContext) async throws -> Response {
        let form = try await Self.form(request, context)
        if let (id, session) = await current(request) {
            guard PageSessions.constantTimeEqual(form["csrf"] ?? "", session.csrf) else { return csrfRefused() }
            await sessions.close(id)
        }
        var response = html(.ok, ApprovalsPageHTML.message(title: "Logged out", "You are logged out of the approvals page.", link: ("/login", "Log in again")))
        response.headers.append(HTTPField(name: .setCookie, value: cookie(Self.sessionCookie, "", maxAge: 0)))
        return response
    }

    // MARK: pages

    func current(_ request: Request) async -> (String, PageSessions.Session)? {
        guard let id = Self.cookies(request)[Self.sessionCookie], !id.isEmpty, let session = await sessions.session(id) else { return nil }
        return (id, session)
    }

    func loginRedirect(_ request: Request) -> Response {
        let back = Self.safeReturn(request.uri.path)
        return redirect("/login?return=" + OIDCLogin.formEncode(back), status: .found)
    }

    func isOperator(_ who: VerifiedIdentity) -> Bool { !operators.isDisjoint(with: who.groups) }

    /// As the API: operators see everything; others what they may decide on and their own requests.
    func may(_ who: VerifiedIdentity, see r: ApprovalRecord) -> Bool {
        isOperator(who) || r.subject == who.subject || who.groups.contains(where: r.requirement.groups.contains)
    }

    /// Each request's session's last exchanges before it, as its capture records them (masked,
    /// withheld): the context an approver sees beside it, while the session is open.
    func contexts(for records: [ApprovalRecord]) -> [String: [RecentExchanges.Entry]] {
        var result: [String: [RecentExchanges.Entry]] = [:]
        for r in records {
            let earlier = recent.recent(r.session).filter { $0.exchange < r.exchange }
            if !earlier.isEmpty { result[r.id] = earlier }
        }
        return result
    }

    func pendingData(_ who: VerifiedIdentity) async throws -> ([ApprovalRecord], [String: [RecentExchanges.Entry]]) {
        let pending = try await approvals.approvals(states: [.pending], limit: 500).filter { may(who, see: $0) }.sorted { $0.createdAt < $1.createdAt }
        return (pending, contexts(for: pending))
    }

    func listPage(_ request: Request) async throws -> Response {
        guard let (_, session) = await current(request) else { return loginRedirect(request) }
        let who = session.identity
        let now = Date()
        let (pending, contexts) = try await pendingData(who)
        let decided = try await approvals.approvals(states: Set(ApprovalState.allCases).subtracting([.pending]), limit: 50)
            .filter { may(who, see: $0) }.prefix(20)
        var main = "<h1>Approvals</h1>\n"
        if let flash = request.uri.queryParameters.get("done") {
            main += "<p class=\"flash\" role=\"status\">\(ApprovalsPageHTML.escape(flash))</p>\n"
        }
        main += "<section aria-labelledby=\"pending-title\">\n<h2 id=\"pending-title\">Pending (<span id=\"pending-count\">\(pending.count)</span>)</h2>\n"
        main += "<div id=\"pending\" aria-live=\"polite\">" + ApprovalsPageHTML.pendingList(pending, who: who, csrf: session.csrf, contexts: contexts, now: now) + "</div>\n</section>\n"
        main += "<section aria-labelledby=\"recent-title\">\n<h2 id=\"recent-title\">Recent decisions</h2>\n" + ApprovalsPageHTML.recentTable(Array(decided)) + "</section>\n"
        return html(.ok, ApprovalsPageHTML.page(title: "Approvals", main: main, who: who, csrf: session.csrf, refresh: true))
    }

    func pendingFragment(_ request: Request) async throws -> Response {
        guard let (_, session) = await current(request) else {
            return html(.unauthorized, ApprovalsPageHTML.message(title: "Not logged in", "Log in to see the approvals.", link: ("/login", "Log in")))
        }
        let (pending, contexts) = try await pendingData(session.identity)
        return html(.ok, ApprovalsPageHTML.pendingList(pending, who: session.identity, csrf: session.csrf, contexts: contexts, now: Date()))
    }

    func onePage(_ request: Request, id: String) async throws -> Response {
        guard let (_, session) = await current(request) else { return loginRedirect(request) }
        let who = session.identity
        guard let record = try await approvals.approval(id) else {
            return html(.notFound, ApprovalsPageHTML.message(title: "Not found", "There is no approval \(id).", who: who, csrf: session.csrf))
        }
        guard may(who, see: record) else {
            return html(.forbidden, ApprovalsPageHTML.message(title: "Not an approver",
                "\(who.subject) is not an approver of \(id): it needs \(record.requirement.description), and your groups are \(who.groups.isEmpty ? "none" : who.groups.joined(separator: ", ")).",
                who: who, csrf: session.csrf))
        }
        let context = record.state == .pending ? contexts(for: [record])[record.id] ?? [] : []
        let main = "<h1>Approval \(ApprovalsPageHTML.escape(id))</h1>\n"
            + ApprovalsPageHTML.approval(record, who: who, csrf: session.csrf, context: context, now: Date(), heading: "h2")
        return html(.ok, ApprovalsPageHTML.page(title: "Approval \(id)", main: main, who: who, csrf: session.csrf, refresh: record.state == .pending))
    }

    func decide(_ request: Request, _ context: AdminContext, id: String) async throws -> Response {
        let form = try await Self.form(request, context)
        guard let (_, session) = await current(request) else {
            return html(.unauthorized, ApprovalsPageHTML.message(title: "Not logged in", "Your session has ended: log in again, then decide.", link: ("/login?return=/approvals/\(id)", "Log in")))
        }
        let who = session.identity
        guard PageSessions.constantTimeEqual(form["csrf"] ?? "", session.csrf) else { return csrfRefused() }
        let reason = (form["reason"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let verdict = form["verdict"]
        guard verdict == "approve" || verdict == "deny" else {
            return html(.badRequest, ApprovalsPageHTML.message(title: "No decision", "Choose Approve or Deny.", who: who, csrf: session.csrf))
        }
        do {
            _ = verdict == "approve" ? try await approvals.approve(id, by: who, reason: reason) : try await approvals.deny(id, by: who, reason: reason)
        } catch {
            let status = ApprovalRoutes.response(for: error).status
            return html(status, ApprovalsPageHTML.message(title: "Decision refused", "\(error)", who: who, csrf: session.csrf,
                                                          link: ("/approvals/\(id)", "Back to approval \(id)")))
        }
        let done = verdict == "approve" ? "approved" : "denied"
        logger.notice("approval decided on the approvals page", metadata: ["approval": "\(id)", "by": "\(who.subject)", "verdict": "\(done)"])
        return redirect("/approvals?done=" + OIDCLogin.formEncode("You \(done) \(id)."))
    }

    func csrfRefused() -> Response {
        html(.forbidden, ApprovalsPageHTML.message(title: "Form refused", "The form's CSRF token is missing or does not match your session: reload the page and try again."))
    }

    // MARK: HTTP helpers

    /// What every page response carries: no inline script or style, no framing, no referrer (the
    /// callback's URL holds a code), nothing cached.
    static let securityHeaders: [(HTTPField.Name, String)] = [
        (.contentSecurityPolicy, "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
        (HTTPField.Name("X-Frame-Options")!, "DENY"),
        (HTTPField.Name("X-Content-Type-Options")!, "nosniff"),
        (HTTPField.Name("Referrer-Policy")!, "no-referrer"),
        (.cacheControl, "no-store"),
    ]

    static func headers(_ type: String) -> HTTPFields {
        var fields = HTTPFields()
        fields[.contentType] = type
        for (name, value) in securityHeaders { fields[name] = value }
        return fields
    }

    func html(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: Self.headers("text/html; charset=utf-8"), body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func asset(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: headers(type), body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    func redirect(_ location: String, status: HTTPResponse.Status = .seeOther) -> Response {
        var headers = Self.headers("text/html; charset=utf-8")
        headers[.location] = location
        return Response(status: status, headers: headers)
    }

    func cookie(_ name: String, _ value: String, maxAge: Int) -> String {
        "\(name)=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Lax" + (secureCookies ? "; Secure" : "")
    }

    static func cookies(_ request: Request) -> [String: String] {
        var result: [String: String] = [:]
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                result[parts[0].trimmingCharacters(in: .whitespaces)] = parts[1].trimmingCharacters(in: .whitespaces)
            }
        }
        return result
    }

    /// An `application/x-www-form-urlencoded` body.
    static func form(_ request: Request, _ context: AdminContext) async throws -> [String: String] {
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        var result: [String: String] = [:]
        for pair in String(buffer: body).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                $0.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            result[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        return result
    }
}

fileprivate extension Duration {
    var seconds: TimeInterval {
        let (s, atto) = components
        return TimeInterval(s) + TimeInterval(atto) / 1e18
    }
}
