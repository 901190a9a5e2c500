import Foundation
import GreylagCore
import GreylagDNS
@testable import GreylagSPF
import Testing

/// A fixed zone: TXT records as strings, A/AAAA as addresses.
struct StaticZone: DNSResolving {
    var answers: [String: [DNSRecordType: DNSLookupResult]] = [:]

    mutating func txt(_ name: String, _ texts: String...) {
        answers[name, default: [:]][.txt] = .records(texts.map { .txt([Array($0.utf8)]) })
    }

    mutating func a(_ name: String, _ addresses: String...) {
        answers[name, default: [:]][.a] = .records(addresses.map { s in
            .a(s.split(separator: ".").map { UInt8($0)! })
        })
    }

    mutating func set(_ name: String, _ type: DNSRecordType, _ result: DNSLookupResult) {
        answers[name, default: [:]][type] = result
    }

    func lookup(_ name: String, _ type: DNSRecordType) async -> DNSLookupResult {
        var n = name.lowercased()
        if n.hasSuffix(".") { n.removeLast() }
        guard let byType = answers[n] else { return .nxDomain }
        return byType[type] ?? .noData
    }
}

func ip(_ s: String) -> IPAddress { IPAddress(s)! }

@Suite struct SPFMacroTests {
    func expand(_ macro: String, ip address: String = "192.0.2.3", sender: String = "strong-bad@email.example.com",
                domain: String = "email.example.com", explain: Bool = false) throws -> String {
        var evaluator = SPFEvaluator(resolver: StaticZone())
        evaluator.receivingHost = "mx.example.org"
        evaluator.clock = { 1_700_000_000 }
        let run = SPFRun(evaluator: evaluator, ip: ip(address), sender: sender, helo: "mail.example.net")
        let spec = try MacroString.parse(Array(macro.utf8)[...], explain: explain)
        return String(decoding: try run.expand(spec, domain: domain, explain: explain), as: UTF8.self)
    }

    /// RFC 7208 section 7.4, every example.
    @Test(arguments: [
        ("%{s}", "strong-bad@email.example.com"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
        ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
        ("%{h}", "mail.example.net"),
        ("%%%_%-", "% %20"),
        ("%{L}", "strong-bad"),
        ("%{d1000}", "email.example.com"),
    ])
    func rfcExamples(_ macro: String, _ want: String) throws {
        #expect(try expand(macro) == want)
    }

    @Test func ipv6() throws {
        #expect(try expand("%{ir}.%{v}._spf.%{d2}", ip: "2001:db8::cb01")
            == "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com")
        #expect(try expand("%{c}", ip: "2001:DB8::CB01", explain: true) == "2001:db8::cb01")
        #expect(try expand("%{i}", ip: "::ffff:192.0.2.3") == "192.0.2.3")
    }

    @Test func upperCaseIsURLEscaped() throws {
        #expect(try expand("%{S}", sender: "~jack&jill=up-a_b3.c@example.com") == "~jack%26jill%3Dup-a_b3.c%40example.com")
        #expect(try expand("%{L}", sender: "a b/c@example.com") == "a%20b%2Fc")
    }

    @Test func delimitersAndTransformers() throws {
        #expect(try expand("%{l2r+-}", sender: "foo-bar+zip+quux@example.com") == "bar.foo")
        #expect(try expand("%{l=}", sender: "a=b@example.com") == "a.b")
        #expect(try expand("%{l1}", sender: "a.b.c@example.com") == "c")
        #expect(try expand("%{o}", sender: "nolocal.example") == "nolocal.example")
        // A sender without a local part is postmaster's.
        #expect(try expand("%{l}", sender: "@example.com") == "postmaster")
        #expect(try expand("%{s}", sender: "@example.com") == "postmaster@example.com")
    }

    @Test func explanationOnlyLetters() throws {
        #expect(try expand("%{c} %{r} %{t}", explain: true) == "192.0.2.3 mx.example.org 1700000000")
        for letter in ["c", "r", "t"] {
            #expect(throws: SPFStop.self) { try expand("%{\(letter)}.example.com") }
        }
    }

    @Test(arguments: ["%", "%{", "%{d", "%{x}", "%{d0}", "%{d2r?}", "%a", "%{}", "a b", "\u{7F}", "é"])
    func badMacroStrings(_ text: String) {
        #expect(throws: SPFStop.self) { try expand(text) }
    }

    /// Section 4.8: a long expansion is cut from the left, label by label.
    @Test func truncatesTo253() throws {
        let evaluator = SPFEvaluator(resolver: StaticZone())
        let label = String(repeating: "a", count: 60)
        let sender = Array(repeating: label, count: 6).joined(separator: ".") + "@example.com"
        let run = SPFRun(evaluator: evaluator, ip: ip("192.0.2.1"), sender: sender, helo: "h.example")
        let spec = try MacroString.parseDomainSpec(Array("%{l}.example.com".utf8)[...])
        let name = try run.expandName(spec, domain: "example.com")
        #expect(name.utf8.count <= 253)
        #expect(name.hasSuffix(".example.com") && name.hasPrefix("aaa"))
        #expect(name == Array(repeating: label, count: 3).joined(separator: ".") + ".example.com")
    }

    @Test func hostileLengthsAreBounded() {
        var limits = SPFLimits()
        limits.expansionLength = 1_000
        let evaluator = SPFEvaluator(resolver: StaticZone(), limits: limits)
        let run = SPFRun(evaluator: evaluator, ip: ip("192.0.2.1"), sender: String(repeating: "x", count: 100_000) + "@a.example",
                         helo: String(repeating: "h", count: 100_000))
        #expect(run.sender.count <= 1_000)
        let spec = try! MacroString.parse(Array(String(repeating: "%{s}", count: 50).utf8)[...], explain: false)
        #expect(throws: SPFStop.self) { try run.expand(spec, domain: "a.example", explain: false) }
        #expect((try? run.expand(spec, domain: "a.example", explain: true))?.count == 1_000)
    }
}

@Suite struct SPFRecordTests {
    static let bad = [
        "v=spf1 foo", "v=spf1 all:x", "v=spf1 all/24", "v=spf1 -all.", "v=spf1 include", "v=spf1 include:",
        "v=spf1 include:example.com/24", "v=spf1 a:", "v=spf1 a:example", "v=spf1 a:example.", "v=spf1 a:1.2.3.4",
        "v=spf1 a:example.-com", "v=spf1 a/33", "v=spf1 a/032", "v=spf1 a//129", "v=spf1 a/24/64", "v=spf1 a/",
        "v=spf1 mx:", "v=spf1 ptr/24", "v=spf1 ptr:", "v=spf1 exists", "v=spf1 exists:", "v=spf1 exists:a.example/24",
        "v=spf1 ip4", "v=spf1 ip4:", "v=spf1 ip4:1.2.3", "v=spf1 ip4:1.2.3.4/33", "v=spf1 ip4:1.2.3.4//32",
        "v=spf1 ip4:1.2.3.4:25", "v=spf1 ip4:01.2.3.4", "v=spf1 ip4:1.2.3.4/", "v=spf1 ip6", "v=spf1 ip6:1.2.3.4",
        "v=spf1 ip6:::1/129", "v=spf1 ip6:[::1]", "v=spf1 ip6:::1%eth0", "v=spf1 ip6:1::2::3",
        "v=spf1 redirect=a.example redirect=b.example", "v=spf1 exp=a.example exp=b.example", "v=spf1 redirect=",
        "v=spf1 exp=", "v=spf1 =x", "v=spf1 1x=y", "v=spf1 foo=%", "v=spf1 foo=%{x}", "v=spf1 a:%{c}.example.com",
        "v=spf1 a\tmx", "v=spf1 a:ex\u{0}ample.com", "v=spf1 a:exämple.com", "v=spf1 +-all", "v=spf1 !all",
    ]

    @Test(arguments: bad)
    func syntaxErrors(_ text: String) {
        #expect(throws: SPFStop.self) { try SPFRecord.parse(Array(text.utf8)) }
    }

    static let good = [
        "v=spf1", "v=spf1 ", "v=spf1  -all  ", "V=SPF1 +ALL", "v=spf1 a mx ptr ?all", "v=spf1 a/24 mx//64 a/0//0",
        "v=spf1 a:foo:bar/baz.example.com", "v=spf1 a:e.example.com/24//64", "v=spf1 ip4:0.0.0.0/0 ip6:::/0",
        "v=spf1 ip6:2001:db8::/32 ip6:::ffff:1.2.3.4", "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d}",
        "v=spf1 include:_spf.example.net. -all", "v=spf1 a:%{d}", "v=spf1 a:x.123-45", "v=spf1 moo.cow-far_out=man:dog/cat",
        "v=spf1 default=deny", "v=spf1 exp=%{d}.explain.example", "v=spf1 a:foo%%.example", "v=spf1 a:foo.example%_",
    ]

    @Test(arguments: good)
    func validRecords(_ text: String) throws {
        _ = try SPFRecord.parse(Array(text.utf8))
    }

    @Test func selection() {
        #expect(SPFRecord.isSPF(Array("v=spf1".utf8)))
        #expect(SPFRecord.isSPF(Array("V=Spf1 -all".utf8)))
        #expect(!SPFRecord.isSPF(Array("v=spf10 -all".utf8)))
        #expect(!SPFRecord.isSPF(Array("v=spf1-all".utf8)))
        #expect(!SPFRecord.isSPF(Array(" v=spf1".utf8)))
        #expect(!SPFRecord.isSPF(Array("v=spf".utf8)))
    }

    @Test func dualCIDRAndText() throws {
        let r = try SPFRecord.parse(Array("v=spf1 -a:e.example.com/24//64 ~mx//48 ip4:192.0.2.0/24".utf8))
        #expect(r.directives.map(\.text) == ["-a:e.example.com/24//64", "~mx//48", "ip4:192.0.2.0/24"])
        guard case .a(_, let v4, let v6) = r.directives[0].mechanism, case .mx(nil, let m4, let m6) = r.directives[1].mechanism else {
            Issue.record("wrong mechanisms"); return
        }
        #expect((v4, v6, m4, m6) == (24, 64, 32, 48))
        #expect(r.directives.map(\.qualifier) == [.fail, .softfail, .pass])
    }
}

@Suite struct SPFEvaluationTests {
    @Test func passThroughIncludeNamesTheInnerMechanism() async {
        var z = StaticZone()
        z.txt("example.com", "v=spf1 include:_spf.example.net -all")
        z.txt("_spf.example.net", "v=spf1 ip4:192.0.2.0/24 ~all")
        let o = await SPFEvaluator(resolver: z).check(ip: ip("192.0.2.7"), mailFrom: "a@Example.COM", helo: "h.example")
        #expect(o.result == .pass)
        #expect(o.domain == "example.com")
        #expect(o.matched == SPFMatch(mechanism: "ip4:192.0.2.0/24", domain: "_spf.example.net"))
        #expect(o.authorization == SPFAuthorization(domain: "example.com", mechanism: "ip4:192.0.2.0/24 in _spf.example.net"))
        #expect(o.dnsLookups == 1)
        let other = await SPFEvaluator(resolver: z).check(ip: ip("198.51.100.1"), mailFrom: "a@example.com", helo: "h.example")
        #expect(other.result == .fail && other.authorization == nil)
        #expect(other.matched == SPFMatch(mechanism: "-all", domain: "example.com"))
    }

    @Test func nullSenderChecksHELO() async {
        var z = StaticZone()
        z.txt("mail.example.org", "v=spf1 a -all")
        z.a("mail.example.org", "192.0.2.9")
        let o = await SPFEvaluator(resolver: z).check(ip: ip("192.0.2.9"), mailFrom: "", helo: "mail.example.org")
        #expect(o.result == .pass && o.domain == "mail.example.org")
        #expect(await SPFEvaluator(resolver: z).check(ip: ip("192.0.2.9"), mailFrom: "<>", helo: "mail.example.org").result == .pass)
        #expect(await SPFEvaluator(resolver: z).check(ip: ip("192.0.2.9"), mailFrom: "", helo: "[192.0.2.9]").result == .none)
    }

    @Test func hugeIdentitiesAreNone() async {
        let e = SPFEvaluator(resolver: StaticZone())
        let long = String(repeating: "a.", count: 500_000) + "example.com"
        let o = await e.check(ip: ip("192.0.2.1"), mailFrom: "x@" + long, helo: long)
        #expect(o.result == .none && o.domain.utf8.count <= 256 && o.queries == 0)
        let helo = await e.check(ip: ip("192.0.2.1"), mailFrom: "<>", helo: long)
        #expect(helo.result == .none && helo.queries == 0)
    }

    @Test func explanation() async {
        var z = StaticZone()
        z.txt("example.com", "v=spf1 -all exp=why.%{d}")
        z.txt("why.example.com", "%{i} is not one of %{d}'s senders (%{l})")
        let o = await SPFEvaluator(resolver: z).check(ip: ip("192.0.2.1"), mailFrom: "joe@example.com", helo: "h.example")
        #expect(o.result == .fail)
        #expect(o.explanation == "192.0.2.1 is not one of example.com's senders (joe)")
    }

    @Test func dnsFailuresAreTemperror() async {
        var z = StaticZone()
        z.set("example.com", .txt, .failure(.timeout))
        #expect(await SPFEvaluator(resolver: z).check(ip: ip("192.0.2.1"), mailFrom: "a@example.com", helo: "h").result == .temperror)
        z.txt("example.com", "v=spf1 a:down.example.net -all")
        z.set("down.example.net", .a, .failure(.serverFailure))
        let o = await SPFEvaluator(resolver: z).check(ip: ip("192.0.2.1"), mailFrom: "a@example.com", helo: "h")
        #expect(o.result == .temperror && o.problem != nil)
        // A name the resolver refuses to ask about is treated as absent.
        z.txt("example.com", "v=spf1 a:%{h}.example.net -all")
        z.set("bad name.example.net", .a, .failure(.badName))
        #expect(await SPFEvaluator(resolver: z).check(ip: ip("192.0.2.1"), mailFrom: "a@example.com", helo: "bad name").result == .fail)
    }

    @Test func tenLookupLimit() async {
        var z = StaticZone()
        for k in 0..<12 { z.txt("l\(k).example.com", "v=spf1 include:l\(k + 1).example.com") }
        z.txt("l12.example.com", "v=spf1 +all")
        let o = await SPFEvaluator(resolver: z).check(ip: ip("192.0.2.1"), mailFrom: "a@l0.example.com", helo: "h")
        #expect(o.result == .permerror && o.dnsLookups == 11)
        z.txt("l2.example.com", "v=spf1 +all")
        #expect(await SPFEvaluator(resolver: z).check(ip: ip("192.0.2.1"), mailFrom: "a@l0.example.com", helo: "h").result == .pass)
        // A loop stops at the limit too.
        z.txt("loop.example.com", "v=spf1 redirect=loop.example.com")
        #expect(await SPFEvaluator(resolver: z).check(ip: ip("192.0.2.1"), mailFrom: "a@loop.example.com", helo: "h").result == .permerror)
    }

    @Test func voidLookupLimit() async {
        var z = StaticZone()
        z.txt("two.example.com", "v=spf1 a:n1.example.com exists:n2.example.com ?all")
        z.txt("three.example.com", "v=spf1 a:n1.example.com mx:n2.example.com exists:n3.example.com ?all")
        let two = await SPFEvaluator(resolver: z).check(ip: ip("192.0.2.1"), mailFrom: "a@two.example.com", helo: "h")
        #expect(two.result == .neutral && two.voidLookups == 2)
        let three = await SPFEvaluator(resolver: z).check(ip: ip("192.0.2.1"), mailFrom: "a@three.example.com", helo: "h")
        #expect(three.result == .permerror && three.voidLookups == 3)
    }

    @Test func mxAndPTRNameLimits() async {
        var z = StaticZone()
        z.txt("many.example.com", "v=spf1 mx -all")
        z.set("many.example.com", .mx, .records((0..<11).map { .mx(preference: 10, exchange: "mx\($0).example.com") }))
        #expect(await SPFEvaluator(resolver: z).check(ip: ip("192.0.2.1"), mailFrom: "a@many.example.com", helo: "h").result == .permerror)
        z.set("many.example.com", .mx, .records((0..<10).map { .mx(preference: 10, exchange: "mx\($0).example.com") }))
        z.a("mx9.example.com", "192.0.2.1")
        #expect(await SPFEvaluator(resolver: z).check(ip: ip("192.0.2.1"), mailFrom: "a@many.example.com", helo: "h").result == .pass)
        // Only the first ten PTR names are looked at.
        z.txt("ptr.example.com", "v=spf1 ptr -all")
        z.set("1.2.0.192.in-addr.arpa", .ptr, .records((0..<11).map { .ptr("h\($0).ptr.example.com") }))
        z.a("h10.ptr.example.com", "192.0.2.1")
        let eleventh = await SPFEvaluator(resolver: z).check(ip: ip("192.0.2.1"), mailFrom: "a@ptr.example.com", helo: "h")
        #expect(eleventh.result == .fail && eleventh.queries <= 1 + 1 + 10)
        z.a("h3.ptr.example.com", "192.0.2.1")
        #expect(await SPFEvaluator(resolver: z).check(ip: ip("192.0.2.1"), mailFrom: "a@ptr.example.com", helo: "h").result == .pass)
    }

    @Test func ipv6AndMappedClients() async {
        var z = StaticZone()
        z.txt("example.com", "v=spf1 ip6:2001:db8::/32 ip4:192.0.2.0/24 a//64 -all")
        z.set("example.com", .aaaa, .records([.aaaa([0x20, 0x01, 0x0d, 0xb9] + Array(repeating: 0, count: 11) + [1])]))
        let e = SPFEvaluator(resolver: z)
        #expect(await e.check(ip: ip("2001:db8:1::5"), mailFrom: "a@example.com", helo: "h").result == .pass)
        #expect(await e.check(ip: ip("::ffff:192.0.2.5"), mailFrom: "a@example.com", helo: "h").result == .pass)
        #expect(await e.check(ip: ip("2001:db9::77"), mailFrom: "a@example.com", helo: "h").result == .pass)
        #expect(await e.check(ip: ip("2001:db9:0:1::77"), mailFrom: "a@example.com", helo: "h").result == .fail)
    }

    /// A manual clock that each lookup moves on by 60 ms.
    final class ManualClock: @unchecked Sendable {
        private let lock = NSLock()
        private let start = ContinuousClock.now
        private var offset: Duration = .zero
        func advance(_ d: Duration) { lock.withLock { offset += d } }
        var now: ContinuousClock.Instant { lock.withLock { start.advanced(by: offset) } }
    }

    struct Slow: DNSResolving {
        var zone: StaticZone
        var clock: ManualClock
        func lookup(_ name: String, _ type: DNSRecordType) async -> DNSLookupResult {
            clock.advance(.milliseconds(60))
            return await zone.lookup(name, type)
        }
    }

    @Test func timeLimit() async {
        var z = StaticZone()
        for k in 0..<4 { z.txt("s\(k).example.com", "v=spf1 a:x\(k).example.com include:s\(k + 1).example.com") }
        z.txt("s4.example.com", "v=spf1 +all")
        for k in 0..<4 { z.a("x\(k).example.com", "198.51.100.1") }
        let clock = ManualClock()
        var e = SPFEvaluator(resolver: Slow(zone: z, clock: clock))
        e.now = { clock.now }
        let quick = await e.check(ip: ip("192.0.2.1"), mailFrom: "a@s0.example.com", helo: "h")
        #expect(quick.result == .pass && quick.queries == 9)
        var limits = SPFLimits()
        limits.time = .milliseconds(200)
        var slow = SPFEvaluator(resolver: Slow(zone: z, clock: clock), limits: limits)
        slow.now = { clock.now }
        let o = await slow.check(ip: ip("192.0.2.1"), mailFrom: "a@s0.example.com", helo: "h")
        // 60 ms a question: the fifth would start past 200 ms.
        #expect(o.result == .temperror && o.queries == 4)
        #expect(o.problem?.contains("longer than") == true)
    }

    @Test func multipleRecordsAndNone() async {
        var z = StaticZone()
        z.txt("two.example.com", "v=spf1 -all", "v=spf1 +all")
        z.txt("other.example.com", "google-site-verification=x")
        let e = SPFEvaluator(resolver: z)
        #expect(await e.check(ip: ip("192.0.2.1"), mailFrom: "a@two.example.com", helo: "h").result == .permerror)
        #expect(await e.check(ip: ip("192.0.2.1"), mailFrom: "a@other.example.com", helo: "h").result == .none)
        #expect(await e.check(ip: ip("192.0.2.1"), mailFrom: "a@missing.example.com", helo: "h").result == .none)
        #expect(await e.check(ip: ip("192.0.2.1"), mailFrom: "a@" + String(repeating: "x", count: 64) + ".example", helo: "h").result == .none)
    }
}

/// Random and garbled records and answers: every evaluation ends, within
/// the query cap, and nothing traps.
@Suite struct SPFRobustnessTests {
    struct Garble: DNSResolving {
        var seed: UInt64
        func lookup(_ name: String, _ type: DNSRecordType) async -> DNSLookupResult {
            var h: UInt64 = 0xCBF2_9CE4_8422_2325
            for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
            var rng = SplitMix(seed: seed ^ h ^ UInt64(type.rawValue))
            switch rng.next() % 8 {
            case 0: return .nxDomain
            case 1: return .noData
            case 2: return .failure(.timeout)
            default: break
            }
            switch type {
            case .txt:
                return .records((0..<(1 + Int(rng.next() % 2))).map { _ in .txt([Array(SPFRobustnessTests.record(&rng).utf8)]) })
            case .a: return .records([.a([192, 0, 2, UInt8(rng.next() % 4)])])
            case .aaaa: return .records([.aaaa([0x20, 1, 0xd, 0xb8] + Array(repeating: 0, count: 11) + [UInt8(rng.next() % 4)])])
            case .mx: return .records((0..<Int(1 + rng.next() % 12)).map { .mx(preference: 1, exchange: "m\($0).\(name)") })
            case .ptr: return .records((0..<Int(1 + rng.next() % 12)).map { .ptr("p\($0).example.com") })
            default: return .noData
            }
        }
    }

    static let pieces = ["v=spf1", " ", "  ", "a", "mx", "ptr", "all", "-all", "~all", "?", "+", "include:", "exists:", "redirect=",
                         "exp=", "ip4:", "ip6:", "192.0.2.0", "/24", "//64", "/", "::1", "%{", "%{i}", "%{ir}", "%{l1r-}",
                         "%{p}", "%{d2}", "%%", "%_", "}", "%", "x.example.com", ".", "=", ":", "\u{7}", "é", "\t",
                         String(repeating: "%{s}", count: 40), String(repeating: "a.", count: 200), "example.com"]

    static func record(_ rng: inout SplitMix) -> String {
        var s = rng.next() % 4 == 0 ? "" : "v=spf1 "
        for _ in 0..<Int(rng.next() % 12) { s += pieces[Int(rng.next() % UInt64(pieces.count))] }
        return s
    }

    @Test func randomRecordsNeverTrapAndStayBounded() async {
        let start = ContinuousClock.now
        var maxQueries = 0
        var seen = Set<SPFResult>()
        for seed in 0..<1_500 as Range<UInt64> {
            let e = SPFEvaluator(resolver: Garble(seed: seed))
            let address = seed % 3 == 0 ? ip("2001:db8::1") : ip("192.0.2.\(seed % 4)")
            let o = await e.check(ip: address, mailFrom: "x-\(seed)@r\(seed % 7).example.com", helo: "h\(seed).example.net")
            maxQueries = max(maxQueries, o.queries)
            seen.insert(o.result)
            #expect(o.dnsLookups <= 11 && o.voidLookups <= 3 && o.queries <= SPFLimits().queries)
            #expect((o.explanation?.utf8.count ?? 0) <= SPFLimits().explanationLength)
        }
        #expect(seen.count >= 5, "the garbling reaches most results: \(seen)")
        #expect(ContinuousClock.now - start < .seconds(60))
    }

    @Test func randomBytesAsRecords() {
        var rng = SplitMix(seed: 42)
        for _ in 0..<5_000 {
            let bytes = Array("v=spf1 ".utf8) + (0..<Int(rng.next() % 200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            _ = try? SPFRecord.parse(bytes)
            _ = try? MacroString.parse(bytes[...], explain: true)
        }
    }
}

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
