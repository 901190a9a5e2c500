import Foundation
import GreylagCore
import GreylagServer
import Testing

/// `[[rules]]` through live sockets: a rule's timings on the daemon's
/// clock, its codes and texts on the policy and milter wire, its name in
/// the log, and reload.
@Suite struct RulesServerTests {
    static let config = """
        [[rules]]
        action = "blacklist"
        senders = ["spammer@bad.example"]
        reject_code = "554 5.7.1"
        reject_text = "No mail from {sender}"

        [[rules]]
        action = "whitelist"
        sender_domains = ["friend.example"]

        [[rules]]
        sender_domains = ["slow.example"]
        delay = "1h"
        defer_code = "450 4.7.1"
        defer_text = "Slow senders wait {left}"

        [whitelist]
        builtin = false
        clients = ["192.0.2.0/24"]
        """

    @Test func policyRepliesUseTheRulesCodesTextsAndTimings() async throws {
        let loaded = try ConfigurationLoader.parse(Self.config, file: "/etc/greylag/greylag.toml")
        let clock = ManualClock()
        let log = CapturedLog()
        try await withDaemon(configure: using(loaded), clock: clock, log: log) { addresses, _ in
            let c = try await PolicyTestClient(addresses[0])
            let slow = request(client: "198.51.100.7", sender: "a@slow.example")
            let other = request(client: "198.51.100.7", sender: "a@other.example")
            #expect(try await c.ask(slow) == "action=450 4.7.1 Slow senders wait 1h")
            #expect(try await c.ask(other) == defer300)
            #expect(try await c.ask(request(client: "198.51.100.7", sender: "spammer@bad.example"))
                    == "action=554 5.7.1 No mail from spammer@bad.example")
            #expect(try await c.ask(request(client: "198.51.100.7", sender: "b@friend.example")) == "action=DUNNO")
            // The whitelist table (192.0.2.0/24) does not apply after a greylist rule matched.
            #expect(try await c.ask(request(client: "192.0.2.9", sender: "a@slow.example"))
                    == "action=450 4.7.1 Slow senders wait 1h")
            #expect(try await c.ask(request(client: "192.0.2.9", sender: "a@other.example")) == "action=DUNNO")

            clock.advance(6 * 60)
            #expect(try await c.ask(other)?.hasPrefix("action=PREPEND X-Greylist: delayed 360 seconds") == true)
            #expect(try await c.ask(slow) == "action=450 4.7.1 Slow senders wait 54m")
            clock.advance(30 * 60)
            #expect(try await c.ask(slow) == "action=450 4.7.1 Slow senders wait 24m")
            clock.advance(25 * 60)
            var nextMessage = slow
            nextMessage[8] = ("instance", "5e6f.7a8b.0")  // one X-Greylist per message: another message
            #expect(try await c.ask(nextMessage)?.hasPrefix("action=PREPEND X-Greylist: delayed 3660 seconds") == true)
        }
        #expect(log.contains("defer: client=198.51.100.7 network=198.51.100.0/24 sender=<a@slow.example> "
                             + "recipient=<bob@example.net> reason=new_triplet retry_in=3600s "
                             + "rule=\"/etc/greylag/greylag.toml:11 rules[3] (slow.example)\" via=policy"))
        #expect(log.contains("reason=blacklisted rule=\"/etc/greylag/greylag.toml:1 rules[1] (spammer@bad.example)\""))
        #expect(log.contains("reason=whitelisted rule=\"/etc/greylag/greylag.toml:7 rules[2] (friend.example)\""))
    }

    @Test func milterRepliesUseTheRulesCodesAndTexts() async throws {
        let loaded = try ConfigurationLoader.parse(Self.config, file: "t.toml")
        let milter = MilterServerTests()
        try await withDaemon(configure: { c in
            using(loaded)(&c)
            c.milterListeners = [.tcp(host: "127.0.0.1", port: 0)]
        }) { addresses, _ in
            let c = try await milter.open(addresses[1])
            try await c.send(bytes: milterPacket("M", nul("<a@slow.example>")))
            let slow = try #require(try await milter.rcpt(c, "b@example.net"))
            #expect(slow.0 == "y" && slow.1 == "450 4.7.1 Slow senders wait 1h")
            try await c.send(bytes: milterPacket("A") + milterPacket("M", nul("<spammer@bad.example>")))
            let refused = try #require(try await milter.rcpt(c, "b@example.net"))
            #expect(refused.0 == "y" && refused.1 == "554 5.7.1 No mail from spammer@bad.example")
            try await c.send(bytes: milterPacket("A") + milterPacket("M", nul("<a@other.example>")))
            let other = try #require(try await milter.rcpt(c, "b@example.net"))
            #expect(other.0 == "y" && other.1 == "451 4.7.1 Greylisting in action, please come back in 00:05:00")
        }
    }

    @Test func reloadPutsChangedRulesInForce() async throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/greylag.toml"
        @Sendable func write(_ delay: String) throws {
            try """
                [[rules]]
                sender_domains = ["slow.example"]
                delay = "\(delay)"
                [whitelist]
                builtin = false
                """.write(toFile: path, atomically: true, encoding: .utf8)
        }
        try write("1h")
        var loaded = try ConfigurationLoader.load(path: path)
        loaded.watchInterval = 0.1
        let log = CapturedLog()
        try await withDaemon(configure: using(loaded), log: log) { addresses, _ in
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(request(sender: "a@slow.example", recipient: "r0@example.net"))
                    == "action=DEFER_IF_PERMIT Greylisted, please try again in 3600 seconds")
            try write("2h")
            let deadline = Date().addingTimeInterval(30)
            var n = 0
            var answer = ""
            while Date() < deadline {
                n += 1
                answer = try await c.ask(request(sender: "a@slow.example", recipient: "r\(n)@example.net")) ?? ""

                if answer.hasSuffix("7200 seconds") { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(answer == "action=DEFER_IF_PERMIT Greylisted, please try again in 7200 seconds")
        }
    }
}
