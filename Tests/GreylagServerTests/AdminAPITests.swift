import Foundation
import GreylagServer
import Testing

@Suite struct HTTPAccessTests {
    let local = ListenAddress.tcp(host: "127.0.0.1", port: 10080)
    let public_ = ListenAddress.tcp(host: "0.0.0.0", port: 10080)
    let token = "0123456789abcdef-token"

    @Test func openOnLocalListenersWithoutAToken() {
        #expect(HTTPAccess.check(listener: local, token: nil, authorization: nil) == .allowed)
        #expect(HTTPAccess.check(listener: .tcp(host: "::1", port: 1), token: nil, authorization: nil) == .allowed)
        #expect(HTTPAccess.check(listener: .unix(path: "/run/greylag/http.sock"), token: nil, authorization: nil) == .allowed)
    }

    @Test func closedElsewhereWithoutAToken() {
        for listener in [public_, .tcp(host: "192.0.2.1", port: 1), .tcp(host: "::", port: 1),
                         .tcp(host: "127.example.net", port: 1)] {
            guard case .forbidden = HTTPAccess.check(listener: listener, token: nil, authorization: "Bearer x") else {
                Issue.record("\(listener) is open")
                continue
            }
        }
    }

    @Test func browsersSendTheTokenAsTheBasicPassword() {
        func basic(_ pair: String) -> String { "Basic " + Data(pair.utf8).base64EncodedString() }
        for listener in [local, public_] {
            #expect(HTTPAccess.check(listener: listener, token: token, authorization: basic("admin:\(token)")) == .allowed)
            #expect(HTTPAccess.check(listener: listener, token: token, authorization: basic(":\(token)")) == .allowed)
            for wrong in [basic("admin:x\(token)"), basic("\(token):"), basic(token), "Basic !!!"] {
                guard case .unauthorized = HTTPAccess.check(listener: listener, token: token, authorization: wrong) else {
                    Issue.record("\(listener) let \(wrong) in")
                    continue
                }
            }
        }
    }

    @Test func aConfiguredTokenIsRequiredEverywhere() {
        for listener in [local, public_] {
            #expect(HTTPAccess.check(listener: listener, token: token, authorization: "Bearer \(token)") == .allowed)
            // The scheme is case-insensitive.
            for scheme in ["bearer", "BEARER", "bEaReR"] {
                #expect(HTTPAccess.check(listener: listener, token: token, authorization: "\(scheme) \(token)") == .allowed)
            }
            let basic = Data("admin:\(token)".utf8).base64EncodedString()
            #expect(HTTPAccess.check(listener: listener, token: token, authorization: "basic \(basic)") == .allowed)
            for wrong in [nil, "Bearer", "Bearer \(token)x", "Bearer 0123456789abcdef-tokeN", "Basic \(token)", token] {
                guard case .unauthorized = HTTPAccess.check(listener: listener, token: token, authorization: wrong) else {
                    Issue.record("\(listener) let \(wrong ?? "nil") in")
                    continue
                }
            }
        }
    }
}

/// The JSON admin API against a live daemon.
@Suite struct AdminAPITests {
    static let token = "a-token-for-the-api-tests"
    let auth = ["Authorization": "Bearer \(AdminAPITests.token)"]

    @Test func everyEndpointWithTokenBadInputAndMissingEntries() async throws {
        try await withDaemon(configure: {
            $0.httpListener = .tcp(host: "127.0.0.1", port: 0)
            $0.httpToken = Self.token
        }) { addresses, _ in
            let http = String(try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5))
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request()) == defer300)

            // No token, a wrong one: 401, and nothing happens.
            let none = try await httpRequest(http, "GET", "/api/stats")
            #expect(none.status == 401 && none.body.contains("Authorization: Bearer TOKEN"), "\(none)")
            let wrong = try await httpRequest(http, "POST", "/api/whitelist", headers: ["Authorization": "Bearer nope"],
                                              body: #"{"field": "client", "value": "192.0.2.0/24"}"#)
            #expect(wrong.status == 401)
            #expect(try await c.ask(request(recipient: "second@example.net")) == defer300)
            // /metrics needs no token.
            #expect(try await httpGet(http, "/metrics").status == 200)

            let stats = try await httpRequest(http, "GET", "/api/stats", headers: auth)
            #expect(stats.status == 200 && stats.body.contains(#""pendingTriplets":2"#), "\(stats)")

            // A whitelist entry is in force when the call returns.
            let add = try await httpRequest(http, "POST", "/api/whitelist", headers: auth,
                                            body: #"{"field": "client", "value": "192.0.2.0/24", "comment": "partner", "expires_in": 3600}"#)
            #expect(add.status == 200 && add.body.contains(#""ok":true"#), "\(add)")
            #expect(try await c.ask(request(recipient: "third@example.net")) == "action=DUNNO")
            let entries = try await httpRequest(http, "GET", "/api/whitelist", headers: auth)
            #expect(entries.status == 200 && entries.body.contains(#""value":"192.0.2.0/24""#), "\(entries)")

            // Bad input: 400 with a message saying what is wrong.
            for (body, message) in [(#"{"field": "colour", "value": "x"}"#, "unknown field \\\"colour\\\""),
                                    (#"{"field": "client", "value": "300.1.2.3"}"#, "client: "),
                                    (#"not json"#, "the body must be JSON"),
                                    (#"{"field": "client"}"#, "a value is needed")] {
                let r = try await httpRequest(http, "POST", "/api/blacklist", headers: auth, body: body)
                #expect(r.status == 400 && r.body.contains(message), "\(body): \(r)")
            }
            let badLimit = try await httpRequest(http, "GET", "/api/records?limit=lots", headers: auth)
            #expect(badLimit.status == 400 && badLimit.body.contains("limit must be a number"), "\(badLimit)")
            let deleteAll = try await httpRequest(http, "DELETE", "/api/records", headers: auth)
            #expect(deleteAll.status == 400 && deleteAll.body.contains("give at least one of"), "\(deleteAll)")

            let records = try await httpRequest(http, "GET", "/api/records?state=pending&limit=10", headers: auth)
            #expect(records.status == 200 && records.body.contains(#""recipient":"second@example.net""#), "\(records)")
            let deleted = try await httpRequest(http, "DELETE", "/api/records?recipient=second@example.net", headers: auth)
            #expect(deleted.status == 200 && deleted.body.contains("deleted 1 record(s)"), "\(deleted)")

            let remove = try await httpRequest(http, "DELETE", "/api/whitelist?field=client&value=192.0.2.0/24", headers: auth)
            #expect(remove.status == 200, "\(remove)")
            let again = try await httpRequest(http, "DELETE", "/api/whitelist?field=client&value=192.0.2.0/24", headers: auth)
            #expect(again.status == 404 && again.body.contains("no whitelist entry client 192.0.2.0/24"), "\(again)")
            #expect(try await c.ask(request(recipient: "fourth@example.net")) == defer300)
        }
    }

    /// POST /api/release lets a waiting triplet pass at its next retry;
    /// without the token, or without one configured, nothing is released.
    @Test func releaseLetsAWaitingTripletThroughWithTheTokenOnly() async throws {
        let clock = ManualClock()
        let log = CapturedLog()
        try await withDaemon(configure: {
            $0.httpListener = .tcp(host: "127.0.0.1", port: 0)
            $0.httpToken = Self.token
        }, clock: clock, log: log) { addresses, _ in
            let http = String(try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5))
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request()) == defer300)
            clock.advance(10)
            let body = #"{"sender": "Alice@Example.org", "recipient": "bob@example.net"}"#
            let none = try await httpRequest(http, "POST", "/api/release", body: body)
            #expect(none.status == 401, "\(none)")
            let wrong = try await httpRequest(http, "POST", "/api/release", headers: ["Authorization": "Bearer nope"], body: body)
            #expect(wrong.status == 401)
            let crossSite = try await httpRequest(http, "POST", "/api/release",
                                                  headers: auth.merging(["Origin": "http://evil.example"]) { $1 }, body: body)
            #expect(crossSite.status == 403, "\(crossSite)")
            #expect(try await c.ask(request())?.hasPrefix("action=DEFER_IF_PERMIT") == true, "still waiting: nothing was released")

            for (bad, message) in [(#"{}"#, "give at least one of client, sender, recipient to release records"),
                                   (#"{"client": "not-an-address"}"#, "is not an IP address or network"),
                                   (#"[1]"#, "the body must be JSON like")] {
                let r = try await httpRequest(http, "POST", "/api/release", headers: auth, body: bad)
                #expect(r.status == 400 && r.body.contains(message), "\(bad): \(r)")
            }
            let unknown = try await httpRequest(http, "POST", "/api/release", headers: auth,
                                                body: #"{"sender": "nobody@example.org"}"#)
            #expect(unknown.status == 404 && unknown.body.contains("no waiting triplet matches"), "\(unknown)")

            let released = try await httpRequest(http, "POST", "/api/release", headers: auth, body: body)
            #expect(released.status == 200 && released.body.contains("released 1 waiting triplet(s)"), "\(released)")
            #expect(released.body.contains(#""recipient":"bob@example.net""#), "\(released)")
            #expect(log.contains("admin change by http 127.0.0.1:"), "\(log.all)")
            #expect(log.contains("release sender=<Alice@Example.org> recipient=<bob@example.net>: released 1 waiting triplet(s), "
                                 + "their next retry passes: 192.0.2.0/24/<alice@example.org>/<bob@example.net>"), "\(log.all)")
            clock.advance(1)
            // The retry passes long before the delay.
            #expect(try await c.ask(request()) == "action=DUNNO")
            #expect(log.contains("pass: client=192.0.2.7 network=192.0.2.0/24 sender=<alice@example.org> recipient=<bob@example.net> "
                                 + "reason=known_triplet"), "\(log.all)")
            // Passed now: nothing waits any more.
            let again = try await httpRequest(http, "POST", "/api/release", headers: auth, body: body)
            #expect(again.status == 404, "\(again)")
        }
        // Without a token the API is read-only: a release is refused.
        try await withDaemon(configure: { $0.httpListener = .tcp(host: "127.0.0.1", port: 0) }) { addresses, _ in
            let http = String(try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5))
            let r = try await httpRequest(http, "POST", "/api/release", body: #"{"client": "192.0.2.7"}"#)
            #expect(r.status == 403 && r.body.contains("read-only without http.token"), "\(r)")
        }
    }

    @Test func openWithoutATokenOnLoopback() async throws {
        try await withDaemon(configure: { $0.httpListener = .tcp(host: "127.0.0.1", port: 0) }) { addresses, _ in
            let http = String(try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5))
            let stats = try await httpRequest(http, "GET", "/api/stats")
            #expect(stats.status == 200 && stats.body.contains(#""ok":true"#), "\(stats)")
        }
    }
}
