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

/// A PostgreSQL outage under load, on a server of the test's own.
@Suite(.serialized, .enabled(if: SharedPostgres.enabled && E2E.enabled)) struct PostgresOutageTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../..").standardized.path

    /// Runs a bash command with the test's arguments; output to a file in
    /// `dir`, not a pipe: the PostgreSQL server it starts would hold a pipe
    /// open for ever.
    func bash(_ command: String, dir: String, port: Int) async throws {
        let args = ["/bin/bash", "-c", "source \(Self.repository)/scripts/lib/postgres.sh && \(command) >>\"$1/bash.out\" 2>&1",
                    "_", dir, String(port)]
        let status = try await PolicyTestClient.offPool { spawnAndWait(args) }
        guard status == 0 else {
            let output = (try? String(contentsOfFile: dir + "/bash.out", encoding: .utf8)) ?? ""
            throw TestFailure("\(command) failed: \(output)")
        }
    }

    @Test func answersKeepComingAndTheDaemonRecovers() async throws {
        let dir = TemporaryDirectory()
        chmod(dir.path, 0o755)
        let port = try freePort()
        try await bash("postgres_start \"$1/pg\" \"$2\" outage-pw", dir: dir.path, port: port)
        defer {
            _ = spawnAndWait(["/bin/bash", "-c", "source \(Self.repository)/scripts/lib/postgres.sh && postgres_stop \"$1/pg\"",
                              "_", dir.path])
        }
        let settings = PostgresStore.Settings(host: "127.0.0.1", port: port, user: "greylag", password: "outage-pw",
                                              database: "greylag")
        let log = CapturedLog()
        try await withDaemon(configure: {
            $0.backend = .postgresql(settings)
            $0.storeTimeout = 1
        }, clock: nil, log: log) { addresses, _ in
            let c = try await PolicyTestClient(addresses[0])
            var n = 0
            func ask() async throws -> (String?, Double) {
                n += 1
                let start = Date()
                let reply = try await c.ask(request(recipient: "r\(n)@example.net"))
                return (reply, Date().timeIntervalSince(start))
            }
            #expect(try await ask().0?.hasPrefix("action=DEFER_IF_PERMIT ") == true)
            // The database goes away hard.
            let pgctl = "/usr/lib/postgresql/15/bin/pg_ctl"
            try await bash("runuser -u postgres -- \(pgctl) -D \"$1/pg/data\" -m immediate -w stop", dir: dir.path, port: port)
            for _ in 0..<5 {
                let (reply, seconds) = try await ask()
                #expect(reply == "action=DUNNO", "failure mode pass while the database is down")
                #expect(seconds < 2.5, "answered after \(seconds) s; the bound is store.timeout = 1 s")
            }
            // It comes back; the daemon reconnects by itself.
            try await bash("runuser -u postgres -- \(pgctl) -D \"$1/pg/data\" -l \"$1/pg/server2.log\" -w "
                           + "-o \"-c listen_addresses=127.0.0.1 -p $2 -k $1/pg\" start", dir: dir.path, port: port)
            var recovered = false
            for _ in 0..<60 where !recovered {
                if try await ask().0?.hasPrefix("action=DEFER_IF_PERMIT ") == true { recovered = true } else {
                    try await Task.sleep(for: .milliseconds(250))
                }
            }
            #expect(recovered, "no real decision within 15 s after the database came back")
        }
        #expect(log.contains("store failed, passing"))
    }
}

/// Runs a program with posix_spawn and waits for it with waitpid; its
/// standard streams are the test process's. (Foundation's Process did not
/// notice the exit of a shell whose grandchild, a PostgreSQL server, lives on.)
func spawnAndWait(_ args: [String]) -> Int32 {
    var pid: pid_t = 0
    var cArgs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
    cArgs.append(nil)
    defer { for a in cArgs { free(a) } }
    guard posix_spawn(&pid, args[0], nil, nil, cArgs, environ) == 0 else { return -1 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
}
