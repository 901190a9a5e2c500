import Foundation
@testable import GreylagDNS
import GreylagTestSupport
import Logging
import NIOPosix
import Testing

/// The client against a real authoritative server: nsd, started by
/// scripts/test.sh with the zones of Tests/Fixtures/dns and named by
/// `GREYLAG_TEST_DNS` (`127.0.0.1:PORT`). Without it a plain `swift test`
/// skips these; under `GREYLAG_E2E=1` they fail.
@Suite struct DNSClientNSDTests {
    static var server: DNSServerAddress? {
        ProcessInfo.processInfo.environment["GREYLAG_TEST_DNS"].flatMap(DNSServerAddress.parse)
    }

    static var problem: String? {
        server == nil ? "GREYLAG_TEST_DNS is not set to ADDRESS:PORT (scripts/test.sh starts nsd and sets it)" : nil
    }

    static var enabled: Bool { TestGate.e2e || problem == nil }

    static func client(edns: Bool = true) throws -> DNSClient {
        try TestGate.check("the client against nsd", problem: problem)
        return DNSClient(settings: DNSSettings(servers: [server!], timeout: 2), group: MultiThreadedEventLoopGroup.singleton,
                         logger: Logger(label: "dns-nsd-test"))
    }

    @Test(.enabled(if: !enabled)) func skippedWithoutNSD() {
        // Only here to say why the others did not run.
        print("DNSClientNSDTests skipped: \(Self.problem ?? "")")
    }

    @Test(.enabled(if: enabled)) func addressesAndMX() async throws {
        let c = try Self.client()
        #expect(await c.lookup("www.greylag.test", .a) == .records([.a([192, 0, 2, 10])]))
        #expect(await c.lookup("WWW.Greylag.Test.", .aaaa)
                == .records([.aaaa([0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [0x10])]))
        guard case .records(let two) = await c.lookup("dual.greylag.test", .a) else { Issue.record("no A records"); return }
        #expect(Set(two) == [.a([192, 0, 2, 11]), .a([192, 0, 2, 12])])
        guard case .records(let mx) = await c.lookup("greylag.test", .mx) else { Issue.record("no MX"); return }
        #expect(Set(mx) == [.mx(preference: 10, exchange: "mx1.greylag.test"), .mx(preference: 20, exchange: "mx2.greylag.test")])
    }

    @Test(.enabled(if: enabled)) func txtOfTwoStrings() async throws {
        let c = try Self.client()
        let r = await c.lookup("two.greylag.test", .txt)
        #expect(r == .records([.txt([Array("v=spf1 ip4:192.0.2.0/24 ".utf8), Array("-all".utf8)])]))
        #expect(r.recordsOrEmpty?.first?.joinedText == "v=spf1 ip4:192.0.2.0/24 -all")
    }

    /// 16 TXT records, over 1232 bytes: nsd sets TC over UDP, the client asks again over TCP.
    @Test(.enabled(if: enabled)) func truncatedAnswersComeOverTCP() async throws {
        let c = try Self.client()
        guard case .records(let records) = await c.lookup("big.greylag.test", .txt) else {
            Issue.record("no TXT records for big.greylag.test")
            return
        }
        #expect(records.count == 16)
        #expect(records.compactMap(\.joinedText).allSatisfy { $0.hasPrefix("greylag test record number ") })
    }

    @Test(.enabled(if: enabled)) func negativeAnswers() async throws {
        let c = try Self.client()
        #expect(await c.lookup("nothing-here.greylag.test", .a) == .nxDomain)
        #expect(await c.lookup("textonly.greylag.test", .a) == .noData)
        #expect(await c.lookup("www.greylag.test", .txt) == .noData)
        // Both cached (SOA minimum 60 s): asking again gives the same.
        #expect(await c.lookup("nothing-here.greylag.test", .a) == .nxDomain)
        #expect(c.cachedEntries == 3)
        // A name in no zone nsd serves: REFUSED.
        #expect(await c.lookup("example.invalid", .a) == .failure(.refused))
    }

    @Test(.enabled(if: enabled)) func cnameChains() async throws {
        let c = try Self.client()
        #expect(await c.lookup("alias1.greylag.test", .a) == .records([.a([192, 0, 2, 10])]))
        #expect(await c.lookup("alias1.greylag.test", .aaaa)
                == .records([.aaaa([0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [0x10])]))
        #expect(await c.lookup("dangling.greylag.test", .a) == .nxDomain)
        #expect(await c.lookup("toname.greylag.test", .a) == .noData)
        #expect(await c.lookup("toname.greylag.test", .txt) == .records([.txt([Array("no address here".utf8)])]))
    }

    @Test(.enabled(if: enabled)) func reverseNames() async throws {
        let c = try Self.client()
        for i in 10...18 {
            #expect(await c.lookup("\(i).0.0.127.in-addr.arpa", .ptr) == .records([.ptr("host\(i).greylag.test")]))
            #expect(await c.lookup("host\(i).greylag.test", .a) == .records([.a([127, 0, 0, UInt8(i)])]))
        }
        #expect(await c.lookup("19.0.0.127.in-addr.arpa", .ptr) == .records([.ptr("liar.greylag.test")]))
        #expect(await c.lookup("liar.greylag.test", .a) == .records([.a([192, 0, 2, 99])]), "does not resolve back")
        #expect(await c.lookup("20.0.0.127.in-addr.arpa", .ptr) == .nxDomain)
    }
}
