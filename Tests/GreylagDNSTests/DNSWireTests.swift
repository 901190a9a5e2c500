@testable import GreylagDNS
import Testing

/// Builds response packets for the decoder's tests.
struct Packet {
    var bytes: [UInt8] = []

    mutating func u16(_ v: UInt16) { bytes += [UInt8(v >> 8), UInt8(v & 0xff)] }
    mutating func u32(_ v: UInt32) { bytes += [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)] }
    mutating func name(_ n: String) {
        for l in n.split(separator: ".") { bytes.append(UInt8(l.utf8.count)); bytes += Array(l.utf8) }
        bytes.append(0)
    }
    mutating func header(id: UInt16 = 0x1234, flags: UInt16 = 0x8180, qd: UInt16 = 1, an: UInt16 = 0, ns: UInt16 = 0) {
        u16(id); u16(flags); u16(qd); u16(an); u16(ns); u16(0)
    }
    mutating func record(_ n: [UInt8], type: UInt16, ttl: UInt32 = 300, data: [UInt8]) {
        bytes += n
        u16(type); u16(1); u32(ttl); u16(UInt16(data.count)); bytes += data
    }
}

@Suite struct DNSWireTests {
    @Test func queryHasTheQuestionRDAndEDNS() throws {
        let q = try DNSWire.query(id: 0xbeef, name: "Www.Example.ORG.", type: 16)
        #expect(Array(q[0..<12]) == [0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1])
        let qname: [UInt8] = [3] + Array("Www".utf8) + [7] + Array("Example".utf8) + [3] + Array("ORG".utf8) + [0]
        #expect(Array(q[12..<(12 + qname.count)]) == qname)
        #expect(Array(q[(12 + qname.count)...]) == [0, 16, 0, 1, 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0])
        #expect(q.count == 12 + qname.count + 4 + 11)
    }

    @Test func badNamesAreRefusedByTheEncoder() throws {
        for bad in ["", ".", "a..b", String(repeating: "a", count: 64) + ".com",
                    (0..<60).map { _ in "abcd" }.joined(separator: "."), "a b.com", "ex\u{e9}.com", "a\\9.com", "a\\300.b"] {
            #expect(throws: DNSWire.Error.self, "\(bad)") { try DNSWire.query(id: 1, name: bad, type: 1) }
        }
        #expect(try DNSWire.canonical("MiXed.Example.") == "mixed.example")
        #expect(try DNSWire.labels(of: "a\\046b.c") == [Array("a.b".utf8), Array("c".utf8)])
    }

    /// A response with every record type greylag reads, names compressed.
    @Test func decodesEveryTypeWithCompression() throws {
        var p = Packet()
        p.header(an: 7, ns: 1)
        p.name("Example.ORG")  // at 12
        p.u16(1); p.u16(1)
        let at12: [UInt8] = [0xc0, 12]
        p.record(at12, type: 1, ttl: 60, data: [192, 0, 2, 1])
        p.record(at12, type: 28, data: [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1])
        p.record(at12, type: 16, data: [3] + Array("abc".utf8) + [0] + [2] + Array("de".utf8))
        p.record(at12, type: 15, data: [0, 10, 2] + Array("mx".utf8) + [0xc0, 12])
        p.record(at12, type: 12, data: [4] + Array("HOST".utf8) + [0xc0, 12])
        p.record(at12, type: 5, data: [0xc0, 12])
        p.record(at12, type: 99, data: [1, 2, 3])  // a type greylag does not read
        p.record(at12, type: 6, ttl: 900, data: [0xc0, 12, 0xc0, 12] + Array(repeating: 0, count: 16) + [0, 0, 0, 42])
        let m = try DNSWire.decode(p.bytes)
        #expect(m.id == 0x1234 && m.isResponse && m.rcode == .noError && !m.truncated && m.recursionAvailable)
        #expect(m.question?.name == "example.org" && m.question?.type == 1)
        #expect(m.answers.map(\.data) == [
            .a([192, 0, 2, 1]), .aaaa([0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1]),
            .txt([Array("abc".utf8), [], Array("de".utf8)]), .mx(preference: 10, exchange: "mx.example.org"),
            .ptr("host.example.org"), .cname("example.org"), nil,
        ])
        #expect(m.answers.allSatisfy { $0.name == "example.org" })
        #expect(m.answers[0].ttl == 60)
        #expect(m.authority.first?.soaMinimum == 42 && m.authority.first?.ttl == 900)
    }

    @Test func oddBytesInLabelsAreEscaped() throws {
        var p = Packet()
        p.header(an: 1)
        p.bytes += [3, UInt8(ascii: "a"), UInt8(ascii: "."), 0xff, 0]
        p.u16(12); p.u16(1)
        p.record([0xc0, 12], type: 12, data: [2, 0x0a, UInt8(ascii: "B"), 0])
        let m = try DNSWire.decode(p.bytes)
        #expect(m.question?.name == "a\\046\\255")
        #expect(m.answers.first?.data == .ptr("\\010b"))
        // The escaped form reads back as the same bytes.
        #expect(try DNSWire.labels(of: "a\\046\\255") == [[UInt8(ascii: "a"), UInt8(ascii: "."), 0xff]])
    }

    static func malformed() -> [(String, [UInt8])] {
        var out: [(String, [UInt8])] = []
        out.append(("short header", [0x12, 0x34, 0x81]))
        var p = Packet()
        p.header()
        p.bytes += [0xc0, 12]  // a pointer to itself
        out.append(("self pointer", p.bytes))
        p = Packet()
        p.header()
        p.bytes += [0xc0, 14, 1, UInt8(ascii: "a"), 0xc0, 12]  // forward, then back to the start: a loop
        out.append(("pointer loop", p.bytes))
        p = Packet()
        p.header()
        p.bytes += [0x40, 1]
        out.append(("extended label type", p.bytes))
        p = Packet()
        p.header()
        for _ in 0..<5 { p.bytes += [63] + Array(repeating: UInt8(ascii: "a"), count: 63) }
        p.bytes += [0, 0, 1, 0, 1]
        out.append(("name over 255 bytes", p.bytes))
        p = Packet()
        p.header()
        p.bytes += [10, 1, 2]
        out.append(("label past the end", p.bytes))
        p = Packet()
        p.header(an: 1)
        p.name("a.b"); p.u16(1); p.u16(1)
        p.bytes += [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 1, 2, 3, 4]
        out.append(("rdlength past the end", p.bytes))
        p = Packet()
        p.header(an: 65535)
        p.name("a.b"); p.u16(1); p.u16(1)
        p.record([0xc0, 12], type: 1, data: [1, 2, 3, 4])
        out.append(("answer count that lies", p.bytes))
        p = Packet()
        p.header(an: 1)
        p.name("a.b"); p.u16(1); p.u16(1)
        p.record([0xc0, 12], type: 1, data: [1, 2, 3])
        out.append(("A of 3 bytes", p.bytes))
        p = Packet()
        p.header(an: 1)
        p.name("a.b"); p.u16(16); p.u16(1)
        p.record([0xc0, 12], type: 16, data: [5, 1, 2])
        out.append(("TXT string past its record", p.bytes))
        p = Packet()
        p.header(an: 1)
        p.name("a.b"); p.u16(12); p.u16(1)
        p.record([0xc0, 12], type: 12, data: [1, UInt8(ascii: "x")])  // the name runs into the next bytes
        p.bytes += [0]
        out.append(("PTR name past its record", p.bytes))
        p = Packet()
        p.header(an: 1)
        p.name("a.b"); p.u16(6); p.u16(1)
        p.record([0xc0, 12], type: 6, data: [0, 0, 1, 2])
        out.append(("short SOA", p.bytes))
        return out
    }

    @Test(arguments: malformed())
    func malformedPacketsAreErrors(_ name: String, _ bytes: [UInt8]) {
        #expect(throws: DNSWire.Error.self, "\(name)") { try DNSWire.decode(bytes) }
    }

    /// Pointers that go backwards in a chain are fine; 64 of them are the limit.
    @Test func pointerChainsAreBounded() throws {
        var p = Packet()
        p.header(qd: 1)
        var start = p.bytes.count
        p.bytes += [1, UInt8(ascii: "a"), 0]
        for _ in 0..<70 {
            let here = p.bytes.count
            p.bytes += [0xc0 | UInt8(start >> 8), UInt8(start & 0xff)]
            start = here
        }
        // The question is the last pointer: 70 jumps back.
        var q = Packet()
        q.header(qd: 1)
        q.bytes = Array(p.bytes[0..<12]) + Array(p.bytes[start...]) + Array(p.bytes[12..<start])
        #expect(throws: DNSWire.Error.self) { try DNSWire.decode(q.bytes) }
    }

    /// Random and mutated packets: errors or messages, never a trap, and quickly.
    @Test func randomBytesNeverTrap() throws {
        var rng = SystemRandomNumberGenerator()
        var p = Packet()
        p.header(an: 2, ns: 1)
        p.name("example.org"); p.u16(16); p.u16(1)
        p.record([0xc0, 12], type: 16, data: [3, 1, 2, 3])
        p.record([0xc0, 12], type: 5, data: [0xc0, 12])
        p.record([0xc0, 12], type: 6, data: [0xc0, 12, 0xc0, 12] + Array(repeating: 0, count: 20))
        for i in 0..<20_000 {
            var bytes: [UInt8]
            if i % 2 == 0 {
                bytes = p.bytes
                for _ in 0..<Int.random(in: 1...6, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            } else {
                bytes = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            }
            _ = try? DNSWire.decode(bytes)
        }
    }
}

/// The pure reading of answers: CNAME chains, negative TTLs, re-asking.
@Suite struct DNSAnswerChainTests {
    static let settings = DNSSettings(servers: [])

    static func message(rcode: UInt8 = 0, answers: [(String, UInt16, UInt32, [UInt8])], soa: (ttl: UInt32, minimum: UInt32)? = nil,
                        question: String = "a.example", type: UInt16 = 1) throws -> DNSWire.Message {
        var p = Packet()
        p.header(flags: 0x8180 | UInt16(rcode), an: UInt16(answers.count), ns: soa == nil ? 0 : 1)
        p.name(question); p.u16(type); p.u16(1)
        for (owner, t, ttl, data) in answers {
            var n = Packet(); n.name(owner)
            p.record(n.bytes, type: t, ttl: ttl, data: data)
        }
        if let soa {
            var n = Packet(); n.name("example")
            var d = Packet(); d.name("ns.example"); d.name("h.example")
            d.u32(1); d.u32(2); d.u32(3); d.u32(4); d.u32(soa.minimum)
            p.record(n.bytes, type: 6, ttl: soa.ttl, data: d.bytes)
        }
        return try DNSWire.decode(p.bytes)
    }

    static func target(_ n: String) -> [UInt8] { var p = Packet(); p.name(n); return p.bytes }

    @Test func chainsInsideTheAnswerAreFollowedWithTheSmallestTTL() throws {
        var chain = DNSAnswerChain(name: "a.example", type: .a, settings: Self.settings)
        let m = try Self.message(answers: [("a.example", 5, 600, Self.target("b.example")),
                                           ("b.example", 5, 30, Self.target("c.example")),
                                           ("c.example", 1, 300, [192, 0, 2, 1]), ("other.example", 1, 1, [192, 0, 2, 9])])
        #expect(chain.read(m) == .result(.records([.a([192, 0, 2, 1])]), seconds: 30))
    }

    @Test func loopsAndLongChainsAreMalformed() throws {
        var loop = DNSAnswerChain(name: "a.example", type: .a, settings: Self.settings)
        let m = try Self.message(answers: [("a.example", 5, 60, Self.target("b.example")), ("b.example", 5, 60, Self.target("a.example"))])
        #expect(loop.read(m) == .result(.failure(.malformed), seconds: 0))
        var long = DNSAnswerChain(name: "n0.example", type: .a, settings: Self.settings)
        let links = (0..<12).map { ("n\($0).example", UInt16(5), UInt32(60), Self.target("n\($0 + 1).example")) }
        #expect(long.read(try Self.message(answers: links, question: "n0.example")) == .result(.failure(.malformed), seconds: 0))
    }

    @Test func aChainLeavingTheAnswerIsAskedForAgain() throws {
        var chain = DNSAnswerChain(name: "a.example", type: .txt, settings: Self.settings)
        let first = try Self.message(answers: [("a.example", 5, 60, Self.target("elsewhere.example"))], type: 16)
        #expect(chain.read(first) == .ask("elsewhere.example"))
        #expect(chain.name == "elsewhere.example")
        let second = try Self.message(answers: [("elsewhere.example", 16, 600, [2, 0x68, 0x69])], question: "elsewhere.example", type: 16)
        #expect(chain.read(second) == .result(.records([.txt([Array("hi".utf8)])]), seconds: 60), "the CNAME's TTL counts")
    }

    @Test func negativeAnswersUseTheSOAPerRFC2308() throws {
        var a = DNSAnswerChain(name: "a.example", type: .a, settings: Self.settings)
        #expect(a.read(try Self.message(rcode: 3, answers: [], soa: (ttl: 900, minimum: 60))) == .result(.nxDomain, seconds: 60))
        var b = DNSAnswerChain(name: "a.example", type: .a, settings: Self.settings)
        #expect(b.read(try Self.message(answers: [], soa: (ttl: 40, minimum: 600))) == .result(.noData, seconds: 40))
        var c = DNSAnswerChain(name: "a.example", type: .a, settings: Self.settings)
        #expect(c.read(try Self.message(answers: [], soa: (ttl: 999_999, minimum: 999_999))) == .result(.noData, seconds: 10_800),
                "clamped to three hours")
        var d = DNSAnswerChain(name: "a.example", type: .a, settings: Self.settings)
        #expect(d.read(try Self.message(rcode: 3, answers: [])) == .result(.nxDomain, seconds: 0), "no SOA: not cached")
        var e = DNSAnswerChain(name: "a.example", type: .a, settings: Self.settings)
        #expect(e.read(try Self.message(answers: [("a.example", 1, 9_999_999, [1, 2, 3, 4])])) == .result(.records([.a([1, 2, 3, 4])]), seconds: 86_400),
                "clamped to one day")
    }
}
