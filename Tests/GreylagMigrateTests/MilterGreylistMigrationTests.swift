import Foundation
import GreylagCore
import GreylagMigrate
import Testing

@Suite struct MilterGreylistMigrationTests {
    func migrated() throws -> Migration {
        try MilterGreylistConfig.migrate(try fixture("greylist.conf"), file: "greylist.conf")
    }

    @Test func globalSettingsMapToTheirKeys() throws {
        let m = try migrated()
        #expect(m.string("greylist", "delay") == "15m")
        #expect(m.string("greylist", "pass_ttl") == "3d")
        #expect(m.string("greylist", "retry_window") == "2d")
        #expect(m.integer("greylist", "ipv4_prefix") == 24)
        #expect(m.integer("greylist", "ipv6_prefix") == 64)
        #expect(m.integer("greylist", "client_autowhitelist") == 0)
        #expect(m.strings("milter", "listen") == ["unix:/var/milter-greylist/milter-greylist.sock"])
        #expect(m.string("milter", "socket_mode") == "0660")
        #expect(m.string("milter", "defer_text") == "Greylisting in action, please come back later")  // quiet
        #expect(m.string("milter", "reject_code") == "551 5.7.1")
        #expect(m.strings("policy", "listen") == [])
        #expect(m.followUps.contains("greylag import --config greylag.toml --format milter-greylist /var/milter-greylist/greylist.db"))
    }

    @Test func defaultsAreMilterGreylistsNotGreylags() throws {
        let m = try MilterGreylistConfig.migrate(Array("racl whitelist default\n".utf8), file: "g.conf")
        #expect(m.string("greylist", "delay") == "30m")
        #expect(m.string("greylist", "pass_ttl") == "1d")
        #expect(m.string("greylist", "retry_window") == "5d")
        #expect(m.integer("greylist", "ipv4_prefix") == 32)
        #expect(m.strings("milter", "listen") == ["unix:/var/milter-greylist/milter-greylist.sock"])
        #expect(m.string("milter", "defer_text") == "Greylisting in action, please come back in {hms}")
    }

    @Test func listsBecomeListFilesKeepingTheirComments() throws {
        let m = try migrated()
        #expect(m.strings("lists.broken_mta", "files") == ["broken_mta.list"])
        let text = try #require(m.listFiles.first(where: { $0.name == "broken_mta.list" })?.text)
        #expect(text.contains("client 12.5.136.141/32   # Southwest Airlines (unique sender)\n"))
        #expect(text.contains("client 64.233.160.0/19   # Google\n"))
        #expect(text.split(separator: "\n").filter { $0.hasPrefix("client ") }.count == 5)
        let grey = try #require(m.listFiles.first(where: { $0.name == "grey_users.list" })?.text)
        #expect(grey.contains("recipient user1@example.com\n"))
        let network = try #require(m.listFiles.first(where: { $0.name == "my_network.list" })?.text)
        #expect(network.contains("client 127.0.0.1/8\n") && network.contains("client 192.0.2.0/24\n"))
    }

    @Test func aclsBecomeRulesInOrder() throws {
        let m = try migrated()
        let r = m.rules
        #expect(r.count == 8)  // racl greylist default: what greylag does when no rule matches
        #expect(r[0].value("lists") == .strings(["my_network"]) && r[0].value("action") == .string("whitelist"))
        #expect(r[1].value("lists") == .strings(["broken_mta"]))
        #expect(r[2].value("senders") == .strings(["friend@toto.com"]) && r[2].value("recipients") == .strings(["grandma@example.com"]))
        #expect(r[3].value("clients") == .strings(["203.0.113.0/24"]) && r[3].value("action") == .string("blacklist"))
        #expect(r[3].value("reject_text") == .string("Sender IP caught in our blacklist"))
        #expect(r[4].value("senders") == .strings(["/@spam\\.example$/"]))
        #expect(r[4].value("reject_code") == .string("554 5.7.1"))
        #expect(r[4].value("reject_text") == .string("No mail from {sender} to {recipient}"))
        #expect(r[5].value("lists") == .strings(["grey_users"]) && r[5].value("delay") == .string("1h")
                && r[5].value("pass_ttl") == .string("7d") && r[5].value("action") == .string("greylist"))
        #expect(r[6].value("recipients") == .strings(["jdoe@example.net"]) && r[6].value("delay") == .string("15m"))
        #expect(r[6].value("defer_text") == .string("Come back in {seconds} seconds (please)"))
        #expect(r[7].value("client_names") == .strings(["/friendly\\.com$/"]))  // suffix match, as without domainexact
        #expect(r[0].comments == ["greylist.conf:36: racl whitelist list \"my network\""])
    }

    @Test func everythingLeftOutIsNotedWithItsLine() throws {
        let m = try migrated()
        let lines = Set(m.notes.filter { $0.kind == .notCarriedOver }.map(\.line))
        // pidfile, dumpfile, dumpfreq, user, peer, dnsrbl statement, racl dnsrbl, racl not, racl time, after default
        for line in [4, 6, 7, 8, 17, 18, 41, 42, 45, 48] { #expect(lines.contains(line), "line \(line)") }
        #expect(m.notes(containing: "greylist.conf:41: not carried over: racl whitelist dnsrbl \"SORBS DUN\": dnsrbl: greylag does no DNSBL lookups").count == 1)
        #expect(m.notes(containing: "greylist.conf:48: not carried over: racl whitelist addr 198.51.100.1: never reached").count == 1)
        #expect(!m.notes(containing: "differs: from/rcpt addresses (lines 32, 33, 38, 44)").isEmpty)
        #expect(!m.notes(containing: "{ and } became ( and )").isEmpty)
    }

    @Test func domainexactKeepsNamesAsNames() throws {
        let m = try MilterGreylistConfig.migrate(Array("domainexact\nracl whitelist domain Friendly.com\n".utf8), file: "g")
        #expect(m.rules.first?.value("client_names") == .strings(["friendly.com"]))
    }

    @Test func plainStringsMatchAsSubstringsAsBefore() throws {
        let m = try MilterGreylistConfig.migrate(Array("racl whitelist from example.com\nracl greylist rcpt <@Example.NET>\nrcpt postmaster@\n".utf8), file: "g")
        // The old single-clause form goes to the head of the access list.
        #expect(m.rules.map { $0.value("senders") ?? $0.value("recipients") } == [
            .strings(["/postmaster@/"]), .strings(["/example\\.com/"]), .strings(["/@example\\.net/"]),
        ])
    }

    @Test func inlineListsInAClauseMatchAnyOfTheirValues() throws {
        let m = try MilterGreylistConfig.migrate(Array("racl whitelist addr { 192.0.2.1 198.51.100.0/24 } rcpt { a@example.net b@example.net }\nracl whitelist addr { 192.0.2.1\n".utf8), file: "g")
        #expect(m.rules.count == 1)
        #expect(m.rules.first?.value("clients") == .strings(["192.0.2.1", "198.51.100.0/24"]))
        #expect(m.rules.first?.value("recipients") == .strings(["a@example.net", "b@example.net"]))
        #expect(!m.notes(containing: "g:2: not carried over:").isEmpty)
    }
}
