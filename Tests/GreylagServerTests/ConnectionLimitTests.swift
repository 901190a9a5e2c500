import Foundation
import GreylagServer
import Testing

/// The cap on open MTA connections.
@Suite struct ConnectionLimitTests {
    @Test func connectionsOverTheCapAreClosedAtOnceWithOneWarning() async throws {
        let log = CapturedLog()
        try await withDaemon(configure: {
            $0.policyMaxConnections = 3
            $0.milterListeners = [.tcp(host: "127.0.0.1", port: 0)]
            $0.milterMaxConnections = 1
        }, log: log) { addresses, _ in
            var open: [PolicyTestClient] = []
            for _ in 0..<3 { open.append(try await PolicyTestClient(addresses[0])) }
            // Every one of the three is served.
            for (i, c) in open.enumerated() {
                #expect(try await c.ask(request(recipient: "r\(i)@example.net")) == defer300)
            }
            // The fourth and fifth are closed without an answer; one warning names the setting.
            for _ in 0..<2 {
                let over = try await PolicyTestClient(addresses[0])
                #expect(try await over.isClosedByServer())
            }
            let warnings = log.all.filter { $0.contains("refused: 3 connections are open, the limit set by policy.max_connections") }
            #expect(warnings.count == 1, "\(log.all)")
            // Closing one makes room again.
            open.removeFirst()
            var served = false
            for _ in 0..<50 where !served {
                try await Task.sleep(for: .milliseconds(20))
                let again = try await PolicyTestClient(addresses[0])
                served = try await again.ask(request(recipient: "again@example.net")) == defer300
            }
            #expect(served)
            // The milter listener has a cap of its own.
            let milter = try await PolicyTestClient(addresses[1])
            let overMilter = try await PolicyTestClient(addresses[1])
            #expect(try await overMilter.isClosedByServer())
            _ = milter
            #expect(log.contains("milter connection from"))
            #expect(open.count == 2)
        }
    }
}
