import Foundation
import GreylagCore
@testable import GreylagServer
import GreylagStore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The qmail helpers' `greylag_*` attributes count only on a
/// `policy.helper_listen` listener; keys are stored as they are logged.
@Suite(.serialized) struct HelperListenerTests {
    let defer300 = "action=DEFER_IF_PERMIT Greylisted, please try again in 300 seconds"

    /// A plain TCP listener and a helper unix socket in one daemon, with the store in `dir`.
    func configure(_ dir: TemporaryDirectory) -> @Sendable (inout GreylagConfiguration) -> Void {
        { c in
            c.storePath = dir.path + "/greylag.db"
            c.policyListeners = [.tcp(host: "127.0.0.1", port: 0)]
            c.policyHelperListeners = [.unix(path: dir.path + "/helper.sock")]
        }
    }

    func storedRecords(_ dir: TemporaryDirectory) async throws -> [GreylistRecord] {
        let store = try SQLiteStore(path: dir.path + "/greylag.db")
        let records = try await store.records(matching: RecordFilter(limit: 1000), now: 0)
        try await store.close()
        return records
    }

    @Test func delayZeroPassesANewTripletOnlyOnTheHelperListener() async throws {
        let dir = TemporaryDirectory()
        let log = CapturedLog()
        try await withDaemon(configure: configure(dir), log: log) { addresses, _ in
            #expect(addresses.count == 2 && addresses[1] == "unix:\(dir.path)/helper.sock")
            let plain = try await PolicyTestClient(addresses[0])
            let helper = try await PolicyTestClient(addresses[1])
            // The same request: a new triplet with greylag_delay=0 and the wrapper's other attributes.
            let zero = rcptRequest(sender: "zero@example.org") + [("greylag_delay", "0"), ("greylag_origin", "qmail-spp")]
            #expect(try await plain.ask(zero) == defer300)
            #expect(try await plain.ask(zero) == defer300, "still deferred: the plain listener ignored the delay")
            // A huge delay cannot hold someone else's mail longer than the configured one.
            let hold = rcptRequest(sender: "victim@example.org") + [("greylag_delay", "2592000")]
            #expect(try await plain.ask(hold) == defer300)
            // Nor can a connection-scope request open the gate for the client alone.
            let scope = rcptRequest(sender: "scope@example.org") + [("greylag_scope", "connection"), ("greylag_key", "address")]
            #expect(try await plain.ask(scope) == defer300)

            // The helper listener honours them.
            let fresh = rcptRequest(sender: "fresh@example.org") + [("greylag_delay", "0"), ("greylag_origin", "qmail-spp")]
            #expect(try await helper.ask(fresh) == "action=DUNNO")
            #expect(try await helper.ask(rcptRequest(sender: "long@example.org") + [("greylag_delay", "3600")])
                    == "action=DEFER_IF_PERMIT Greylisted, please try again in 3600 seconds")
            // Out of range there: ignored (the configured delay applies) and logged, never a trap.
            for bad in ["2592001", "9223372036854775807", "99999999999999999999", "-1"] {
                #expect(try await helper.ask(rcptRequest(sender: "bad\(bad)@example.org") + [("greylag_delay", bad)])
                        == defer300)
            }
        }
        // One line for the plain listener's four requests, with the peer.
        let ignored = log.all.filter { $0.contains("policy listener 127.0.0.1:0: request from 127.0.0.1:") }
        #expect(ignored.count == 1, "\(ignored)")
        #expect(ignored.first?.contains("ignored greylag_delay, greylag_origin (only listeners in policy.helper_listen")
                == true, "\(ignored)")
        let invalid = log.all.filter { $0.contains("policy listener unix:\(dir.path)/helper.sock: request from") }
        #expect(invalid.count == 1 && invalid[0].contains("ignored greylag_delay=2592001 (not a value greylag takes: "
                                                          + "0 to 2592000 seconds)"), "\(invalid)")
        #expect(log.contains("pass: client=192.0.2.7 network=192.0.2.0/24 sender=<fresh@example.org>"))
        #expect(log.contains("via=qmail-spp"))
        #expect(!log.all.contains { $0.contains("zero@example.org") && $0.contains("via=qmail-spp") })
        // What was stored: the plain listener's triplets are pending for the configured 300 s.
        let records = try await storedRecords(dir)
        let zeroRecord = try #require(records.first { $0.triplet.sender == "zero@example.org" })
        #expect(zeroRecord.passedCount == 0 && zeroRecord.blockedCount == 2
                && zeroRecord.blockExpires - zeroRecord.firstSeen == 300)
        let victim = try #require(records.first { $0.triplet.sender == "victim@example.org" })
        #expect(victim.blockExpires - victim.firstSeen == 300)
        #expect(records.contains { $0.triplet.sender == "scope@example.org" && $0.triplet.network == "192.0.2.0/24" })
        #expect(!records.contains { $0.triplet.sender == Triplet.connectionMarker })
        let fresh = try #require(records.first { $0.triplet.sender == "fresh@example.org" })
        #expect(fresh.passedCount == 1)
    }

    @Test func anAddressInBothListsIsAConfigurationError() throws {
        let text = """
            [policy]
            listen = ["127.0.0.1:10023", "unix:/run/greylag/policy.sock"]
            helper_listen = ["unix:/run/greylag/policy.sock"]
            """
        #expect {
            _ = try ConfigurationLoader.parse(text, file: "/etc/greylag.toml")
        } throws: { error in
            "\(error)".contains("policy.helper_listen") && "\(error)".contains("is also in policy.listen")
        }
        let ok = try ConfigurationLoader.parse("[policy]\nhelper_listen = [\"unix:/run/greylag/policy.sock\"]\n",
                                               file: "/etc/greylag.toml")
        #expect(ok.policyHelperListeners == [.unix(path: "/run/greylag/policy.sock")])
        #expect(ok.policyListeners == [.tcp(host: "127.0.0.1", port: 10023)])
        var changed = ok
        changed.policyHelperListeners = []
        #expect(ConfigReloader.restartOnly(ok, changed) == ["policy.helper_listen"])
    }

    /// Without `helper_listen`, the helpers' default socket is served (and
    /// marked as the default, which may be skipped); `[]` serves none; a
    /// `policy.listen` that has it already keeps it a plain listener.
    @Test func theHelpersDefaultSocketAndItsKeys() throws {
        let none = try ConfigurationLoader.parse("", file: "/etc/greylag.toml")
        #expect(none.policyHelperListeners == [.unix(path: "/run/greylag/policy.sock")])
        #expect(none.helperListenIsDefault && none.helperSocketMode == 0o660)
        #expect(none.helperSocketGroup == (getgrnam("nofiles") != nil ? "nofiles" : nil))
        #expect(ConfigurationLoader.defaults().policyHelperListeners == none.policyHelperListeners)
        let off = try ConfigurationLoader.parse("[policy]\nhelper_listen = []\n", file: "/etc/greylag.toml")
        #expect(off.policyHelperListeners.isEmpty && !off.helperListenIsDefault)
        let plain = try ConfigurationLoader.parse("[policy]\nlisten = [\"unix:/run/greylag/policy.sock\"]\n",
                                                  file: "/etc/greylag.toml")
        #expect(plain.policyHelperListeners.isEmpty)
        let keys = try ConfigurationLoader.parse("[policy]\nhelper_socket_mode = \"0600\"\nhelper_socket_group = \"\"\n",
                                                 file: "/etc/greylag.toml")
        #expect(keys.helperSocketMode == 0o600 && keys.helperSocketGroup == nil)
        #expect {
            _ = try ConfigurationLoader.parse("[policy]\nhelper_socket_group = \"no-such-group-here\"\n",
                                              file: "/etc/greylag.toml")
        } throws: { error in
            "\(error)".contains("policy.helper_socket_group") && "\(error)".contains("no group \"no-such-group-here\"")
        }
        var changed = none
        changed.helperSocketMode = 0o666
        #expect(ConfigReloader.restartOnly(none, changed) == ["policy.helper_socket_mode"])
    }

    /// Three senders that differ only after a NUL must not become one
    /// stored record: each request is refused, its connection closed, and
    /// nothing is stored; a clean request afterwards is stored as sent.
    @Test func sendersDifferingAfterANulAreNotStoredAsOne() async throws {
        let dir = TemporaryDirectory()
        let log = CapturedLog()
        try await withDaemon(configure: configure(dir), log: log) { addresses, _ in
            for address in addresses {
                for tail in ["one", "two", "three"] {
                    let c = try await PolicyTestClient(address)
                    let lines = rcptRequest(sender: "alice@example.org\u{0}\(tail)").map { "\($0.0)=\($0.1)\n" }
                    try await c.send(lines.joined() + "\n")
                    #expect(try await c.isClosedByServer(), "\(address) \(tail)")
                }
            }
            #expect(try await storedRecords(dir).isEmpty)
            let c = try await PolicyTestClient(addresses[0])
            #expect(try await c.ask(rcptRequest(sender: "alice@example.org")) == defer300)
        }
        #expect(log.all.filter { $0.contains("closing policy connection:") && $0.contains("\"sender\"") }.count == 6)
        let records = try await storedRecords(dir)
        #expect(records.map(\.triplet.sender) == ["alice@example.org"])
    }
}
