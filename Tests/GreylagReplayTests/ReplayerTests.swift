import Foundation
import GreylagCore
import GreylagReplay
import Testing

/// The replayer on a hand-written trace whose answers are known.
@Suite struct ReplayerTests {
    static let classic = ReplayProfile(name: "classic", engine: Engine())
    static var spf: ReplayProfile {
        var dns = DNSPolicy()
        dns.spfKeying = .domain
        return ReplayProfile(name: "spf", engine: Engine(dns: dns))
    }
    static var selective: ReplayProfile {
        var dns = DNSPolicy()
        dns.selective = true
        return ReplayProfile(name: "selective", engine: Engine(dns: dns),
                             zoneWeights: ["zen.example": 5, "dnswl.example": -10])
    }

    static let spfFacts = SPFAuthorization(domain: "tenant.example", mechanism: "ip4:40.107.0.0/16 in spf.protection.outlook.com")

    /// A pool sender whose retries come from another /24 (and IPv6); a
    /// single host that retries after ten minutes; spam that never retries;
    /// spam that retries within seconds.
    static let trace = """
        {"id":"pool","kind":"legit","sender":"a@tenant.example","recipients":["u1@example.org"],"attempts":[\
        {"at":0,"client":"40.107.1.10","name":"mail-a.outbound.protection.outlook.com","reverse":"confirmed","spf":{"domain":"tenant.example","mechanism":"ip4:40.107.0.0/16 in spf.protection.outlook.com"}},\
        {"at":600,"client":"40.107.2.10","name":"mail-b.outbound.protection.outlook.com","reverse":"confirmed","spf":{"domain":"tenant.example","mechanism":"ip4:40.107.0.0/16 in spf.protection.outlook.com"}},\
        {"at":1800,"client":"2a01:111:f403:1::5","name":"mail-c.outbound.protection.outlook.com","reverse":"confirmed","spf":{"domain":"tenant.example","mechanism":"ip6:2a01:111:f403::/48 in spf.protection.outlook.com"}}]}
        {"id":"host","kind":"legit","sender":"b@site.example","recipients":["u2@example.org","u3@example.org"],"attempts":[\
        {"at":100,"client":"198.51.100.7","name":"mail.site.example","reverse":"confirmed"},\
        {"at":700,"client":"198.51.100.7","name":"mail.site.example","reverse":"confirmed"}]}

        {"id":"bot","kind":"spam","sender":"x@bad.example","recipients":["u1@example.org"],"attempts":[\
        {"at":50,"client":"203.0.113.9","reverse":"absent","zones":["zen.example"]}]}
        {"id":"ratware","kind":"spam","sender":"y@bad.example","recipients":["u4@example.org"],"attempts":[\
        {"at":60,"client":"203.0.113.10","reverse":"absent"},{"at":65,"client":"203.0.113.10","reverse":"absent"},\
        {"at":70,"client":"203.0.113.10","reverse":"absent"}]}
        """

    static func messages() throws -> [TraceMessage] { try Trace.parse(Data(trace.utf8)) }

    @Test func classicBlocksThePoolRetryFromAnotherNetwork() throws {
        let r = Replayer.run(try Self.messages(), profile: Self.classic)
        #expect(r.messages == 4 && r.legit == 2 && r.spam == 2)
        // The pool never retried from the /24 it was first seen from: given up.
        #expect(r.legitGaveUp == 1)
        #expect(r.legitAccepted == 1 && r.legitDelayed == 1)
        // The single host: both recipients pass on its retry 600 s later.
        #expect(r.delayMedian == 600 && r.delayP90 == 600 && r.delayMax == 600)
        #expect(r.legitDelayedShare == 0.5)
        #expect(r.spamBlocked == 2 && r.spamBlockedShare == 1 && r.spamRejected == 0)
    }

    @Test func spfKeyingLetsThePoolRetryThrough() throws {
        let r = Replayer.run(try Self.messages(), profile: Self.spf)
        #expect(r.legitGaveUp == 0 && r.legitAccepted == 2 && r.legitDelayed == 2)
        // The pool: deferred at 0, passes at its retry at 600 from another /24.
        #expect(r.delayMedian == 600 && r.delayMax == 600)
        #expect(r.spamBlocked == 2)
    }

    @Test func selectiveModePassesTheCleanAndGreylistsTheListed() throws {
        let r = Replayer.run(try Self.messages(), profile: Self.selective)
        // Both legitimate senders have confirmed names and no listing: no delay.
        #expect(r.legitAccepted == 2 && r.legitDelayed == 0 && r.delayMax == 0)
        // The bot (listed, no reverse name) and the ratware (no reverse name) are greylisted.
        #expect(r.spamBlocked == 2)
    }

    @Test func aRetryWithinTheDelayDoesNotPass() throws {
        // The ratware retried at +5 and +10 s: each a defer (too early).
        let only = try Self.messages().filter { $0.id == "ratware" }
        let r = Replayer.run(only, profile: Self.classic)
        #expect(r.decisions == 3 && r.spamBlocked == 1)
    }

    @Test func rejectsCountAsBlockedAndStopTheSender() throws {
        var dns = DNSPolicy()
        dns.rejectThreshold = 5
        let p = ReplayProfile(name: "reject", engine: Engine(dns: dns), zoneWeights: ["zen.example": 5])
        let r = Replayer.run(try Self.messages().filter { $0.id == "bot" }, profile: p)
        #expect(r.spamBlocked == 1 && r.spamRejected == 1 && r.decisions == 1)
    }

    @Test func anAllowListedClientPassesAtOnce() throws {
        let line = #"{"kind":"legit","sender":"a@b.example","recipients":["u@example.org"],"attempts":[{"at":5,"client":"192.0.2.1","zones":["DNSWL.example"]}]}"#
        let r = Replayer.run(try Trace.parse(Data(line.utf8)), profile: Self.selective)
        #expect(r.legitAccepted == 1 && r.delayMax == 0)
        let c = Replayer.run(try Trace.parse(Data(line.utf8)), profile: Self.classic)
        #expect(c.legitGaveUp == 1 && c.delayMax == nil)
    }

    @Test func percentilesAreNearestRank() {
        #expect(Percentile.nearestRank([], 0.5) == nil)
        #expect(Percentile.nearestRank([7], 0.9) == 7)
        #expect(Percentile.nearestRank([1, 2, 3, 4], 0.5) == 2)
        #expect(Percentile.nearestRank(Array(1...10), 0.9) == 9)
    }

    @Test func aTraceSurvivesWritingAndReading() throws {
        let messages = try Self.messages()
        let text = messages.map(Trace.line).joined(separator: "\n")
        #expect(try Trace.parse(Data(text.utf8)) == messages)
    }
}

/// Trace lines that cannot be replayed: a clear error with the line number.
@Suite struct TraceErrorTests {
    static let good = #"{"kind":"spam","sender":"","recipients":["u@example.org"],"attempts":[{"at":0,"client":"192.0.2.1"}]}"#

    func error(_ text: String) -> String? {
        do {
            _ = try Trace.parse(Data(text.utf8))
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func goodLinesParse() throws {
        let m = try Trace.parse(Data((Self.good + "\n\n" + Self.good + "\r\n").utf8))
        #expect(m.count == 2 && m[0].id == "line 1" && m[1].id == "line 3")
    }

    @Test(arguments: [
        ("not json", "line 2: not valid JSON"),
        ("[1,2]", "line 2: "),
        (#"{"kind":"ham","sender":"","recipients":["u@x"],"attempts":[{"at":0,"client":"192.0.2.1"}]}"#, "line 2: kind"),
        (#"{"kind":"spam","recipients":["u@x"],"attempts":[{"at":0,"client":"192.0.2.1"}]}"#, "line 2: missing key \"sender\""),
        (#"{"kind":"spam","sender":"","recipients":[],"attempts":[{"at":0,"client":"192.0.2.1"}]}"#, "line 2: recipients: between 1 and 100"),
        (#"{"kind":"spam","sender":"","recipients":["u@x"],"attempts":[]}"#, "line 2: attempts: between 1 and 100"),
        (#"{"kind":"spam","sender":"","recipients":["u@x"],"attempts":[{"at":-1,"client":"192.0.2.1"}]}"#, "line 2: attempts.at: -1 is not between"),
        (#"{"kind":"spam","sender":"","recipients":["u@x"],"attempts":[{"at":99999999999999999999,"client":"192.0.2.1"}]}"#, "line 2: "),
        (#"{"kind":"spam","sender":"","recipients":["u@x"],"attempts":[{"at":0,"client":"999.1.1.1"}]}"#, "line 2: attempts.client: \"999.1.1.1\" is not"),
        (#"{"kind":"spam","sender":"","recipients":["u@x"],"attempts":[{"at":9,"client":"192.0.2.1"},{"at":3,"client":"192.0.2.1"}]}"#, "line 2: attempts: not in time order"),
        (#"{"kind":"spam","sender":"","recipients":["u@x"],"attempts":[{"at":0,"client":"192.0.2.1","reverse":"maybe"}]}"#, "line 2: attempts"),
        (#"{"kind":"spam","sender":"","recipients":["u@x"],"attempts":[{"at":0,"client":"192.0.2.1","spf":{"domain":""}}]}"#, "line 2: spf.domain is empty"),
        (#"{"kind":"spam","sender":"","recipients":["u@x"],"attempts":[{"at":0,"client":"192.0.2.1","tiem":3}]}"#, "line 2: unknown key \"tiem\""),
        (#"{"kind":"spam","sender":"a\u0000b","recipients":["u@x"],"attempts":[{"at":0,"client":"192.0.2.1"}]}"#, "line 2: sender holds a control character"),
    ])
    func badLinesNameTheirLine(line: String, expected: String) {
        let e = error(Self.good + "\n" + line + "\n" + Self.good)
        #expect(e?.hasPrefix(expected) == true, "\(e ?? "no error")")
    }

    @Test func sizesAreBounded() {
        let long = "{\"kind\":\"spam\",\"sender\":\"" + String(repeating: "a", count: 70_000) + "\"}"
        #expect(error(Self.good + "\n" + long) == "line 2: longer than 65536 bytes")
        let many = "{\"kind\":\"spam\",\"sender\":\"\",\"recipients\":[" + Array(repeating: "\"u@x\"", count: 101).joined(separator: ",")
            + "],\"attempts\":[{\"at\":0,\"client\":\"192.0.2.1\"}]}"
        #expect(error(many)?.hasPrefix("line 1: recipients: between 1 and 100") == true)
        let zones = "{\"kind\":\"spam\",\"sender\":\"\",\"recipients\":[\"u@x\"],\"attempts\":[{\"at\":0,\"client\":\"192.0.2.1\",\"zones\":["
            + Array(repeating: "\"z\"", count: 33).joined(separator: ",") + "]}]}"
        #expect(error(zones) == "line 1: attempts.zones: more than 32")
        // The totals over all lines.
        let two = #"{"kind":"spam","sender":"","recipients":["u@x","v@x"],"attempts":[{"at":0,"client":"192.0.2.1"},{"at":1,"client":"192.0.2.1"}]}"#
        var small = TraceParser(maxTotalAttempts: 5, maxTotalDecisions: 100)
        #expect(throws: TraceError.line(3, "more than 5 attempts in all")) {
            try small.feed(Data((two + "\n" + two + "\n" + two + "\n").utf8))
        }
        var fewDecisions = TraceParser(maxTotalAttempts: 100, maxTotalDecisions: 10)
        #expect(throws: TraceError.line(3, "more than 10 attempts times recipients in all")) {
            try fewDecisions.feed(Data((two + "\n" + two + "\n" + two + "\n").utf8))
        }
        let deep = String(repeating: "[", count: 60_000)
        #expect(error(deep) != nil)
    }
}

/// The generator: the same seed gives the same trace; the shares follow the model.
@Suite struct TraceGeneratorTests {
    @Test func theSameSeedGivesTheSameTrace() {
        let a = TraceGenerator.generate(seed: 7, messages: 500).map(Trace.line)
        let b = TraceGenerator.generate(seed: 7, messages: 500).map(Trace.line)
        let c = TraceGenerator.generate(seed: 8, messages: 500).map(Trace.line)
        #expect(a == b)
        #expect(a != c)
    }

    @Test func everyGeneratedLineParsesBack() throws {
        let generated = TraceGenerator.generate(seed: 3, messages: 2000)
        let text = generated.map(Trace.line).joined(separator: "\n")
        #expect(try Trace.parse(Data(text.utf8)) == generated)
    }

    @Test func theSharesFollowTheModel() {
        let n = 20_000
        let trace = TraceGenerator.generate(seed: 1, messages: n)
        var counts: [String: Int] = [:]
        for m in trace {
            let cls = TraceGenerator.SenderClass.allCases.first { m.id.hasPrefix($0.rawValue + "-") && !m.id.dropFirst($0.rawValue.count + 1).contains("-") }!
            counts[cls.rawValue, default: 0] += 1
            #expect(m.kind == cls.kind)
            #expect(m.attempts.count <= TraceLimits.maxAttempts)
            #expect(m.attempts.allSatisfy { (0...TraceGenerator.span + 5 * 86_400).contains($0.at) })
        }
        for cls in TraceGenerator.SenderClass.allCases {
            let share = Double(counts[cls.rawValue] ?? 0) / Double(n) * 1000
            #expect(abs(share - Double(cls.share)) < 12, "\(cls): \(share) per mille, model \(cls.share)")
        }
        // Pool retries come from other /24s and over both families.
        let pool = trace.filter { $0.id.hasPrefix("outlook-") && $0.attempts.count > 3 }
        let networks = Set(pool.flatMap { m in m.attempts.map { NetworkKeying().network(of: IPAddress($0.client)!) } })
        #expect(networks.count > 50)
        #expect(pool.contains { m in m.attempts.contains { $0.client.contains(":") } && m.attempts.contains { $0.client.contains(".") } })
        #expect(pool.allSatisfy { m in m.attempts.allSatisfy { $0.spf?.domain == m.sender.split(separator: "@").last.map(String.init) } })
        // No client from the blocks a daemon trusts (loopback) or never sees from outside.
        let inside = ["10.", "127.", "169.", "172.", "192."]
        #expect(trace.allSatisfy { m in m.attempts.allSatisfy { a in !inside.contains { a.client.hasPrefix($0) } } })
        // Spam engines never retry, or retry within seconds.
        for m in trace where m.id.hasPrefix("botnet-") || m.id.hasPrefix("snowshoe-") { #expect(m.attempts.count == 1) }
        for m in trace where m.id.hasPrefix("ratware-") { #expect(m.attempts.count > 1 && m.attempts.last!.at - m.attempts[0].at <= 60) }
        // Bots are listed and nameless more often than single-host senders.
        let bots = trace.filter { $0.id.hasPrefix("botnet-") }.map { $0.attempts[0] }
        let hosts = trace.filter { $0.id.hasPrefix("postfix-") }.map { $0.attempts[0] }
        func listed(_ a: [TraceAttempt]) -> Double { Double(a.filter { $0.zones.contains(TraceGenerator.blockZone) }.count) / Double(a.count) }
        func unnamed(_ a: [TraceAttempt]) -> Double { Double(a.filter { $0.reverse != .confirmed || $0.dynamic }.count) / Double(a.count) }
        #expect(listed(bots) > 0.6 && listed(hosts) < 0.1)
        #expect(unnamed(bots) > 0.9 && unnamed(hosts) < 0.2)
    }

    @Test func postfixFollowsItsBackoff() {
        let trace = TraceGenerator.generate(seed: 2, messages: 3000)
        let m = trace.first { $0.id.hasPrefix("postfix-") }!
        let gaps = zip(m.attempts.dropFirst(), m.attempts).map { $0.at - $1.at }
        #expect((300..<600).contains(gaps[0]))
        #expect(gaps.allSatisfy { $0 < 4300 })
        #expect(m.attempts.last!.at - m.attempts[0].at <= 5 * 86_400)
    }
}
