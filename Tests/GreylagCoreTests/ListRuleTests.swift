import Foundation
import GreylagCore
import Testing

/// A query with the fields rules look at.
func subject(client: String = "198.51.100.9", name: String = "", helo: String = "",
             from sender: String = "someone@elsewhere.example", to recipient: String = "user@local.example") -> MatchSubject {
    MatchSubject(GreylistQuery(clientAddress: client, clientName: name, heloName: helo, sender: sender, recipient: recipient))
}

/// The origin of the rule of `set` that matches `s`, or nil.
func matched(_ set: RuleSet, _ s: MatchSubject, now: Int64 = 0) -> String? {
    set.firstMatch(s, now: now)?.text
}

func rules(_ field: SelectorField, _ values: String...) throws -> RuleSet {
    RuleSet(try values.enumerated().map { try ListRule(field: field, text: $0.element, origin: "test:\($0.offset + 1)") })
}

@Suite struct SelectorTests {
    @Test(arguments: [
        // (network, address, matches)
        ("192.0.2.0/24", "192.0.2.0", true), ("192.0.2.0/24", "192.0.2.255", true),
        ("192.0.2.0/24", "192.0.3.0", false), ("192.0.2.0/24", "192.0.1.255", false),
        ("192.0.2.7", "192.0.2.7", true), ("192.0.2.7", "192.0.2.8", false),
        ("192.0.2.7/24", "192.0.2.200", true),  // host bits cleared
        ("192.0.2", "192.0.2.77", true), ("10.1", "10.1.200.3", true), ("10.1", "10.2.0.1", false),
        ("0.0.0.0/0", "203.0.113.1", true), ("0.0.0.0/0", "2001:db8::1", false),
        ("2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true),
        ("2001:db8::/32", "2001:db9::", false), ("2001:db8::/32", "2001:db7:ffff::1", false),
        ("2001:db8:0:1::/64", "2001:db8:0:1:ffff::1", true), ("2001:db8:0:1::/64", "2001:db8:0:2::1", false),
        ("2001:db8::8000:0/97", "2001:db8::8000:1", true), ("2001:db8::8000:0/97", "2001:db8::7fff:ffff", false),
        ("[2001:db8::]/48", "2001:db8:0:ffff::1", true), ("::1", "::1", true), ("::1", "::2", false),
        ("::ffff:192.0.2.0/120", "192.0.2.9", true),  // a mapped network is an IPv4 one
        ("192.0.2.0/24", "::ffff:192.0.2.9", true),   // and a mapped client an IPv4 client
        ("192.0.2.0/24", "2001:db8::c000:209", false),
    ])
    func clientNetworks(network: String, address: String, matches: Bool) throws {
        let set = try rules(.client, network)
        #expect((matched(set, subject(client: address)) != nil) == matches, "\(network) vs \(address)")
    }

    @Test(arguments: ["192.0.2.0/33", "2001:db8::/129", "192.0.2.256", "192.0.2.0/", "example.com", "1.2.3.4/24x", ""])
    func badNetworksAreRefused(text: String) {
        #expect(throws: ListSyntaxError.self) { try ListRule(field: .client, text: text, origin: "t") }
    }

    @Test(arguments: [
        // (pattern, name, matches)
        ("example.com", "example.com", true), ("example.com", "mx1.example.com", true),
        ("example.com", "a.b.example.com", true), ("example.com", "badexample.com", false),
        ("example.com", "example.com.evil.net", false), ("example.com", "EXAMPLE.COM.", true),
        (".example.com", "example.com", false), (".example.com", "mx.example.com", true),
        (".example.com", "notexample.com", false),
        ("=mx.example.com", "mx.example.com", true), ("=mx.example.com", "a.mx.example.com", false),
        ("=mx.example.com", "MX.Example.Com", true),
        (#"/^mx\d+\.example\.com$/"#, "mx12.example.com", true),
        (#"/^mx\d+\.example\.com$/"#, "mx.example.com", false),
        (#"/^mx\d+\.example\.com$/"#, "mx12.example.com.evil.net", false),
        (#"/^MX\d+\.EXAMPLE\.com$/"#, "mx3.example.com", true),       // case-insensitive
        ("/outbound/", "mail-outbound-7.example.net", true),           // unanchored, like postgrey
        (#"/^(mx|relay)\d*\.example\.org$/"#, "relay4.example.org", true),  // no prefilter, still right
        ("example.com", "", false),
    ])
    func clientNames(pattern: String, name: String, matches: Bool) throws {
        let set = try rules(.clientName, pattern)
        #expect((matched(set, subject(name: name)) != nil) == matches, "\(pattern) vs \(name)")
    }

    @Test func unknownClientNameNeverMatches() throws {
        let set = try rules(.clientName, "unknown", "/.*/")
        #expect(matched(set, subject(name: "unknown")) == nil)
        #expect(matched(set, subject(name: "")) == nil)
    }

    @Test func heloNamesUseTheirOwnField() throws {
        let set = try rules(.helo, "mail.example.net")
        #expect(matched(set, subject(helo: "mail.example.net")) != nil)
        #expect(matched(set, subject(name: "mail.example.net", helo: "other.example")) == nil)
    }

    @Test(arguments: [
        // (pattern, sender, matches)
        ("alice@example.org", "alice@example.org", true), ("alice@example.org", "<Alice@Example.ORG>", true),
        ("alice@example.org", "alice+news@example.org", true), ("alice@example.org", "malice@example.org", false),
        ("alice@example.org", "alice@sub.example.org", false),
        ("alice@example.org", "prvs=1234abcd=alice@example.org", true),  // BATV tag removed
        ("alice@", "alice@anywhere.example", true), ("alice@", "bob@anywhere.example", false),
        ("example.org", "x@example.org", true), ("example.org", "x@mail.example.org", true),
        ("example.org", "x@badexample.org", false), ("@example.org", "x@example.org", true),
        ("@example.org", "x@mail.example.org", false),
        (#"/^bounce-\d+@lists\./"#, "bounce-77@lists.example.org", true),
        (#"/^bounce-\d+@lists\./"#, "news@lists.example.org", false),
        ("<>", "", true), ("<>", "<>", true), ("<>", "x@example.org", false),
    ])
    func senders(pattern: String, sender: String, matches: Bool) throws {
        let set = try rules(.sender, pattern)
        #expect((matched(set, subject(from: sender)) != nil) == matches, "\(pattern) vs \(sender)")
    }

    @Test(arguments: [
        ("example.org", "x@example.org", true), ("example.org", "x@a.example.org", true),
        ("example.org", "x@example.org.evil", false), (".example.org", "x@example.org", false),
        ("=example.org", "x@a.example.org", false),
    ])
    func senderDomains(pattern: String, sender: String, matches: Bool) throws {
        let set = try rules(.senderDomain, pattern)
        #expect((matched(set, subject(from: sender)) != nil) == matches, "\(pattern) vs \(sender)")
    }

    @Test func recipientsAndTheirDomains() throws {
        let byAddress = try rules(.recipient, "postmaster@", "sales@local.example")
        #expect(matched(byAddress, subject(to: "postmaster@any.example")) == "postmaster@")
        #expect(matched(byAddress, subject(to: "Sales+EU@Local.Example")) == "sales@local.example")
        #expect(matched(byAddress, subject(to: "user@local.example")) == nil)
        let byDomain = try rules(.recipientDomain, "local.example")
        #expect(matched(byDomain, subject(to: "user@local.example")) != nil)
        #expect(matched(byDomain, subject(to: "user@notlocal.example")) == nil)
        // A recipient rule does not look at the sender.
        #expect(matched(byDomain, subject(from: "x@local.example", to: "user@other.example")) == nil)
    }

    @Test func badPatternsAreRefusedWithAReason() {
        for (field, text) in [(SelectorField.clientName, "/(unclosed/"), (.clientName, "a..b"), (.helo, "*.example.com"),
                              (.sender, "two words@example.org"), (.recipientDomain, ""), (.sender, "/[z-a]/")] {
            #expect(throws: ListSyntaxError.self, "\(field) \(text)") {
                try ListRule(field: field, text: text, origin: "t")
            }
        }
    }

    @Test func regexPrefilterKeepsTheLiteralTail() {
        #expect(RegexPatternProbe.suffix(#"^mx\d+\.example\.com$"#) == ".example.com")
        #expect(RegexPatternProbe.suffix(#"^a\.com$|^b\.net$"#) == nil)  // alternation: no prefilter
        #expect(RegexPatternProbe.suffix(#"example\.com\$"#) == nil)      // escaped $: not an anchor
        #expect(RegexPatternProbe.suffix(#"^mx[0-9]$"#) == nil)
        #expect(RegexPatternProbe.suffix(#"^ab?c$"#) == "c")
        #expect(RegexPatternProbe.suffix(#"(?i)^x\.org$"#) == nil)
        #expect(RegexPatternProbe.suffix(#"^(?:mail|mx)\d+\.example\.org$"#) == nil)  // alternation
        #expect(RegexPatternProbe.suffix(#"^(?:mail)\d+\.example\.org$"#) == ".example.org")
        #expect(RegexPatternProbe.prefix(#"^mx\d+\.example\.com$"#) == "mx")
        #expect(RegexPatternProbe.prefix(#"^mail-in\.x$"#) == "mail-in.x")
        #expect(RegexPatternProbe.prefix(#"^p?smtp"#) == nil)
        #expect(RegexPatternProbe.prefix(#"^smtps?\."#) == "smtp")
        #expect(RegexPatternProbe.prefix(#"^ab{2}"#) == "a")
        #expect(RegexPatternProbe.prefix(#"^\d+"#) == nil)
        #expect(RegexPatternProbe.prefix(#"mx\d+"#) == nil)
    }

    @Test(arguments: [
        (#"^smtps?\.example\.org$"#, "smtp.example.org", true), (#"^smtps?\.example\.org$"#, "smtps.example.org", true),
        (#"^ab{2}c"#, "abbc.example", true), (#"^p?smtp\d"#, "smtp1.example", true),
        (#"^mx\d+\.example\.com$"#, "xmx1.example.com", false),
    ])
    func prefiltersNeverHideAMatch(pattern: String, subject: String, matches: Bool) throws {
        #expect(try RegexPattern(pattern).matches(subject) == matches)
    }

    @Test func prefiltersNeverHideAMatchOverPostgreysOwnList() throws {
        // Every regex of the list postgrey ships, against names built to
        // match it: with and without the prefilters the answer is the same.
        let path = "/etc/postgrey/whitelist_clients"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        let names = ["ms-smtp-01.texas.rr.com", "mail3.telekom.de", "smtp12-g21.free.fr", "postfix1-g2.free.fr",
                     "odk.fdv.uni-lj.si", "mta1.siol.net", "psmtp9.wxs.nl", "smtp.x.wxs.nl", "m12-34.126.com",
                     "x.server.arvato-systems.de", "fallback12.mail.ru", "mx1.a.inode.at", "unrelated.example.net"]
        for line in text.split(separator: "\n") where line.hasPrefix("/") && line.hasSuffix("/") {
            let source = String(line.dropFirst().dropLast())
            let pattern = try RegexPattern(source)
            let plain = try Regex(source).ignoresCase()
            for name in names {
                #expect(pattern.matches(name) == ((try? plain.firstMatch(in: name)) != nil), "\(source) vs \(name)")
            }
        }
    }

    @Test func mostSpecificNetworkAndFieldOrderDecideWhichRuleIsReported() throws {
        let set = RuleSet([
            try ListRule(field: .recipient, text: "user@local.example", origin: "r"),
            try ListRule(field: .client, text: "198.51.100.0/24", origin: "wide"),
            try ListRule(field: .client, text: "198.51.100.9", origin: "narrow"),
        ])
        #expect(set.firstMatch(subject(), now: 0)?.origin == "narrow")
    }

    @Test func expiredRulesDoNotApply() throws {
        let set = RuleSet([try ListRule(field: .client, text: "198.51.100.9", origin: "m", expires: 100),
                           try ListRule(field: .client, text: "198.51.100.9", origin: "config")])
        #expect(set.firstMatch(subject(), now: 99)?.origin == "m")
        #expect(set.firstMatch(subject(), now: 100)?.origin == "config")
        #expect(RuleSet([try ListRule(field: .client, text: "198.51.100.9", origin: "m", expires: 100)])
            .firstMatch(subject(), now: 100) == nil)
    }
}

/// Exposes the regex prefilter for tests.
enum RegexPatternProbe {
    static func suffix(_ source: String) -> String? { (try? RegexPattern(source))?.requiredSuffix }
    static func prefix(_ source: String) -> String? { (try? RegexPattern(source))?.requiredPrefix }
}
