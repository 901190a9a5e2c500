import Foundation
import GreylagCore
@testable import GreylagServer
import GreylagStore
import Testing

/// A scripted mix of traffic over four days, on a manual clock, through the
/// policy protocol and the admin API, with the answers tallied per hour and
/// series as the daemon should count them.
struct DashboardTraffic {
    static let hours = 96
    static let scriptSender = "<script>alert(1)</script>@evil.example"

    var tally: [HistoryKey: Int64] = [:]
    var decisions = 0

    mutating func count(_ hour: Int64, _ name: String) { tally[HistoryKey(hour: hour, name: name), default: 0] += 1 }

    /// Asks and checks the answer's action, then counts it under `series`.
    mutating func ask(_ c: PolicyTestClient, _ clock: ManualClock, client: String, sender: String, recipient: String,
                      expect prefix: String, series: DecisionHistory.Series) async throws {
        // One message per request: Postfix's instance changes, so each first pass gets its header.
        let answer = try await c.ask(rcptRequest(client: client, sender: sender, recipient: recipient,
                                                 instance: "msg.\(decisions)")) ?? "(closed)"
        guard answer.hasPrefix(prefix) else {
            throw TestFailure("\(client) <\(sender)> <\(recipient)> at \(clock.now): \(answer), expected \(prefix)")
        }
        count(clock.now / 3600, series.rawValue)
        decisions += 1
    }

    /// Plays the script. Returns when the clock is at the end of the last hour.
    mutating func play(policy: String, admin: String, clock: ManualClock) async throws {
        // Through the admin socket: the HTTP API takes no writes without a token.
        let white = try await AdminClient.request(AdminRequest(command: .add, list: .whitelist, field: .client,
                                                               value: "203.0.113.0/24", comment: "partner"), socket: admin)
        let black = try await AdminClient.request(AdminRequest(command: .add, list: .blacklist, field: .sender,
                                                               value: "spam@bad.example"), socket: admin)
        guard white.ok, black.ok else { throw TestFailure("cannot add list entries: \(white) \(black)") }
        let c = try await PolicyTestClient(policy)
        // Start one minute into an hour.
        clock.advance(3600 - clock.now % 3600 + 60)
        var lateReturners: [(String, String, String, Int64)] = []
        for i in 0..<Self.hours {
            let hourStart = clock.now
            let network = "198.51.100.\(i % 7 + 1)"
            let fresh = (0..<(2 + i % 4)).map { j in
                // Letters, not digits: sender normalisation masks numbers.
                (network, "s\(Self.word(i))-\(Self.word(j))@ex\(j % 3).example", "rcpt\(j)@example.net")
            }
            for (client, sender, recipient) in fresh {
                try await ask(c, clock, client: client, sender: sender, recipient: recipient,
                              expect: "action=DEFER_IF_PERMIT", series: .deferred)
                count(clock.now / 3600, DecisionHistory.newTriplets)
            }
            // Too early: one retry after two minutes.
            clock.advance(120)
            try await ask(c, clock, client: fresh[0].0, sender: fresh[0].1, recipient: fresh[0].2,
                          expect: "action=DEFER_IF_PERMIT", series: .deferred)
            // Half of them come back after ten minutes and pass.
            clock.advance(480)
            for (j, t) in fresh.enumerated() where j % 2 == 0 {
                try await ask(c, clock, client: t.0, sender: t.1, recipient: t.2, expect: "action=PREPEND X-Greylist: delayed",
                              series: .passed)
                count(hourStart / 3600, DecisionHistory.returned)
                count(clock.now / 3600, DecisionHistory.returnBucket(clock.now - hourStart))
                // A known triplet passes again.
                if j == 0 {
                    try await ask(c, clock, client: t.0, sender: t.1, recipient: t.2, expect: "action=DUNNO", series: .passed)
                }
            }
            // Some of last hour's come back after about seventy minutes; the rest never do.
            for t in lateReturners {
                try await ask(c, clock, client: t.0, sender: t.1, recipient: t.2, expect: "action=PREPEND X-Greylist: delayed",
                              series: .passed)
                count(t.3 / 3600, DecisionHistory.returned)
                count(clock.now / 3600, DecisionHistory.returnBucket(clock.now - t.3))
            }
            lateReturners = fresh.enumerated().filter { $0.offset % 4 == 1 }.map { ($0.element.0, $0.element.1, $0.element.2, hourStart) }
            // A partner whitelisted through the admin API, two messages an hour.
            for k in 0..<2 {
                try await ask(c, clock, client: "203.0.113.9", sender: "news\(k)@partner.example", recipient: "rcpt1@example.net",
                              expect: "action=DUNNO", series: .whitelisted)
            }
            // A blacklisted spammer every third hour.
            if i % 3 == 0 {
                for recipient in ["rcpt2@example.net", "rcpt3@example.net"] {
                    try await ask(c, clock, client: "192.0.2.66", sender: "spam@bad.example", recipient: recipient,
                                  expect: "action=REJECT", series: .rejected)
                }
            }
            clock.advance(3600 - (clock.now - hourStart))
        }
        // Waiting now: a sender chosen to break HTML, and a second network.
        for k in 0..<3 {
            try await ask(c, clock, client: "192.0.2.200", sender: Self.scriptSender, recipient: "victim\(k)@example.net",
                          expect: "action=DEFER_IF_PERMIT", series: .deferred)
            count(clock.now / 3600, DecisionHistory.newTriplets)
        }
    }

    /// `n` in letters: a, b, ..., z, ba, bb, ...
    static func word(_ n: Int) -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        var n = n, out = ""
        repeat {
            out = String(letters[n % 26]) + out
            n /= 26
        } while n > 0
        return out
    }

    /// The tally of `series` in hour `hour`.
    func callAsFunction(_ hour: Int64, _ name: String) -> Int64 { tally[HistoryKey(hour: hour, name: name)] ?? 0 }
}

/// The dashboard's pure parts.
@Suite struct DashboardPageTests {
    func query(sender: String = "a@example.org") -> GreylistQuery {
        GreylistQuery(stage: .rcpt, clientAddress: "192.0.2.7", sender: sender, recipient: "b@example.net")
    }

    @Test func historyCountsSeriesNewReturnedAndDelaysInTheirHours() {
        let history = DecisionHistory(capacity: 3)
        let t = Triplet(network: "192.0.2.0/24", sender: "a@example.org", recipient: "b@example.net")
        let now: Int64 = 1_000 * 3600 + 100
        history.record(Verdict(action: .defer, reason: .newTriplet, timeLeft: 300, triplet: t), query(), now: now)
        history.record(Verdict(action: .pass, reason: .newTriplet, timeLeft: 300, triplet: t, wouldDefer: true),
                       query(), now: now)
        history.record(Verdict(action: .pass, reason: .delayElapsed, delayed: 7_000, triplet: t), query(), now: now)
        history.record(Verdict(action: .pass, reason: .whitelisted), query(), now: now)
        history.record(Verdict(action: .reject, reason: .blacklisted), query(), now: now)
        history.record(Verdict(action: .pass, reason: .notRecipientStage), query(), now: now)
        history.record(Verdict(action: .pass, reason: .storeUnavailable), query(sender: "last@example.org"), now: now + 1)
        let counts = Dictionary(uniqueKeysWithValues: history.unsaved().map { ("\($0.hour - 1000) \($0.name)", $0.count) })
        #expect(counts == ["0 deferred": 2, "0 new": 2, "0 passed": 1, "0 whitelisted": 1, "0 rejected": 1,
                           "0 other": 1, "-2 returned": 1, "0 return:7200": 1])
        #expect(DecisionHistory.returnBucket(300) == "return:300" && DecisionHistory.returnBucket(301) == "return:600")
        #expect(DecisionHistory.returnBucket(3 * 86_400) == "return:inf")
        // The last three, newest first; the query before the recipient stage is not listed.
        #expect(history.recent().map(\.action) == ["pass", "reject", "pass"])
        #expect(history.recent().first?.sender == "last@example.org")
        #expect(history.recent().map(\.reason) == ["store_unavailable", "blacklisted", "whitelisted"])
    }

    @Test func aFailedFlushKeepsTheCountsForTheNextOne() async throws {
        let history = DecisionHistory()
        history.record(Verdict(action: .defer, reason: .tooEarly, timeLeft: 9), query(), now: 7200)
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.path + "/greylag.db")
        var config = GreylagConfiguration()
        config.storePath = dir.path + "/broken.db"
        let broken = try BrokenStore(.fail, config: config)
        await #expect(throws: (any Error).self) { try await history.flush(to: broken) }
        history.record(Verdict(action: .defer, reason: .tooEarly, timeLeft: 9), query(), now: 7300)
        try await history.flush(to: store)
        #expect(history.unsaved().isEmpty)
        #expect(try await store.history(since: 0) == [HistoryCount(hour: 2, name: "deferred", count: 2)])
        try await store.close()
        try await broken.close()
    }

    @Test func htmlEscapesMarkupQuotesAndControlsAndCutsLongText() {
        #expect(DashboardPage.html("<script>alert('x')</script>&\"") ==
                "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;")
        #expect(DashboardPage.html("a\u{0}b\nc\u{1B}[31m\u{85}") == "a\u{FFFD}b\u{FFFD}c\u{FFFD}[31m\u{FFFD}")
        #expect(DashboardPage.html(String(repeating: "x", count: 500), limit: 10) == "xxxxxxxxxx…")
    }

    /// Bidi overrides and isolates would reorder an address on screen; they
    /// are shown as visible text instead, on the page and in log lines.
    @Test func bidiControlsAreShownVisibly() {
        #expect(DashboardPage.html("a\u{202E}gpj.exe") == "a&lt;U+202E&gt;gpj.exe")
        #expect(DashboardPage.html("\u{2066}x\u{2069}\u{200E}\u{200F}\u{061C}")
                == "&lt;U+2066&gt;x&lt;U+2069&gt;&lt;U+200E&gt;&lt;U+200F&gt;&lt;U+61C&gt;")
        #expect("a\u{202E}b\u{202A}c".logEscaped == "a\\u{202E}b\\u{202A}c")
        #expect("\u{2067}\u{0}é".logEscaped == "\\u{2067}\\x00é")
        #expect("café ∑".logEscaped == "café ∑")
    }

    func sample(history: [HistoryCount], retryWindow: Int64 = 2 * 86_400, now: Int64 = 500_000 * 3600 + 1800) -> DashboardData {
        DashboardData(now: now, host: "mx<1>", delay: 300, retryWindow: retryWindow, history: history,
                      counts: StoreCounts(pending: 4, passed: 5, clients: 6),
                      waitingNetworks: [WaitingGroup(key: "198.51.100.0/24\"><img src=x>", triplets: 3, attempts: 5,
                                                     oldestFirstSeen: now - 600)],
                      waitingSenders: [WaitingGroup(key: "", triplets: 1, attempts: 1, oldestFirstSeen: now - 60)],
                      recent: [RecentDecision(time: now, action: "defer", reason: "new_triplet", client: "192.0.2.7",
                                              sender: "<script>alert(1)</script>@evil.example",
                                              recipient: "b@example.net", via: "policy", delayed: nil, retryIn: 300)])
    }

    @Test func theBlockedShareCountsOnlyHoursPastTheirRetryWindow() {
        let h: Int64 = 500_000
        let d = sample(history: [
            HistoryCount(hour: h - 30 * 24 - 5, name: "new", count: 100),  // before the 30 days
            HistoryCount(hour: h - 100, name: "new", count: 10), HistoryCount(hour: h - 100, name: "returned", count: 4),
            HistoryCount(hour: h - 49, name: "new", count: 6), HistoryCount(hour: h - 49, name: "returned", count: 9),
            HistoryCount(hour: h - 47, name: "new", count: 50),  // still inside its retry window
        ])
        let b = DashboardPage.blocked(d)
        // Returns above the count of an hour (imports, restarts) count as that hour's count.
        #expect(b.deferred == 16 && b.cameBack == 10 && b.neverCameBack == 6)
        #expect(b.toHour == h - 49)
        let page = DashboardPage.render(d)
        #expect(page.contains("<strong>6 (37.5%) never came back</strong>"))
    }

    @Test func returnDelaysAreSummedByBucketWithPercentiles() {
        let h: Int64 = 500_000
        let d = sample(history: [
            HistoryCount(hour: h, name: "return:600", count: 5), HistoryCount(hour: h - 3, name: "return:600", count: 4),
            HistoryCount(hour: h, name: "return:3600", count: 1), HistoryCount(hour: h, name: "return:inf", count: 1),
        ])
        let delays = DashboardPage.returnDelays(d)
        #expect(delays.count == DecisionHistory.returnBounds.count + 1)
        #expect(delays.map(\.count) == [0, 9, 0, 0, 1, 0, 0, 0, 0, 0, 1])
        let page = DashboardPage.render(d)
        #expect(page.contains("for the 11 triplet(s) that passed after a delay"))
        #expect(page.contains("Half were back within 10m; nine in ten within 1h."))
    }

    @Test func attackerChosenTextIsEscapedEverywhere() {
        let page = DashboardPage.render(sample(history: []))
        #expect(!page.contains("<script"))
        #expect(!page.contains("<img"))
        #expect(page.contains("&lt;&lt;script&gt;alert(1)&lt;/script&gt;@evil.example&gt;"))
        #expect(page.contains("198.51.100.0/24&quot;&gt;&lt;img src=x&gt;"))
        #expect(page.contains("<title>greylag on mx&lt;1&gt;</title>"))
        #expect(page.contains("&lt;&gt; (bounce)"))
    }

    @Test func barsAreDrawnInProportionWithOneRectPerNonZeroValue() {
        let h: Int64 = 500_000
        let page = DashboardPage.render(sample(history: [
            HistoryCount(hour: h, name: "deferred", count: 40), HistoryCount(hour: h, name: "passed", count: 10),
            HistoryCount(hour: h - 1, name: "whitelisted", count: 20),
        ]))
        let hourly = page[page.range(of: "<section id=\"hourly\"")!.lowerBound...].components(separatedBy: "</section>")[0]
        func heights(_ color: String) -> [Int] {
            hourly.components(separatedBy: "fill=\"\(color)\"").dropLast().compactMap { chunk in
                chunk.range(of: "height=\"", options: .backwards).flatMap { Int(chunk[$0.upperBound...].prefix { $0.isNumber }) }
            }
        }
        // Peak 50 on a scale of 50: 180 pixels in all, 144 deferred and 36 passed.
        #expect(heights("#e0851c") == [144])
        #expect(heights("#2e9d5b") == [36])
        #expect(heights("#3a78d4") == [72])
        #expect(heights("#c73a2f").isEmpty)
        #expect(hourly.contains("<title>"))
    }

    @Test func anEmptyStoreSaysSoInsteadOfDrawingNothing() {
        var d = sample(history: [])
        d.recent = []
        d.waitingNetworks = []
        d.counts = nil
        d.storeError = "connection refused <b>"
        let page = DashboardPage.render(d)
        #expect(page.contains("no decisions counted yet"))
        #expect(page.contains("Nothing to show yet"))
        #expect(page.contains("Cannot read the store: connection refused &lt;b&gt;"))
        #expect(page.contains("No decision since the daemon started."))
    }
}

/// The dashboard of a live daemon.
@Suite struct DashboardServerTests {
    @Test func theDashboardShowsScriptedTrafficAndEscapesAddresses() async throws {
        let clock = ManualClock()
        let dir = TemporaryDirectory()
        let admin = dir.path + "/admin.sock"
        try await withDaemon(configure: {
            $0.httpListener = .tcp(host: "127.0.0.1", port: 0)
            $0.adminSocket = .path(admin)
            // Every fresh triplet of the script is deferred, whatever its network passed before.
            $0.policy.clientAutowhitelist = 0
        }, clock: clock) { addresses, _ in
            let http = String(try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5))
            var traffic = DashboardTraffic()
            try await traffic.play(policy: addresses[0], admin: admin, clock: clock)

            // The JSON has exactly the counts tallied from the answers.
            let json = try await httpExchange(http, "GET", "/api/dashboard")
            #expect(json.status == 200)
            let data = try JSONDecoder().decode(DashboardData.self, from: Data(json.body.utf8))
            var got: [HistoryKey: Int64] = [:]
            for h in data.history { got[HistoryKey(hour: h.hour, name: h.name)] = h.count }
            #expect(got == traffic.tally)
            #expect(data.recent.first?.sender == DashboardTraffic.scriptSender)
            #expect(data.waitingNetworks.contains(WaitingGroup(key: "192.0.2.0/24", triplets: 3, attempts: 3,
                                                               oldestFirstSeen: clock.now)))
            #expect(data.waitingSenders.first == WaitingGroup(key: AddressNormalizer.sender(DashboardTraffic.scriptSender),
                                                              triplets: 3, attempts: 3,
                                                              oldestFirstSeen: clock.now))

            let page = try await httpExchange(http, "GET", "/")
            #expect(page.status == 200)
            #expect(page.headers["content-type"] == "text/html; charset=utf-8")
            #expect(page.headers["content-security-policy"]?.hasPrefix("default-src 'none'") == true)
            #expect(!page.body.contains("<script"))
            #expect(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;@evil.example"))
            let blocked = DashboardPage.blocked(data)
            #expect(blocked.deferred > 50 && blocked.neverCameBack > 0 && blocked.cameBack > 0)
            #expect(page.body.contains("<strong>\(blocked.neverCameBack) ("))
            #expect(try await httpExchange(http, "GET", "/dashboard").body.contains("Decisions per hour"))

            // The live cost: the 24 hours past their retry window, from the same tally.
            let cost = try #require(data.cost)
            var new: Int64 = 0, never: Int64 = 0
            for hour in cost.blockedFromHour...cost.blockedToHour {
                let n = traffic.tally[HistoryKey(hour: hour, name: DecisionHistory.newTriplets)] ?? 0
                let back = traffic.tally[HistoryKey(hour: hour, name: DecisionHistory.returned)] ?? 0
                new += n
                never += n - min(n, back)
            }
            #expect(cost.deferredNew == new && cost.neverCameBack == never && new > 20 && never > 0)
            #expect(cost.blockedShare == Double(never) / Double(new))
            // Returns after ten minutes and after about seventy, in the last 24 hours.
            #expect(cost.delayedPasses > 24 && cost.delayMedian == 600 && (cost.delayMax ?? 0) > 3600)
            #expect(page.body.contains("The cost of greylisting, last 24 hours"))
            let metrics = try await httpExchange(http, "GET", "/metrics").body
            #expect(metrics.contains("greylag_return_delay_window_passes \(cost.delayedPasses)"))
            #expect(metrics.contains("greylag_return_delay_seconds{quantile=\"0.5\"} 600"))
            #expect(metrics.contains("greylag_blocked_window_new_triplets \(new)"))
        }
    }

    @Test func withATokenTheDashboardAsksTheBrowserForIt() async throws {
        let token = "dashboard-token-0123456789"
        try await withDaemon(configure: {
            $0.httpListener = .tcp(host: "127.0.0.1", port: 0)
            $0.httpToken = token
        }) { addresses, _ in
            let http = String(try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5))
            let refused = try await httpExchange(http, "GET", "/")
            #expect(refused.status == 401)
            #expect(refused.headers["www-authenticate"]?.hasPrefix("Basic realm=\"greylag\"") == true)
            #expect(!refused.body.contains("Decisions per hour"))
            let wrong = Data("admin:not-the-token".utf8).base64EncodedString()
            #expect(try await httpExchange(http, "GET", "/", headers: ["Authorization": "Basic \(wrong)"]).status == 401)
            let basic = Data("admin:\(token)".utf8).base64EncodedString()
            let page = try await httpExchange(http, "GET", "/", headers: ["Authorization": "Basic \(basic)"])
            #expect(page.status == 200 && page.body.contains("Decisions per hour"))
            #expect(try await httpExchange(http, "GET", "/api/dashboard").status == 401)
            #expect(try await httpExchange(http, "GET", "/api/dashboard", headers: ["Authorization": "Bearer \(token)"]).status == 200)
        }
    }

    /// The release buttons: shown only with a token; their form post is
    /// accepted only with the token, the page's secret and from the same
    /// origin; then the waiting triplets of that row pass at their retry.
    @Test func releaseButtonsWorkOnlyWithTheTokenTheSecretAndTheSameOrigin() async throws {
        let token = "dashboard-token-0123456789"
        let basic = "Basic " + Data("admin:\(token)".utf8).base64EncodedString()
        let clock = ManualClock()
        let log = CapturedLog()
        try await withDaemon(configure: {
            $0.httpListener = .tcp(host: "127.0.0.1", port: 0)
            $0.httpToken = token
            $0.dashboardCacheSeconds = 0
        }, clock: clock, log: log) { addresses, _ in
            let http = String(try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5))
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request()) == defer300)
            #expect(try await c.ask(request(client: "198.51.100.9", recipient: "other@example.net")) == defer300)
            clock.advance(20)
            let page = try await httpExchange(http, "GET", "/dashboard", headers: ["Authorization": basic])
            #expect(page.status == 200)
            #expect(page.headers["content-security-policy"]?.contains("form-action 'self'") == true)
            #expect(page.body.contains(#"<form class="release" method="post" action="/dashboard/release">"#))
            #expect(page.body.contains(#"name="value" value="192.0.2.0/24""#), "\(page.body)")
            #expect(page.body.contains(#"name="value" value="alice@example.org""#))
            let secret = try #require(page.body.firstMatch(of: /name="secret" value="([0-9a-f]{32})"/)?.1, "no secret")
            func post(_ body: String, _ headers: [String: String] = [:]) async throws -> (status: Int, headers: [String: String], body: String) {
                try await httpExchange(http, "POST", "/dashboard/release",
                                       headers: ["Content-Type": "application/x-www-form-urlencoded", "Authorization": basic]
                                           .merging(headers) { $1 }, body: body)
            }
            let form = "field=network&value=192.0.2.0%2F24&secret=\(secret)"
            // Refused: no token, a wrong secret, none, another origin, a cross-site fetch, JSON, a broken form.
            #expect(try await post(form, ["Authorization": ""]).status == 401)
            #expect(try await post("field=network&value=192.0.2.0%2F24&secret=\(String(secret.reversed()))").status == 403)
            #expect(try await post("field=network&value=192.0.2.0%2F24").status == 403)
            #expect(try await post(form, ["Origin": "http://evil.example"]).status == 403)
            #expect(try await post(form, ["Origin": "null"]).status == 403)
            #expect(try await post(form, ["Sec-Fetch-Site": "cross-site"]).status == 403)
            #expect(try await post(form, ["Content-Type": "application/json"]).status == 415)
            #expect(try await post(form + "&field=sender").status == 403)
            #expect(try await post("field=colour&value=x&secret=\(secret)").status == 403)
            #expect(try await post(String(repeating: "a", count: 5000)).status == 415)
            #expect(!log.contains("admin change by dashboard"))
            // Accepted from the page's own origin: a redirect back to the dashboard.
            let done = try await post(form, ["Host": http, "Origin": "http://\(http)", "Sec-Fetch-Site": "same-origin"])
            #expect(done.status == 303 && done.headers["location"] == "/dashboard#waiting", "\(done)")
            #expect(log.contains("admin change by dashboard 127.0.0.1:"), "\(log.all)")
            #expect(log.contains("release client=192.0.2.0/24: released 1 waiting triplet(s)"), "\(log.all)")
            clock.advance(1)
            #expect(try await c.ask(request()) == "action=DUNNO")
            // The other network still waits; the page no longer lists the released one.
            #expect(try await c.ask(request(client: "198.51.100.9", recipient: "other@example.net"))?.hasPrefix("action=DEFER_IF_PERMIT") == true)
            let after = try await httpExchange(http, "GET", "/dashboard", headers: ["Authorization": basic])
            #expect(!after.body.contains(#"name="value" value="192.0.2.0/24""#))
            #expect(after.body.contains(#"name="value" value="198.51.100.0/24""#))
            // A release of nothing waiting says so.
            let nothing = try await post(form)
            #expect(nothing.status == 404 && nothing.body.contains("no waiting triplet matches"), "\(nothing)")
        }
        // Without a token: no buttons, forms not allowed by the page, and the endpoint refuses.
        try await withDaemon(configure: {
            $0.httpListener = .tcp(host: "127.0.0.1", port: 0)
            $0.dashboardCacheSeconds = 0
        }) { addresses, _ in
            let http = String(try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5))
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request()) == defer300)
            let page = try await httpExchange(http, "GET", "/")
            #expect(page.status == 200 && page.body.contains("192.0.2.0/24"))
            #expect(!page.body.contains("/dashboard/release") && !page.body.contains("<form"))
            #expect(page.headers["content-security-policy"]?.contains("form-action 'none'") == true)
            let r = try await httpExchange(http, "POST", "/dashboard/release",
                                           headers: ["Content-Type": "application/x-www-form-urlencoded"],
                                           body: "field=network&value=192.0.2.0%2F24&secret=x")
            #expect(r.status == 403, "\(r)")
        }
    }

    @Test func releaseFormsAreParsedStrictly() {
        #expect(DashboardPage.ReleaseForm(urlEncoded: "field=sender&value=a%2Bb%40example.org&secret=s")
                == DashboardPage.ReleaseForm(urlEncoded: "secret=s&value=a%2bb%40example.org&field=sender"))
        #expect(DashboardPage.ReleaseForm(urlEncoded: "field=sender&value=%3C%3E&secret=s")?.value == "<>")
        for bad in ["", "field=network", "field=network&value=&secret=s", "field=x&value=v&secret=s",
                    "field=network&value=v&secret=s&extra=1", "field=network&value=%ZZ&secret=s", "=&=&=",
                    "field=network&field=sender&value=v&secret=s", String(repeating: "&", count: 4000)] {
            #expect(DashboardPage.ReleaseForm(urlEncoded: bad) == nil, "\(bad)")
        }
        #expect(DashboardPage.sameSecret("abc", "abc") && !DashboardPage.sameSecret("abc", "abd")
                && !DashboardPage.sameSecret("", "") && !DashboardPage.sameSecret("abc", "abcd"))
        let a = DashboardPage.newFormSecret(), b = DashboardPage.newFormSecret()
        #expect(a.count == 32 && a != b && a.allSatisfy(\.isHexDigit))
    }

    @Test func theHistoryLoopSavesCountsAndRemovesWhatIsPastHistoryKeep() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock()
        let hour = clock.now / 3600
        let seed = try SQLiteStore(path: dir.path + "/greylag.db")
        try await seed.addHistory([HistoryCount(hour: hour - 48, name: "deferred", count: 5),
                                   HistoryCount(hour: hour - 2, name: "passed", count: 7)])
        try await seed.close()
        try await withDaemon(configure: {
            $0.storePath = dir.path + "/greylag.db"
            $0.historyFlushInterval = 1
            $0.historyKeep = 86_400
        }, clock: clock) { addresses, _ in
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(rcptRequest()) == defer300)
            try await Task.sleep(for: .milliseconds(1600))
            // Read while the daemon runs: the counts are in the store, the old row is gone.
            let reader = try SQLiteStore(path: dir.path + "/greylag.db")
            let rows = try await reader.history(since: 0)
            try await reader.close()
            #expect(rows == [HistoryCount(hour: hour - 2, name: "passed", count: 7),
                             HistoryCount(hour: hour, name: "deferred", count: 1),
                             HistoryCount(hour: hour, name: "new", count: 1)])
        }
    }

    @Test func countsAreSavedAtShutdownAndShownAfterARestart() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualClock()
        let configure: @Sendable (inout GreylagConfiguration) -> Void = {
            $0.storePath = dir.path + "/greylag.db"
            $0.httpListener = .tcp(host: "127.0.0.1", port: 0)
        }
        try await withDaemon(configure: configure, clock: clock) { addresses, _ in
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(rcptRequest()) == defer300)
            #expect(try await c.ask(rcptRequest(recipient: "x@example.net")) == defer300)
        }
        let hour = clock.now / 3600
        try await withDaemon(configure: configure, clock: clock) { addresses, _ in
            let http = String(try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5))
            let data = try JSONDecoder().decode(DashboardData.self,
                                                from: Data(try await httpExchange(http, "GET", "/api/dashboard").body.utf8))
            #expect(data.history == [HistoryCount(hour: hour, name: "deferred", count: 2),
                                     HistoryCount(hour: hour, name: "new", count: 2)])
            #expect(data.recent.isEmpty)
            #expect(data.waitingNetworks == [WaitingGroup(key: "192.0.2.0/24", triplets: 2, attempts: 2,
                                                          oldestFirstSeen: clock.now)])
        }
    }
}

/// The dashboard in a real browser: Debian's chromium, headless, loads the
/// page of a daemon that has served the scripted traffic and takes a
/// screenshot; `scripts/dashboard-pixels.py` then counts the pixels of
/// every chart's colour. Set GREYLAG_DASHBOARD_SCREENSHOT=FILE.png to keep
/// the screenshot.
@Suite(.serialized, .enabled(if: E2E.enabled)) struct DashboardBrowserTests {
    static let chromium = "/usr/bin/chromium"
    static let pixelScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/dashboard-pixels.py").path

    @Test func everyChartHasContentInAScreenshot() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.chromium) else {
            throw TestFailure("\(Self.chromium) is missing; scripts/install-test-deps.sh installs Debian's chromium")
        }
        let clock = ManualClock()
        let dir = TemporaryDirectory()
        try await withDaemon(configure: {
            $0.httpListener = .tcp(host: "127.0.0.1", port: 0)
            $0.adminSocket = .path(dir.path + "/admin.sock")
            $0.policy.clientAutowhitelist = 0
            $0.dashboardCacheSeconds = 0
        }, clock: clock) { addresses, _ in
            let http = String(try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5))
            let colours = try JSONSerialization.data(withJSONObject: DashboardPage.chartColors, options: [.sortedKeys])
            try colours.write(to: URL(fileURLWithPath: dir.path + "/colours.json"))
            /// A screenshot of the page now, and the pixel check's verdict on it.
            func screenshot(_ name: String) async throws -> (status: Int32, output: String) {
                let png = dir.path + "/\(name).png"
                let shot = try await runProgram(Self.chromium, [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                    "--no-first-run", "--force-color-profile=srgb", "--force-device-scale-factor=1",
                    "--user-data-dir=\(dir.path)/profile", "--window-size=1100,3400", "--screenshot=\(png)",
                    "http://\(http)/",
                ], timeout: 120)
                guard shot.status == 0, FileManager.default.fileExists(atPath: png) else {
                    throw TestFailure("chromium made no screenshot: \(shot.output)")
                }
                if let keep = ProcessInfo.processInfo.environment["GREYLAG_DASHBOARD_SCREENSHOT"], !keep.isEmpty {
                    try? FileManager.default.removeItem(atPath: keep)
                    try FileManager.default.copyItem(atPath: png, toPath: keep)
                }
                // More than a legend swatch (10×10) and a tile mark (8×8) together.
                return try await runProgram("/usr/bin/python3", [Self.pixelScript, png, dir.path + "/colours.json", "250"])
            }
            // Before any traffic the check fails: legends alone are not content.
            let empty = try await screenshot("empty")
            #expect(empty.status == 1, "\(empty.output)")
            #expect(empty.output.contains("hourly deferred: ") && empty.output.contains("(fewer than 250)"), "\(empty.output)")

            var traffic = DashboardTraffic()
            try await traffic.play(policy: addresses[0], admin: dir.path + "/admin.sock", clock: clock)
            let check = try await screenshot("dashboard")
            #expect(check.status == 0, "\(check.output)")
            for name in DashboardPage.chartColors.keys {
                #expect(check.output.contains("\(name): "), "\(check.output)")
            }
        }
    }

    static let clickScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/dashboard-click.py").path

    /// The release button clicked with the mouse in chromium, which sends
    /// the token as the Basic password: the waiting network's next retry
    /// passes. A page of another origin that submits the same form (even
    /// with the right secret and the token the browser remembers) releases
    /// nothing.
    @Test func theReleaseButtonWorksInABrowserAndNotFromAnotherSite() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.chromium) else {
            throw TestFailure("\(Self.chromium) is missing; scripts/install-test-deps.sh installs Debian's chromium")
        }
        let token = "browser-token-0123456789"
        let clock = ManualClock()
        let log = CapturedLog()
        let dir = TemporaryDirectory()
        try await withDaemon(configure: {
            $0.httpListener = .tcp(host: "127.0.0.1", port: 0)
            $0.httpToken = token
            $0.dashboardCacheSeconds = 0
        }, clock: clock, log: log) { addresses, _ in
            let http = String(try #require(addresses.first { $0.hasPrefix("http:") }).dropFirst(5))
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request()) == defer300)
            clock.advance(30)
            let page = try await httpExchange(http, "GET", "/", headers: ["Authorization": "Basic "
                + Data("admin:\(token)".utf8).base64EncodedString()])
            let secret = String(try #require(page.body.firstMatch(of: /name="secret" value="([0-9a-f]{32})"/)?.1))

            let attack = try await runProgram("/usr/bin/python3", [
                Self.clickScript, Self.chromium, dir.path + "/profile-attacker", token, "cross-site",
                "http://\(http)/dashboard/release", "network", "192.0.2.0/24", secret,
            ], timeout: 120)
            #expect(attack.status == 0, "\(attack.output)")
            #expect(attack.output.contains("may not change state"), "\(attack.output)")
            #expect(!log.contains("admin change by dashboard"))
            #expect(try await c.ask(request())?.hasPrefix("action=DEFER_IF_PERMIT") == true, "the attack released the triplet")

            let click = try await runProgram("/usr/bin/python3", [
                Self.clickScript, Self.chromium, dir.path + "/profile", token, "click", "http://\(http)/dashboard",
            ], timeout: 120)
            #expect(click.status == 0, "\(click.output)")
            #expect(click.output.contains("url=http://\(http)/dashboard#waiting"), "\(click.output)")
            #expect(click.output.contains("No deferred triplet is waiting."), "\(click.output)")
            #expect(log.contains("admin change by dashboard 127.0.0.1:"), "\(log.all)")
            #expect(log.contains("release client=192.0.2.0/24: released 1 waiting triplet(s)"), "\(log.all)")
            clock.advance(1)
            #expect(try await c.ask(request()) == "action=DUNNO")
        }
    }
}
