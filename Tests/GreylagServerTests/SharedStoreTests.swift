import Foundation
import GreylagCore
@testable import GreylagMariaDB
import GreylagPostgres
import GreylagServer
import GreylagStore
import GreylagTestSupport
import PostgresNIO
import Testing

/// The database servers for the shared-store tests, from
/// `GREYLAG_TEST_POSTGRES` and `GREYLAG_TEST_MARIADB`
/// (`host:port:user:password`, set by `scripts/test.sh`); MariaDB only in
/// builds with the MariaDB trait. Under `GREYLAG_E2E=1` every server is in
/// `available`, and one that cannot run fails its cases (see `TestGate`).
enum SharedServer: String, CaseIterable, Sendable, CustomStringConvertible, CustomTestStringConvertible {
    case postgresql, mariadb

    var description: String { rawValue }
    var testDescription: String { rawValue }

    var server: TestServer {
        switch self {
        case .postgresql: return .postgresql
        case .mariadb: return .mariadb
        }
    }

    /// Why the tests that use this server's settings cannot run, or nil.
    var problem: String? { server.problem() }

    /// The servers a test with settings runs against (all under GREYLAG_E2E=1).
    static var available: [SharedServer] { TestGate.cases(allCases, problem: \.problem) }

    /// The servers a plain run leaves out and why.
    static var skipped: String? { TestGate.skipped(allCases, problem: \.problem) }

    /// The test server's own database "greylag"; throws the reason when it
    /// cannot be used here.
    func base() throws -> GreylagConfiguration.Backend {
        let s = try server.requireSettings()
        switch self {
        case .postgresql:
            return .postgresql(PostgresStore.Settings(host: s.host, port: s.port, user: s.user, password: s.password))
        case .mariadb:
            return .mysql(MariaDBSettings(host: s.host, port: s.port, user: s.user, password: s.password))
        }
    }

    /// A fresh database for one test, dropped afterwards.
    func withDatabase<T: Sendable>(_ body: @Sendable (GreylagConfiguration.Backend) async throws -> T) async throws -> T {
        let base = try self.base()
        let name = "greylag_shared_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        try await Self.run(base, "CREATE DATABASE \(name)")
        let backend: GreylagConfiguration.Backend
        switch base {
        case .postgresql(var s):
            s.database = String(name)
            backend = .postgresql(s)
        case .mysql(var s):
            s.database = String(name)
            backend = .mysql(s)
        case .sqlite:
            throw TestFailure("not a server")
        }
        do {
            let result = try await body(backend)
            try await Self.run(base, "DROP DATABASE \(name)")
            return result
        } catch {
            try? await Self.run(base, "DROP DATABASE \(name)")
            throw error
        }
    }

    static func run(_ backend: GreylagConfiguration.Backend, _ sql: String) async throws {
        switch backend {
        case .postgresql(let s):
            let client = PostgresClient(configuration: .init(host: s.host, port: s.port, username: s.user,
                                                             password: s.password, database: s.database, tls: .disable))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                try await client.query(PostgresQuery(unsafeSQL: sql.hasPrefix("DROP DATABASE") ? sql + " WITH (FORCE)" : sql))
                group.cancelAll()
            }
        case .mysql(let s):
            #if MariaDB
            try await PolicyTestClient.offPool { try MariaDBConnection(s).run(sql) }
            #else
            throw MariaDBBackend.NotBuiltError()
            #endif
        case .sqlite:
            break
        }
    }

    /// A store on `backend`, outside any daemon.
    static func open(_ backend: GreylagConfiguration.Backend) async throws -> any GreylistStore {
        var config = GreylagConfiguration()
        config.backend = backend
        return try await GreylagDaemon.openStore(config, loop: nil)
    }
}

/// Two greylag daemons on one shared database, as two MX hosts.
@Suite(.serialized) struct SharedStoreTests {
    /// Reported as skipped, with the reason, when a plain `swift test` has
    /// no server; under GREYLAG_E2E=1 nothing is left out.
    @Test(.disabled(if: SharedServer.skipped != nil, Comment(rawValue: SharedServer.skipped ?? "")))
    func everyServerRuns() {
        #expect(SharedServer.available == SharedServer.allCases)
    }

    /// The `[store]` table of docs/shared-stores.md, pointed at the test's
    /// server and database: the example the docs give is what two hosts run.
    static func docsStore(_ server: SharedServer, _ backend: GreylagConfiguration.Backend) throws -> GreylagConfiguration {
        let (host, port, user, password, database): (String, Int, String, String?, String)
        switch backend {
        case .postgresql(let s): (host, port, user, password, database) = (s.host, s.port, s.user, s.password, s.database)
        case .mysql(let s): (host, port, user, password, database) = (s.host, s.port, s.user, s.password, s.database)
        case .sqlite: throw TestFailure("not a server")
        }
        var toml = try DocSnippets.snippet("shared-stores-toml")
        for (old, new) in [("backend = \"postgresql\"", "backend = \"\(server == .postgresql ? "postgresql" : "mysql")\""),
                           ("host = \"db.example.net\"", "host = \"\(host)\""), ("port = 5432 ", "port = \(port) "),
                           ("user = \"greylag\"", "user = \"\(user)\""), ("password = \"secret\"", "password = \"\(password ?? "")\""),
                           ("database = \"greylag\"", "database = \"\(database)\"")] {
            toml = try DocSnippets.replacingOnce(toml, old, new)
        }
        return try ConfigurationLoader.parse(toml, file: "docs/shared-stores.md")
    }

    @Test(arguments: SharedServer.available)
    func aTripletDeferredByOneHostPassesOnTheOther(server: SharedServer) async throws {
        try await server.withDatabase { backend in
            let docs = try Self.docsStore(server, backend)
            #expect(docs.backend == backend, "the docs' [store] table names the test database")
            let docsStore: @Sendable (inout GreylagConfiguration) -> Void = { c in
                c.backend = docs.backend
                c.storeTimeout = docs.storeTimeout
                c.failureMode = docs.failureMode
            }
            let clock = ManualClock()
            try await withDaemon(configure: docsStore, clock: clock) { mx1, _ in
                try await withDaemon(configure: docsStore, clock: clock) { mx2, _ in
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

                    // Both hosts decide one new triplet at the same moment,
                    // on several connections each: no update is lost.
                    let answers = try await withThrowingTaskGroup(of: [String?].self) { group in
                        for address in [mx1[0], mx2[0], mx1[0], mx2[0]] {
                            group.addTask {
                                let c = try await PolicyTestClient(address)
                                var out: [String?] = []
                                for _ in 0..<10 { out.append(try await c.ask(request(recipient: "race@example.net"))) }
                                return out
                            }
                        }
                        var all: [String?] = []
                        for try await a in group { all += a }
                        return all
                    }
                    #expect(answers.count == 40)
                    #expect(answers.allSatisfy { $0?.hasPrefix("action=DEFER_IF_PERMIT ") == true })
                }
            }
            let store = try await SharedServer.open(backend)
            let record = try await store.record(for: Triplet(network: "192.0.2.0/24", sender: "alice@example.org",
                                                             recipient: "race@example.net"))
            #expect(record?.blockedCount == 40)
            try await store.close()
        }
    }
}

/// A database outage under load, on a server of the test's own: killed,
/// then frozen (SIGSTOP, the slow-database case), each time brought back.
@Suite(.serialized, .enabled(if: E2E.enabled)) struct DatabaseOutageTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../..").standardized.path

    /// How to start, kill, restart, freeze and thaw one kind of server in
    /// `$1/db` on port `$2` (bash, with the repository's scripts/lib sourced).
    struct Server: Sendable {
        var start, kill, restart, freeze, thaw, stop: String
        var backend: @Sendable (Int) -> GreylagConfiguration.Backend
    }

    static func server(_ kind: SharedServer) -> Server {
        switch kind {
        case .postgresql:
            let pgctl = "runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D \"$1/db/data\""
            let all = "$(head -1 \"$1/db/data/postmaster.pid\") $(pgrep -P \"$(head -1 \"$1/db/data/postmaster.pid\")\")"
            return Server(start: "postgres_start \"$1/db\" \"$2\" outage-pw",
                          kill: "\(pgctl) -m immediate -w stop",
                          restart: "\(pgctl) -l \"$1/db/server2.log\" -w -o \"-c listen_addresses=127.0.0.1 -p $2 -k $1/db\" start",
                          freeze: "kill -STOP \(all)", thaw: "kill -CONT \(all)",
                          stop: "postgres_stop \"$1/db\"",
                          backend: { .postgresql(PostgresStore.Settings(host: "127.0.0.1", port: $0, user: "greylag",
                                                                          password: "outage-pw")) })
        case .mariadb:
            return Server(start: "mariadb_start \"$1/db\" \"$2\" outage-pw",
                          kill: "mariadb_kill \"$1/db\"",
                          restart: "mariadb_run \"$1/db\" \"$2\"",
                          freeze: "kill -STOP $(cat \"$1/db/mysqld.pid\")", thaw: "kill -CONT $(cat \"$1/db/mysqld.pid\")",
                          stop: "mariadb_stop \"$1/db\"",
                          backend: { .mysql(MariaDBSettings(host: "127.0.0.1", port: $0, user: "greylag",
                                                            password: "outage-pw")) })
        }
    }

    /// Runs a bash command with the test's arguments; output to a file in
    /// `dir`, not a pipe: a database server it starts would hold a pipe
    /// open for ever.
    ///
    /// The test process's descriptors above 2 are closed first: NIO's
    /// sockets are not close-on-exec, and a database server started here
    /// would otherwise keep the listening sockets of the daemons other tests
    /// run at the same moment, and their ports busy, for as long as it lives.
    static func bash(_ command: String, dir: String, port: Int) async throws {
        let args = ["/bin/bash", "-c", "\(closeInherited) \(lib) && \(command) >>\"$1/bash.out\" 2>&1",
                    "_", dir, String(port)]
        let status = try await PolicyTestClient.offPool { spawnAndWait(args) }
        guard status == 0 else {
            let output = (try? String(contentsOfFile: dir + "/bash.out", encoding: .utf8)) ?? ""
            throw TestFailure("\(command) failed: \(output)")
        }
    }

    static let lib = "source \(repository)/scripts/lib/postgres.sh && source \(repository)/scripts/lib/mariadb.sh"
    /// Closes every descriptor above standard error, whatever its number: a
    /// test process with many sockets open has listeners above 254 too.
    static let closeInherited = #"for fd in $(ls /proc/$$/fd); do if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi; done;"#

    /// One answer under load: what, how long, and in which phase it was asked.
    struct Answer: Sendable {
        var reply: String?
        var seconds: Double
        var phase: Int
    }

    /// Every kind of server: the suite runs only under GREYLAG_E2E=1, where
    /// one that cannot run (MariaDB without the trait) fails; it starts its
    /// servers itself and needs no setting.
    @Test(arguments: TestGate.cases(SharedServer.allCases, problem: { $0.server.problem(needsSetting: false) }))
    func answersKeepComingAndTheDaemonRecovers(kind: SharedServer) async throws {
        try TestGate.check("\(kind) outage test", problem: kind.server.problem(needsSetting: false))
        let server = Self.server(kind)
        let dir = TemporaryDirectory()
        chmod(dir.path, 0o755)
        let port = try freePort()
        try await Self.bash(server.start, dir: dir.path, port: port)
        defer {
            _ = spawnAndWait(["/bin/bash", "-c", "\(Self.closeInherited) \(Self.lib) && (\(server.thaw)) 2>/dev/null; \(server.stop)",
                              "_", dir.path, String(port)])
        }
        let log = CapturedLog()
        let phase = SharedCounter()
        try await withDaemon(configure: {
            $0.backend = server.backend(port)
            $0.storeTimeout = 1
        }, clock: nil, log: log) { addresses, _ in
            // Eight MTA connections ask for new triplets without pause.
            let load = Task {
                try await withThrowingTaskGroup(of: [Answer].self) { group in
                    for c in 0..<8 {
                        group.addTask {
                            let client = try await PolicyTestClient(addresses[0])
                            var out: [Answer] = []
                            var n = 0
                            while phase.count < 5 {
                                n += 1
                                let p = phase.count
                                let start = Date()
                                let reply = try await client.ask(request(recipient: "c\(c)-\(n)@example.net"))
                                out.append(Answer(reply: reply, seconds: Date().timeIntervalSince(start), phase: p))
                            }
                            return out
                        }
                    }
                    var all: [Answer] = []
                    for try await a in group { all += a }
                    return all
                }
            }
            /// The next phase starts with its command.
            func next(_ command: String?) async throws {
                phase.add()
                if let command { try await Self.bash(command, dir: dir.path, port: port) }
            }
            /// Waits until the daemon makes real decisions again.
            func recovered() async throws -> Bool {
                let c = try await PolicyTestClient(addresses[0])
                for i in 0..<60 {
                    if try await c.ask(request(recipient: "probe\(i)@example.net"))?.hasPrefix("action=DEFER_IF_PERMIT ") == true {
                        return true
                    }
                    try await Task.sleep(for: .milliseconds(250))
                }
                return false
            }
            try await Task.sleep(for: .seconds(1))
            try await next(server.kill)                        // phase 1: gone
            try await Task.sleep(for: .seconds(3))
            try await next(server.restart)                     // phase 2: back
            #expect(try await recovered(), "no real decision within 15 s after the database came back")
            try await next(server.freeze)                      // phase 3: hanging
            try await Task.sleep(for: .seconds(3))
            try await next(server.thaw)                        // phase 4: answering again
            #expect(try await recovered(), "no real decision within 15 s after the database woke up")
            try await next(nil)                                // phase 5: the load stops
            let answers = try await load.value
            let slowest = answers.map(\.seconds).max() ?? 0
            #expect(answers.allSatisfy { $0.reply != nil }, "a connection was closed")
            #expect(slowest < 2.5, "slowest answer \(slowest) s; the bound is store.timeout = 1 s")
            #expect(answers.allSatisfy { $0.reply == "action=DUNNO" || $0.reply?.hasPrefix("action=DEFER_IF_PERMIT ") == true })
            for p in [1, 3] {
                let inPhase = answers.filter { $0.phase == p }
                #expect(inPhase.count > 8, "phase \(p): \(inPhase.count) answers")
                // Answers asked just before the server went away may still be real.
                #expect(inPhase.filter { $0.reply == "action=DUNNO" }.count >= 8, "phase \(p): failure mode pass")
            }
            // Before the outage the decisions are real.
            let before = answers.filter { $0.phase == 0 }
            #expect(before.filter { $0.reply?.hasPrefix("action=DEFER_IF_PERMIT ") == true }.count >= before.count - 8,
                    "\(Dictionary(grouping: before, by: { $0.reply?.prefix(40) ?? "nil" }).mapValues(\.count))")
        }
        // One line per outage, not one per failed decision (a pool may
        // still fail a query or two just after it recovered).
        let degraded = log.all.filter { $0.hasPrefix("error store degraded: ") }
        #expect((2...4).contains(degraded.count), "\(degraded)")
        #expect(log.all.filter { $0.contains("store recovered after ") }.count >= 2)
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
