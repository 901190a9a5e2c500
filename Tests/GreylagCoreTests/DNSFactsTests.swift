import GreylagCore
import Testing

/// `Engine.screen`: DNS-list scores, selective mode and SPF keying between
/// `prepare` and the store.
@Suite struct DNSFactsTests {
    let triplet = Triplet(network: "192.0.2.0/24", sender: "alice@example.org", recipient: "bob@example.net")
    let query = GreylistQuery(stage: .rcpt, clientAddress: "192.0.2.7", sender: "alice@example.org",
                              recipient: "bob@example.net")

    func engine(_ change: (inout DNSPolicy) -> Void = { _ in }) -> Engine {
        var d = DNSPolicy()
        change(&d)
        return Engine(dns: d)
    }

    func decided(_ s: Engine.Screening) -> Verdict? {
        if case .decided(let v) = s { return v }
        return nil
    }

    func keyed(_ s: Engine.Screening) -> Triplet? {
        if case .lookup(let t) = s { return t }
        return nil
    }

    @Test func defaultsChangeNothing() {
        let e = engine()
        #expect(!e.dns.isActive)
        let facts = DNSFacts(spf: SPFAuthorization(domain: "example.org", mechanism: "ip4:192.0.2.0/24 in example.org"),
                             listings: [ZoneListing(zone: "bl.example", weight: 5)], reverseName: .absent, dynamicName: true)
        #expect(keyed(e.screen(triplet, query, facts: facts)) == triplet)
    }

    @Test func scoreSumsWeightsAndSaturates() {
        #expect(DNSFacts(listings: [ZoneListing(zone: "a", weight: 3), ZoneListing(zone: "b", weight: -5)]).score == -2)
        #expect(DNSFacts(listings: [ZoneListing(zone: "a", weight: Int.max), ZoneListing(zone: "b", weight: 1)]).score == Int.max)
        #expect(DNSFacts(listings: [ZoneListing(zone: "a", weight: Int.min), ZoneListing(zone: "b", weight: -1)]).score == Int.min)
        #expect(DNSFacts().score == 0)
    }

    @Test func allowListedClientPassesAtOnceNamingTheZone() {
        let e = engine()
        let facts = DNSFacts(listings: [ZoneListing(zone: "wl.example", weight: -5)])
        let v = decided(e.screen(triplet, query, facts: facts))
        #expect(v?.action == .pass)
        #expect(v?.reason == .dnsAllowlisted)
        #expect(v?.zones == ["wl.example"])
        // A block list weighing more than the allow-list wins: greylisted as usual.
        let mixed = DNSFacts(listings: [ZoneListing(zone: "wl.example", weight: -5), ZoneListing(zone: "bl.example", weight: 6)])
        #expect(keyed(e.screen(triplet, query, facts: mixed)) == triplet)
        // A zero score without an allow-list listing is no allow-listing.
        let e0 = engine { $0.allowThreshold = 0 }
        #expect(keyed(e0.screen(triplet, query, facts: DNSFacts())) == triplet)
    }

    @Test func rejectThresholdRefuses() {
        let e = engine { $0.rejectThreshold = 10 }
        let facts = DNSFacts(listings: [ZoneListing(zone: "a.example", weight: 6), ZoneListing(zone: "b.example", weight: 4)])
        let v = decided(e.screen(triplet, query, facts: facts))
        #expect(v?.action == .reject)
        #expect(v?.reason == .dnsRejected)
        #expect(v?.zones == ["a.example", "b.example"])
        let below = DNSFacts(listings: [ZoneListing(zone: "a.example", weight: 9)])
        #expect(keyed(e.screen(triplet, query, facts: below)) == triplet)
    }

    @Test func selectiveModePassesCleanClientsAndGreylistsSuspiciousOnes() {
        let e = engine { $0.selective = true; $0.greylistThreshold = 3 }
        let clean = DNSFacts(reverseName: .confirmed("mx.example.org"))
        #expect(decided(e.screen(triplet, query, facts: clean))?.reason == .notSuspicious)
        let listed = DNSFacts(listings: [ZoneListing(zone: "bl.example", weight: 3)], reverseName: .confirmed("mx.example.org"))
        #expect(keyed(e.screen(triplet, query, facts: listed)) == triplet)
        let lowScore = DNSFacts(listings: [ZoneListing(zone: "bl.example", weight: 2)], reverseName: .confirmed("mx.example.org"))
        #expect(decided(e.screen(triplet, query, facts: lowScore))?.zones == ["bl.example"])
        for reverse in [ReverseName.unconfirmed, .absent] {
            #expect(keyed(e.screen(triplet, query, facts: DNSFacts(reverseName: reverse))) == triplet, "\(reverse)")
        }
        // Not checked (the lookup was skipped): when greylag cannot decide, the mail passes.
        #expect(decided(e.screen(triplet, query, facts: DNSFacts(reverseName: .notChecked)))?.action == .pass)
        let dynamic = DNSFacts(reverseName: .confirmed("dsl-1-2.example.net"), dynamicName: true)
        #expect(keyed(e.screen(triplet, query, facts: dynamic)) == triplet)
    }

    @Test func selectiveSuspicionsCanBeTurnedOff() {
        let e = engine { $0.selective = true; $0.suspectUnconfirmedReverse = false; $0.suspectDynamicNames = false }
        let facts = DNSFacts(reverseName: .absent, dynamicName: true)
        #expect(decided(e.screen(triplet, query, facts: facts))?.reason == .notSuspicious)
    }

    @Test func greylistRuleAndConnectionQueriesIgnoreSelectiveMode() {
        let e = engine { $0.selective = true }
        let rule = Engine.RuleSettings(match: RuleMatch(field: .sender, text: "alice@example.org", origin: "test"))
        let clean = DNSFacts(reverseName: .confirmed("mx.example.org"))
        #expect(keyed(e.screen(triplet, query, facts: clean, rule: rule)) == triplet)
        var connection = query
        connection.connectionOnly = true
        #expect(keyed(e.screen(triplet, connection, facts: clean)) == triplet)
    }

    @Test func spfKeyingRekeysByDomainOrMechanism() {
        let auth = SPFAuthorization(domain: "pool.example", mechanism: "ip4:192.0.2.0/24 in _spf.pool.example")
        let facts = DNSFacts(spf: auth)
        let byDomain = keyed(engine { $0.spfKeying = .domain }.screen(triplet, query, facts: facts))
        #expect(byDomain?.network == "spf:pool.example")
        #expect(byDomain?.sender == triplet.sender)
        #expect(byDomain?.recipient == triplet.recipient)
        let byMechanism = keyed(engine { $0.spfKeying = .mechanism }.screen(triplet, query, facts: facts))
        #expect(byMechanism?.network == "spf:pool.example:ip4:192.0.2.0/24@_spf.pool.example")
        // No authorisation: keyed by network as always.
        #expect(keyed(engine { $0.spfKeying = .domain }.screen(triplet, query, facts: DNSFacts())) == triplet)
        // The tcpserver wrapper keys by client alone: no SPF.
        var connection = query
        connection.connectionOnly = true
        #expect(keyed(engine { $0.spfKeying = .domain }.screen(triplet, connection, facts: facts)) == triplet)
    }

    @Test func twoHostsOfAnAuthorisedPoolShareOneTriplet() {
        let e = engine { $0.spfKeying = .domain }
        let auth = DNSFacts(spf: SPFAuthorization(domain: "pool.example", mechanism: "include:_spf.pool.example"))
        var store = MemoryStoreLite()
        let first = Triplet(network: "192.0.2.0/24", sender: "a@pool.example", recipient: "bob@example.net")
        let retry = Triplet(network: "198.51.100.0/24", sender: "a@pool.example", recipient: "bob@example.net")
        let t0: Int64 = 1_700_000_000
        let k1 = keyed(e.screen(first, query, facts: auth))!
        #expect(store.decide(e, k1, at: t0).action == .defer)
        let k2 = keyed(e.screen(retry, query, facts: auth))!
        #expect(k1 == k2)
        let v = store.decide(e, k2, at: t0 + 400)
        #expect(v.action == .pass)
        #expect(v.reason == .delayElapsed)
    }
}

/// Just enough of a store to run `Engine.decide` twice.
struct MemoryStoreLite {
    var records: [Triplet: GreylistRecord] = [:]

    mutating func decide(_ e: Engine, _ t: Triplet, at now: Int64) -> Verdict {
        let d = e.decide(t, state: TripletState(record: records[t], clientPassedTriplets: 0), now: now)
        if let r = d.change.record { records[t] = r }
        return d.verdict
    }
}
