import Foundation
import GreylagCore
import GreylagDNS
import GreylagServer
import GreylagSPF
import GreylagStore
import Logging
import Synchronization
import Testing

/// A resolver from a table: `"name TYPE"` -> result; anything else NXDOMAIN.
/// Names in `hang` never answer (until the task is cancelled); every
/// question asked is kept.
final class TableResolver: DNSResolving {
    let table: [String: DNSLookupResult]
    let hang: Set<String>
    private let asked = Mutex<[String]>([])

    init(_ table: [String: DNSLookupResult] = [:], hang: Set<String> = []) {
        self.table = table
        self.hang = hang
    }

    var questions: [String] { asked.withLock { $0 } }

    func lookup(_ name: String, _ type: DNSRecordType) async -> DNSLookupResult {
        let key = "\(name) \(type)"
        asked.withLock { $0.append(key) }
        if hang.contains(key) || hang.contains("*") {
            try? await Task.sleep(nanoseconds: 60_000_000_000)
            return .failure(.timeout)
        }
        return table[key] ?? .nxDomain
    }
}

func a(_ text: String) -> DNSLookupResult {
    .records([.a(text.split(separator: ".").map { UInt8($0)! })])
}

/// One decision of `service`, awaited.
func decide(_ service: GreylistService, _ query: GreylistQuery, now: Int64) async -> Verdict {
    await withCheckedContinuation { c in service.decide(query, now: now) { c.resume(returning: $0) } }
}

@Suite struct DNSChecksTests {
    // MARK: Names and codes

    @Test func reversedNamesOfIPv4AndIPv6() {
        #expect(DNSNames.reversed(IPAddress("192.0.2.7")!) == "7.2.0.192")
        #expect(DNSNames.ptrName(IPAddress("192.0.2.7")!) == "7.2.0.192.in-addr.arpa")
        #expect(DNSNames.reversed(IPAddress("::ffff:192.0.2.7")!) == "7.2.0.192")
        let v6 = DNSNames.ptrName(IPAddress("2001:db8::567:89ab")!)
        #expect(v6 == "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa")
    }

    @Test func listQueryNamesByKind() {
        let q = GreylistQuery(clientAddress: "192.0.2.7", heloName: "MX1.Example.NET.", sender: "a@Sub.Example.ORG",
                              recipient: "b@example.net")
        let ip = IPAddress("192.0.2.7")!
        #expect(DNSListZone(zone: "bl.test", kind: .client).queryName(for: q, address: ip) == "7.2.0.192.bl.test")
        #expect(DNSListZone(zone: "rhs.test", kind: .sender).queryName(for: q, address: ip) == "sub.example.org.rhs.test")
        #expect(DNSListZone(zone: "rhs.test", kind: .helo).queryName(for: q, address: ip) == "mx1.example.net.rhs.test")
        // Nothing to ask: the null sender, an address literal, a bare word, a bad name, too long.
        var odd = q
        odd.sender = ""
        odd.heloName = "[192.0.2.7]"
        #expect(DNSListZone(zone: "rhs.test", kind: .sender).queryName(for: odd, address: ip) == nil)
        #expect(DNSListZone(zone: "rhs.test", kind: .helo).queryName(for: odd, address: ip) == nil)
        for helo in ["localhost", "192.0.2.7", "bad..name.example", "-x.example", "a b.example", "x.example\u{0}.y",
                     String(repeating: "a.", count: 130) + "example"] {
            odd.heloName = helo
            #expect(DNSListZone(zone: "rhs.test", kind: .helo).queryName(for: odd, address: ip) == nil, "\(helo)")
        }
        odd.sender = "x@" + String(repeating: "abcdefghi.", count: 24) + "example"
        #expect(DNSListZone(zone: "rhs.test", kind: .sender).queryName(for: odd, address: ip) == nil)
    }

    @Test func defaultCodesSkipTheErrorRange() {
        let c = AnswerCodes()
        #expect(c.counts([127, 0, 0, 2]))
        #expect(c.counts([127, 0, 1, 255]))
        #expect(!c.counts([127, 255, 255, 254]))  // "you are querying wrongly"
        #expect(!c.counts([127, 255, 255, 0]))
        #expect(!c.counts([192, 0, 2, 1]))  // a wildcard or a hijacking resolver
        #expect(!c.counts([127, 0, 0]))
    }

    @Test func answerPatternsAndMasks() throws {
        let range = try AnswerCodes.pattern("127.0.0.[2..11]")
        let c = AnswerCodes(patterns: [range, try AnswerCodes.pattern("127.0.[0;2..3].[1;20]")])
        #expect(c.counts([127, 0, 0, 2]) && c.counts([127, 0, 0, 11]))
        #expect(!c.counts([127, 0, 0, 12]) && !c.counts([127, 0, 0, 1]) || c.counts([127, 0, 0, 1]))
        #expect(c.counts([127, 0, 3, 20]) && c.counts([127, 0, 2, 1]))
        #expect(!c.counts([127, 0, 1, 20]) && !c.counts([127, 0, 0, 12]))
        #expect(range.description == "127.0.0.[2..11]")
        let masked = AnswerCodes(mask: 4)
        #expect(masked.counts([127, 0, 0, 4]) && masked.counts([127, 0, 0, 6]))
        #expect(!masked.counts([127, 0, 0, 2]))
        let both = AnswerCodes(patterns: [try AnswerCodes.pattern("127.0.1.[0..255]")], mask: 2)
        #expect(both.counts([127, 0, 1, 2]) && !both.counts([127, 0, 1, 4]) && !both.counts([127, 0, 0, 2]))
        for bad in ["127.0.0", "127.0.0.256", "127.0.0.[11..2]", "127.0.0.[2..]", "127.0.0.[2", "127.0.0.2]",
                    "127..0.2", "127.0.0.[]", "x.0.0.1", "127.0.0.[1;;2]", "[[1]].0.0.1", "127.0.0.2.5",
                    String(repeating: "1", count: 300)] {
            #expect(throws: AnswerCodes.PatternError.self, "\(bad)") { try AnswerCodes.pattern(bad) }
        }
    }

    @Test func shippedDynamicNamePatterns() throws {
        let d = DynamicNames.builtin
        #expect(d.patterns.count >= 3)
        for name in ["192-0-2-7.dyn.example.net", "7.2.0.192.pool.example.net", "adsl-7.example.net",
                     "dynamic.example.net", "cpe-c0000207.example.net", "ppp123.example.net", "HOST192x0x2x7.EXAMPLE.NET."] {
            #expect(d.matches(name), "\(name)")
        }
        for name in ["mx1.example.net", "mail.example.org", "smtp-out.example.com", "o1.sendgrid.example",
                     "mail-wr1-f41.google.example", "", String(repeating: "a", count: 300)] {
            #expect(!d.matches(name), "\(name)")
        }
        #expect(throws: ListSyntaxError.self) { try DynamicNames.parse("ok\n(unclosed\n", origin: "test") }
        let own = try DynamicNames.parse("# mine\n\n\\.dyn\\.example\\.net$\n", origin: "test")
        #expect(own.matches("a.dyn.example.net") && !own.matches("192-0-2-7.example.net"))
    }

    // MARK: Gathering through the service

    func service(_ dns: (inout DNSPolicy) -> Void = { _ in }, checks: (inout DNSCheckSettings) -> Void = { _ in },
                 resolver: (any DNSResolving)?, spf: SPFCheck? = nil, log: CapturedLog = CapturedLog(),
                 dir: TemporaryDirectory) throws -> GreylistService {
        var d = DNSPolicy()
        dns(&d)
        var c = DNSCheckSettings()
        // Tests run side by side and may keep the cooperative threads busy
        // for seconds: a deadline far away unless a test sets its own.
        c.deadline = 20
        checks(&c)
        let logger = Logger(label: "test") { _ in CapturingHandler(log: log) }
        let store = try SQLiteStore(path: dir.path + "/greylag.db")
        return GreylistService(policy: GreylistPolicy(), store: store, logger: logger, dns: d, checks: c,
                               resolver: resolver, spf: spf)
    }

    let t0: Int64 = 1_700_000_000
    func query(_ client: String = "192.0.2.7", sender: String = "alice@example.org", helo: String = "mx.example.org")
        -> GreylistQuery {
        GreylistQuery(clientAddress: client, heloName: helo, sender: sender, recipient: "bob@example.net")
    }

    @Test func allowListedClientPassesAndIsNamed() async throws {
        let dir = TemporaryDirectory()
        let resolver = TableResolver(["7.2.0.192.wl.test A": a("127.0.10.2")])
        let log = CapturedLog()
        let s = try service(checks: { $0.lists = [DNSListZone(zone: "wl.test", weight: -5)] }, resolver: resolver,
                            log: log, dir: dir)
        let v = await decide(s, query(), now: t0)
        #expect(v.action == .pass)
        #expect(v.reason == .dnsAllowlisted)
        #expect(v.zones == ["wl.test"])
        s.log(v, query())
        #expect(log.contains("reason=dns_allowlisted zones=wl.test"))
        #expect(s.history.recent().first?.zones == ["wl.test"])
        #expect(s.metrics.text().contains("greylag_dns_listed_total{zone=\"wl.test\"} 1"))
        // Not listed: greylisted as usual, nothing named.
        let other = await decide(s, query("198.51.100.9"), now: t0)
        #expect(other.action == .defer && other.zones.isEmpty)
        #expect(resolver.questions.contains("9.100.51.198.wl.test A"))
    }

    @Test func ipv6ClientsAreAskedByNibbles() async throws {
        let dir = TemporaryDirectory()
        let name = DNSNames.reversed(IPAddress("2001:db8::7")!) + ".wl.test A"
        let resolver = TableResolver([name: a("127.0.0.2")])
        let s = try service(checks: { $0.lists = [DNSListZone(zone: "wl.test", weight: -1)] }, resolver: resolver, dir: dir)
        let v = await decide(s, query("2001:db8::7"), now: t0)
        #expect(v.reason == .dnsAllowlisted)
    }

    @Test func selectiveModeWithListsAndRHSBL() async throws {
        let dir = TemporaryDirectory()
        let resolver = TableResolver([
            "9.2.0.192.bl.test A": a("127.0.0.2"),
            "9.2.0.192.err.test A": a("127.255.255.254"),
            "spam.example.rhs.test A": a("127.0.0.2"),
            "bad.example.helo.test A": a("127.0.0.4"),
        ])
        let s = try service({ $0.selective = true; $0.greylistThreshold = 2; $0.suspectUnconfirmedReverse = false },
                            checks: {
                                $0.lists = [DNSListZone(zone: "bl.test", weight: 2), DNSListZone(zone: "err.test", weight: 5),
                                            DNSListZone(zone: "rhs.test", kind: .sender, weight: 1),
                                            DNSListZone(zone: "helo.test", kind: .helo, weight: 1,
                                                        codes: AnswerCodes(mask: 2))]
                            }, resolver: resolver, dir: dir)
        let clean = await decide(s, query("192.0.2.7"), now: t0)
        #expect(clean.action == .pass && clean.reason == .notSuspicious && clean.zones.isEmpty)
        let listed = await decide(s, query("192.0.2.9"), now: t0)
        #expect(listed.action == .defer && listed.reason == .newTriplet)
        #expect(listed.zones == ["bl.test"])  // the error answer of err.test does not count
        let sender = await decide(s, query(sender: "x@spam.example"), now: t0)
        #expect(sender.reason == .notSuspicious && sender.zones == ["rhs.test"])  // score 1 < 2
        let helo = await decide(s, query(sender: "x@spam.example", helo: "bad.example"), now: t0)
        #expect(helo.zones == ["rhs.test"])  // 127.0.0.4 lacks the mask's bit 2
    }

    @Test func rejectThresholdRefusesWithItsReply() async throws {
        let dir = TemporaryDirectory()
        let resolver = TableResolver(["7.2.0.192.bl.test A": a("127.0.0.2")])
        let s = try service({ $0.rejectThreshold = 5 }, checks: {
            $0.lists = [DNSListZone(zone: "bl.test", weight: 5)]
            $0.rejectReply = RuleReply(rejectCode: "554 5.7.1", rejectText: "listed")
        }, resolver: resolver, dir: dir)
        let v = await decide(s, query(), now: t0)
        #expect(v.action == .reject && v.reason == .dnsRejected)
        #expect(v.reply?.rejectCode == "554 5.7.1")
    }

    @Test func reverseNamesLookedUpWhenTheMTASaysNothing() async throws {
        let dir = TemporaryDirectory()
        let resolver = TableResolver([
            "7.2.0.192.in-addr.arpa PTR": .records([.ptr("mx.example.org")]),
            "mx.example.org A": a("192.0.2.7"),
            "8.2.0.192.in-addr.arpa PTR": .records([.ptr("forged.example.org")]),
            "forged.example.org A": a("192.0.2.99"),
            "9.2.0.192.in-addr.arpa PTR": .records([.ptr("192-0-2-9.dyn.example.net")]),
            "192-0-2-9.dyn.example.net A": a("192.0.2.9"),
        ])
        let s = try service({ $0.selective = true }, resolver: resolver, dir: dir)
        // (One /24, so one triplet: the first defer is new_triplet, the next too_early.)
        #expect(await decide(s, query("192.0.2.7"), now: t0).reason == .notSuspicious)
        #expect(await decide(s, query("192.0.2.8"), now: t0).reason == .newTriplet)  // unconfirmed
        #expect(await decide(s, query("192.0.2.10"), now: t0).action == .defer)  // no PTR
        #expect(await decide(s, query("192.0.2.9"), now: t0).action == .defer)  // dynamic
        // The MTA told: no lookup at all.
        let before = resolver.questions.count
        var told = query("192.0.2.11")
        told.reverseName = .confirmed("mail.example.org")
        told.ptrName = "mail.example.org"
        #expect(await decide(s, told, now: t0).reason == .notSuspicious)
        told.reverseName = .confirmed("dsl-11.example.net")
        told.ptrName = "dsl-11.example.net"
        #expect(await decide(s, told, now: t0).action == .defer)
        #expect(resolver.questions.count == before)
    }

    @Test func spfKeyingContinuesATripletFromAnotherHost() async throws {
        let dir = TemporaryDirectory()
        let calls = SharedCounter()
        let spf: SPFCheck = { ip, from, helo in
            calls.add()
            guard from.hasSuffix("@pool.example"), case .v4(let a) = ip, a >> 16 == 0xC000 else {
                return SPFCheckResult(result: "softfail")
            }
            return SPFCheckResult(result: "pass", authorization: SPFAuthorization(domain: "pool.example", mechanism: "ip4:192.0.0.0/16"))
        }
        let log = CapturedLog()
        let s = try service({ $0.spfKeying = .domain }, resolver: TableResolver(), spf: spf, log: log, dir: dir)
        let first = await decide(s, query("192.0.2.7", sender: "a@pool.example"), now: t0)
        #expect(first.action == .defer && first.triplet?.network == "spf:pool.example" && first.spf == "pass")
        let retry = await decide(s, query("192.0.77.8", sender: "a@pool.example"), now: t0 + 400)
        #expect(retry.action == .pass && retry.reason == .delayElapsed)
        s.log(retry, query("192.0.77.8", sender: "a@pool.example"))
        #expect(log.contains("network=spf:pool.example"))
        #expect(log.contains("spf=pass"))
        let stranger = await decide(s, query("198.51.100.7", sender: "a@pool.example"), now: t0)
        #expect(stranger.triplet?.network == "198.51.100.0/24" && stranger.spf == "softfail")
        #expect(calls.count == 3)
    }

    /// The daemon's SPF check: the RFC 7208 evaluator over the same resolver,
    /// through an include chain.
    @Test func spfEvaluatorKeysByTheAuthorisingDomain() async throws {
        func txt(_ t: String) -> DNSLookupResult { .records([.txt([Array(t.utf8)])]) }
        let resolver = TableResolver([
            "pool.example TXT": txt("v=spf1 include:_spf.pool.example -all"),
            "_spf.pool.example TXT": txt("v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/24 -all"),
        ])
        let s = try service({ $0.spfKeying = .mechanism }, resolver: resolver,
                            spf: SPFCheckResult.check(SPFEvaluator(resolver: resolver)), dir: TemporaryDirectory())
        let first = await decide(s, query("192.0.2.7", sender: "a@pool.example"), now: t0)
        #expect(first.spf == "pass" && first.action == .defer)
        #expect(first.triplet?.network == "spf:pool.example:ip4:192.0.2.0/24@_spf.pool.example")
        let fail = await decide(s, query("203.0.113.7", sender: "a@pool.example"), now: t0)
        #expect(fail.spf == "fail" && fail.triplet?.network == "203.0.113.0/24")
    }

    @Test func noDNSSettingsNoLookupsAndSynchronous() throws {
        let dir = TemporaryDirectory()
        let resolver = TableResolver()
        let s = try service(resolver: resolver, spf: { _, _, _ in Issue.record("SPF asked"); return SPFCheckResult(result: "none") },
                            dir: dir)
        // A whitelisted-by-stage query is answered before decide returns.
        let got = Mutex<Verdict?>(nil)
        var q = query()
        q.stage = .mail
        s.decide(q, now: t0) { v in got.withLock { $0 = v } }
        #expect(got.withLock { $0 }?.reason == .notRecipientStage)
        // Only block lists without selective mode or a reject threshold cannot change anything: not asked.
        let s2 = try service(checks: { $0.lists = [DNSListZone(zone: "bl.test", weight: 3)] }, resolver: resolver,
                             dir: TemporaryDirectory())
        let done = Mutex(false)
        s2.decide(query(), now: t0) { _ in done.withLock { $0 = true } }
        #expect(resolver.questions.isEmpty)
    }

    @Test func theDeadlineBoundsADecisionWhenDNSNeverAnswers() async throws {
        let dir = TemporaryDirectory()
        let resolver = TableResolver(hang: ["*"])
        let spf: SPFCheck = { _, _, _ in
            try? await Task.sleep(nanoseconds: 60_000_000_000)
            return SPFCheckResult(result: "temperror")
        }
        let log = CapturedLog()
        let s = try service({ $0.selective = true; $0.spfKeying = .domain }, checks: {
            $0.deadline = 0.3
            $0.lists = [DNSListZone(zone: "bl.test", weight: 2), DNSListZone(zone: "wl.test", weight: -2)]
        }, resolver: resolver, spf: spf, log: log, dir: dir)
        // Timed where the verdict is delivered: resuming this test may wait
        // for a cooperative thread that other tests keep busy.
        let clock = ContinuousClock()
        let start = clock.now
        let (v, took) = await withCheckedContinuation { c in
            s.decide(query(), now: t0) { v in c.resume(returning: (v, clock.now - start)) }
        }
        #expect(took >= .milliseconds(290))
        #expect(took < .milliseconds(1500))
        // Nothing answered: nothing makes the client suspicious, the mail passes.
        #expect(v.action == .pass && v.reason == .notSuspicious)
        #expect(Set(v.skipped) == ["bl.test", "wl.test", "spf", "ptr"])
        #expect(v.skipped == ["bl.test", "wl.test", "spf", "ptr"])
        #expect(v.spf == "timeout")
        s.log(v, query())
        #expect(log.contains("skipped=bl.test,wl.test,spf,ptr"))
        let metrics = s.metrics.text()
        #expect(metrics.contains("greylag_dns_skipped_total{check=\"bl.test\"} 1"))
        #expect(metrics.contains("greylag_dns_skipped_total{check=\"ptr\"} 1"))
    }

    @Test func failuresAreSkippedAndTheMailPasses() async throws {
        let dir = TemporaryDirectory()
        let resolver = TableResolver([
            "7.2.0.192.bl.test A": .failure(.serverFailure),
            "7.2.0.192.in-addr.arpa PTR": .failure(.timeout),
        ])
        let s = try service({ $0.selective = true }, checks: { $0.lists = [DNSListZone(zone: "bl.test", weight: 5)] },
                            resolver: resolver, dir: dir)
        let v = await decide(s, query(), now: t0)
        #expect(v.action == .pass && v.reason == .notSuspicious)
        #expect(v.skipped == ["bl.test", "ptr"])
        // Without a resolver every lookup is skipped, at once.
        let none = try service({ $0.selective = true }, checks: { $0.lists = [DNSListZone(zone: "bl.test", weight: 5)] },
                               resolver: nil, dir: TemporaryDirectory())
        let v2 = await decide(none, query(), now: t0)
        #expect(v2.action == .pass && v2.skipped == ["bl.test", "ptr"])
    }

    // MARK: Through the policy server

    /// The daemon's wiring: the checks run between the request and the
    /// answer, the deadline holds even with a resolver that never answers,
    /// and other connections are answered meanwhile.
    @Test func policyServerAnswersWithDNSFacts() async throws {
        let resolver = TableResolver(["5.113.0.203.wl.test A": a("127.0.10.2"),
                                      "5.113.0.203.in-addr.arpa PTR": .records([.ptr("mx.example.org")])],
                                     hang: ["7.2.0.192.bl.test A"])
        let config = try ConfigurationLoader.parse("""
            [greylist]
            dns_deadline = 1.5
            [selective]
            enabled = true
            [[dnslists]]
            zone = "wl.test"
            weight = -2
            [[dnslists]]
            zone = "bl.test"
            weight = 2
            [exemptions]
            trusted_networks = []
            """, file: "t.toml")
        let log = CapturedLog()
        try await withDaemon(configure: using(config), log: log, resolver: resolver) { addresses, _ in
            let client = try await PolicyTestClient(addresses[0])
            #expect(try await client.ask(rcptRequest(client: "203.0.113.5")) == "action=DUNNO")
            let other = try await PolicyTestClient(addresses[0])
            let start = ContinuousClock.now
            async let slow = client.ask(rcptRequest(client: "192.0.2.7"))
            // Meanwhile another connection is answered at once.
            try await Task.sleep(for: .milliseconds(50))
            #expect(try await other.ask(rcptRequest(client: "203.0.113.5", recipient: "c@example.net")) == "action=DUNNO")
            let otherTook = ContinuousClock.now - start
            // No PTR for 192.0.2.7 (NXDOMAIN): suspicious, greylisted after the deadline.
            #expect(try await slow == "action=DEFER_IF_PERMIT Greylisted, please try again in 300 seconds")
            let slowTook = ContinuousClock.now - start
            #expect(slowTook >= .milliseconds(1450))
            #expect(otherTook < slowTook)
        }
        #expect(log.contains("pass: client=203.0.113.5 network=203.0.113.0/24 sender=<alice@example.org> "
                             + "recipient=<bob@example.net> reason=dns_allowlisted zones=wl.test via=policy"))
        #expect(log.contains("defer: client=192.0.2.7 network=192.0.2.0/24 sender=<alice@example.org> "
                             + "recipient=<bob@example.net> reason=new_triplet retry_in=300s skipped=bl.test via=policy"))
    }
}
