import GreylagCore
@testable import Milter
import Testing

/// The session, one line per step.
@Suite struct MilterSessionTests {
    let now: Int64 = 1_700_000_000
    var config: MilterReplyConfig {
        var c = MilterReplyConfig()
        c.software = "greylag-9.9"
        c.header = .all
        return c
    }

    @Test func negotiatesOnlyWhatIsOfferedAndNeeded() {
        var s = MilterSession(config: config)
        // Postfix, protocol 6: everything offered; greylag asks for no body,
        // headers, EOH or unknown, and no replies except RCPT, DATA and EOM.
        #expect(s.received(.optionNegotiation(version: 6, actions: 0x1FF, protocolFlags: 0x1F_FFFF), now: now)
                == .reply([.negotiate(version: 6, actions: 0x01, protocolFlags: 0x0E_71F0)]))
        // Protocol 2 (mask 0x7F): only the "no" bits it knows, no NR_* bits.
        var old = MilterSession(config: config)
        #expect(old.received(.optionNegotiation(version: 2, actions: 0x1FF, protocolFlags: 0x7F), now: now)
                == .reply([.negotiate(version: 2, actions: 0x01, protocolFlags: 0x70)]))
        #expect(old.received(.connect(host: "h", family: UInt8(ascii: "4"), port: 1, address: "192.0.2.1"), now: now)
                == .reply([.continue]))  // without NR_CONN a reply is due
        // A newer MTA than greylag knows gets version 6; no header action without headers wanted.
        var c = config
        c.header = .none
        var quiet = MilterSession(config: c)
        #expect(quiet.received(.optionNegotiation(version: 7, actions: 0x1FF, protocolFlags: 0x1F_FFFF), now: now)
                == .reply([.negotiate(version: 6, actions: 0, protocolFlags: 0x0E_71F0)]))
    }

    func connected(_ s: inout MilterSession, host: String = "mail.example.org", address: String = "198.51.100.7",
                   family: Character = "4") {
        _ = s.received(.optionNegotiation(version: 6, actions: 0x1FF, protocolFlags: 0x1F_FFFF), now: now)
        _ = s.received(.macros(stage: UInt8(ascii: "C"), [MilterMacro("j", "mx.example.net"),
                                                          MilterMacro("daemon_addr", "192.0.2.25")]), now: now)
        #expect(s.received(.connect(host: host, family: family.asciiValue!, port: 25, address: address), now: now) == .none)
        #expect(s.received(.helo("mail.example.org"), now: now) == .none)
    }

    @Test func eachRecipientIsDecidedOnItsOwnAndTheHeaderSaysHowLong() {
        var s = MilterSession(config: config)
        connected(&s)
        #expect(s.received(.mail(["<a@example.org>"]), now: now) == .none)
        guard case .decide(let q1) = s.received(.rcpt(["<b@example.net>"]), now: now) else {
            Issue.record("RCPT must ask for a decision"); return
        }
        var expected = GreylistQuery(stage: .rcpt, clientAddress: "198.51.100.7", clientName: "mail.example.org",
                                     heloName: "mail.example.org", sender: "a@example.org", recipient: "b@example.net",
                                     origin: "milter")
        // Postfix's connect host name is verified.
        expected.reverseName = .confirmed("mail.example.org")
        expected.ptrName = "mail.example.org"
        #expect(q1 == expected)
        #expect(s.verdictReceived(Verdict(action: .defer, reason: .tooEarly, timeLeft: 252))
                == .replyCode("451 4.7.1 Greylisting in action, please come back in 00:04:12"))
        guard case .decide = s.received(.rcpt(["<c@example.net>"]), now: now) else { Issue.record("no decide"); return }
        #expect(s.verdictReceived(Verdict(action: .pass, reason: .delayElapsed, delayed: 754)) == .continue)
        #expect(s.received(.endOfMessage, now: now) == .reply([
            .addHeader(name: "X-Greylist", value: "Delayed for 00:12:34 by greylag-9.9 (mx.example.net [192.0.2.25]); "
                       + MailDate.format(epochSeconds: now)),
            .continue]))
    }

    @Test func whitelistedAuthenticatedAndRejectedRecipients() {
        var s = MilterSession(config: config)
        connected(&s, host: "[198.51.100.7]")  // unverified name
        _ = s.received(.macros(stage: UInt8(ascii: "M"), [MilterMacro("auth_authen", "alice")]), now: now)
        _ = s.received(.mail(["<a@example.org>"]), now: now)
        guard case .decide(let q) = s.received(.rcpt(["<b@example.net>"]), now: now) else { Issue.record("no decide"); return }
        #expect(q.authenticatedUser == "alice" && q.clientName == "")
        #expect(s.verdictReceived(Verdict(action: .pass, reason: .authenticated)) == .continue)
        #expect(s.received(.endOfMessage, now: now) == .reply([
            .addHeader(name: "X-Greylist", value: "Sender succeeded SMTP AUTH, not delayed by greylag-9.9 "
                       + "(mx.example.net [192.0.2.25]); " + MailDate.format(epochSeconds: now)),
            .continue]))
        // Next message on the same connection: a refused recipient, text with % doubled.
        var c = config
        c.rejectText = "100% refused for {sender}"
        s.config = c
        _ = s.received(.mail(["<x@spam.example>"]), now: now)
        _ = s.received(.rcpt(["<b@example.net>"]), now: now)
        #expect(s.verdictReceived(Verdict(action: .reject, reason: .blacklisted))
                == .replyCode("550 5.7.1 100%% refused for x@spam.example"))
        #expect(s.received(.endOfMessage, now: now) == .reply([.continue]))
    }

    /// The reply text goes through libmilter's formatting: `%` doubled,
    /// every CR and LF byte removed (a CR LF pair too), code alone when
    /// nothing is left.
    @Test func replyTextIsSafeForLibmilter() {
        #expect(MilterSession.replyText("451 4.7.1", "Greylisted, try in 300 seconds") == "451 4.7.1 Greylisted, try in 300 seconds")
        #expect(MilterSession.replyText("550", "100% sure\r\nX-Injected: yes\n") == "550 100%% sureX-Injected: yes")
        #expect(MilterSession.replyText("550", "%%é\r") == "550 %%%%é")
        #expect(MilterSession.replyText("451", "\r\n") == "451")
        #expect(MilterSession.replyText("451", "") == "451")
    }

    @Test func bareAddressLosesOnlyItsAngleBrackets() {
        #expect(MilterSession.bare("<a@example.org>") == "a@example.org")
        #expect(MilterSession.bare("<é@example.org>") == "é@example.org")
        #expect(MilterSession.bare("<>") == "")
        #expect(MilterSession.bare("<") == "<")
        #expect(MilterSession.bare("<a@example.org") == "<a@example.org")
        #expect(MilterSession.bare("a@example.org") == "a@example.org")
    }

    @Test func abortBetweenMessagesForgetsTheFirst() {
        var s = MilterSession(config: config)
        connected(&s)
        _ = s.received(.mail(["<a@example.org>"]), now: now)
        _ = s.received(.rcpt(["<b@example.net>"]), now: now)
        _ = s.verdictReceived(Verdict(action: .pass, reason: .delayElapsed, delayed: 300))
        #expect(s.received(.abort, now: now) == .none)
        _ = s.received(.mail(["<other@example.org>"]), now: now)
        guard case .decide(let q) = s.received(.rcpt(["<d@example.net>"]), now: now) else { Issue.record("no decide"); return }
        #expect(q.sender == "other@example.org" && q.clientAddress == "198.51.100.7")  // connection state kept
        _ = s.verdictReceived(Verdict(action: .defer, reason: .newTriplet, timeLeft: 300))
        // Nothing passed in this message: no header.
        #expect(s.received(.endOfMessage, now: now) == .reply([.continue]))
        // K: a new SMTP session on the same socket starts from nothing.
        #expect(s.received(.quitNewConnection, now: now) == .none)
        _ = s.received(.mail(["<a@example.org>"]), now: now)
        guard case .decide(let q2) = s.received(.rcpt(["<b@example.net>"]), now: now) else { Issue.record("no decide"); return }
        #expect(q2.clientAddress == "" && q2.heloName == "")
    }

    @Test func familiesAndAddressForms() {
        var s = MilterSession(config: config)
        connected(&s, host: "mx.example.org", address: "IPv6:2001:db8::7", family: "6")
        _ = s.received(.mail(["<>"]), now: now)
        #expect(s.received(.rcpt(["<b@example.net>", "NOTIFY=NEVER"]), now: now) == .reply([.continue]))
        guard case .decide(let q) = s.received(.data, now: now) else {
            Issue.record("no decide"); return
        }
        #expect(q.clientAddress == "2001:db8::7" && q.sender == "")
        var local = MilterSession(config: config)
        connected(&local, host: "localhost", address: "/var/run/socket", family: "L")
        _ = local.received(.mail(["<a@example.org>"]), now: now)
        guard case .decide(let l) = local.received(.rcpt(["<b@example.net>"]), now: now) else { Issue.record("no decide"); return }
        #expect(l.clientAddress == "")  // a local client has no address to greylist
    }

    /// A null-sender message: RCPT passes (a call-out is never deferred),
    /// DATA decides every recipient in turn and defers the message if any
    /// is deferred.
    @Test func theNullSenderIsDecidedAtData() {
        var s = MilterSession(config: config)
        connected(&s)
        #expect(s.received(.mail(["<>"]), now: now) == .none)
        #expect(s.received(.rcpt(["<b@example.net>"]), now: now) == .reply([.continue]))
        #expect(s.received(.rcpt(["<c@example.net>"]), now: now) == .reply([.continue]))
        guard case .decide(let q1) = s.received(.data, now: now) else { Issue.record("DATA must decide"); return }
        #expect(q1.recipient == "b@example.net" && q1.sender == "" && q1.stage == .rcpt)
        #expect(s.isDecidingHeld)
        guard case .decide(let q2) = s.heldVerdictReceived(Verdict(action: .pass, reason: .knownTriplet), now: now) else {
            Issue.record("the second recipient must be decided"); return
        }
        #expect(q2.recipient == "c@example.net")
        #expect(s.heldVerdictReceived(Verdict(action: .defer, reason: .newTriplet, timeLeft: 300), now: now)
                == .reply([.replyCode("451 4.7.1 Greylisting in action, please come back in 00:05:00")]))
        #expect(!s.isDecidingHeld)
        // The retry: both pass; DATA goes on and the header comes at end of message.
        #expect(s.received(.abort, now: now) == .none)
        _ = s.received(.mail(["<>"]), now: now)
        _ = s.received(.rcpt(["<b@example.net>"]), now: now)
        _ = s.received(.rcpt(["<c@example.net>"]), now: now)
        guard case .decide = s.received(.data, now: now) else { Issue.record("DATA must decide"); return }
        guard case .decide = s.heldVerdictReceived(Verdict(action: .pass, reason: .knownTriplet), now: now) else {
            Issue.record("no second decision"); return
        }
        #expect(s.heldVerdictReceived(Verdict(action: .pass, reason: .delayElapsed, delayed: 310), now: now) == .reply([.continue]))
        #expect(s.received(.endOfMessage, now: now) == .reply([
            .addHeader(name: "X-Greylist", value: "Delayed for 00:05:10 by greylag-9.9 (mx.example.net [192.0.2.25]); "
                       + MailDate.format(epochSeconds: now)), .continue]))
    }

    @Test func aCallOutIsNeverAskedAbout() {
        var s = MilterSession(config: config)
        connected(&s)
        _ = s.received(.mail(["<>"]), now: now)
        #expect(s.received(.rcpt(["<b@example.net>"]), now: now) == .reply([.continue]))
        #expect(s.received(.abort, now: now) == .none)
        // The next message's sender is not null: decided at RCPT again, DATA only continues.
        _ = s.received(.mail(["<a@example.org>"]), now: now)
        guard case .decide = s.received(.rcpt(["<b@example.net>"]), now: now) else { Issue.record("no decide"); return }
        #expect(s.verdictReceived(Verdict(action: .pass, reason: .knownTriplet)) == .continue)
        #expect(s.received(.data, now: now) == .reply([.continue]))
    }

    /// Without DATA (an MTA that does not send it), the end of message
    /// decides; a refusal answers when nothing was deferred.
    @Test func withoutDataTheEndOfMessageDecides() {
        var s = MilterSession(config: config)
        connected(&s)
        _ = s.received(.mail(["<>"]), now: now)
        _ = s.received(.rcpt(["<b@example.net>"]), now: now)
        guard case .decide(let q) = s.received(.endOfMessage, now: now) else { Issue.record("EOM must decide"); return }
        #expect(q.recipient == "b@example.net")
        #expect(s.heldVerdictReceived(Verdict(action: .reject, reason: .blacklisted), now: now)
                == .reply([.replyCode("550 5.7.1 Refused by greylag policy")]))
        _ = s.received(.mail(["<>"]), now: now)
        _ = s.received(.rcpt(["<b@example.net>"]), now: now)
        guard case .decide = s.received(.endOfMessage, now: now) else { Issue.record("EOM must decide"); return }
        #expect(s.heldVerdictReceived(Verdict(action: .pass, reason: .whitelisted), now: now) == .reply([
            .addHeader(name: "X-Greylist", value: "Sender whitelisted, not delayed by greylag-9.9 (mx.example.net [192.0.2.25]); "
                       + MailDate.format(epochSeconds: now)), .continue]))
    }

    @Test func heldRecipientsAreCapped() {
        var s = MilterSession(config: config)
        connected(&s)
        _ = s.received(.mail(["<>"]), now: now)
        for i in 0..<MilterSession.maxHeldRecipients {
            #expect(s.received(.rcpt(["<r\(i)@example.net>"]), now: now) == .reply([.continue]))
        }
        // Over the cap: decided at RCPT, as for any sender.
        guard case .decide = s.received(.rcpt(["<over@example.net>"]), now: now) else { Issue.record("no decide"); return }
        // A stray verdict with nothing held is harmless.
        var idle = MilterSession(config: config)
        #expect(idle.heldVerdictReceived(Verdict(action: .defer, reason: .newTriplet), now: now) == .reply([.continue]))
    }

    @Test func headerModes() {
        for (mode, delayedHeader, whitelistHeader) in [(MilterReplyConfig.HeaderMode.none, false, false),
                                                       (.delayed, true, false), (.whitelisted, false, true),
                                                       (.all, true, true)] {
            var c = config
            c.header = mode
            var s = MilterSession(config: c)
            connected(&s)
            _ = s.received(.mail(["<a@example.org>"]), now: now)
            _ = s.received(.rcpt(["<b@example.net>"]), now: now)
            _ = s.verdictReceived(Verdict(action: .pass, reason: .delayElapsed, delayed: 60))
            guard case .reply(let r1) = s.received(.endOfMessage, now: now) else { Issue.record("no reply"); continue }
            #expect((r1.count == 2) == delayedHeader, "\(mode) delayed")
            _ = s.received(.mail(["<a@example.org>"]), now: now)
            _ = s.received(.rcpt(["<b@example.net>"]), now: now)
            _ = s.verdictReceived(Verdict(action: .pass, reason: .whitelisted))
            guard case .reply(let r2) = s.received(.endOfMessage, now: now) else { Issue.record("no reply"); continue }
            #expect((r2.count == 2) == whitelistHeader, "\(mode) whitelisted")
        }
    }
}

/// A peer cannot make one connection hold unbounded macros.
@Suite struct MilterMacroCapTests {
    @Test func macrosForAllStageBytesStayUnderTheCap() {
        var s = MilterSession(config: MilterReplyConfig())
        let big = String(repeating: "v", count: 60_000)
        for stage in 0...255 {
            let list = (0..<200).map { MilterMacro("m\($0)", $0 == 0 ? big : "value\($0)") }
            _ = s.received(.macros(stage: UInt8(stage), list), now: 0)
            #expect(s.heldMacroBytes <= MilterSession.maxMacroBytes)
        }
        let notices = s.takeNotices()
        #expect(notices.count == 2)  // one for undefined stages, one for the cap
        #expect(s.takeNotices().isEmpty)
    }

    @Test func definedStagesKeepTheirMacros() {
        var s = MilterSession(config: MilterReplyConfig())
        _ = s.received(.macros(stage: UInt8(ascii: "C"), [MilterMacro("j", "mx.example.org")]), now: 0)
        _ = s.received(.macros(stage: UInt8(ascii: "Z"), [MilterMacro("j", "forged")]), now: 0)
        #expect(s.serverName == "mx.example.org")
        #expect(s.heldMacroBytes == 15)
    }
}

/// Values that would become a different key than the one logged: a NUL
/// the decoder kept inside a value, other control bytes, an address cut in
/// two. The recipient passes unasked (continue), with a warning.
@Suite struct MilterRefusedValueTests {
    let now: Int64 = 1_700_000_000

    func session(host: String = "mail.example.org", family: Character = "4", address: String = "198.51.100.7",
                 helo: String = "mail.example.org") -> MilterSession {
        var s = MilterSession(config: MilterReplyConfig())
        _ = s.received(.optionNegotiation(version: 6, actions: 0x1FF, protocolFlags: 0x1F_FFFF), now: now)
        _ = s.received(.connect(host: host, family: family.asciiValue!, port: 25, address: address), now: now)
        _ = s.received(.helo(helo), now: now)
        return s
    }

    func passesUnasked(_ s: inout MilterSession, mail: [String] = ["<a@example.org>"],
                       rcpt: [String] = ["<b@example.net>"], warning: String) {
        _ = s.received(.mail(mail), now: now)
        #expect(s.received(.rcpt(rcpt), now: now) == .reply([.continue]))
        let w = s.takeWarnings()
        #expect(w.count == 1 && w[0].contains(warning), "\(w)")
    }

    @Test func controlBytesInAnyKeyValuePassUnasked() {
        var s = session(helo: "mail.example.org\u{0}evil")
        passesUnasked(&s, warning: "a HELO name with a control byte: \"mail.example.org\\x00evil\"")
        s = session(host: "mail\u{1B}[31m.example.org")
        passesUnasked(&s, warning: "a client name with a control byte")
        s = session(address: "198.51.100.7\u{0}1")
        passesUnasked(&s, warning: "a client address with a control byte")
        s = session(family: "x")
        passesUnasked(&s, warning: "connect with address family 0x78")
        s = session()
        passesUnasked(&s, mail: ["<a@example.org\u{7F}>"], warning: "a sender with a control byte")
        s = session()
        passesUnasked(&s, mail: ["<a@example.org", "one>"], warning: "a sender cut by a NUL: \"<a@example.org\\x00one>\"")
        s = session()
        passesUnasked(&s, rcpt: ["<b@example.net", "x>"], warning: "a recipient cut by a NUL")
        s = session()
        passesUnasked(&s, rcpt: ["<b@example.net>", "NOTIFY=\r\nNEVER"], warning: "a recipient with a control byte")
    }

    @Test func aCleanMessageAfterABadOneIsDecidedAndWarningsAreNotRepeated() {
        var s = session()
        _ = s.received(.mail(["<a@example.org", "one>"]), now: now)
        #expect(s.received(.rcpt(["<b@example.net>"]), now: now) == .reply([.continue]))
        #expect(s.received(.rcpt(["<c@example.net>"]), now: now) == .reply([.continue]))
        #expect(s.takeWarnings().count == 1)  // the same value once per connection
        _ = s.received(.abort, now: now)
        _ = s.received(.mail(["<a@example.org>", "SIZE=10"]), now: now)
        guard case .decide(let q) = s.received(.rcpt(["<b@example.net>"]), now: now) else {
            Issue.record("a clean recipient must be decided")
            return
        }
        #expect(q.sender == "a@example.org" && q.recipient == "b@example.net")
        #expect(s.takeWarnings().isEmpty)
        // A bad HELO taints the whole connection until the next one.
        s = session(helo: "h\u{0}x")
        _ = s.received(.mail(["<a@example.org>"]), now: now)
        #expect(s.received(.rcpt(["<b@example.net>"]), now: now) == .reply([.continue]))
        _ = s.received(.quitNewConnection, now: now)
        _ = s.received(.connect(host: "mail.example.org", family: UInt8(ascii: "4"), port: 25, address: "198.51.100.7"),
                       now: now)
        _ = s.received(.mail(["<a@example.org>"]), now: now)
        guard case .decide = s.received(.rcpt(["<b@example.net>"]), now: now) else {
            Issue.record("a new connection starts clean")
            return
        }
    }

    @Test func warningsPerConnectionAreCapped() {
        var s = session()
        for i in 0..<100 {
            _ = s.received(.mail(["<a\(i)@example.org\u{1}>"]), now: now)
            _ = s.received(.rcpt(["<b@example.net>"]), now: now)
        }
        let w = s.takeWarnings()
        #expect(w.count == MilterSession.maxWarnings)
        #expect(w.last?.hasSuffix("(further ones on this connection are not logged)") == true)
    }

    @Test func macroValuesWithControlBytesAreNotUsed() {
        var s = session()
        _ = s.received(.macros(stage: UInt8(ascii: "M"), [MilterMacro("auth_authen", "alice\u{0}bob")]), now: now)
        _ = s.received(.mail(["<a@example.org>"]), now: now)
        guard case .decide(let q) = s.received(.rcpt(["<b@example.net>"]), now: now) else {
            Issue.record("no decide")
            return
        }
        #expect(q.authenticatedUser == "")
    }
}

/// What the connect command and its macros say of the reverse name.
@Suite struct MilterReverseNameTests {
    let now: Int64 = 1_700_000_000

    func query(host: String, macros: [MilterMacro]) -> GreylistQuery? {
        var s = MilterSession(config: MilterReplyConfig())
        _ = s.received(.optionNegotiation(version: 6, actions: 0x1FF, protocolFlags: 0x1F_FFFF), now: now)
        _ = s.received(.macros(stage: UInt8(ascii: "C"), macros), now: now)
        _ = s.received(.connect(host: host, family: UInt8(ascii: "4"), port: 25, address: "198.51.100.7"), now: now)
        _ = s.received(.helo("mx.example.org"), now: now)
        _ = s.received(.mail(["<a@example.org>"]), now: now)
        guard case .decide(let q) = s.received(.rcpt(["<b@example.net>"]), now: now) else { return nil }
        return q
    }

    @Test func postfixAndSendmailNames() {
        // Postfix: a verified name, or [ADDRESS] with the PTR name in {client_ptr} when asked for.
        #expect(query(host: "mail.example.org", macros: [])?.reverseName == .confirmed("mail.example.org"))
        let ptr = query(host: "[198.51.100.7]", macros: [MilterMacro("client_ptr", "dsl-7.example.net")])
        #expect(ptr?.reverseName == .unconfirmed && ptr?.ptrName == "dsl-7.example.net")
        #expect(query(host: "[198.51.100.7]", macros: [MilterMacro("client_ptr", "unknown")])?.reverseName == .absent)
        #expect(query(host: "[198.51.100.7]", macros: [])?.reverseName == .notChecked)
        // Sendmail: {client_resolve}.
        #expect(query(host: "mail.example.org", macros: [MilterMacro("client_resolve", "OK")])?.reverseName
                == .confirmed("mail.example.org"))
        let forged = query(host: "dyn-7.example.net", macros: [MilterMacro("client_resolve", "FORGED")])
        #expect(forged?.reverseName == .unconfirmed && forged?.ptrName == "dyn-7.example.net")
        #expect(query(host: "[198.51.100.7]", macros: [MilterMacro("client_resolve", "FAIL")])?.reverseName == .absent)
        #expect(query(host: "mail.example.org", macros: [MilterMacro("client_resolve", "TEMP")])?.reverseName == .notChecked)
    }
}
