import Foundation
import GreylagCore
import GreylagServer
import Testing

/// `[spf]`, `[[dnslists]]`, `[selective]` and `greylist.dns_deadline` as the
/// loader reads them, and every mistake located by line and key.
@Suite struct DNSCheckConfigurationTests {
    let file = "/etc/greylag/greylag.toml"

    func errors(_ text: String) -> [String] { configurationErrors(text, file: file) }

    @Test func everythingReadAndDefaults() throws {
        let d = try ConfigurationLoader.parse("", file: file)
        #expect(!d.dns.isActive && d.dnsChecks.lists.isEmpty && d.dnsChecks.deadline == 2)
        #expect(d.dnsChecks.dynamicNames.origin == "builtin")
        let c = try ConfigurationLoader.parse("""
            [greylist]
            dns_deadline = 0.5

            [spf]
            keying = "Mechanism"

            [[dnslists]]
            zone = "List.DNSWL.example."
            weight = -5
            codes = ["127.0.[0..255].[2..3]"]

            [[dnslists]]
            zone = "dbl.example"
            kind = "sender"
            weight = 3
            mask = 6

            [selective]
            enabled = true
            greylist_threshold = 2
            allow_threshold = -3
            reject_threshold = 8
            reject_code = "554 5.7.1"
            reject_text = "{client} is listed"
            suspect_unconfirmed_reverse = false
            suspect_dynamic_names = false
            """, file: file)
        #expect(c.dns.spfKeying == .mechanism)
        #expect(c.dns.selective && c.dns.greylistThreshold == 2 && c.dns.allowThreshold == -3 && c.dns.rejectThreshold == 8)
        #expect(!c.dns.suspectUnconfirmedReverse && !c.dns.suspectDynamicNames)
        #expect(c.dnsChecks.deadline == 0.5)
        #expect(c.dnsChecks.lists.count == 2)
        #expect(c.dnsChecks.lists[0].zone == "list.dnswl.example" && c.dnsChecks.lists[0].kind == .client)
        #expect(c.dnsChecks.lists[0].codes.counts([127, 0, 9, 3]) && !c.dnsChecks.lists[0].codes.counts([127, 0, 9, 4]))
        #expect(c.dnsChecks.lists[1].kind == .sender && c.dnsChecks.lists[1].codes.mask == 6)
        #expect(c.dnsChecks.rejectReply?.rejectCode == "554 5.7.1")
    }

    @Test func dynamicNamesFileReplacesTheShippedSetAndIsWatched() throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/greylag.toml"
        try "\\.pool\\.example\\.net$\n".write(toFile: dir.path + "/dyn", atomically: true, encoding: .utf8)
        let c = try ConfigurationLoader.parse("[selective]\nenabled = true\ndynamic_names_file = \"dyn\"\n", file: path)
        #expect(c.dnsChecks.dynamicNames.patterns.count == 1)
        #expect(c.dnsChecks.dynamicNames.matches("a.pool.example.net"))
        #expect(c.listFiles.contains(dir.path + "/dyn"))
        try "ok\n(broken\n".write(toFile: dir.path + "/bad", atomically: true, encoding: .utf8)
        let e = errors("[selective]\ndynamic_names_file = \"\(dir.path)/bad\"\n")
        #expect(e.count == 1 && e[0].contains("selective.dynamic_names_file") && e[0].contains("line 2"))
        let missing = errors("[selective]\ndynamic_names_file = \"/nonexistent/dyn\"\n")
        #expect(missing.count == 1 && missing[0].contains("cannot read"))
    }

    @Test func mistakesAreLocated() {
        let cases: [(String, String)] = [
            ("[spf]\nkeying = \"ip\"\n", ":2: spf.keying: \"ip\" is not \"off\", \"domain\" or \"mechanism\""),
            ("[spf]\nkey = 1\n", ":2: spf.key: unknown key"),
            ("[[dnslists]]\nzone = \"bad..zone\"\nweight = -1\n", ":2: dnslists[1].zone: \"bad..zone\" is not a DNS zone name"),
            ("[[dnslists]]\nzone = \"localhost\"\nweight = -1\n", "dnslists[1].zone: \"localhost\" is not a DNS zone name"),
            ("[[dnslists]]\nweight = -1\n", "dnslists[1]: needs a zone"),
            ("[[dnslists]]\nzone = \"a.example\"\nkind = \"ip\"\n", ":3: dnslists[1].kind: \"ip\" is not \"client\", \"sender\" or \"helo\""),
            ("[[dnslists]]\nzone = \"a.example\"\nweight = 1001\n", ":3: dnslists[1].weight: 1001 is out of range -1000...1000"),
            ("[[dnslists]]\nzone = \"a.example\"\ncodes = [\"127.0.0.[9..2]\"]\n", "dnslists[1].codes: \"127.0.0.[9..2]\" is not an answer pattern"),
            ("[[dnslists]]\nzone = \"a.example\"\ncodes = []\n", "dnslists[1].codes: must name at least one answer pattern"),
            ("[[dnslists]]\nzone = \"a.example\"\nmask = 256\n", "dnslists[1].mask: 256 is out of range 1...255"),
            ("[[dnslists]]\nzone = \"a.example\"\nlisted = true\n", "dnslists[1].listed: unknown key; expected one of zone, kind, weight, codes, mask"),
            ("[[dnslists]]\nzone = \"a.example\"\n\n[[dnslists]]\nzone = \"a.example\"\n",
             ":5: dnslists[2].zone: a.example is already a client list in dnslists[1]"),
            ("dnslists = 3\n", "dnslists: expected [[dnslists]] entries"),
            ("[selective]\nenabled = true\nallow_threshold = 1\n", "selective.allow_threshold: 1 must be below greylist_threshold (1)"),
            ("[selective]\nreject_threshold = -2\n", "selective.reject_threshold: -2 must be above allow_threshold (-1)"),
            ("[selective]\nenabled = true\ngreylist_threshold = 5\nreject_threshold = 3\n",
             "selective.reject_threshold: 3 must not be below greylist_threshold (5)"),
            ("[selective]\ngreylist_threshold = 100001\n", "selective.greylist_threshold: 100001 is out of range"),
            ("[selective]\nreject_code = \"450\"\n", "selective.reject_code: \"450\" is not a 5xx code"),
            ("[selective]\nreject_text = \"{nope}\"\n", "selective.reject_text: unknown placeholder {nope}"),
            ("[greylist]\ndns_deadline = 0\n", "greylist.dns_deadline: 0 is out of range 0.01...60 seconds"),
            ("[greylist]\ndns_deadline = \"3s\"\n\n[spf]\nkeying = \"domain\"\n",
             ":2: greylist.dns_deadline: the DNS deadline (3 s) must be at most half of store.timeout (5 s)"),
            ("[store]\ntimeout = 1\n\n[selective]\nenabled = true\n",
             "store.timeout: the DNS deadline (2 s) must be at most half of store.timeout (1 s)"),
        ]
        for (text, expected) in cases {
            let e = errors(text)
            #expect(e.count == 1 && e[0].contains(expected), "\(text): \(e)")
        }
        // The same timeout without any DNS check is fine.
        #expect(errors("[store]\ntimeout = 1\n").isEmpty)
    }
}
