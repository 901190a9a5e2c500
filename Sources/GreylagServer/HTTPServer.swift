import Foundation
import GreylagCore
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Synchronization

/// Who may use the admin API on a listener.
public enum HTTPAccess: Equatable, Sendable {
    case allowed
    /// No or a wrong token (401).
    case unauthorized(String)
    /// The API is closed on this listener (403).
    case forbidden(String)

    /// True for listeners only this host can reach: loopback addresses and unix sockets.
    public static func isLocal(_ listener: ListenAddress) -> Bool {
        switch listener {
        case .unix: return true
        case .tcp(let host, _):
            if host == "localhost" || host == "::1" { return true }
            return IPAddress(host).map { $0.isIPv4 && host.hasPrefix("127.") } ?? false
        }
    }

    /// The rule: with a token configured, every API request must carry it
    /// (`Authorization: Bearer TOKEN`). Without one, the API is read-only
    /// on a local listener (a write is refused, naming `http.token`) and
    /// closed on any other. `write` is true for requests that change state
    /// (POST, DELETE).
    public static func check(listener: ListenAddress, token: String?, authorization: String?,
                             write: Bool = false) -> HTTPAccess {
        guard let token, !token.isEmpty else {
            if write {
                return .forbidden("the HTTP API is read-only without http.token: set http.token to change lists, "
                                  + "records or reload over HTTP (the greylag command uses the admin socket)")
            }
            return isLocal(listener) ? .allowed
                : .forbidden("the admin API needs http.token on a listener that is not loopback or a unix socket")
        }
        guard let presentedToken = presented(authorization) else {
            return .unauthorized("send the token as Authorization: Bearer TOKEN (or, from a browser, as the password)")
        }
        let presented = Array(presentedToken.utf8)
        let expected = Array(token.utf8)
        // Compared in time independent of where they differ.
        var difference = UInt8(presented.count == expected.count ? 0 : 1)
        for i in 0..<max(presented.count, expected.count) {
            difference |= (i < presented.count ? presented[i] : 0) ^ (i < expected.count ? expected[i] : 0)
        }
        return difference == 0 ? .allowed : .unauthorized("wrong token")
    }

    /// Why a request that a web page may have made the browser send is
    /// refused, or nil. A page on another site can make a browser send
    /// GETs and simple POSTs to any address the browser reaches, loopback
    /// included, and can point a name of its own at 127.0.0.1 (DNS
    /// rebinding). So: on a loopback listener the `Host` must be a loopback
    /// name or address (every request); a write must not come from another
    /// origin (`Origin` other than the `Host`, or `Sec-Fetch-Site` other
    /// than `same-origin`/`none`).
    public static func crossSite(listener: ListenAddress, host: String?, origin: String?, fetchSite: String?,
                                 write: Bool) -> String? {
        if case .tcp = listener, isLocal(listener), let host, !isLoopbackName(hostPart(host)) {
            return "Host \"\(host.logEscaped)\" is not a loopback name; this listener answers only "
                + "localhost, 127.0.0.1 and [::1]"
        }
        guard write else { return nil }
        if let site = fetchSite?.lowercased(), site != "same-origin", site != "none" {
            return "a \(site) request may not change state (Sec-Fetch-Site)"
        }
        if let origin {
            guard let originHost = originAuthority(origin), let host,
                  originHost.lowercased() == host.lowercased() else {
                return "a request from origin \"\(origin.logEscaped)\" may not change state"
            }
        }
        return nil
    }

    /// True when a write carries `Content-Type: application/json` (any parameters).
    public static func isJSON(contentType: String?) -> Bool {
        guard let contentType else { return false }
        let media = contentType.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
        return media.trimmingCharacters(in: .whitespaces).lowercased() == "application/json"
    }

    /// `localhost`, a name under `.localhost`, `127.x.y.z` or `::1`.
    static func isLoopbackName(_ name: String) -> Bool {
        let n = name.lowercased()
        if n == "localhost" || n.hasSuffix(".localhost") || n == "::1" { return true }
        guard let address = IPAddress(n), address.isIPv4 else { return false }
        return n.hasPrefix("127.")
    }

    /// The name or address in a `Host` value, without port or brackets.
    static func hostPart(_ host: String) -> String {
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            return String(host[host.index(after: host.startIndex)..<close])
        }
        if let colon = host.lastIndex(of: ":"), host.firstIndex(of: ":") == colon {
            return String(host[..<colon])
        }
        return host
    }

    /// `host[:port]` of an `Origin` (`scheme://host[:port]`), as a `Host` header would carry it.
    static func originAuthority(_ origin: String) -> String? {
        guard let sep = origin.range(of: "://") else { return nil }
        let authority = origin[sep.upperBound...]
        guard !authority.isEmpty, !authority.contains("/"), !authority.contains("@") else { return nil }
        let scheme = origin[..<sep.lowerBound].lowercased()
        // A default port is left out of Host by browsers; leave it out here too.
        for (s, port) in [("http", ":80"), ("https", ":443")] where scheme == s && authority.hasSuffix(port) {
            return String(authority.dropLast(port.count))
        }
        return String(authority)
    }

    /// The token in an Authorization header: `Bearer TOKEN`, or `Basic`
    /// with any user name and the token as password, which is what a
    /// browser sends for the dashboard.
    static func presented(_ authorization: String?) -> String? {
        guard let authorization, let space = authorization.firstIndex(of: " ") else { return nil }
        // The scheme is case-insensitive (RFC 9110 section 11.1).
        let scheme = authorization[..<space].lowercased()
        let credentials = authorization[authorization.index(after: space)...].drop(while: { $0 == " " })
        if scheme == "bearer" { return String(credentials) }
        guard scheme == "basic",
              let data = Data(base64Encoded: String(credentials)),
              let pair = String(data: data, encoding: .utf8), let colon = pair.firstIndex(of: ":") else { return nil }
        return String(pair[pair.index(after: colon)...])
    }
}

/// A value the daemon changes while it runs (on reload) and request
/// handlers read: the HTTP token.
public final class LiveValue<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    public init(_ initial: Value) { value = Mutex(initial) }
    public var current: Value { value.withLock { $0 } }
    public func set(_ new: Value) { value.withLock { $0 = new } }
}

/// The request context of the HTTP listener: Hummingbird's, plus the
/// connection, to say in the audit log who made a change.
struct GreylagRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// The HTTP listener: `/metrics` in the Prometheus text format, the
/// dashboard at `/` (and `/dashboard`, with its data as JSON at
/// `/api/dashboard`), and the JSON admin API under `/api/`, which runs the
/// same `AdminService` as the admin socket and the CLI.
enum HTTPServer {
    /// Largest request body the API reads.
    static let maxBody = 64 * 1024

    /// What the listener needs from the configuration.
    struct Settings: Sendable {
        var address: ListenAddress
        /// The token in force; the reloader replaces it.
        var token: LiveValue<String?>
        var maxConnections = 64
        var idleTimeout: Int64 = 30
        var requestTimeout: Int64 = 10
        var socketMode = 0o600
    }

    /// The application serving `service` on `address`; `onListening` gets the bound address.
    static func application(_ settings: Settings, service: GreylistService, admin: AdminService,
                            dashboard: DashboardSource, tracker: ConnectionTracker, logger: Logger,
                            onListening: @escaping @Sendable (String) -> Void) -> some ApplicationProtocol {
        let address = settings.address
        let token = settings.token
        let refusals = RefusalLog(logger: logger)
        let router = Router(context: GreylagRequestContext.self)
        router.get("/metrics") { _, _ -> Response in
            service.metrics.connections(tracker.count)
            service.metrics.liveCost(await dashboard.liveCost())
            return text(service.metrics.text(), type: "text/plain; version=0.0.4; charset=utf-8")
        }
        /// The access check; nil when allowed, else the refusal.
        @Sendable func refusal(_ request: Request, _ context: GreylagRequestContext, browser: Bool = false) -> Response? {
            let write = request.method == .post || request.method == .delete || request.method == .put
                || request.method == .patch
            let headers = request.headers
            let refused: Response
            if let why = HTTPAccess.crossSite(listener: address, host: request.head.authority,
                                              origin: headers[.origin], fetchSite: headers.first { $0.name.canonicalName == "sec-fetch-site" }?.value,
                                              write: write) {
                refused = json(.failure(why, kind: "forbidden"), status: .forbidden)
                refusals.note(request, context, why)
                return refused
            }
            switch HTTPAccess.check(listener: address, token: token.current, authorization: headers[.authorization],
                                    write: write) {
            case .allowed: break
            case .unauthorized(let why):
                var response = json(.failure(why, kind: "unauthorized"), status: .unauthorized)
                if browser { response.headers[.wwwAuthenticate] = "Basic realm=\"greylag\", charset=\"UTF-8\"" }
                if write { refusals.note(request, context, why) }
                return response
            case .forbidden(let why):
                if write { refusals.note(request, context, why) }
                return json(.failure(why, kind: "forbidden"), status: .forbidden)
            }
            if write, !HTTPAccess.isJSON(contentType: headers[.contentType]) {
                let why = "a request that changes state must be sent as Content-Type: application/json"
                refusals.note(request, context, why)
                return json(.failure(why, kind: "unsupported_media_type"), status: .unsupportedMediaType)
            }
            return nil
        }
        // The dashboard's release buttons post a form with this secret: a
        // page of another site cannot read the dashboard, so it cannot
        // know it (and the browser's Origin and Sec-Fetch-Site give such a
        // request away, see `crossSite`). A new one each start.
        let formSecret = DashboardPage.newFormSecret()
        for path in ["/", "/dashboard"] {
            router.get(RouterPath(path)) { request, context -> Response in
                if let refused = refusal(request, context, browser: true) { return refused }
                // The buttons only when a token is configured: the page was
                // then shown to a browser that sent it.
                let withToken = !(token.current ?? "").isEmpty
                var response = text(DashboardPage.render(await dashboard.data(), releaseSecret: withToken ? formSecret : nil),
                                    type: "text/html; charset=utf-8")
                // Defence in depth: the page has no script and loads nothing;
                // its only forms (the release buttons) post to this listener.
                response.headers[.contentSecurityPolicy] =
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action \(withToken ? "'self'" : "'none'"); frame-ancestors 'none'"
                response.headers[.cacheControl] = "no-store"
                response.headers[.xContentTypeOptions] = "nosniff"
                return response
            }
        }
        router.get("/api/dashboard") { request, context -> Response in
            if let refused = refusal(request, context) { return refused }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let body = (try? encoder.encode(await dashboard.data())).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            var response = text(body + "\n", type: "application/json")
            response.headers[.cacheControl] = "no-store"
            return response
        }
        /// Runs an admin request after the access check.
        @Sendable func api(_ request: Request, _ context: GreylagRequestContext,
                           _ build: @Sendable () throws -> AdminRequest) async -> Response {
            if let refused = refusal(request, context) { return refused }
            let adminRequest: AdminRequest
            do {
                adminRequest = try build()
            } catch {
                return json(.failure("\(error)"), status: .badRequest)
            }
            let source = "http \(await PeerCredentials.describe(context.channel)) with the token"
            let response = await admin.handle(adminRequest, from: source)
            let status: HTTPResponse.Status
            switch response.errorKind {
            case nil: status = .ok
            case "not_found": status = .notFound
            case "unavailable": status = .serviceUnavailable
            default: status = .badRequest
            }
            return json(response, status: status)
        }
        router.get("/api/stats") { request, context in await api(request, context) { AdminRequest(command: .stats) } }
        router.get("/api/records") { request, context in
            await api(request, context) {
                let q = request.uri.queryParameters
                return AdminRequest(command: .records, client: q["client"].map(String.init),
                                    sender: q["sender"].map(String.init), recipient: q["recipient"].map(String.init),
                                    state: q["state"].map(String.init), limit: try integer(q["limit"], "limit"))
            }
        }
        router.delete("/api/records") { request, context in
            await api(request, context) {
                let q = request.uri.queryParameters
                return AdminRequest(command: .delete, client: q["client"].map(String.init),
                                    sender: q["sender"].map(String.init), recipient: q["recipient"].map(String.init),
                                    state: q["state"].map(String.init))
            }
        }
        for list in ListKind.allCases {
            router.get("/api/\(list.rawValue)") { request, context in
                await api(request, context) { AdminRequest(command: .entries, list: list) }
            }
            router.post("/api/\(list.rawValue)") { request, context in
                // The access check comes before the body is read.
                if let refused = refusal(request, context) { return refused }
                let body = try? await request.body.collect(upTo: maxBody)
                return await api(request, context) {
                    guard let body else { throw APIError("the body must be a JSON object of at most \(maxBody) bytes") }
                    return try AdminRequest.entry(list: list, json: Data(buffer: body))
                }
            }
            router.delete("/api/\(list.rawValue)") { request, context in
                await api(request, context) {
                    let q = request.uri.queryParameters
                    return AdminRequest(command: .remove, list: list, field: try field(q["field"].map(String.init)),
                                        value: q["value"].map(String.init))
                }
            }
        }
        router.post("/api/release") { request, context in
            // The access check comes before the body is read.
            if let refused = refusal(request, context) { return refused }
            let body = try? await request.body.collect(upTo: maxBody)
            return await api(request, context) {
                guard let body else { throw APIError("the body must be a JSON object of at most \(maxBody) bytes") }
                return try AdminRequest.release(json: Data(buffer: body))
            }
        }
        // The dashboard's release button: a form post (a page without
        // script cannot send JSON), so it is let in only with the token,
        // from the dashboard's own origin and with the page's form secret.
        router.post("/dashboard/release") { request, context -> Response in
            let headers = request.headers
            let write = true
            if let why = HTTPAccess.crossSite(listener: address, host: request.head.authority, origin: headers[.origin],
                                              fetchSite: headers.first { $0.name.canonicalName == "sec-fetch-site" }?.value,
                                              write: write) {
                refusals.note(request, context, why)
                return json(.failure(why, kind: "forbidden"), status: .forbidden)
            }
            guard !(token.current ?? "").isEmpty else {
                let why = "the dashboard's release button needs http.token"
                refusals.note(request, context, why)
                return json(.failure(why, kind: "forbidden"), status: .forbidden)
            }
            switch HTTPAccess.check(listener: address, token: token.current, authorization: headers[.authorization], write: write) {
            case .allowed: break
            case .unauthorized(let why), .forbidden(let why):
                refusals.note(request, context, why)
                var response = json(.failure(why, kind: "unauthorized"), status: .unauthorized)
                response.headers[.wwwAuthenticate] = "Basic realm=\"greylag\", charset=\"UTF-8\""
                return response
            }
            let media = (headers[.contentType] ?? "").split(separator: ";", maxSplits: 1).first
                .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard media == "application/x-www-form-urlencoded",
                  let body = try? await request.body.collect(upTo: 4096) else {
                let why = "the release form must be sent as application/x-www-form-urlencoded, at most 4096 bytes"
                refusals.note(request, context, why)
                return json(.failure(why, kind: "unsupported_media_type"), status: .unsupportedMediaType)
            }
            let form = DashboardPage.ReleaseForm(urlEncoded: String(decoding: body.readableBytesView, as: UTF8.self))
            guard let form, DashboardPage.sameSecret(form.secret, formSecret) else {
                let why = "the release form lacks the dashboard's form secret (reload the dashboard)"
                refusals.note(request, context, why)
                return json(.failure(why, kind: "forbidden"), status: .forbidden)
            }
            let adminRequest = form.field == .network
                ? AdminRequest(command: .release, client: form.value)
                : AdminRequest(command: .release, sender: form.value)
            let source = "dashboard \(await PeerCredentials.describe(context.channel)) with the token"
            let done = await admin.handle(adminRequest, from: source)
            dashboard.forget()
            var response = text(DashboardPage.releaseAnswer(done), type: "text/html; charset=utf-8",
                                status: done.ok ? .seeOther : (done.errorKind == "not_found" ? .notFound : .badRequest))
            if done.ok { response.headers[.location] = "/dashboard#waiting" }
            response.headers[.contentSecurityPolicy] = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
            response.headers[.cacheControl] = "no-store"
            return response
        }
        router.post("/api/reload") { request, context in await api(request, context) { AdminRequest(command: .reload) } }

        let bind: BindAddress
        switch address {
        case .tcp(let host, let port): bind = .hostname(host, port: port)
        case .unix(let path): bind = .unixDomainSocket(path: path)
        }
        var httpLogger = logger
        httpLogger[metadataKey: "greylag.listener"] = "http"
        let limit = ConnectionLimit(kind: "http", max: settings.maxConnections, logger: logger, metrics: service.metrics)
        let requestTimeout = TimeAmount.seconds(settings.requestTimeout)
        let server = HTTPServerBuilder.http1(configuration: .init(
            additionalChannelHandlers: [HTTPConnectionGuard(limit: limit, requestTimeout: requestTimeout, logger: logger)],
            idleTimeout: .seconds(settings.idleTimeout)))
        let mode = settings.socketMode
        return Application(router: router, server: server, configuration: .init(address: bind, serverName: "greylag"),
                           onServerRunning: { channel in
                               if case .unix(let path) = address, chmod(path, mode_t(mode)) != 0 {
                                   logger.warning("cannot set mode \(String(mode, radix: 8)) on HTTP socket \(path)")
                               }
                               onListening(channel.localAddress.map(GreylagDaemon.describe) ?? "\(address)")
                           }, logger: httpLogger)
    }

    /// Logs refused writes (and refused cross-site reads), at most one line
    /// a second with the count of the others, so a flood of refusals
    /// cannot flood the log.
    final class RefusalLog: Sendable {
        private let logger: Logger
        private let throttle = LogThrottle(every: .seconds(1))

        init(logger: Logger) { self.logger = logger }

        func note(_ request: Request, _ context: GreylagRequestContext, _ why: String) {
            guard let suppressed = throttle.due() else { return }
            let peer = context.channel.remoteAddress.map(GreylagDaemon.describe) ?? "a unix socket peer"
            let more = suppressed > 0 ? " (\(suppressed) more refused since the last message)" : ""
            logger.warning("http: refused \(request.method) \(request.uri.path.logEscaped) from \(peer): \(why.logEscaped)\(more)")
        }
    }

    public struct APIError: Error, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }

    static func field(_ text: String?) throws -> SelectorField {
        guard let text else {
            throw APIError("a field is needed: " + SelectorField.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard let f = SelectorField(rawValue: text) ?? SelectorField(configKey: text) else {
            throw APIError("unknown field \"\(text)\"; use one of "
                           + SelectorField.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return f
    }

    static func integer(_ text: Substring?, _ name: String) throws -> Int? {
        guard let text else { return nil }
        guard let n = Int(text), n >= 0, n <= 100_000 else { throw APIError("\(name) must be a number from 0 to 100000") }
        return n
    }

    static func text(_ body: String, type: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.xContentTypeOptions] = "nosniff"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    static func json(_ response: AdminResponse, status: HTTPResponse.Status) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = (try? encoder.encode(response)).map { String(decoding: $0, as: UTF8.self) } ?? "{\"ok\":false}"
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        headers[.xContentTypeOptions] = "nosniff"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body + "\n")))
    }
}

extension AdminRequest {
    /// The body of POST /api/whitelist and /api/blacklist.
    private struct EntryBody: Decodable {
        var field: String?
        var value: String?
        var comment: String?
        var expires_in: Int64?
    }

    /// The `add` request of a POST to /api/whitelist or /api/blacklist with
    /// the JSON `body` (also what the fuzz target feeds); the range of its
    /// values is checked by `AdminService`.
    public static func entry(list: ListKind, json body: Data) throws -> AdminRequest {
        let entry: EntryBody
        do {
            entry = try JSONDecoder().decode(EntryBody.self, from: body)
        } catch {
            throw HTTPServer.APIError("the body must be JSON like {\"field\": \"client\", \"value\": \"192.0.2.0/24\", "
                                      + "\"comment\": \"...\", \"expires_in\": 86400}")
        }
        return AdminRequest(command: .add, list: list, field: try HTTPServer.field(entry.field), value: entry.value,
                            comment: entry.comment, expiresIn: entry.expires_in)
    }

    /// The body of POST /api/release.
    private struct ReleaseBody: Decodable {
        var client: String?
        var sender: String?
        var recipient: String?
    }

    /// The `release` request of a POST to /api/release with the JSON `body`:
    /// `{"client": "192.0.2.0/24", "sender": "a@example.org", "recipient": "b@example.net"}`,
    /// at least one of them.
    public static func release(json body: Data) throws -> AdminRequest {
        let r: ReleaseBody
        do {
            r = try JSONDecoder().decode(ReleaseBody.self, from: body)
        } catch {
            throw HTTPServer.APIError("the body must be JSON like {\"client\": \"192.0.2.0/24\", \"sender\": \"...\", "
                                      + "\"recipient\": \"...\"} with at least one of them")
        }
        return AdminRequest(command: .release, client: r.client, sender: r.sender, recipient: r.recipient)
    }
}
