import Foundation
import GreylagCore
import Hummingbird
import Logging
import NIOCore

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
    /// (`Authorization: Bearer TOKEN`); without one, the API is open on a
    /// local listener and closed on any other.
    public static func check(listener: ListenAddress, token: String?, authorization: String?) -> HTTPAccess {
        guard let token, !token.isEmpty else {
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

/// The HTTP listener: `/metrics` in the Prometheus text format, the
/// dashboard at `/` (and `/dashboard`, with its data as JSON at
/// `/api/dashboard`), and the JSON admin API under `/api/`, which runs the
/// same `AdminService` as the admin socket and the CLI.
enum HTTPServer {
    /// Largest request body the API reads.
    static let maxBody = 64 * 1024

    /// The application serving `service` on `address`; `onListening` gets the bound address.
    static func application(_ address: ListenAddress, token: String?, service: GreylistService, admin: AdminService,
                            dashboard: DashboardSource, tracker: ConnectionTracker, logger: Logger,
                            onListening: @escaping @Sendable (String) -> Void) -> some ApplicationProtocol {
        let router = Router()
        router.get("/metrics") { _, _ -> Response in
            service.metrics.connections(tracker.count)
            return text(service.metrics.text(), type: "text/plain; version=0.0.4; charset=utf-8")
        }
        /// The access check; nil when allowed, else the refusal.
        @Sendable func refusal(_ request: Request, browser: Bool = false) -> Response? {
            switch HTTPAccess.check(listener: address, token: token, authorization: request.headers[.authorization]) {
            case .allowed: return nil
            case .unauthorized(let why):
                var response = json(.failure(why, kind: "unauthorized"), status: .unauthorized)
                if browser { response.headers[.wwwAuthenticate] = "Basic realm=\"greylag\", charset=\"UTF-8\"" }
                return response
            case .forbidden(let why): return json(.failure(why, kind: "forbidden"), status: .forbidden)
            }
        }
        for path in ["/", "/dashboard"] {
            router.get(RouterPath(path)) { request, _ -> Response in
                if let refused = refusal(request, browser: true) { return refused }
                var response = text(DashboardPage.render(await dashboard.data()), type: "text/html; charset=utf-8")
                // Defence in depth: the page has no script and loads nothing.
                response.headers[.contentSecurityPolicy] =
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; frame-ancestors 'none'"
                response.headers[.cacheControl] = "no-store"
                response.headers[.xContentTypeOptions] = "nosniff"
                return response
            }
        }
        router.get("/api/dashboard") { request, _ -> Response in
            if let refused = refusal(request) { return refused }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let body = (try? encoder.encode(await dashboard.data())).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            var response = text(body + "\n", type: "application/json")
            response.headers[.cacheControl] = "no-store"
            return response
        }
        /// Runs an admin request after the access check.
        @Sendable func api(_ request: Request, _ build: @Sendable () throws -> AdminRequest) async -> Response {
            if let refused = refusal(request) { return refused }
            let adminRequest: AdminRequest
            do {
                adminRequest = try build()
            } catch {
                return json(.failure("\(error)"), status: .badRequest)
            }
            let response = await admin.handle(adminRequest)
            let status: HTTPResponse.Status
            switch response.errorKind {
            case nil: status = .ok
            case "not_found": status = .notFound
            case "unavailable": status = .serviceUnavailable
            default: status = .badRequest
            }
            return json(response, status: status)
        }
        router.get("/api/stats") { request, _ in await api(request) { AdminRequest(command: .stats) } }
        router.get("/api/records") { request, _ in
            await api(request) {
                let q = request.uri.queryParameters
                return AdminRequest(command: .records, client: q["client"].map(String.init),
                                    sender: q["sender"].map(String.init), recipient: q["recipient"].map(String.init),
                                    state: q["state"].map(String.init), limit: try integer(q["limit"], "limit"))
            }
        }
        router.delete("/api/records") { request, _ in
            await api(request) {
                let q = request.uri.queryParameters
                return AdminRequest(command: .delete, client: q["client"].map(String.init),
                                    sender: q["sender"].map(String.init), recipient: q["recipient"].map(String.init),
                                    state: q["state"].map(String.init))
            }
        }
        for list in ListKind.allCases {
            router.get("/api/\(list.rawValue)") { request, _ in
                await api(request) { AdminRequest(command: .entries, list: list) }
            }
            router.post("/api/\(list.rawValue)") { request, _ in
                let body = try? await request.body.collect(upTo: maxBody)
                return await api(request) {
                    guard let body else { throw APIError("the body must be a JSON object of at most \(maxBody) bytes") }
                    let entry: EntryBody
                    do {
                        entry = try JSONDecoder().decode(EntryBody.self, from: Data(buffer: body))
                    } catch {
                        throw APIError("the body must be JSON like {\"field\": \"client\", \"value\": \"192.0.2.0/24\", "
                                       + "\"comment\": \"...\", \"expires_in\": 86400}")
                    }
                    return AdminRequest(command: .add, list: list, field: try field(entry.field), value: entry.value,
                                        comment: entry.comment, expiresIn: entry.expires_in)
                }
            }
            router.delete("/api/\(list.rawValue)") { request, _ in
                await api(request) {
                    let q = request.uri.queryParameters
                    return AdminRequest(command: .remove, list: list, field: try field(q["field"].map(String.init)),
                                        value: q["value"].map(String.init))
                }
            }
        }
        router.post("/api/reload") { request, _ in await api(request) { AdminRequest(command: .reload) } }

        let bind: BindAddress
        switch address {
        case .tcp(let host, let port): bind = .hostname(host, port: port)
        case .unix(let path): bind = .unixDomainSocket(path: path)
        }
        var httpLogger = logger
        httpLogger[metadataKey: "greylag.listener"] = "http"
        return Application(router: router, configuration: .init(address: bind, serverName: "greylag"),
                           onServerRunning: { channel in
                               onListening(channel.localAddress.map(GreylagDaemon.describe) ?? "\(address)")
                           }, logger: httpLogger)
    }

    /// The body of POST /api/whitelist and /api/blacklist.
    struct EntryBody: Decodable {
        var field: String?
        var value: String?
        var comment: String?
        var expires_in: Int64?
    }

    struct APIError: Error, CustomStringConvertible {
        var description: String
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
