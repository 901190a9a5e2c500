import GreylagCore
import GreylagTestSupport
import Testing

func rcpt(_ client: String = "192.0.2.7", from sender: String = "alice@example.org",
          to recipient: String = "bob@example.net") -> GreylistQuery {
    GreylistQuery(stage: .rcpt, clientAddress: client, sender: sender, recipient: recipient)
}

@Suite struct EngineTests {
    let t0: Int64 = 1_700_000_000

    @Test func greylistingLifecycleOnAManualClock() {
        let engine = Engine()  // delay 5m, retry window 2d, pass TTL 36d
        var store = MemoryStore()
        let steps: [(offset: Int64, action: Verdict.Action, reason: DecisionReason, left: Int64?, delayed: Int64?)] = [
            (0, .defer, .newTriplet, 300, nil),
            (60, .defer, .tooEarly, 240, nil),
            (299, .defer, .tooEarly, 1, nil),
            (300, .pass, .delayElapsed, nil, 300),
            (400, .pass, .knownTriplet, nil, nil),
            (400 + 35 * 86_400, .pass, .knownTriplet, nil, nil),  // refreshed: still passed
        ]
        for step in steps {
            let v = store.ask(engine, rcpt(), at: t0 + step.offset)
            #expect(v.action == step.action, "at +\(step.offset)")
            #expect(v.reason == step.reason, "at +\(step.offset)")
            #expect(v.timeLeft == step.left, "at +\(step.offset)")
            #expect(v.delayed == step.delayed, "at +\(step.offset)")
        }
        let record = store.records.values.first!
        #expect(record.blockedCount == 3)
        #expect(record.passedCount == 3)
        #expect(record.firstSeen == t0)
        #expect(record.recordExpires == t0 + 400 + 35 * 86_400 + 36 * 86_400)
    }

    @Test func passedTripletExpiresAfterPassTTL() {
        var store = MemoryStore()
        let engine = Engine()
        _ = store.ask(engine, rcpt(), at: t0)
        _ = store.ask(engine, rcpt(), at: t0 + 300)
        #expect(store.ask(engine, rcpt(), at: t0 + 300 + 36 * 86_400).reason == .knownTriplet)
        let expired = store.ask(engine, rcpt(), at: t0 + 300 + 2 * 36 * 86_400 + 1)
        #expect(expired.action == .defer)
        #expect(expired.reason == .newTriplet)
    }

    @Test func deferredTripletIsForgottenAfterRetryWindow() {
        var store = MemoryStore()
        let engine = Engine()
        _ = store.ask(engine, rcpt(), at: t0)
        #expect(store.ask(engine, rcpt(), at: t0 + 2 * 86_400).reason == .delayElapsed)
        var late = MemoryStore()
        _ = late.ask(engine, rcpt(), at: t0)
        let v = late.ask(engine, rcpt(), at: t0 + 2 * 86_400 + 1)
        #expect(v.reason == .newTriplet)
        #expect(v.timeLeft == 300)
    }

    @Test func neighboursInTheSameNetworkShareATriplet() {
        var store = MemoryStore()
        let engine = Engine()
        _ = store.ask(engine, rcpt("192.0.2.7"), at: t0)
        #expect(store.ask(engine, rcpt("192.0.2.200"), at: t0 + 300).reason == .delayElapsed)
        #expect(store.ask(engine, rcpt("192.0.3.7"), at: t0 + 300).reason == .newTriplet)
        _ = store.ask(engine, rcpt("2001:db8:1:2::25"), at: t0)
        #expect(store.ask(engine, rcpt("2001:db8:1:2:ffff::26"), at: t0 + 300).reason == .delayElapsed)
        #expect(store.ask(engine, rcpt("2001:db8:1:3::25"), at: t0 + 300).reason == .newTriplet)
        _ = store.ask(engine, rcpt("::ffff:198.51.100.9"), at: t0)
        #expect(store.ask(engine, rcpt("198.51.100.10"), at: t0 + 300).reason == .delayElapsed)
    }

    @Test func exactAddressKeyingSeparatesNeighbours() {
        var policy = GreylistPolicy()
        policy.keying = NetworkKeying(ipv4Prefix: 32, ipv6Prefix: 128)
        let engine = Engine(policy: policy)
        var store = MemoryStore()
        _ = store.ask(engine, rcpt("192.0.2.7"), at: t0)
        #expect(store.ask(engine, rcpt("192.0.2.8"), at: t0 + 300).reason == .newTriplet)
    }

    @Test func normalisedSendersShareATriplet() {
        var store = MemoryStore()
        let engine = Engine()
        _ = store.ask(engine, rcpt(from: "prvs=1111aaaaaa=List+17@Example.org"), at: t0)
        #expect(store.ask(engine, rcpt(from: "prvs=2222bbbbbb=list+18@example.org"), at: t0 + 300).reason == .delayElapsed)
        #expect(store.ask(engine, rcpt(from: ""), at: t0).triplet?.sender == "<>")
    }

    @Test func clientAutowhitelistAfterFivePassedTriplets() {
        var store = MemoryStore()
        let engine = Engine()
        for i in 0..<5 {
            _ = store.ask(engine, rcpt(to: "user\(i)@example.net"), at: t0)
            #expect(store.ask(engine, rcpt(to: "user\(i)@example.net"), at: t0 + 300).reason == .delayElapsed)
        }
        let v = store.ask(engine, rcpt("192.0.2.99", to: "new@example.net"), at: t0 + 400)
        #expect(v.action == .pass)
        #expect(v.reason == .clientAutowhitelisted)
        // Another network is not whitelisted.
        #expect(store.ask(engine, rcpt("192.0.9.1", to: "new@example.net"), at: t0 + 400).reason == .newTriplet)
    }

    @Test func fourPassedTripletsAreNotEnough() {
        var store = MemoryStore()
        let engine = Engine()
        for i in 0..<4 {
            _ = store.ask(engine, rcpt(to: "user\(i)@example.net"), at: t0)
            _ = store.ask(engine, rcpt(to: "user\(i)@example.net"), at: t0 + 300)
        }
        #expect(store.ask(engine, rcpt(to: "new@example.net"), at: t0 + 400).reason == .newTriplet)
    }

    @Test func clientAutowhitelistZeroIsOff() {
        var policy = GreylistPolicy()
        policy.clientAutowhitelist = 0
        let engine = Engine(policy: policy)
        var store = MemoryStore()
        for i in 0..<10 {
            _ = store.ask(engine, rcpt(to: "user\(i)@example.net"), at: t0)
            _ = store.ask(engine, rcpt(to: "user\(i)@example.net"), at: t0 + 300)
        }
        #expect(store.ask(engine, rcpt(to: "new@example.net"), at: t0 + 400).reason == .newTriplet)
        #expect(store.clients.isEmpty)
    }

    @Test func dryRunPassesButLearns() {
        var policy = GreylistPolicy()
        policy.dryRun = true
        let engine = Engine(policy: policy)
        var store = MemoryStore()
        let first = store.ask(engine, rcpt(), at: t0)
        #expect(first.action == .pass)
        #expect(first.wouldDefer)
        #expect(first.reason == .newTriplet)
        #expect(first.timeLeft == 300)
        let early = store.ask(engine, rcpt(), at: t0 + 10)
        #expect(early.action == .pass && early.wouldDefer && early.reason == .tooEarly)
        let after = store.ask(engine, rcpt(), at: t0 + 300)
        #expect(after.action == .pass && !after.wouldDefer && after.reason == .delayElapsed)
    }

    @Test func nonRecipientStagesAndUnusableQueriesPass() {
        let engine = Engine()
        for stage in [ProtocolStage.connect, .helo, .mail, .data, .endOfMessage, .vrfy, .etrn, .other] {
            var q = rcpt()
            q.stage = stage
            #expect(engine.prepare(q, now: 0) == .decided(Verdict(action: .pass, reason: .notRecipientStage)))
        }
        #expect(engine.prepare(rcpt("unknown"), now: 0) == .decided(Verdict(action: .pass, reason: .noClientAddress)))
        #expect(engine.prepare(rcpt(to: ""), now: 0) == .decided(Verdict(action: .pass, reason: .noRecipient)))
    }

    @Test func zeroDelayPassesAtOnce() {
        var policy = GreylistPolicy()
        policy.delay = 0
        var store = MemoryStore()
        let v = store.ask(Engine(policy: policy), rcpt(), at: t0)
        #expect(v.action == .pass)
        #expect(store.ask(Engine(policy: policy), rcpt(), at: t0 + 1).reason == .knownTriplet)
    }
}

/// Extreme times and durations, as a corrupt or foreign store or a huge
/// setting could give them, saturate instead of trapping.
@Suite struct EngineExtremeNumberTests {
    @Test func hugeDurationsSaturate() {
        var policy = GreylistPolicy()
        policy.delay = .max
        policy.retryWindow = .max
        policy.passTTL = .max
        var store = MemoryStore()
        let engine = Engine(policy: policy)
        let v = store.ask(engine, rcpt(), at: .max - 1)
        #expect(v.action == .defer)
        #expect(v.timeLeft == .max)
    }

    @Test func extremeStoredRecordDoesNotTrap() {
        let engine = Engine()
        let triplet = Triplet(network: "192.0.2.0/24", sender: "a@example.org", recipient: "b@example.net")
        let passed = GreylistRecord(triplet: triplet, firstSeen: .min, lastSeen: .max, blockExpires: .min,
                                    recordExpires: .max, blockedCount: .max, passedCount: .max)
        let d = engine.decide(triplet, state: TripletState(record: passed, clientPassedTriplets: .max), now: .max)
        #expect(d.verdict.action == .pass)
        var pending = passed
        pending.passedCount = 0
        pending.blockExpires = .max
        let e = Engine(policy: { var p = GreylistPolicy(); p.clientAutowhitelist = 0; return p }())
        let d2 = e.decide(triplet, state: TripletState(record: pending), now: .min)
        #expect(d2.verdict.action == .defer)
        #expect(d2.verdict.timeLeft == .max)
        pending.blockExpires = .min
        let d3 = e.decide(triplet, state: TripletState(record: pending), now: .max)
        #expect(d3.verdict.action == .pass)
        #expect(d3.verdict.delayed == .max)
    }

    @Test func mailDateClampsExtremes() {
        #expect(MailDate.format(epochSeconds: .max).contains("9999"))
        #expect(!MailDate.format(epochSeconds: .min).isEmpty)
    }
}
