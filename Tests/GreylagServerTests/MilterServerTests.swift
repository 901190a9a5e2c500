import Foundation
import GreylagCore
import GreylagServer
import Testing

/// One milter packet: length, command letter, data.
func milterPacket(_ command: Character, _ data: [UInt8] = []) -> [UInt8] {
    let length = UInt32(data.count + 1)
    return [UInt8(length >> 24), UInt8((length >> 16) & 0xFF), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF),
            command.asciiValue!] + data
}

func nul(_ s: String...) -> [UInt8] { s.flatMap { Array($0.utf8) + [0] } }

/// The milter through a live socket, as an MTA speaks it.
@Suite struct MilterServerTests {
    /// A daemon with one milter listener on a free port; `body` gets its address.
    func withMilter(_ configure: @escaping @Sendable (inout GreylagConfiguration) -> Void = { _ in },
                    log: CapturedLog = CapturedLog(),
                    _ body: @Sendable (String) async throws -> Void) async throws {
        try await withDaemon(configure: { c in
            c.milterListeners = [.tcp(host: "127.0.0.1", port: 0)]
            configure(&c)
        }, log: log) { addresses, _ in
            try await body(addresses[1])
        }
    }

    static let negotiate = milterPacket("O", [0, 0, 0, 6, 0, 0, 1, 0xFF, 0, 0x1F, 0xFF, 0xFF])

    func open(_ address: String, client: String = "198.51.100.7", auth: String? = nil) async throws -> PolicyTestClient {
        let c = try await PolicyTestClient(address)
        try await c.send(bytes: Self.negotiate)
        let reply = try #require(try await c.packet())
        #expect(reply.0 == "O")
        #expect(reply.1 == [0, 0, 0, 6, 0, 0, 0, 1, 0, 0x0E, 0x71, 0xF0])
        var bytes = milterPacket("D", [UInt8(ascii: "C")] + nul("j", "mx.example.net"))
        bytes += milterPacket("C", nul("mail.example.org") + [UInt8(ascii: "4"), 0, 25] + nul(client))
        bytes += milterPacket("H", nul("mail.example.org"))
        if let auth { bytes += milterPacket("D", [UInt8(ascii: "M")] + nul("{auth_authen}", auth)) }
        try await c.send(bytes: bytes)
        return c
    }

    func rcpt(_ c: PolicyTestClient, _ recipient: String) async throws -> (Character, String)? {
        try await c.send(bytes: milterPacket("R", nul("<\(recipient)>")))
        guard let p = try await c.packet() else { return nil }
        return (p.0, String(decoding: p.1.filter { $0 != 0 }, as: UTF8.self))
    }

    @Test func defersRejectsAndPassesRecipientByRecipient() async throws {
        let config = try ConfigurationLoader.parse("""
            [blacklist]
            recipients = ["nobody@example.net"]
            [whitelist]
            builtin = false
            recipients = ["postmaster@"]
            [milter]
            header = "all"
            """, file: "t.toml")
        let log = CapturedLog()
        try await withMilter({ c in
            c.lists = config.lists
            c.milterReplies = config.milterReplies
        }, log: log) { address in
            let c = try await open(address)
            try await c.send(bytes: milterPacket("M", nul("<a@example.org>", "SIZE=10")))
            let deferred = try #require(try await rcpt(c, "b@example.net"))
            #expect(deferred.0 == "y" && deferred.1 == "451 4.7.1 Greylisting in action, please come back in 00:05:00")
            let refused = try #require(try await rcpt(c, "nobody@example.net"))
            #expect(refused.0 == "y" && refused.1 == "550 5.7.1 Refused by greylag policy")
            let passed = try #require(try await rcpt(c, "postmaster@example.net"))
            #expect(passed.0 == "c")
            try await c.send(bytes: milterPacket("E"))
            let header = try #require(try await c.packet())
            #expect(header.0 == "h")
            let text = String(decoding: header.1, as: UTF8.self)
            #expect(text.hasPrefix("X-Greylist\0Sender whitelisted, not delayed by greylag-\(GreylagVersion.string) (mx.example.net); "))
            #expect(try await c.packet()?.0 == "c")
            // Abort, then another message on the same connection.
            try await c.send(bytes: milterPacket("A") + milterPacket("M", nul("<other@example.org>")))
            #expect(try await rcpt(c, "b@example.net")?.1.hasPrefix("451 4.7.1 ") == true)
            try await c.send(bytes: milterPacket("Q"))
            #expect(try await c.packet() == nil)  // closed after QUIT
        }
        #expect(log.contains("defer: client=198.51.100.7 network=198.51.100.0/24 sender=<a@example.org> "
                             + "recipient=<b@example.net> reason=new_triplet retry_in=300s via=milter"))
        #expect(log.contains("reject: client=198.51.100.7 sender=<a@example.org> recipient=<nobody@example.net> "
                             + "reason=blacklisted"))
    }

    /// The null sender through the handler: RCPT answers "continue" at
    /// once (a call-out then QUIT leaves nothing), DATA decides each held
    /// recipient and answers with the deferral; the end of message decides
    /// when no DATA came.
    @Test func theNullSenderIsDecidedAtDataRecipientByRecipient() async throws {
        let log = CapturedLog()
        try await withMilter({ _ in }, log: log) { address in
            // A call-out: MAIL FROM:<>, RCPT, QUIT. No decision, no record.
            let callout = try await open(address)
            try await callout.send(bytes: milterPacket("M", nul("<>")))
            #expect(try await rcpt(callout, "b@example.net")?.0 == "c")
            try await callout.send(bytes: milterPacket("Q"))
            #expect(try await callout.packet() == nil)
            #expect(!log.contains("recipient=<b@example.net>"))

            let c = try await open(address)
            try await c.send(bytes: milterPacket("M", nul("<>")))
            #expect(try await rcpt(c, "b@example.net")?.0 == "c")
            #expect(try await rcpt(c, "c@example.net")?.0 == "c")
            try await c.send(bytes: milterPacket("T"))
            let data = try #require(try await c.packet())
            #expect(data.0 == "y" && String(decoding: data.1.filter { $0 != 0 }, as: UTF8.self)
                    == "451 4.7.1 Greylisting in action, please come back in 00:05:00")
            // Without DATA (an older MTA): the end of message decides.
            try await c.send(bytes: milterPacket("A") + milterPacket("M", nul("<>")))
            #expect(try await rcpt(c, "d@example.net")?.0 == "c")
            try await c.send(bytes: milterPacket("E"))
            let end = try #require(try await c.packet())
            #expect(end.0 == "y" && String(decoding: end.1.filter { $0 != 0 }, as: UTF8.self).hasPrefix("451 4.7.1 "))
            try await c.send(bytes: milterPacket("Q"))
            #expect(try await c.packet() == nil)
        }
        for r in ["b", "c", "d"] {
            #expect(log.contains("defer: client=198.51.100.7 network=198.51.100.0/24 sender=<> recipient=<\(r)@example.net> "
                                 + "reason=new_triplet retry_in=300s via=milter"), "\(log.all)")
        }
    }

    @Test func hangingStoreIsAnsweredWithinTheTimeout() async throws {
        let log = CapturedLog()
        try await withDaemon(configure: { c in
            c.milterListeners = [.tcp(host: "127.0.0.1", port: 0)]
            c.storeTimeout = 0.3
            c.failureMode = .defer
        }, store: { try BrokenStore(.hang, config: $0) }, log: log) { addresses, _ in
            let c = try await open(addresses[1])
            try await c.send(bytes: milterPacket("M", nul("<a@example.org>")))
            let start = ContinuousClock.now
            let reply = try #require(try await rcpt(c, "b@example.net"))
            #expect(reply.0 == "y" && reply.1.hasPrefix("451 4.7.1 "))
            #expect(ContinuousClock.now - start < .seconds(5))
        }
        #expect(log.contains("decision not ready after 300 ms"))
    }

    /// While a RCPT waits for its decision, the commands after it wait in
    /// a bounded queue: past 64, only that connection is closed.
    @Test func commandsFarAheadOfAnAnswerCloseTheConnection() async throws {
        let log = CapturedLog()
        try await withDaemon(configure: { c in
            c.milterListeners = [.tcp(host: "127.0.0.1", port: 0)]
            c.storeTimeout = 10
        }, store: { try BrokenStore(.hang, config: $0) }, log: log) { addresses, _ in
            let c = try await open(addresses[1])
            var bytes = milterPacket("M", nul("<a@example.org>")) + milterPacket("R", nul("<b@example.net>"))
            for _ in 0..<70 { bytes += milterPacket("D", [UInt8(ascii: "R")] + nul("{rcpt_mailer}", "local")) }
            try await c.send(bytes: bytes)
            #expect(try await c.packet() == nil)
        }
        #expect(log.contains("closing milter connection: more than 64 commands sent ahead of answers"))
    }

    @Test func unixSocketWithTheConfiguredMode() async throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/milter.sock"
        try await withMilter({ c in
            c.milterListeners = [.unix(path: path)]
            c.milterSocketMode = 0o660
        }) { address in
            #expect(address == "unix:\(path)")
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.posixPermissions] as? Int) == 0o660)
            let c = try await open(address)
            try await c.send(bytes: milterPacket("M", nul("<a@example.org>")))
            #expect(try await rcpt(c, "b@example.net")?.0 == "y")
        }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func authenticatedClientsPass() async throws {
        try await withMilter { address in
            let c = try await open(address, auth: "alice")
            try await c.send(bytes: milterPacket("M", nul("<a@example.org>")))
            #expect(try await rcpt(c, "b@example.net")?.0 == "c")
        }
    }

    @Test func garbageAndOversizedPacketsCloseOnlyThatConnection() async throws {
        let log = CapturedLog()
        try await withMilter(log: log) { address in
            let good = try await open(address)
            let garbage = try await PolicyTestClient(address)
            try await garbage.send(bytes: Array("GET / HTTP/1.0\r\n\r\n".utf8))
            #expect(try await garbage.packet() == nil)
            let huge = try await PolicyTestClient(address)
            try await huge.send(bytes: [0x00, 0x10, 0x00, 0x00, UInt8(ascii: "B")])
            #expect(try await huge.packet() == nil)
            try await good.send(bytes: milterPacket("M", nul("<a@example.org>")))
            #expect(try await rcpt(good, "b@example.net")?.0 == "y")
        }
        #expect(log.contains("closing milter connection: bad packet length: packet of 1195725856 bytes"))
        #expect(log.contains("closing milter connection: bad packet length: packet of 1048576 bytes"))
    }
}
