import QmailGate
import Testing

/// An environment from a dictionary.
func environment(_ values: [String: String]) -> QmailHelpers.Environment { { values[$0] } }

/// A daemon stand-in that answers `action` and records what it was asked.
final class FakeDaemon: @unchecked Sendable {
    var action: String
    var asked: [[(String, String)]] = []
    var down = false
    init(_ action: String) { self.action = action }
    struct Down: Error, CustomStringConvertible { var description: String { "cannot connect to /run/greylag/policy.sock: Connection refused" } }
    func ask(_ attributes: [(String, String)]) throws -> String {
        if down { throw Down() }
        asked.append(attributes)
        return action
    }
    func attribute(_ name: String) -> String? { asked.last?.first { $0.0 == name }?.1 }
}

@Suite struct GateVerdictTests {
    @Test(arguments: [
        ("DUNNO", GateVerdict.pass), ("OK", .pass), ("PREPEND X-Greylist: delayed 300 seconds", .pass),
        ("DEFER_IF_PERMIT Greylisted, please try again in 300 seconds", .defer("Greylisted, please try again in 300 seconds")),
        ("DEFER Later", .defer("Later")), ("450 4.7.1 Try later", .defer("Try later")), ("451 Try later", .defer("Try later")),
        ("REJECT Refused by greylag policy", .reject("Refused by greylag policy")), ("554 5.7.1 No", .reject("No")),
        ("REJECT", .reject("")),
    ])
    func policyActions(action: String, verdict: GateVerdict) {
        #expect(GateVerdict(action: action) == verdict)
    }
}

@Suite struct SPPTests {
    let base = ["GREYLISTING": "", "TCPREMOTEIP": "198.51.100.7", "TCPREMOTEHOST": "mail.example.org",
                "SMTPHELOHOST": "helo.example.org", "SMTPMAILFROM": "a@example.org", "SMTPRCPTTO": "b@example.net"]

    func run(_ env: [String: String], _ daemon: FakeDaemon, _ options: QmailHelpers.SPPOptions = .init()) -> (String, String?) {
        QmailHelpers.spp(environment(env), options: options, ask: { try daemon.ask($0) })
    }

    @Test func defersRefusesAndPassesWithTheDaemonsText() {
        let daemon = FakeDaemon("DEFER_IF_PERMIT Greylisted, please try again in 300 seconds")
        #expect(run(base, daemon) == ("E451 4.7.1 Greylisted, please try again in 300 seconds\n", nil))
        #expect(daemon.attribute("client_address") == "198.51.100.7")
        #expect(daemon.attribute("client_name") == "mail.example.org")
        #expect(daemon.attribute("helo_name") == "helo.example.org")
        #expect(daemon.attribute("sender") == "a@example.org" && daemon.attribute("recipient") == "b@example.net")
        #expect(daemon.attribute("greylag_origin") == "qmail-spp")
        daemon.action = "REJECT Refused by greylag policy"
        #expect(run(base, daemon) == ("E553 5.7.1 Refused by greylag policy\n", nil))
        var o = QmailHelpers.SPPOptions()
        o.rejectCode = "550"
        #expect(run(base, daemon, o) == ("E550 5.7.1 Refused by greylag policy\n", nil))
        daemon.action = "DUNNO"
        #expect(run(base, daemon) == ("", nil))
    }

    @Test func aNumericActionOfARuleGivesTheCode() {
        // A [[rules]] entry's defer_code / reject_code reach the plugin as the policy action.
        #expect(run(base, FakeDaemon("450 4.7.2 Slow senders wait 1h")) == ("E450 4.7.2 Slow senders wait 1h\n", nil))
        #expect(run(base, FakeDaemon("450 Slow")) == ("E450 4.7.1 Slow\n", nil))
        #expect(run(base, FakeDaemon("554 5.7.0 Go away")) == ("E554 5.7.0 Go away\n", nil))
        #expect(run(base, FakeDaemon("554 Go away")) == ("E554 5.7.1 Go away\n", nil))
        #expect(GateVerdict.code(of: "DEFER_IF_PERMIT 450 4.7.1 x") == nil)
        #expect(GateVerdict.code(of: "4500 4.7.1 x") == nil && GateVerdict.code(of: "45x") == nil)
        #expect(GateVerdict.code(of: "451 5.7.1 mixed")?.enhanced == nil)
    }

    @Test func legacyTextsOfTheOldPlugin() {
        var o = QmailHelpers.SPPOptions()
        o.legacyText = true
        #expect(run(base, FakeDaemon("DEFER_IF_PERMIT x"), o) == ("E451 temporary failure (#4.3.0)\n", nil))
        #expect(run(base, FakeDaemon("REJECT x"), o) == ("E553 sorry, your envelope sender has been denied (#5.7.1)\n", nil))
    }

    @Test func inactiveWithoutGREYLISTINGAndForRelayAndAuthenticatedClients() {
        let daemon = FakeDaemon("DEFER_IF_PERMIT x")
        var env = base
        env["GREYLISTING"] = nil
        #expect(run(env, daemon) == ("", nil))
        var always = QmailHelpers.SPPOptions()
        always.activation = nil
        #expect(run(env, daemon, always).0 == "E451 4.7.1 x\n")
        env = base
        env["RELAYCLIENT"] = ""  // set, even empty, means a relay client
        #expect(run(env, daemon) == ("", nil))
        env = base
        env["SMTPAUTHUSER"] = "alice"
        #expect(run(env, daemon) == ("", nil))
        #expect(daemon.asked.count == 1)  // only the "always" run asked
    }

    @Test func daemonDownPassesAndSaysWhy() {
        let daemon = FakeDaemon("DEFER_IF_PERMIT x")
        daemon.down = true
        let (out, err) = run(base, daemon)
        #expect(out == "")
        #expect(err == "greylag qmail-spp: cannot connect to /run/greylag/policy.sock: Connection refused; passing the mail\n")
    }

    @Test func mappedIPv4OnATCP6Socket() {
        var env = base
        env["PROTO"] = "TCP6"
        env["TCPREMOTEIP"] = "::ffff:198.51.100.7"
        let daemon = FakeDaemon("DUNNO")
        _ = run(env, daemon)
        #expect(daemon.attribute("client_address") == "198.51.100.7")
        env["TCPREMOTEIP"] = "2001:db8::7"
        _ = run(env, daemon)
        #expect(daemon.attribute("client_address") == "2001:db8::7")
    }
}

@Suite struct EnvelopeScannerTests {
    @Test func exitCodes() {
        let env = environment(["TCPREMOTEIP": "198.51.100.7"])
        for (action, status) in [("DEFER_IF_PERMIT x", Int32(101)), ("REJECT x", 100), ("DUNNO", 0)] {
            let daemon = FakeDaemon(action)
            #expect(QmailHelpers.envelopeScanner(env, sender: "a@example.org", recipient: "b@example.net",
                                                 ask: { try daemon.ask($0) }).status == status)
            #expect(daemon.attribute("sender") == "a@example.org")
        }
        let down = FakeDaemon("DEFER_IF_PERMIT x")
        down.down = true
        let r = QmailHelpers.envelopeScanner(env, sender: "a", recipient: "b", ask: { try down.ask($0) })
        #expect(r.status == 0 && r.stderr?.contains("passing the mail") == true)
        let relay = FakeDaemon("DEFER_IF_PERMIT x")
        #expect(QmailHelpers.envelopeScanner(environment(["TCPREMOTEIP": "1.2.3.4", "RELAYCLIENT": ""]), sender: "a",
                                             recipient: "b", ask: { try relay.ask($0) }).status == 0)
    }
}

@Suite struct WrapperTests {
    @Test func jgreylistVariablesAndGreylagNames() {
        var o = QmailHelpers.WrapOptions(environment(["JGREYLIST_HOLDTIME": "300", "JGREYLIST_TIMEOUT": "1",
                                                      "JGREYLIST_BY_IP": "1", "JGREYLIST_NOREV": "1"]))
        #expect(o.holdTime == 300 && o.timeout == 5 && o.byAddress && o.denyWithoutReverse && !o.whitelisted)
        o = QmailHelpers.WrapOptions(environment(["GREYLAG_WRAP_TIMEOUT": "999", "JGREYLIST": ""]))
        #expect(o.timeout == 300 && o.whitelisted && o.deny == nil && o.holdTime == 120)
        o = QmailHelpers.WrapOptions(environment(["JGREYLIST": "go away"]))
        #expect(o.deny == "go away")
        #expect(o.problems.isEmpty)
        // A hold time the daemon would not take is not sent: the default stays, and it is said.
        for bad in ["2592001", "9223372036854775807", "-1", "2m"] {
            o = QmailHelpers.WrapOptions(environment(["JGREYLIST_HOLDTIME": bad]))
            #expect(o.holdTime == 120 && o.problems == ["hold time \"\(bad)\" is not 0 to 2592000 seconds; using 120"])
        }
        #expect(QmailHelpers.WrapOptions(environment(["JGREYLIST_HOLDTIME": "2592000"])).holdTime == 2_592_000)
    }

    @Test func decisions() {
        let daemon = FakeDaemon("DEFER_IF_PERMIT Greylisted, please try again in 120 seconds")
        let env: [String: String] = ["TCPREMOTEIP": "203.0.113.5", "TCPREMOTEHOST": "mx.example.org"]
        func decide(_ e: [String: String]) -> QmailHelpers.WrapDecision {
            QmailHelpers.wrap(environment(e), options: QmailHelpers.WrapOptions(environment(e)), ask: { try daemon.ask($0) }).0
        }
        #expect(decide(env) == .defer("Greylisted, please try again in 120 seconds"))
        #expect(daemon.attribute("greylag_scope") == "connection" && daemon.attribute("greylag_delay") == "120")
        #expect(daemon.attribute("greylag_key") == nil)
        var e = env
        e["JGREYLIST_BY_IP"] = "1"
        e["JGREYLIST_HOLDTIME"] = "30"
        _ = decide(e)
        #expect(daemon.attribute("greylag_key") == "address" && daemon.attribute("greylag_delay") == "30")
        let asked = daemon.asked.count
        e = env
        e["JGREYLIST"] = ""
        #expect(decide(e) == .exec)
        e["JGREYLIST"] = "Your network sends spam"
        #expect(decide(e) == .deny("Your network sends spam"))
        e = ["TCPREMOTEIP": "203.0.113.5", "JGREYLIST_NOREV": "1"]
        #expect(decide(e) == .deny("No reverse DNS for 203.0.113.5; mail refused"))
        #expect(daemon.asked.count == asked)  // none of these asked the daemon
        daemon.action = "DUNNO"
        #expect(decide(env) == .exec)
        daemon.down = true
        #expect(decide(env) == .exec)  // the daemon down: pass
    }

    @Test func holdingDialogue() {
        let smtp = HoldingSMTP(hostname: "mx.example.net", decision: .defer("Greylisted, try later"))
        #expect(smtp.greeting == "220 mx.example.net ESMTP greylag\r\n")
        #expect(smtp.reply(to: "EHLO client.example\r") == ("250 mx.example.net\r\n", false))
        #expect(smtp.reply(to: "mail FROM:<a@b>\r") == ("250 2.0.0 ok\r\n", false))
        #expect(smtp.reply(to: "RCPT TO:<c@d>\r") == ("450 4.7.1 Greylisted, try later\r\n", false))
        #expect(smtp.reply(to: "DATA\r") == ("450 4.7.1 Greylisted, try later\r\n", false))
        #expect(smtp.reply(to: "RSET\r") == ("250 2.0.0 ok\r\n", false))
        #expect(smtp.reply(to: "QUIT\r") == ("221 2.0.0 mx.example.net closing connection\r\n", true))
        let deny = HoldingSMTP(hostname: "h", decision: .deny("go away"))
        #expect(deny.reply(to: "RCPT TO:<c@d>") == ("553 5.7.1 go away\r\n", false))
    }
}
