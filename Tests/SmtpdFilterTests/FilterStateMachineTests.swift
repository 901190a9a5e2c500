import Foundation
import Synchronization
import Testing

@testable import SmtpdFilter

/// Recorded exchanges of each protocol version. The 0.6 lines are what
/// Debian's smtpd 6.8.0p2 wrote to a recording filter; the others follow
/// the formats of OpenSMTPD's source at 6.6 (0.4), the 0.5 commit and 7.4
/// and later (0.7), with the 7.6 handshake for 0.7.
enum Recorded {
    static let sessionA = "88a2e841fd589e48"
    static let sessionB = "0123456789abcdef"

    static func handshake(_ v: String) -> [String] {
        switch v {
        case "0.4": return ["config|smtpd-version|6.6.4p1", "config|smtp-session-timeout|300", "config|ready"]
        case "0.7": return ["config|smtpd-version|7.6.0p1", "config|protocol|0.7", "config|smtp-session-timeout|300",
                            "config|subsystem|smtp-in", "config|admd|mx.example.net", "config|ready"]
        default: return ["config|smtpd-version|6.8.0p2", "config|smtp-session-timeout|300", "config|subsystem|smtp-in",
                         "config|admd|vm", "config|ready"]
        }
    }

    /// One session up to its rcpt-to request, in version `v`.
    static func session(_ v: String, _ s: String, src: String = "192.0.2.7:41434", rdns: String = "mail.example.org",
                        sender: String = "a@example.org", auth: (String, String)? = nil) -> [String] {
        var lines = ["report|\(v)|1796225286.649604|smtp-in|link-connect|\(s)|\(rdns)|pass|\(src)|127.0.0.1:12725",
                     "report|\(v)|1796225286.650270|smtp-in|link-identify|\(s)|EHLO|helo.example.org"]
        if let (user, result) = auth {
            lines.append("report|\(v)|1796225286.650300|smtp-in|link-auth|\(s)|"
                         + (v == "0.7" ? "\(result)|\(user)" : "\(user)|\(result)"))
        }
        lines += ["report|\(v)|1796225286.651306|smtp-in|tx-begin|\(s)|36915913",
                  "report|\(v)|1796225286.651310|smtp-in|tx-mail|\(s)|36915913|"
                    + (v == "0.4" || v == "0.5" ? "\(sender)|ok" : "ok|\(sender)")]
        return lines
    }

    static func rcpt(_ v: String, _ s: String, token: String = "7fc95df7d76dca02", _ rcpt: String = "c@example.net") -> String {
        "filter|\(v)|1796225286.651728|smtp-in|rcpt-to|\(s)|\(token)|\(rcpt)"
    }

    static func reply(_ v: String, _ s: String, token: String = "7fc95df7d76dca02", _ result: String) -> String {
        v == "0.4" ? "filter-result|\(token)|\(s)|\(result)" : "filter-result|\(s)|\(token)|\(result)"
    }

    static let registration = [
        "register|report|smtp-in|link-connect", "register|report|smtp-in|link-disconnect",
        "register|report|smtp-in|link-identify", "register|report|smtp-in|link-auth",
        "register|report|smtp-in|tx-begin", "register|report|smtp-in|tx-mail", "register|report|smtp-in|tx-reset",
        "register|filter|smtp-in|rcpt-to",
    ]
}

/// Drives a state machine with text lines and collects what it does.
struct Driver {
    var machine: FilterStateMachine
    var written: [String] = []
    var questions: [FilterStateMachine.Question] = []
    var logs: [String] = []

    init(header: Bool = false, maxSessions: Int = 8192) {
        var s = FilterStateMachine.Settings()
        s.header = header
        s.maxSessions = maxSessions
        machine = FilterStateMachine(settings: s)
    }

    mutating func take(_ actions: [FilterStateMachine.Action]) {
        for a in actions {
            switch a {
            case .write(let bytes): written.append(String(decoding: bytes, as: UTF8.self))
            case .ask(let q): questions.append(q)
            case .log(_, let text): logs.append(text)
            }
        }
    }

    mutating func send(_ lines: [String]) {
        for l in lines { take(machine.lineReceived(Array(l.utf8))) }
    }

    mutating func answer(_ q: FilterStateMachine.Question, _ action: String?, failure: String? = nil) {
        take(machine.answerReceived(ticket: q.ticket, action: action, failure: failure))
    }

    /// Takes what was written so far.
    mutating func drain() -> [String] {
        defer { written = [] }
        return written
    }
}

extension FilterStateMachine.Question {
    func value(_ name: String) -> String? { attributes.first { $0.name == name }?.value }
}

@Suite struct FilterVersionTests {
    @Test func versionsAndTheirFieldOrders() {
        let v = { (s: String) in FilterProtocolVersion(bytes: Array(s.utf8)) }
        #expect(v("0.4")?.replyTokenFirst == true)
        #expect(v("0.5")?.replyTokenFirst == false)
        #expect(v("0.5")?.mailResultFirst == false)
        #expect(v("0.6")?.mailResultFirst == true)
        #expect(v("0.6")?.authResultFirst == false)
        #expect(v("0.7")?.authResultFirst == true)
        // Unknown versions: older read as 0.4, newer as 0.7.
        #expect(v("0.1")?.effective == FilterProtocolVersion(0, 4))
        #expect(v("1.2")?.effective == FilterProtocolVersion(0, 7))
        #expect(v("0.12")?.isKnown == false)
        for bad in ["", "0", "0.", ".6", "a.b", "-1.0", "0.6 ", "99999.1", "0.6.1"] { #expect(v(bad) == nil, "\(bad)") }
    }

    @Test func splitterTakesAnyBoundariesAndDropsLongLines() {
        let text = Array("one\ntwo|x\n\nthree\n".utf8)
        for cut in 0...text.count {
            var s = FilterLineSplitter(maxLength: 16)
            let lines = s.lines(in: text[..<cut]) + s.lines(in: text[cut...])
            #expect(lines.map { String(decoding: $0, as: UTF8.self) } == ["one", "two|x", "", "three"], "cut \(cut)")
        }
        var s = FilterLineSplitter(maxLength: 8)
        var lines = s.lines(in: Array("short\n0123456".utf8))
        lines += s.lines(in: Array("789abcdef".utf8))
        lines += s.lines(in: Array("more\nok\n".utf8))
        #expect(lines.map { String(decoding: $0, as: UTF8.self) } == ["short", "ok"])
        #expect(s.discarded == 1)
    }
}

@Suite struct FilterStateMachineTests {
    @Test(arguments: ["0.4", "0.5", "0.6", "0.7"])
    func greylistsEachVersion(_ v: String) {
        var d = Driver()
        d.send(Recorded.handshake(v))
        #expect(d.drain() == Recorded.registration + ["register|ready"])
        let s = Recorded.sessionA
        d.send(Recorded.session(v, s))
        d.send([Recorded.rcpt(v, s)])
        #expect(d.written.isEmpty)
        let q = try! #require(d.questions.last)
        #expect(q.value("client_address") == "192.0.2.7")
        #expect(q.value("client_name") == "mail.example.org")
        #expect(q.value("helo_name") == "helo.example.org")
        #expect(q.value("protocol_name") == "ESMTP")
        #expect(q.value("sender") == "a@example.org")
        #expect(q.value("recipient") == "c@example.net")
        #expect(q.value("sasl_username") == "")
        #expect(q.value("protocol_state") == "RCPT")
        #expect(q.value("request") == "smtpd_access_policy")
        d.answer(q, "DEFER_IF_PERMIT Greylisted, please try again in 300 seconds")
        #expect(d.drain() == [Recorded.reply(v, s, "reject|451 4.7.1 Greylisted, please try again in 300 seconds")])
        d.send([Recorded.rcpt(v, s, token: "00000000000000aa", "<d@example.net>")])
        #expect(d.questions.last?.value("recipient") == "d@example.net")
        d.answer(d.questions.last!, "554 5.7.1 Refused by greylag policy")
        #expect(d.drain() == [Recorded.reply(v, s, token: "00000000000000aa", "reject|554 5.7.1 Refused by greylag policy")])
        d.send([Recorded.rcpt(v, s, token: "00000000000000ab", "e@example.net")])
        d.answer(d.questions.last!, "REJECT")
        #expect(d.drain() == [Recorded.reply(v, s, token: "00000000000000ab", "reject|550 5.7.1 Refused")])
        // A [[rules]] entry's own codes arrive as a numeric action.
        d.send([Recorded.rcpt(v, s, token: "00000000000000b1", "g@example.net")])
        d.answer(d.questions.last!, "450 4.7.2 Slow senders wait 1h")
        #expect(d.drain() == [Recorded.reply(v, s, token: "00000000000000b1", "reject|450 4.7.2 Slow senders wait 1h")])
        d.send([Recorded.rcpt(v, s, token: "00000000000000b2", "h@example.net")])
        d.answer(d.questions.last!, "554 5.7.0 Go away")
        #expect(d.drain() == [Recorded.reply(v, s, token: "00000000000000b2", "reject|554 5.7.0 Go away")])
        d.send([Recorded.rcpt(v, s, token: "00000000000000ac", "f@example.net")])
        d.answer(d.questions.last!, "DUNNO")
        #expect(d.drain() == [Recorded.reply(v, s, token: "00000000000000ac", "proceed")])
        #expect(d.logs.filter { !$0.hasPrefix("registered") }.isEmpty, "\(d.logs)")
        d.send(["report|\(v)|1796225286.656866|smtp-in|link-disconnect|\(s)"])
        #expect(d.machine.sessionCount == 0)
    }

    @Test(arguments: ["0.4", "0.5", "0.6", "0.7"])
    func authenticatedSessionSendsItsUser(_ v: String) {
        var d = Driver()
        d.send(Recorded.handshake(v))
        d.send(Recorded.session(v, Recorded.sessionA, auth: ("alice|x", "pass")))
        d.send(Recorded.session(v, Recorded.sessionB, auth: ("mallory", "fail")))
        d.send([Recorded.rcpt(v, Recorded.sessionA), Recorded.rcpt(v, Recorded.sessionB)])
        #expect(d.questions.map { $0.value("sasl_username") } == ["alice|x", ""])
    }

    @Test func addressesOfEachForm() {
        let c = { (s: String) in FilterStateMachine.client(Array(s.utf8)[...]) }
        #expect(c("192.0.2.7:25") == .address("192.0.2.7"))
        #expect(c("[2001:db8::1]:41000") == .address("2001:db8::1"))
        #expect(c("[fe80::1%eth0]:41000") == .address("fe80::1"))
        #expect(c("[::ffff:198.51.100.1]:25") == .address("198.51.100.1"))
        #expect(c("unix:/var/run/smtpd.sock") == .local)
        #expect(c("2001:db8::1:25") == .unknown("2001:db8::1:25"))
        #expect(c("") == .unknown(""))
        #expect(c("[") == .unknown("["))
    }

    @Test func localAndUnknownSessionsPassWithoutAsking() {
        var d = Driver()
        d.send(Recorded.handshake("0.6"))
        _ = d.drain()
        d.send(Recorded.session("0.6", Recorded.sessionA, src: "unix:/var/run/smtpd.sock"))
        d.send([Recorded.rcpt("0.6", Recorded.sessionA)])
        #expect(d.drain() == [Recorded.reply("0.6", Recorded.sessionA, "proceed")])
        // A session never reported (and a request of a phase not registered) still gets its answer.
        d.send([Recorded.rcpt("0.6", Recorded.sessionB)])
        d.send(["filter|0.6|1.0|smtp-in|mail-from|\(Recorded.sessionB)|00000000000000ff|<x@example.org>"])
        #expect(d.drain() == [Recorded.reply("0.6", Recorded.sessionB, "proceed"),
                              Recorded.reply("0.6", Recorded.sessionB, token: "00000000000000ff", "proceed")])
        #expect(d.questions.isEmpty)
        #expect(d.logs.contains { $0.contains("without a link-connect report") })
    }

    @Test func daemonDownPassesAndLogs() {
        var d = Driver()
        d.send(Recorded.handshake("0.6") + Recorded.session("0.6", Recorded.sessionA) + [Recorded.rcpt("0.6", Recorded.sessionA)])
        _ = d.drain()
        d.answer(d.questions[0], nil, failure: "cannot connect to /run/greylag/policy.sock: Connection refused")
        #expect(d.drain() == [Recorded.reply("0.6", Recorded.sessionA, "proceed")])
        #expect(d.logs.last == "cannot ask the greylag daemon (cannot connect to /run/greylag/policy.sock: "
                + "Connection refused); passing the mail")
        // A late or repeated answer to the same ticket writes nothing.
        d.answer(d.questions[0], "DUNNO")
        #expect(d.written.isEmpty)
    }

    @Test func hostileInputIsIgnoredAndRepliesStayClean() {
        var d = Driver()
        d.send(Recorded.handshake("0.6") + Recorded.session("0.6", Recorded.sessionA))
        _ = d.drain()
        d.send(["", "|||||||", "garbage", "filter|0.6|x|smtp-in|rcpt-to|zz|11|a@b", "filter|0.6",
                "filter|x.y|1|smtp-in|rcpt-to|\(Recorded.sessionA)|11|a@b", "report|0.6|1|smtp-in|link-connect|ab",
                "report|0.6|1|smtp-in|tx-mail|\(Recorded.sessionA)", "filter|0.6|1|smtp-in|rcpt-to|\(Recorded.sessionA)|12345678901234567|x",
                "config|ready", "register|ready"])
        #expect(d.written.isEmpty, "\(d.written)")
        #expect(d.questions.isEmpty)
        #expect(d.logs.count >= 8)
        // A reply text with control bytes and a huge one: one printable line.
        d.send([Recorded.rcpt("0.6", Recorded.sessionA, "c@example.net NOTIFY=NEVER \u{1}|x")])
        #expect(d.questions.last?.value("recipient") == "c@example.net")
        d.answer(d.questions.last!, "DEFER bad\u{0}text\rwith\nbytes|" + String(repeating: "x", count: 5000))
        let line = d.drain()
        #expect(line.count == 1)
        #expect(line[0].hasPrefix("filter-result|\(Recorded.sessionA)|7fc95df7d76dca02|reject|451 4.7.1 bad text with bytes|xx"))
        #expect(line[0].utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F })
        #expect(line[0].utf8.count < 500)
    }

    @Test func sessionsInterleaveAndEachIsAnsweredInOrder() {
        var d = Driver(header: true)
        d.send(Recorded.handshake("0.6"))
        _ = d.drain()
        let a = Recorded.sessionA, b = Recorded.sessionB
        d.send(Recorded.session("0.6", a) + Recorded.session("0.6", b, src: "[2001:db8::5]:4000", sender: ""))
        d.send([Recorded.rcpt("0.6", a, token: "000000000000000a"), Recorded.rcpt("0.6", b, token: "000000000000000b")])
        #expect(d.questions.count == 2)
        #expect(d.questions[1].value("client_address") == "2001:db8::5")
        #expect(d.questions[1].value("sender") == "")
        // b is answered first although a asked first.
        d.answer(d.questions[1], "PREPEND X-Greylist: delayed 61 seconds by greylag at mx; Sat, 21 Nov 2026 20:16:26 +0000")
        #expect(d.drain() == [Recorded.reply("0.6", b, token: "000000000000000b", "proceed")])
        // b's message comes while a still waits: echoed with the header first.
        let data = ["Received: from x", "Subject: hi", "", "body", "."]
        d.send(data.map { "filter|0.6|1.0|smtp-in|data-line|\(b)|00000000000000bb|\($0)" })
        #expect(d.drain() == ["filter-dataline|\(b)|00000000000000bb|X-Greylist: delayed 61 seconds by greylag at mx; Sat, 21 Nov 2026 20:16:26 +0000"]
                + data.map { "filter-dataline|\(b)|00000000000000bb|\($0)" })
        // a's next request (a pipelined one) waits behind its first question.
        d.send([Recorded.rcpt("0.6", a, token: "000000000000001a", "second@example.net")])
        #expect(d.questions.count == 2)
        d.answer(d.questions[0], "DUNNO")
        #expect(d.drain() == [Recorded.reply("0.6", a, token: "000000000000000a", "proceed")])
        #expect(d.questions.count == 3 && d.questions[2].value("recipient") == "second@example.net")
        d.answer(d.questions[2], "DUNNO")
        #expect(d.drain() == [Recorded.reply("0.6", a, token: "000000000000001a", "proceed")])
        // a's message has no header: it was not delayed.
        d.send(["filter|0.6|1.0|smtp-in|data-line|\(a)|00000000000000aa|Subject: x",
                "filter|0.6|1.0|smtp-in|data-line|\(a)|00000000000000aa|."])
        #expect(d.drain() == ["filter-dataline|\(a)|00000000000000aa|Subject: x", "filter-dataline|\(a)|00000000000000aa|."])
        // The header belongs to one transaction: b's next message has none.
        d.send(["report|0.6|1.0|smtp-in|tx-reset|\(b)|36915913", "report|0.6|1.0|smtp-in|tx-begin|\(b)|36915914",
                "report|0.6|1.0|smtp-in|tx-mail|\(b)|36915914|ok|z@example.org", Recorded.rcpt("0.6", b, token: "000000000000002b")])
        d.answer(d.questions.last!, "DUNNO")
        d.send(["filter|0.6|1.0|smtp-in|data-line|\(b)|00000000000000bc|."])
        #expect(d.drain() == [Recorded.reply("0.6", b, token: "000000000000002b", "proceed"), "filter-dataline|\(b)|00000000000000bc|."])
    }

    @Test func dataLinesInVersion04PutTheTokenFirst() {
        var d = Driver(header: true)
        d.send(Recorded.handshake("0.4"))
        #expect(d.drain() == Recorded.registration + ["register|filter|smtp-in|data-line", "register|ready"])
        d.send(Recorded.session("0.4", Recorded.sessionA) + [Recorded.rcpt("0.4", Recorded.sessionA)])
        d.answer(d.questions[0], "PREPEND X-Greylist: delayed 5 seconds")
        d.send(["filter|0.4|1.0|smtp-in|data-line|\(Recorded.sessionA)|00000000000000cc|a|b", "filter|0.4|1.0|smtp-in|data-line|\(Recorded.sessionA)|00000000000000cc|."])
        #expect(d.drain() == [Recorded.reply("0.4", Recorded.sessionA, "proceed"),
                              "filter-dataline|00000000000000cc|\(Recorded.sessionA)|X-Greylist: delayed 5 seconds",
                              "filter-dataline|00000000000000cc|\(Recorded.sessionA)|a|b",
                              "filter-dataline|00000000000000cc|\(Recorded.sessionA)|."])
    }

    @Test func sessionTableIsBounded() {
        var d = Driver(maxSessions: 4)
        d.send(Recorded.handshake("0.6"))
        for i in 0..<10 {
            d.send(["report|0.6|1.0|smtp-in|link-connect|\(String(format: "%016x", i))|r|pass|192.0.2.1:1|127.0.0.1:25"])
        }
        #expect(d.machine.sessionCount == 4)
        // Four sessions waiting for the daemon: a fifth goes untracked and is passed at once.
        var e = Driver(maxSessions: 4)
        e.send(Recorded.handshake("0.6"))
        for i in 0..<5 {
            let s = String(format: "%016x", i)
            e.send(Recorded.session("0.6", s) + [Recorded.rcpt("0.6", s)])
        }
        #expect(e.questions.count == 4)
        #expect(e.drain().last == Recorded.reply("0.6", String(format: "%016x", 4), "proceed"))
    }

    @Test(arguments: ["0.4", "0.5", "0.6", "0.7"])
    func wholeAndSplitInputGiveTheSameResult(_ v: String) {
        // Two interleaved sessions; every answer DUNNO; fed whole, byte by byte and in random cuts.
        let a = Recorded.sessionA, b = Recorded.sessionB
        var lines = Recorded.handshake(v)
        let sa = Recorded.session(v, a), sb = Recorded.session(v, b, src: "[2001:db8::9]:1")
        for i in 0..<max(sa.count, sb.count) {
            if i < sa.count { lines.append(sa[i]) }
            if i < sb.count { lines.append(sb[i]) }
        }
        // A third session that comes and goes between the requests.
        let c = "00000000000000cc"
        lines += [Recorded.rcpt(v, a), "report|\(v)|1.0|smtp-in|link-connect|\(c)||error|[::1]:1|[::1]:25",
                  Recorded.rcpt(v, b), "report|\(v)|1.0|smtp-in|link-disconnect|\(c)"]
        let stream = Array(lines.map { $0 + "\n" }.joined().utf8)
        func run(_ cuts: [Int]) -> ([String], [String]) {
            let out = Mutex<[String]>([])
            let runner = FilterRunner(settings: .init(), timeoutMilliseconds: 1000, ask: { attrs, _ in
                "DUNNO"
            }, output: { line in out.withLock { $0.append(String(decoding: line, as: UTF8.self)) } }, logLine: { _ in })
            var start = 0
            for c in cuts + [stream.count] where c >= start {
                runner.feed(stream[start..<c])
                start = c
            }
            // The answers come from worker threads.
            for _ in 0..<400 where out.withLock({ $0.count }) < 11 { usleep(5000) }
            let all = out.withLock { $0 }
            return (all.filter { $0.hasPrefix("register|") }, all.filter { !$0.hasPrefix("register|") }.sorted())
        }
        let whole = run([])
        #expect(whole.0.count == 9)
        #expect(whole.1 == [Recorded.reply(v, a, "proceed") + "\n", Recorded.reply(v, b, "proceed") + "\n"].sorted())
        #expect(run(Array(0..<stream.count)) == whole)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5 {
            let cuts = (0..<8).map { _ in Int.random(in: 0...stream.count, using: &rng) }.sorted()
            #expect(run(cuts) == whole, "cuts \(cuts)")
        }
    }
}
