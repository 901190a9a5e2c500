import GreylagBench
import NIOCore
import Testing

/// The policy load generator against the do-nothing responder: which
/// clients its triplets come from.
@Suite struct PolicyLoadGeneratorTests {
    func clients(ipv4Only: Bool) async throws -> [String] {
        let responder = try await DunnoResponder.start(host: "127.0.0.1", port: 0)
        defer { responder.close(promise: nil) }
        var options = PolicyLoadGenerator.Options()
        options.port = try #require(responder.localAddress?.port)
        options.connections = 4
        options.newShare = 1
        options.warmup = 0
        options.duration = 10
        options.maxRequests = 400
        options.ipv4Only = ipv4Only
        let report = try await PolicyLoadGenerator(options: options).run(keepTranscript: true)
        #expect(report.errors.isEmpty)
        #expect(report.transcript.allSatisfy { $0.action.lowercased() == "dunno" })
        return report.transcript.map(\.client)
    }

    @Test func mixesIPv6ClientsByDefault() async throws {
        let clients = try await clients(ipv4Only: false)
        #expect(clients.count >= 100)
        #expect(clients.contains { $0.contains(":") })
        #expect(clients.contains { !$0.contains(":") })
    }

    /// For servers that let IPv6 clients pass unexamined (gross): every
    /// triplet comes from an IPv4 client in the benchmark range.
    @Test func ipv4OnlySendsNoIPv6Client() async throws {
        let clients = try await clients(ipv4Only: true)
        #expect(clients.count >= 100)
        for client in clients {
            let octets = client.split(separator: ".").compactMap { UInt8($0) }
            #expect(octets.count == 4 && octets[0] == 198 && (octets[1] == 18 || octets[1] == 19), "\(client)")
        }
    }
}
