import Foundation
import GreylagCore
import GreylagTestSupport
import GreylagMigrate
import Testing

/// The migrated greylist.conf decides a table of queries as milter-greylist
/// would have: its ACLs, in order, on the real engine and a manual clock.
@Suite struct MilterGreylistDecisionTests {
    let t0: Int64 = 1_800_000_000

    func written() throws -> Written {
        try Written(try MilterGreylistConfig.migrate(try fixture("greylist.conf"), file: "greylist.conf"))
    }

    @Test func whitelistedNetworksAndBrokenMTAsPass() throws {
        let w = try written()
        defer { w.remove() }
        var store = MemoryStore()
        for client in ["127.0.0.1", "10.1.2.3", "192.0.2.44", "64.233.161.10", "207.171.168.9"] {
            let v = store.ask(w.engine, rcpt(client), at: t0)
            #expect(v.action == .pass, "\(client)")
        }
        // friend@toto.com to grandma@example.com is whitelisted; to anyone else it is greylisted.
        #expect(store.ask(w.engine, rcpt("198.51.100.7", from: "friend@toto.com", to: "grandma@example.com"), at: t0).action == .pass)
        #expect(store.ask(w.engine, rcpt("198.51.100.7", from: "friend@toto.com", to: "other@example.com"), at: t0).action == .defer)
        // domain friendly.com: a suffix match on the verified client name.
        #expect(store.ask(w.engine, rcpt("198.51.100.8", name: "mx.unfriendly.com"), at: t0).action == .pass)
    }

    @Test func blacklistACLsRejectWithTheirMessage() throws {
        let w = try written()
        defer { w.remove() }
        var store = MemoryStore()
        let v = store.ask(w.engine, rcpt("203.0.113.5"), at: t0)
        #expect(v.action == .reject && v.reply?.rejectText == "Sender IP caught in our blacklist")
        #expect(v.reply?.rejectCode == nil)  // milter-greylist's 551 5.7.1 comes from [milter] reject_code
        #expect(w.config.milterReplies.rejectCode == "551 5.7.1")
        let spam = store.ask(w.engine, rcpt("198.51.100.9", from: "bulk@spam.example"), at: t0)
        #expect(spam.action == .reject && spam.reply?.rejectCode == "554 5.7.1")
        #expect(spam.reply?.rejectText == "No mail from {sender} to {recipient}")
    }

    @Test func aDelayOfOneHourDefersAt30MinutesAndPassesAfterAnHour() throws {
        let w = try written()
        defer { w.remove() }
        var store = MemoryStore()
        let q = rcpt("198.51.100.20", from: "someone@example.org", to: "user1@example.com")  // list "grey users": delay 1h
        #expect(store.ask(w.engine, q, at: t0).action == .defer)
        #expect(store.ask(w.engine, q, at: t0 + 30 * 60).action == .defer)
        #expect(store.ask(w.engine, q, at: t0 + 3600).action == .pass)
        // Anyone else: the global greylist 15m.
        let other = rcpt("198.51.100.20", from: "someone@example.org", to: "carol@example.com")
        #expect(store.ask(w.engine, other, at: t0).action == .defer)
        #expect(store.ask(w.engine, other, at: t0 + 15 * 60).action == .pass)
        // JDoe's ACL: delay 15m and its own text.
        let jdoe = store.ask(w.engine, rcpt("198.51.100.21", to: "JDoe@example.net"), at: t0)
        #expect(jdoe.action == .defer && jdoe.timeLeft == 900 && jdoe.reply?.deferText == "Come back in {seconds} seconds (please)")
    }
}

@Suite struct MilterGreylistDefaultRuleTests {
    let t0: Int64 = 1_800_000_000

    @Test func whitelistDefaultPassesWhatNoEarlierACLGreylists() throws {
        let conf = "racl greylist rcpt bob@example.net delay 2h\nracl whitelist default\nracl blacklist addr 192.0.2.1\n"
        let m = try MilterGreylistConfig.migrate(Array(conf.utf8), file: "g")
        let w = try Written(m)
        defer { w.remove() }
        var store = MemoryStore()
        #expect(store.ask(w.engine, rcpt("192.0.2.1", to: "carol@example.net"), at: t0).reason == .whitelisted)
        #expect(store.ask(w.engine, rcpt("192.0.2.1", to: "bob@example.net"), at: t0).timeLeft == 7200)
        #expect(store.ask(w.engine, rcpt("192.0.2.1", to: "bob@example.net"), at: t0 + 3600).action == .defer)
        #expect(store.ask(w.engine, rcpt("192.0.2.1", to: "bob@example.net"), at: t0 + 7200).action == .pass)
        #expect(!m.notes(containing: "g:3: not carried over: racl blacklist addr 192.0.2.1: never reached").isEmpty)
    }

    @Test func aRuleDelayLongerThanTheTimeoutGetsAWindowGreylagAccepts() throws {
        let m = try MilterGreylistConfig.migrate(Array("timeout 1d\nracl greylist rcpt a@example.net delay 2d\n".utf8), file: "g")
        #expect(m.rules.first?.value("retry_window") == .string("3d"))
        #expect(!m.notes(containing: "g:2: differs: racl greylist rcpt a@example.net delay 2d: its delay 2d is not shorter").isEmpty)
        let w = try Written(m)
        w.remove()
    }
}
