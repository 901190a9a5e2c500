import Foundation
import Synchronization
import Testing

@testable import SmtpdFilter

/// The runner with threads: a slow daemon answer for one session does not
/// hold another, and lines from many threads never mix.
@Suite struct FilterRunnerTests {
    final class Gate: @unchecked Sendable {
        let condition = NSCondition()
        var open = false
        func wait() {
            condition.lock()
            while !open { condition.wait() }
            condition.unlock()
        }
        func release() {
            condition.lock()
            open = true
            condition.broadcast()
            condition.unlock()
        }
    }

    func waitFor(_ what: () -> Bool) {
        for _ in 0..<1000 where !what() { usleep(2000) }
    }

    @Test func slowAnswerHoldsOnlyItsSession() {
        let gate = Gate()
        let out = Mutex<[String]>([])
        let runner = FilterRunner(settings: .init(), timeoutMilliseconds: 5000, ask: { attrs, _ in
            if attrs.contains(where: { $0 == ("sender", "slow@example.org") }) { gate.wait() }
            return "DUNNO"
        }, output: { line in out.withLock { $0.append(String(decoding: line, as: UTF8.self)) } }, logLine: { _ in })
        let a = Recorded.sessionA, b = Recorded.sessionB
        let lines = Recorded.handshake("0.6") + Recorded.session("0.6", a, sender: "slow@example.org")
            + Recorded.session("0.6", b) + [Recorded.rcpt("0.6", a), Recorded.rcpt("0.6", b)]
        runner.feed(Array(lines.map { $0 + "\n" }.joined().utf8))
        waitFor { out.withLock { $0.count } == 10 }
        #expect(out.withLock { $0.last } == Recorded.reply("0.6", b, "proceed") + "\n")
        gate.release()
        waitFor { out.withLock { $0.count } == 11 }
        #expect(out.withLock { $0.last } == Recorded.reply("0.6", a, "proceed") + "\n")
    }

    @Test func timeoutPassesAndTheLogIsRateLimited() {
        let out = Mutex<[String]>([])
        let log = Mutex<[String]>([])
        let runner = FilterRunner(settings: .init(), timeoutMilliseconds: 200, logInterval: 60_000_000_000, ask: { _, ms in
            struct Slow: Error, CustomStringConvertible { var description = "no answer within 200 ms" }
            usleep(UInt32(ms) * 1000)
            throw Slow()
        }, output: { line in out.withLock { $0.append(String(decoding: line, as: UTF8.self)) } },
           logLine: { line in log.withLock { $0.append(line) } })
        var lines = Recorded.handshake("0.6")
        for i in 0..<20 {
            let s = String(format: "%016x", i + 1)
            lines += Recorded.session("0.6", s) + [Recorded.rcpt("0.6", s)]
        }
        let start = Date()
        runner.feed(Array(lines.map { $0 + "\n" }.joined().utf8))
        waitFor { out.withLock { $0.count } == 29 }
        #expect(Date().timeIntervalSince(start) < 2, "twenty slow questions run side by side")
        #expect(out.withLock { $0.filter { $0.hasSuffix("|proceed\n") }.count } == 20)
        let daemonLines = log.withLock { $0.filter { $0.contains("cannot ask the greylag daemon") } }
        #expect(daemonLines.count == 1, "\(daemonLines)")
        #expect(daemonLines.first?.hasPrefix("greylag smtpd-filter: cannot ask the greylag daemon (no answer within 200 ms)") == true)
    }

    @Test func linesFromManyThreadsNeverMix() {
        let out = Mutex<[UInt8]>([])
        let runner = FilterRunner(settings: .init(), timeoutMilliseconds: 5000, ask: { _, _ in
            usleep(UInt32.random(in: 0...2000))
            return "DEFER_IF_PERMIT " + String(repeating: "x", count: 300)
        }, output: { line in out.withLock { $0 += line } }, logLine: { _ in })
        var lines = Recorded.handshake("0.7")
        for i in 0..<200 {
            let s = String(format: "%016x", i + 1)
            lines += Recorded.session("0.7", s) + [Recorded.rcpt("0.7", s)]
        }
        runner.feed(Array(lines.map { $0 + "\n" }.joined().utf8))
        waitFor { out.withLock { $0.filter { $0 == 10 }.count } == 209 }
        let text = String(decoding: out.withLock { $0 }, as: UTF8.self).split(separator: "\n")
        let replies = text.filter { $0.hasPrefix("filter-result|") }
        #expect(replies.count == 200)
        for r in replies {
            #expect(r.hasSuffix("|reject|451 4.7.1 " + String(repeating: "x", count: 300)))
            #expect(r.split(separator: "|").count == 5)
        }
    }
}
