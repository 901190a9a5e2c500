import Foundation
import GreylagCore
import GreylagServer
import Testing

/// The DNS checks end to end: the test Postfix asks greylag, greylag asks
/// the nsd that `scripts/test.sh` starts (GREYLAG_TEST_DNS) about the zones
/// in Tests/Fixtures/dns, and swaks sends from several loopback source
/// addresses: 127.0.1.x and 127.0.2.x are authorised by SPF for
/// pool.spf.greylag.test, 127.0.3.5 is on the DNSWL, 127.0.4.6 on the DNSBL.
@Suite(.serialized, .enabled(if: E2E.enabled)) struct DNSEndToEndTests {
    struct Setup {
        var smtpPort: String
        var policyPort: Int
        /// The test nsd, `127.0.0.1:PORT`.
        var dns: String
    }

    func setup() throws -> Setup {
        Setup(smtpPort: try E2E.value("GREYLAG_E2E_SMTP_PORT"),
              policyPort: try #require(Int(try E2E.value("GREYLAG_E2E_POLICY_PORT"))),
              dns: try E2E.value("GREYLAG_TEST_DNS"))
    }

    /// One SMTP transaction from `source`; its exit status and output.
    func send(_ s: Setup, from source: String, sender: String, to recipient: String) async throws -> (status: Int32, output: String) {
        try await runProgram("/usr/bin/swaks", ["--server", "127.0.0.1", "--port", s.smtpPort, "--local-interface", source,
                                                "--from", sender, "--to", recipient, "--timeout", "30"])
    }

    /// Runs a daemon on the policy port with `toml`, asking `servers` for
    /// DNS (`[dns]`): the daemon makes its own resolver and SPF evaluator.
    func withDNSDaemon(_ s: Setup, servers: [String], timeout: String = "1s", _ toml: String,
                       log: CapturedLog, _ body: @Sendable () async throws -> Void) async throws {
        let dns = "\n[dns]\nservers = [\(servers.map { "\"\($0)\"" }.joined(separator: ", "))]\ntimeout = \"\(timeout)\"\n"
        let config = try ConfigurationLoader.parse(toml + dns + "\n[exemptions]\ntrusted_networks = []\n", file: "e2e.toml")
        try await withDaemon(configure: { c in
            using(config)(&c)
            c.policyListeners = [.tcp(host: "127.0.0.1", port: s.policyPort)]
        }, clock: nil, log: log) { _, _ in try await body() }
    }

    @Test func poolRetryFromAnotherAuthorisedHostPassesAfterTheDelay() async throws {
        let s = try setup()
        let id = UUID().uuidString.prefix(8).lowercased()
        let sender = "news-\(id)@pool.spf.greylag.test"
        let recipient = "user-spf@example.net"
        let log = CapturedLog()
        try await withDNSDaemon(s, servers: [s.dns], """
            [greylist]
            delay = 2
            [spf]
            keying = "domain"
            """, log: log) {
            let first = try await send(s, from: "127.0.1.10", sender: sender, to: recipient)
            #expect(first.status != 0 && first.output.contains("Greylisted"), "\(first.output)")
            try await Task.sleep(for: .milliseconds(2500))
            // The retry comes from another /24 the same domain authorises (through another include).
            let retry = try await send(s, from: "127.0.2.20", sender: sender, to: recipient)
            #expect(retry.status == 0, "\(retry.output)")
            // A host the domain does not authorise starts its own triplet.
            let other = try await send(s, from: "127.0.5.5", sender: sender, to: recipient)
            #expect(other.status != 0 && other.output.contains("Greylisted"), "\(other.output)")
        }
        #expect(log.contains("defer: client=127.0.1.10 network=spf:pool.spf.greylag.test sender=<\(sender)>"), "\(log.all)")
        #expect(log.contains("pass: client=127.0.2.20 network=spf:pool.spf.greylag.test sender=<\(sender)>"), "\(log.all)")
        #expect(log.contains("reason=delay_elapsed"))
        #expect(log.contains("spf=pass"))
        #expect(log.contains("defer: client=127.0.5.5 network=127.0.5.0/24"), "\(log.all)")
    }

    @Test func dnswlClientPassesAtOnce() async throws {
        let s = try setup()
        let log = CapturedLog()
        try await withDNSDaemon(s, servers: [s.dns], """
            [greylist]
            delay = "5m"
            [[dnslists]]
            zone = "dnswl.greylag.test"
            weight = -5
            """, log: log) {
            let listed = try await send(s, from: "127.0.3.5", sender: "a@example.org", to: "user-wl@example.net")
            #expect(listed.status == 0, "\(listed.output)")
            // The error answer 127.255.255.255 is no listing: greylisted.
            let error = try await send(s, from: "127.0.3.9", sender: "a@example.org", to: "user-wl@example.net")
            #expect(error.status != 0 && error.output.contains("Greylisted"), "\(error.output)")
        }
        #expect(log.contains("pass: client=127.0.3.5 network=127.0.3.0/24 sender=<a@example.org> recipient=<user-wl@example.net> reason=dns_allowlisted zones=dnswl.greylag.test"), "\(log.all)")
    }

    @Test func selectiveModeGreylistsOnlyTheListedClient() async throws {
        let s = try setup()
        let log = CapturedLog()
        // Postfix finds no PTR names for 127.0.x.y here: reverse names are not judged in this test.
        try await withDNSDaemon(s, servers: [s.dns], """
            [greylist]
            delay = "5m"
            [selective]
            enabled = true
            suspect_unconfirmed_reverse = false
            suspect_dynamic_names = false
            [[dnslists]]
            zone = "dnsbl.greylag.test"
            weight = 1
            """, log: log) {
            let clean = try await send(s, from: "127.0.4.200", sender: "a@example.org", to: "user-sel@example.net")
            #expect(clean.status == 0, "\(clean.output)")
            let listed = try await send(s, from: "127.0.4.6", sender: "a@example.org", to: "user-sel@example.net")
            #expect(listed.status != 0 && listed.output.contains("Greylisted"), "\(listed.output)")
        }
        #expect(log.contains("pass: client=127.0.4.200 network=127.0.4.0/24 sender=<a@example.org> recipient=<user-sel@example.net> reason=not_suspicious"), "\(log.all)")
        #expect(log.contains("defer: client=127.0.4.6 network=127.0.4.0/24 sender=<a@example.org> recipient=<user-sel@example.net> reason=new_triplet retry_in=300s zones=dnsbl.greylag.test"), "\(log.all)")
    }

    @Test func deadDNSServerCostsAtMostTheDeadline() async throws {
        let s = try setup()
        // A loopback UDP port that never answers.
        let silent = try SilentUDPSocket()
        defer { silent.close() }
        let log = CapturedLog()
        try await withDNSDaemon(s, servers: ["127.0.0.1:\(silent.port)"], timeout: "5s", """
            [greylist]
            delay = "5m"
            dns_deadline = 1
            [spf]
            keying = "domain"
            [selective]
            enabled = true
            suspect_unconfirmed_reverse = false
            suspect_dynamic_names = false
            [[dnslists]]
            zone = "dnsbl.greylag.test"
            weight = 1
            """, log: log) {
            let clock = ContinuousClock()
            let start = clock.now
            let r = try await send(s, from: "127.0.4.6", sender: "a@pool.spf.greylag.test", to: "user-dead@example.net")
            let took = clock.now - start
            // Nothing could be checked: nothing makes the client suspicious, the mail passes.
            #expect(r.status == 0, "\(r.output)")
            #expect(took < .seconds(4), "the transaction took \(took)")
        }
        #expect(log.contains("reason=not_suspicious"), "\(log.all)")
        #expect(log.contains("spf=timeout skipped=dnsbl.greylag.test,spf"), "\(log.all)")
    }
}

/// A bound loopback UDP socket that reads nothing and answers nothing.
final class SilentUDPSocket: @unchecked Sendable {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        guard bound == 0 else {
            _ = Glibc.close(fd)
            throw TestFailure("bind: \(errno)")
        }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: addr.sin_port))
    }

    func close() { _ = Glibc.close(fd) }
}
