import Foundation
import GreylagCore
import GreylagPostgres
import GreylagServer
import PostgresNIO
import Testing

/// A PostgreSQL server for the shared-store tests, from
/// `GREYLAG_TEST_POSTGRES` (`host:port:user:password`, set by `scripts/test.sh`).
enum SharedPostgres {
    static var settings: PostgresStore.Settings? {
        guard let spec = ProcessInfo.processInfo.environment["GREYLAG_TEST_POSTGRES"], !spec.isEmpty else { return nil }
        let p = spec.split(separator: ":", maxSplits: 3).map(String.init)
        guard p.count == 4, let port = Int(p[1]) else { return nil }
        return PostgresStore.Settings(host: p[0], port: port, user: p[2], password: p[3], database: "greylag")
    }

    static var enabled: Bool { settings != nil }

    /// A fresh database for one test, dropped afterwards.
    static func withDatabase<T: Sendable>(_ body: @Sendable (PostgresStore.Settings) async throws -> T) async throws -> T {
        let base = try #require(settings)
        let name = "greylag_shared_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        try await run(base, "CREATE DATABASE \(name)")
        var s = base
        s.database = String(name)
        do {
            let result = try await body(s)
            try await run(base, "DROP DATABASE \(name) WITH (FORCE)")
            return result
        } catch {
            try? await run(base, "DROP DATABASE \(name) WITH (FORCE)")
            throw error
        }
    }

    static func run(_ s: PostgresStore.Settings, _ sql: String) async throws {
        let client = PostgresClient(configuration: .init(host: s.host, port: s.port, username: s.user,
                                                         password: s.password, database: s.database, tls: .disable))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            try await client.query(PostgresQuery(unsafeSQL: sql))
            group.cancelAll()
        }
    }
}

/// Two greylag daemons on one PostgreSQL database, as two MX hosts.
@Suite(.serialized, .enabled(if: SharedPostgres.enabled)) struct SharedStoreTests {
    @Test func aTripletDeferredByOneHostPassesOnTheOther() async throws {
        try await SharedPostgres.withDatabase { settings in
            let clock = ManualClock()
            try await withDaemon(configure: { $0.backend = .postgresql(settings) }, clock: clock) { mx1, _ in
                try await withDaemon(configure: { $0.backend = .postgresql(settings) }, clock: clock) { mx2, _ in
                    let c1 = try await PolicyTestClient(mx1[0])
                    let c2 = try await PolicyTestClient(mx2[0])
                    #expect(try await c1.ask(request()) == defer300)
                    clock.advance(150)
                    #expect(try await c2.ask(request())
                            == "action=DEFER_IF_PERMIT Greylisted, please try again in 150 seconds")
                    clock.advance(151)
                    let pass = try #require(try await c2.ask(request()))
                    #expect(pass.hasPrefix("action=PREPEND X-Greylist: delayed 301 seconds by greylag-"), "\(pass)")
                    #expect(try await c1.ask(request(recipient: "bob@example.net")) == "action=DUNNO")

                    // Both hosts decide one new triplet at the same moment: no update is lost.
                    let answers = try await withThrowingTaskGroup(of: [String?].self) { group in
                        for c in [c1, c2] {
                            group.addTask {
                                var out: [String?] = []
                                for _ in 0..<10 { out.append(try await c.ask(request(recipient: "race@example.net"))) }
                                return out
                            }
                        }
                        var all: [String?] = []
                        for try await a in group { all += a }
                        return all
                    }
                    #expect(answers.allSatisfy { $0?.hasPrefix("action=DEFER_IF_PERMIT ") == true })
                }
            }
            let store = try await PostgresStore(settings: settings)
            let record = try await store.record(for: Triplet(network: "192.0.2.0/24", sender: "alice@example.org",
                                                             recipient: "race@example.net"))
            #expect(record?.blockedCount == 20)
            try await store.close()
        }
    }
}
