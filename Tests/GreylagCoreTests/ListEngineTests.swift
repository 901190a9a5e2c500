import GreylagCore
import GreylagTestSupport
import Testing

/// The decision order of ARCHITECTURE.md with lists: exemptions, blacklist,
/// whitelist, scope, dry run, then the triplet.
@Suite struct ListEngineTests {
    let now: Int64 = 1_700_000_000

    func engine(_ build: (inout ListRules) throws -> Void) rethrows -> Engine {
        var lists = ListRules()
        try build(&lists)
        return Engine(lists: lists)
    }

    func verdict(_ e: Engine, _ q: GreylistQuery) -> Verdict {
        var store = MemoryStore()
        return store.ask(e, q, at: now)
    }

    @Test func authenticatedClientsPassUnlessTheExemptionIsOff() {
        var q = rcpt()
        q.authenticatedUser = "alice"
        #expect(verdict(Engine(), q) == Verdict(action: .pass, reason: .authenticated))
        let strict = engine { $0.exemptAuthenticated = false }
        #expect(verdict(strict, q).action == .defer)
    }

    @Test func trustedNetworksAndRelayClientsPass() throws {
        let e = try engine { $0.trusted = try rules(.client, "192.0.2.0/24") }
        let v = verdict(e, rcpt("192.0.2.77"))
        #expect(v.reason == .trustedClient && v.rule?.text == "192.0.2.0/24")
        #expect(verdict(e, rcpt("192.0.3.1")).action == .defer)
        var q = rcpt("203.0.113.5")
        q.trustedByMTA = true
        #expect(verdict(Engine(), q).reason == .trustedClient)
    }

    @Test func blacklistRejectsBeforeTheWhitelistPasses() throws {
        let e = try engine {
            $0.blacklist = try rules(.senderDomain, "spam.example")
            $0.whitelist = try rules(.client, "192.0.2.0/24")
        }
        let v = verdict(e, rcpt(from: "x@spam.example"))
        #expect(v.action == .reject && v.reason == .blacklisted && v.rule?.origin == "test:1")
        #expect(verdict(e, rcpt(from: "x@fine.example")) .reason == .whitelisted)
    }

    @Test func authenticationComesBeforeTheBlacklist() throws {
        let e = try engine { $0.blacklist = try rules(.client, "192.0.2.0/24") }
        var q = rcpt()
        q.authenticatedUser = "alice"
        #expect(verdict(e, q).reason == .authenticated)
    }

    @Test func optOutSkipsListedRecipients() throws {
        let e = try engine { $0.scope = try rules(.recipientDomain, "relaxed.example") }
        #expect(verdict(e, rcpt(to: "a@relaxed.example")).reason == .recipientOptedOut)
        #expect(verdict(e, rcpt(to: "a@strict.example")).action == .defer)
    }

    @Test func optInGreylistsOnlyListedRecipients() throws {
        let e = try engine {
            $0.scopeMode = .optIn
            $0.scope = try rules(.recipient, "trial@local.example")
        }
        #expect(verdict(e, rcpt(to: "trial@local.example")).action == .defer)
        #expect(verdict(e, rcpt(to: "other@local.example")) == Verdict(action: .pass, reason: .recipientNotOptedIn))
        // Opt-in with nothing listed greylists nobody.
        #expect(verdict(engine { $0.scopeMode = .optIn }, rcpt()).reason == .recipientNotOptedIn)
    }

    @Test func dryRunPerRecipientDomainPassesButLearns() throws {
        let e = try engine { $0.dryRun = try rules(.recipientDomain, "trial.example") }
        var store = MemoryStore()
        let v = store.ask(e, rcpt(to: "a@trial.example"), at: now)
        #expect(v.action == .pass && v.wouldDefer && v.reason == .newTriplet && v.rule?.text == "trial.example")
        #expect(store.records.count == 1)  // the record is written as in live mode
        #expect(store.ask(e, rcpt(to: "a@live.example"), at: now).action == .defer)
        // After the delay the dry-run recipient passes as a real retry would.
        #expect(store.ask(e, rcpt(to: "a@trial.example"), at: now + 301).reason == .delayElapsed)
    }

    @Test func nonRecipientStagesAreNotJudgedByLists() throws {
        let e = try engine { $0.blacklist = try rules(.client, "192.0.2.0/24") }
        var q = rcpt()
        q.stage = .mail
        #expect(verdict(e, q).reason == .notRecipientStage)
    }
}

@Suite struct ListFileTests {
    @Test func postgreyClientFormat() {
        let text = """
            # comment line
            example.com
              .sub.example.net   # trailing comment
            192.0.2.1
            198.51.100.0/24
            203.0.113
            10.20
            2001:db8::/32
            /^mx\\d+\\.example\\.org$/

            bad entry here
            """
        let (rules, errors) = ListFileParser.parse(text, format: .postgreyClients, name: "whitelist_clients")
        #expect(rules.map(\.field) == [.clientName, .clientName, .client, .client, .client, .client, .client, .clientName])
        #expect(rules.map(\.origin) == (2...9).map { "whitelist_clients:\($0)" })
        #expect(errors == [ListFileError(line: 11, message: "\"bad entry here\" does not look like a host name, address or network")])
        let set = RuleSet(rules)
        #expect(set.firstMatch(subject(client: "203.0.113.200"), now: 0)?.origin == "whitelist_clients:6")
        #expect(set.firstMatch(subject(client: "10.20.1.1"), now: 0)?.origin == "whitelist_clients:7")
        #expect(set.firstMatch(subject(client: "100.64.0.1", name: "mx7.example.org"), now: 0)?.origin == "whitelist_clients:9")
        #expect(set.firstMatch(subject(client: "100.64.0.1", name: "a.sub.example.net"), now: 0)?.origin == "whitelist_clients:3")
        #expect(set.firstMatch(subject(client: "100.64.0.1", name: "sub.example.net"), now: 0) == nil)
    }

    @Test func postgreyRecipientFormat() {
        let text = "postmaster@\nabuse@example.org\nexample.net\n/^list-.*@/\n"
        let (rules, errors) = ListFileParser.parse(text, format: .postgreyRecipients, name: "r")
        #expect(errors.isEmpty)
        let set = RuleSet(rules)
        #expect(set.firstMatch(subject(to: "postmaster@x.example"), now: 0)?.origin == "r:1")
        #expect(set.firstMatch(subject(to: "abuse+spam@example.org"), now: 0)?.origin == "r:2")
        #expect(set.firstMatch(subject(to: "abuse@other.org"), now: 0) == nil)
        #expect(set.firstMatch(subject(to: "x@mail.example.net"), now: 0)?.origin == "r:3")
        #expect(set.firstMatch(subject(to: "list-dev@a.example"), now: 0)?.origin == "r:4")
    }

    @Test func greylagFormatNamesFieldsAndReportsBadLines() {
        let text = """
            sender_domain partner.example   # our partner
            client 2001:db8:1::/48
            recipients postmaster@
            color blue
            client 300.1.1.1
            helo
            """
        let (rules, errors) = ListFileParser.parse(text, format: .greylag, name: "f")
        #expect(rules.map(\.field) == [.senderDomain, .client, .recipient])
        #expect(errors.map(\.line) == [4, 5, 6])
        #expect(errors[0].message.contains("unknown field \"color\""))
    }
}

@Suite struct ConnectionLevelTests {
    let now: Int64 = 1_700_000_000

    @Test func connectionOnlyKeysByNetworkOrAddressWithItsOwnDelay() {
        var store = MemoryStore()
        var q = GreylistQuery(clientAddress: "203.0.113.5", sender: "", recipient: "")
        q.connectionOnly = true
        q.delayOverride = 120
        let first = store.ask(Engine(), q, at: now)
        #expect(first.action == .defer && first.timeLeft == 120)
        #expect(first.triplet == Triplet(network: "203.0.113.0/24", sender: "<connection>", recipient: "<connection>"))
        // Another host of the same /24 shares the entry: too early, then passes after the hold time.
        q.clientAddress = "203.0.113.77"
        #expect(store.ask(Engine(), q, at: now + 60).timeLeft == 60)
        #expect(store.ask(Engine(), q, at: now + 121).reason == .delayElapsed)
        // Per address: a neighbour is new.
        q.keyByAddress = true
        q.clientAddress = "203.0.113.78"
        let neighbour = store.ask(Engine(), q, at: now + 122)
        #expect(neighbour.reason == .newTriplet && neighbour.triplet?.network == "203.0.113.78")
    }

    @Test func connectionOnlyIgnoresRecipientScope() {
        var lists = ListRules()
        lists.scopeMode = .optIn
        var q = GreylistQuery(clientAddress: "203.0.113.5", sender: "", recipient: "")
        q.connectionOnly = true
        var store = MemoryStore()
        #expect(store.ask(Engine(lists: lists), q, at: now).action == .defer)
    }
}
