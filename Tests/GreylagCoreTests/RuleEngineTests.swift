import GreylagCore
import GreylagTestSupport
import Testing

/// `[[rules]]`: first match decides, selectors are ANDed, a greylist
/// rule's own timings and replies apply on a manual clock.
@Suite struct RuleEngineTests {
    let t0: Int64 = 1_700_000_000

    func engine(_ rules: [GreylistRule]) -> Engine {
        var lists = ListRules()
        lists.rules = rules
        return Engine(lists: lists)
    }

    func engine(_ rules: [GreylistRule], _ build: (inout ListRules) throws -> Void) throws -> Engine {
        var lists = ListRules()
        lists.rules = rules
        try build(&lists)
        return Engine(lists: lists)
    }

    func rule(_ action: GreylistRule.Action, _ selectors: RuleSet..., delay: Int64? = nil,
              retryWindow: Int64? = nil, passTTL: Int64? = nil, reply: RuleReply? = nil, origin: String) -> GreylistRule {
        GreylistRule(action: action, selectors: selectors, delay: delay, retryWindow: retryWindow, passTTL: passTTL,
                     reply: reply, origin: origin)
    }

    @Test func aOneHourRuleDefersAtHalfAnHourAndPassesAfterItWhileOthersPassAfterFiveMinutes() throws {
        let slow = rule(.greylist, try rules(.senderDomain, "slow.example"), delay: 3600, origin: "greylag.toml:3 rules[1]")
        let e = engine([slow])
        var store = MemoryStore()
        let ruled = rcpt("192.0.2.7", from: "a@slow.example")
        let other = rcpt("192.0.2.7", from: "a@fast.example")

        let first = store.ask(e, ruled, at: t0)
        #expect(first.action == .defer && first.reason == .newTriplet && first.timeLeft == 3600)
        #expect(first.rule?.origin == "greylag.toml:3 rules[1]" && first.rule?.text == "slow.example")
        #expect(store.ask(e, other, at: t0).timeLeft == 300)

        #expect(store.ask(e, other, at: t0 + 301).action == .pass)
        let half = store.ask(e, ruled, at: t0 + 1800)
        #expect(half.action == .defer && half.reason == .tooEarly && half.timeLeft == 1800)
        let late = store.ask(e, ruled, at: t0 + 61 * 60)
        #expect(late.action == .pass && late.reason == .delayElapsed && late.delayed == 61 * 60)
    }

    @Test func passTTLOfSevenDaysExpiresAfterSevenDaysWhileOthersKeepTheGlobalOne() throws {
        let short = rule(.greylist, try rules(.recipient, "list@example.net"), delay: 60, passTTL: 7 * 86_400,
                         origin: "greylag.toml:9 rules[1]")
        var e = engine([short])
        e.policy.clientAutowhitelist = 0  // the client network's memory is not what is measured here
        var store = MemoryStore()
        let ruled = rcpt(to: "list@example.net")
        let other = rcpt(to: "bob@example.net")
        for q in [ruled, other] {
            #expect(store.ask(e, q, at: t0).action == .defer)
            #expect(store.ask(e, q, at: t0 + 300).reason == .delayElapsed)
        }
        let stored = store.records.values.first { $0.triplet.recipient == "list@example.net" }
        #expect(stored?.recordExpires == t0 + 300 + 7 * 86_400)
        // Still remembered just before seven days without use, forgotten after.
        #expect(store.ask(e, ruled, at: t0 + 300 + 7 * 86_400 - 1).reason == .knownTriplet)
        let later = t0 + 300 + 7 * 86_400 - 1 + 7 * 86_400 + 1
        let gone = store.ask(e, ruled, at: later)
        #expect(gone.action == .defer && gone.reason == .newTriplet)
        // The other triplet keeps the 36-day default.
        #expect(store.ask(e, other, at: later).reason == .knownTriplet)
    }

    @Test func theRetryWindowOfARuleForgetsADeferredTripletSooner() throws {
        let r = rule(.greylist, try rules(.client, "192.0.2.0/24"), delay: 60, retryWindow: 600, origin: "t rules[1]")
        let e = engine([r])
        var store = MemoryStore()
        #expect(store.ask(e, rcpt(), at: t0).action == .defer)
        // Past the rule's window (not the default 2 days): starts over.
        #expect(store.ask(e, rcpt(), at: t0 + 601).reason == .newTriplet)
    }

    @Test func theFirstMatchingRuleDecides() throws {
        let black = rule(.blacklist, try rules(.sender, "spam@example.org"),
                         reply: RuleReply(rejectCode: "554 5.7.1", rejectText: "go away"), origin: "f:1 rules[1]")
        let white = rule(.whitelist, try rules(.senderDomain, "example.org"), origin: "f:5 rules[2]")
        let grey = rule(.greylist, try rules(.client, "192.0.2.0/24"), delay: 3600, origin: "f:9 rules[3]")
        let e = engine([black, white, grey])
        var store = MemoryStore()

        let refused = store.ask(e, rcpt(from: "spam@example.org"), at: t0)
        #expect(refused.action == .reject && refused.reason == .blacklisted)
        #expect(refused.rule?.origin == "f:1 rules[1]" && refused.reply?.rejectCode == "554 5.7.1")

        let passed = store.ask(e, rcpt(from: "ham@example.org"), at: t0)
        #expect(passed.action == .pass && passed.reason == .whitelisted && passed.rule?.origin == "f:5 rules[2]")
        #expect(passed.rule?.description == "f:5 rules[2] (example.org)")

        let greylisted = store.ask(e, rcpt(from: "someone@example.com"), at: t0)
        #expect(greylisted.timeLeft == 3600 && greylisted.rule?.origin == "f:9 rules[3]")

        // The same rules in the other order: the greylist rule now comes first.
        let swapped = engine([grey, black, white])
        var store2 = MemoryStore()
        #expect(store2.ask(swapped, rcpt(from: "ham@example.org"), at: t0).timeLeft == 3600)
    }

    @Test func everySelectorOfARuleMustMatch() throws {
        let both = rule(.blacklist, try rules(.senderDomain, "example.com"),
                        try rules(.recipient, "list@example.net", "other@example.net"), origin: "f:1 rules[1]")
        let e = engine([both])
        var store = MemoryStore()
        let hit = store.ask(e, rcpt(from: "a@example.com", to: "other@example.net"), at: t0)
        #expect(hit.action == .reject && hit.rule?.text == "example.com, other@example.net")
        #expect(store.ask(e, rcpt(from: "a@example.com", to: "bob@example.net"), at: t0).action == .defer)
        #expect(store.ask(e, rcpt(from: "a@example.org", to: "list@example.net"), at: t0).action == .defer)
    }

    @Test func aGreylistRuleSkipsTheWhitelistTablesButNotTheBlacklistOrExemptions() throws {
        let grey = rule(.greylist, try rules(.senderDomain, "example.org"), delay: 900, origin: "f:1 rules[1]")
        let e = try engine([grey]) {
            $0.whitelist = try rules(.client, "192.0.2.0/24")
            $0.blacklist = try rules(.sender, "bad@example.org")
            $0.trusted = try rules(.client, "198.51.100.0/24")
        }
        var store = MemoryStore()
        #expect(store.ask(e, rcpt("192.0.2.7", from: "a@example.org"), at: t0).timeLeft == 900)
        #expect(store.ask(e, rcpt("192.0.2.7", from: "a@example.com"), at: t0).reason == .whitelisted)
        #expect(store.ask(e, rcpt("192.0.2.7", from: "bad@example.org"), at: t0).action == .reject)
        #expect(store.ask(e, rcpt("198.51.100.1", from: "a@example.org"), at: t0).reason == .trustedClient)
        var authenticated = rcpt(from: "a@example.org")
        authenticated.authenticatedUser = "alice"
        #expect(store.ask(e, authenticated, at: t0).reason == .authenticated)
    }

    @Test func aGreylistRuleIsStillSubjectToScopeDryRunAndTheClientAutowhitelist() throws {
        let grey = rule(.greylist, try rules(.senderDomain, "example.org"), delay: 900,
                        reply: RuleReply(deferText: "slow down"), origin: "f:1 rules[1]")
        let e = try engine([grey]) {
            $0.scope = try rules(.recipient, "optout@example.net")
            $0.dryRun = try rules(.recipient, "dry@example.net")
        }
        var store = MemoryStore()
        #expect(store.ask(e, rcpt(to: "optout@example.net"), at: t0).reason == .recipientOptedOut)
        let dry = store.ask(e, rcpt(to: "dry@example.net"), at: t0)
        #expect(dry.action == .pass && dry.wouldDefer && dry.timeLeft == 900 && dry.reply == nil)
        let live = store.ask(e, rcpt(to: "bob@example.net"), at: t0)
        #expect(live.action == .defer && live.reply?.deferText == "slow down")

        var auto = e
        auto.policy.clientAutowhitelist = 1
        var s2 = MemoryStore()
        _ = s2.ask(auto, rcpt(to: "one@example.net"), at: t0)
        #expect(s2.ask(auto, rcpt(to: "one@example.net"), at: t0 + 900).reason == .delayElapsed)
        #expect(s2.ask(auto, rcpt(to: "two@example.net"), at: t0 + 901).reason == .clientAutowhitelisted)
        // The client network keeps the global pass TTL, not the rule's.
        #expect(s2.clients["192.0.2.0/24"]?.expires == t0 + 901 + 36 * 86_400)
    }

    @Test func aQueryNoRuleMatchesIsDecidedAsWithoutRules() throws {
        let grey = rule(.greylist, try rules(.senderDomain, "example.com"), delay: 3600, origin: "f:1 rules[1]")
        var a = MemoryStore(), b = MemoryStore()
        for offset: Int64 in [0, 100, 300, 400] {
            #expect(a.ask(engine([grey]), rcpt(), at: t0 + offset) == b.ask(Engine(), rcpt(), at: t0 + offset))
        }
    }

    @Test func aHelpersHoldTimeReplacesTheRuleDelay() throws {
        let grey = rule(.greylist, try rules(.client, "192.0.2.0/24"), delay: 3600, origin: "f:1 rules[1]")
        var q = rcpt()
        q.delayOverride = 120
        var store = MemoryStore()
        #expect(store.ask(engine([grey]), q, at: t0).timeLeft == 120)
    }

    @Test func aRuleWhoseEntriesExpiredNoLongerMatches() throws {
        let entry = try ListRule(field: .client, text: "192.0.2.7", origin: "manual #1", expires: t0 + 10)
        let grey = rule(.blacklist, RuleSet([entry]), origin: "f:1 rules[1]")
        var store = MemoryStore()
        #expect(store.ask(engine([grey]), rcpt(), at: t0).action == .reject)
        #expect(store.ask(engine([grey]), rcpt(), at: t0 + 10).action == .defer)
    }
}
