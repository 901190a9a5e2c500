import GreylagCore
import PolicyProtocol
import Testing

@Suite struct PolicySessionTests {
    func request(_ state: String = "RCPT", recipient: String = "bob@example.net", instance: String = "abc.1",
                 extra: [String: String] = [:]) -> PolicyRequest {
        var attributes = ["request": "smtpd_access_policy", "protocol_state": state, "client_address": "192.0.2.7",
                          "client_name": "unknown", "sender": "alice@example.org", "recipient": recipient,
                          "instance": instance, "sasl_username": ""]
        attributes.merge(extra) { $1 }
        return PolicyRequest(attributes: attributes)
    }

    var config: PolicyReplyConfig {
        var c = PolicyReplyConfig()
        c.software = "greylag-9.9"
        c.hostname = "mx.example.net"
        return c
    }

    @Test func nonRecipientStatesAnswerDunno() {
        let session = PolicySession(config: config)
        for state in ["CONNECT", "EHLO", "HELO", "MAIL", "DATA", "END-OF-MESSAGE", "VRFY", "ETRN"] {
            #expect(session.requestReceived(request(state)) == .reply(.dunno))
        }
        #expect(session.requestReceived(PolicyRequest(attributes: ["request": "junk", "protocol_state": "RCPT"]))
                == .reply(.dunno))
    }

    /// With `null_sender_at_data`, a null-sender RCPT passes (a call-out is
    /// never deferred) and the DATA request is decided, keyed by its one
    /// recipient or, for several, by a marker no address can be.
    @Test func theNullSenderIsDecidedAtDataWhenConfigured() {
        var c = config
        c.nullSenderAtData = true
        let session = PolicySession(config: c)
        let null = ["sender": ""]
        #expect(session.requestReceived(request("RCPT", extra: null)) == .reply(.dunno))
        #expect(session.requestReceived(request("RCPT", extra: ["sender": "<>"])) == .reply(.dunno))
        guard case .decide(let one) = session.requestReceived(request("DATA", extra: null.merging(["recipient_count": "1"]) { $1 })) else {
            Issue.record("DATA must be decided"); return
        }
        #expect(one.recipient == "bob@example.net" && one.sender == "" && one.stage == .rcpt)
        guard case .decide(let several) = session.requestReceived(request("DATA", recipient: "",
                                                                          extra: null.merging(["recipient_count": "3"]) { $1 })) else {
            Issue.record("DATA with several recipients must be decided"); return
        }
        #expect(several.recipient == PolicySession.severalRecipients)
        // No recipient and no usable count: nothing to key on, the mail passes.
        for count in ["", "0", "1", "01", "-2", "2x", " 2", String(repeating: "9", count: 21)] {
            #expect(session.requestReceived(request("DATA", recipient: "", extra: null.merging(["recipient_count": count]) { $1 }))
                    == .reply(.dunno), "\(count)")
        }
        #expect(session.requestReceived(request("DATA", recipient: "", extra: null.merging(["recipient_count": "007"]) { $1 }))
                != .reply(.dunno))
        // Other senders: decided at RCPT, DATA answers DUNNO, as before.
        guard case .decide = session.requestReceived(request("RCPT")) else { Issue.record("no decide"); return }
        #expect(session.requestReceived(request("DATA")) == .reply(.dunno))
        // Exim's own requests name no stage: the null sender is decided at RCPT there.
        let exim = PolicyRequest(attributes: ["client_address": "192.0.2.7", "sender": "", "recipient": "bob@example.net"])
        guard case .decide = session.requestReceived(exim) else { Issue.record("Exim's request must be decided"); return }
        // So are the qmail helpers' (on their own listener).
        let helper = PolicySession(config: c, helperAttributes: true)
        guard case .decide = helper.requestReceived(request("RCPT", extra: null)) else { Issue.record("no decide"); return }
    }

    @Test func withoutTheKeyTheNullSenderIsDecidedAtRcpt() {
        let session = PolicySession(config: config)
        guard case .decide(let q) = session.requestReceived(request("RCPT", extra: ["sender": ""])) else {
            Issue.record("expected a decision"); return
        }
        #expect(q.sender == "")
        #expect(session.requestReceived(request("DATA", extra: ["sender": ""])) == .reply(.dunno))
    }

    @Test func recipientStateAsksForADecision() {
        let session = PolicySession(config: config)
        guard case .decide(let query) = session.requestReceived(request()) else {
            Issue.record("expected a decision")
            return
        }
        #expect(query.clientAddress == "192.0.2.7")
        #expect(query.clientName == "")  // "unknown" means unverified
        #expect(query.sender == "alice@example.org")
        #expect(query.recipient == "bob@example.net")
        #expect(query.stage == .rcpt)
    }

    @Test func eximRequestWithoutProtocolStateIsTakenAsRecipientStage() {
        let session = PolicySession(config: config)
        let exim = PolicyRequest(attributes: ["client_address": "192.0.2.7", "sender": "a@b", "recipient": "c@d"])
        guard case .decide = session.requestReceived(exim) else {
            Issue.record("expected a decision")
            return
        }
    }

    @Test func deferUsesConfiguredActionAndText() {
        var c = config
        var session = PolicySession(config: c)
        let v = Verdict(action: .defer, reason: .newTriplet, timeLeft: 300)
        #expect(session.verdictReceived(v, for: request(), now: 0).action
                == "DEFER_IF_PERMIT Greylisted, please try again in 300 seconds")
        c.deferAction = "450 4.7.1"
        c.deferText = "Greylisted for {left}, see https://example.net/greylisting"
        session = PolicySession(config: c)
        #expect(session.verdictReceived(v, for: request(), now: 0).action
                == "450 4.7.1 Greylisted for 5m, see https://example.net/greylisting")
    }

    /// An empty text, or one whose placeholders expand to nothing, leaves
    /// the action alone, without a trailing space.
    @Test func emptyTextLeavesTheActionAlone() {
        var c = config
        c.deferText = ""
        c.rejectText = "{network}"
        var session = PolicySession(config: c)
        #expect(session.verdictReceived(Verdict(action: .defer, reason: .newTriplet, timeLeft: 300), for: request(),
                                        now: 0).action == "DEFER_IF_PERMIT")
        #expect(session.verdictReceived(Verdict(action: .reject, reason: .blacklisted), for: request(), now: 0).action
                == "REJECT")
    }

    @Test func rejectUsesRejectAction() {
        var session = PolicySession(config: config)
        let v = Verdict(action: .reject, reason: .newTriplet)
        #expect(session.verdictReceived(v, for: request(), now: 0).action == "REJECT Refused by greylag policy")
    }

    @Test func headerOncePerInstanceOnFirstPassAfterDelay() {
        var session = PolicySession(config: config)
        let delayed = Verdict(action: .pass, reason: .delayElapsed, delayed: 312)
        let now: Int64 = 1_795_292_186
        let first = session.verdictReceived(delayed, for: request(instance: "m1"), now: now)
        #expect(first.action == "PREPEND X-Greylist: delayed 312 seconds by greylag-9.9 at mx.example.net; "
                + "Sat, 21 Nov 2026 20:16:26 +0000")
        // A second recipient of the same message: no second header.
        #expect(session.verdictReceived(delayed, for: request(recipient: "c@example.net", instance: "m1"), now: now)
                == .dunno)
        // The next message gets its own.
        #expect(session.verdictReceived(delayed, for: request(instance: "m2"), now: now).action.hasPrefix("PREPEND "))
    }

    @Test func plainPassesAndDisabledHeaderAnswerDunno() {
        var session = PolicySession(config: config)
        #expect(session.verdictReceived(Verdict(action: .pass, reason: .knownTriplet), for: request(), now: 0) == .dunno)
        var c = config
        c.addHeader = false
        session = PolicySession(config: c)
        #expect(session.verdictReceived(Verdict(action: .pass, reason: .delayElapsed, delayed: 300),
                                        for: request(), now: 0) == .dunno)
    }

    /// What the qmail wrapper sends: connection scope, exact address, its own delay, its name.
    var helperRequest: PolicyRequest {
        request(extra: ["greylag_scope": "connection", "greylag_key": "address", "greylag_delay": "0",
                        "greylag_origin": "qmail-wrap"])
    }

    @Test func helperAttributesCountOnlyOnAHelperListener() {
        let plain = PolicySession(config: config)
        guard case .decide(let q) = plain.requestReceived(helperRequest) else {
            Issue.record("expected a decision")
            return
        }
        #expect(q.delayOverride == nil && !q.connectionOnly && !q.keyByAddress && q.origin == "policy")
        #expect(plain.helperNotes(helperRequest)
                == [.ignored(["greylag_delay", "greylag_key", "greylag_origin", "greylag_scope"])])
        #expect(plain.helperNotes(request()) == [])
        // Not a recipient stage: a plain listener does not take greylag_scope=connection as one.
        let connect = request("CONNECT", extra: ["greylag_scope": "connection"])
        #expect(plain.requestReceived(connect) == .reply(.dunno))

        let helper = PolicySession(config: config, helperAttributes: true)
        guard case .decide(let h) = helper.requestReceived(helperRequest) else {
            Issue.record("expected a decision")
            return
        }
        #expect(h.delayOverride == 0 && h.connectionOnly && h.keyByAddress && h.origin == "qmail-wrap")
        #expect(helper.helperNotes(helperRequest) == [])
        guard case .decide(let c) = helper.requestReceived(connect) else {
            Issue.record("expected a decision")
            return
        }
        #expect(c.connectionOnly)
    }

    @Test func helperDelayOutOfRangeIsIgnoredAndNoted() {
        let helper = PolicySession(config: config, helperAttributes: true)
        for bad in ["-1", "2592001", "9223372036854775807", "99999999999999999999", "+5", " 5", "5s", "", "0x10"] {
            let r = request(extra: ["greylag_delay": bad])
            guard case .decide(let q) = helper.requestReceived(r) else {
                Issue.record("expected a decision")
                continue
            }
            #expect(q.delayOverride == nil, "\(bad)")
            #expect(helper.helperNotes(r) == [.invalid(name: "greylag_delay", value: bad)], "\(bad)")
        }
        for good in ["0", "120", "2592000"] {
            guard case .decide(let q) = helper.requestReceived(request(extra: ["greylag_delay": good])) else {
                Issue.record("expected a decision")
                continue
            }
            #expect(q.delayOverride == Int64(good))
        }
        #expect(helper.helperNotes(request(extra: ["greylag_scope": "everything", "greylag_origin": "Evil Origin"]))
                == [.invalid(name: "greylag_origin", value: "Evil Origin"),
                    .invalid(name: "greylag_scope", value: "everything")])
    }
}
