import Foundation
import GreylagCore
import GreylagServer
import GreylagStore
import Testing

/// A store whose decisions fail or stall, for the failure-mode paths.
final class BrokenStore: GreylistStore {
    enum Mode { case fail, hang, slow(Duration), hangAfter(Int) }
    let mode: Mode
    let inner: SQLiteStore
    private let lock = NSLock()
    private var decisions = 0

    init(_ mode: Mode, config: GreylagConfiguration) throws {
        self.mode = mode
        inner = try SQLiteStore(path: config.storePath)
    }

    struct Broken: Error {}

    func decide(_ triplet: Triplet, now: Int64, _ decide: @escaping @Sendable (TripletState) -> Decision,
                completion: @escaping @Sendable (Result<Decision, any Error>) -> Void) {
        let mode = self.mode, inner = self.inner
        let count = lock.withLock { decisions += 1; return decisions }
        Task {
            switch mode {
            case .fail:
                completion(.failure(Broken()))
                return
            case .hang: try? await Task.sleep(for: .seconds(30))
            case .slow(let d): try? await Task.sleep(for: d)
            case .hangAfter(let n): if count > n { try? await Task.sleep(for: .seconds(30)) }
            }
            inner.decide(triplet, now: now, decide, completion: completion)
        }
    }

    func record(for triplet: Triplet) async throws -> GreylistRecord? { try await inner.record(for: triplet) }
    func records(matching filter: RecordFilter, now: Int64) async throws -> [GreylistRecord] {
        try await inner.records(matching: filter, now: now)
    }
    func delete(_ triplet: Triplet) async throws -> Bool { try await inner.delete(triplet) }
    func expire(now: Int64, limit: Int) async throws -> Int { try await inner.expire(now: now, limit: limit) }
    func manualEntries() async throws -> [ManualEntry] { try await inner.manualEntries() }
    func addManualEntry(_ entry: ManualEntry) async throws -> ManualEntry { try await inner.addManualEntry(entry) }
    func removeManualEntry(list: ListKind, field: SelectorField, value: String) async throws -> Bool {
        try await inner.removeManualEntry(list: list, field: field, value: value)
    }
    func counts(now: Int64) async throws -> StoreCounts { try await inner.counts(now: now) }
    func importState(records: [GreylistRecord], clients: [ClientRecord]) async throws {
        try await inner.importState(records: records, clients: clients)
    }
    func exportRecords(after: Triplet?, limit: Int) async throws -> [GreylistRecord] {
        try await inner.exportRecords(after: after, limit: limit)
    }
    func exportClients(after: String?, limit: Int) async throws -> [ClientRecord] {
        try await inner.exportClients(after: after, limit: limit)
    }
    func addHistory(_ counts: [HistoryCount]) async throws {
        if case .fail = mode { throw Broken() }
        try await inner.addHistory(counts)
    }
    func history(since: Int64) async throws -> [HistoryCount] { try await inner.history(since: since) }
    func pruneHistory(before: Int64) async throws -> Int { try await inner.pruneHistory(before: before) }
    func waiting(by field: WaitingField, now: Int64, limit: Int) async throws -> [WaitingGroup] {
        try await inner.waiting(by: field, now: now, limit: limit)
    }
    func close() async throws { try await inner.close() }
}

extension BrokenStore: @unchecked Sendable {}

@Suite(.serialized) struct PolicyServerTests {
    @Test func defersThenPassesWithOneHeaderPerMessage() async throws {
        let clock = ManualClock()
        let log = CapturedLog()
        try await withDaemon(clock: clock, log: log) { addresses, _ in
            let client = try await PolicyTestClient(addresses[0])
            #expect(try await client.ask(rcptRequest())
                    == "action=DEFER_IF_PERMIT Greylisted, please try again in 300 seconds")
            clock.advance(100)
            #expect(try await client.ask(rcptRequest())
                    == "action=DEFER_IF_PERMIT Greylisted, please try again in 200 seconds")
            clock.advance(200)
            let pass = try #require(try await client.ask(rcptRequest(instance: "m2")))
            #expect(pass.hasPrefix("action=PREPEND X-Greylist: delayed 300 seconds by greylag-\(GreylagVersion.string) at "))
            #expect(pass.hasSuffix("; \(MailDate.format(epochSeconds: clock.now))"))
            // Same message, same recipient asked again (another policy lookup): no second header.
            #expect(try await client.ask(rcptRequest(instance: "m2")) == "action=DUNNO")
            #expect(try await client.ask(rcptRequest(instance: "m3")) == "action=DUNNO")
            // Non-RCPT states are not greylisted.
            var mail = rcptRequest(recipient: "")
            mail[1] = ("protocol_state", "MAIL")
            #expect(try await client.ask(mail) == "action=DUNNO")
        }
        #expect(log.contains("defer: client=192.0.2.7 network=192.0.2.0/24 sender=<alice@example.org> "
                             + "recipient=<bob@example.net> reason=new_triplet retry_in=300s via=policy"))
        #expect(log.contains("pass: client=192.0.2.7 network=192.0.2.0/24 sender=<alice@example.org> "
                             + "recipient=<bob@example.net> reason=delay_elapsed delayed=300s via=policy"))
    }

    @Test func manyPersistentConnectionsAtOnce() async throws {
        try await withDaemon { addresses, _ in
            try await withThrowingTaskGroup(of: Int.self) { group in
                for c in 0..<12 {
                    group.addTask {
                        let client = try await PolicyTestClient(addresses[0])
                        var answered = 0
                        for i in 0..<15 {
                            let reply = try await client.ask(rcptRequest(sender: "s\(c)-\(i)@example.org"))
                            if reply?.hasPrefix("action=DEFER_IF_PERMIT ") == true { answered += 1 }
                        }
                        return answered
                    }
                }
                var total = 0
                for try await n in group { total += n }
                #expect(total == 12 * 15)
            }
        }
    }

    /// Connections spread over several event loops decide one triplet
    /// together: the single store writer loses no update, with the writer
    /// on a loop (`normal`) and on its own thread (`full`).
    @Test(arguments: SQLiteStore.Synchronous.allCases)
    func connectionsOnSeveralLoopsShareOneWriter(_ synchronous: SQLiteStore.Synchronous) async throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/threads.db"
        let log = CapturedLog()
        let connections = 16, rounds = 10
        try await withDaemon(configure: {
            $0.threads = 3
            $0.synchronous = synchronous
            $0.storePath = path
        }, log: log) { addresses, _ in
            try await withThrowingTaskGroup(of: Int.self) { group in
                for c in 0..<connections {
                    group.addTask {
                        let client = try await PolicyTestClient(addresses[0])
                        var deferred = 0
                        for i in 0..<rounds {
                            // Distinct recipients (senders' digits are normalized away).
                            for recipient in ["bob@example.net", "c\(c)-\(i)@example.net"] {
                                let reply = try await client.ask(rcptRequest(sender: "shared@example.org",
                                                                             recipient: recipient))
                                if reply?.hasPrefix("action=DEFER_IF_PERMIT ") == true { deferred += 1 }
                            }
                        }
                        return deferred
                    }
                }
                var total = 0
                for try await n in group { total += n }
                #expect(total == connections * rounds * 2)
            }
        }
        #expect(log.contains("(synchronous \(synchronous.rawValue)); 3 threads;"))
        let store = try SQLiteStore(path: path)
        let shared = try #require(try await store.record(for: Triplet(network: "192.0.2.0/24", sender: "shared@example.org",
                                                                       recipient: "bob@example.net")))
        #expect(shared.blockedCount == Int64(connections * rounds))
        #expect(try await store.counts(now: 0).pending == Int64(connections * rounds + 1))
        try await store.close()
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await withDaemon { addresses, _ in
            let client = try await PolicyTestClient(addresses[0])
            func text(_ attributes: [(String, String)]) -> String {
                attributes.map { "\($0.0)=\($0.1)\n" }.joined() + "\n"
            }
            var noAddress = rcptRequest(client: "unknown")
            noAddress[3] = ("client_address", "")
            var mail = rcptRequest(sender: "m@example.org")
            mail[1] = ("protocol_state", "MAIL")
            // One write: a request decided without the store, one that needs it, and a MAIL stage.
            try await client.send(text(noAddress) + text(rcptRequest()) + text(mail) + text(noAddress))
            #expect(try await client.reply() == "action=DUNNO")
            #expect(try await client.reply() == "action=DEFER_IF_PERMIT Greylisted, please try again in 300 seconds")
            #expect(try await client.reply() == "action=DUNNO")
            #expect(try await client.reply() == "action=DUNNO")
        }
    }

    /// While a request waits for its decision, the requests after it wait
    /// in a bounded queue: past 64, only that connection is closed.
    @Test func requestsFarAheadOfAnAnswerCloseOnlyThatConnection() async throws {
        let log = CapturedLog()
        try await withDaemon(configure: { $0.storeTimeout = 10 },
                             store: { try BrokenStore(.hang, config: $0) }, log: log) { addresses, _ in
            let other = try await PolicyTestClient(addresses[0])
            let flood = try await PolicyTestClient(addresses[0])
            let request = rcptRequest().map { "\($0.0)=\($0.1)\n" }.joined() + "\n"
            try await flood.send(String(repeating: request, count: 70))
            #expect(try await flood.isClosedByServer())
            // A request decided without the store is still answered on the other one.
            try await other.send("request=smtpd_access_policy\nprotocol_state=MAIL\nclient_address=192.0.2.9\n\n")
            #expect(try await other.reply() == "action=DUNNO")
        }
        #expect(log.contains("closing policy connection: more than 64 requests sent ahead of answers"))
    }

    @Test func oversizedLineClosesOnlyThatConnection() async throws {
        let log = CapturedLog()
        try await withDaemon(log: log) { addresses, _ in
            let good = try await PolicyTestClient(addresses[0])
            let bad = try await PolicyTestClient(addresses[0])
            #expect(try await good.ask(rcptRequest()) != nil)
            try await bad.send("sender=" + String(repeating: "a", count: 9000))
            #expect(try await bad.isClosedByServer())
            #expect(try await good.ask(rcptRequest(sender: "x@example.org"))?.hasPrefix("action=DEFER_IF_PERMIT") == true)
        }
        #expect(log.contains("closing policy connection: line too long"))
    }

    @Test func garbageClosesTheConnection() async throws {
        let log = CapturedLog()
        try await withDaemon(log: log) { addresses, _ in
            let bad = try await PolicyTestClient(addresses[0])
            try await bad.send("\u{16}\u{3}\u{1}\u{0}binary junk\n\n")
            #expect(try await bad.isClosedByServer())
        }
        #expect(log.contains("closing policy connection: malformed attribute line"))
    }

    @Test func requestEndedByEOFIsAnsweredThenClosed() async throws {
        try await withDaemon { addresses, _ in
            let exim = try await PolicyTestClient(addresses[0])
            try await exim.send("client_address=192.0.2.7\nsender=a@example.org\nrecipient=b@example.net")
            exim.shutdownWrite()
            #expect(try await exim.reply() == "action=DEFER_IF_PERMIT Greylisted, please try again in 300 seconds")
            #expect(try await exim.isClosedByServer())
        }
    }

    @Test func storeFailurePassesByDefaultAndDefersWhenConfigured() async throws {
        let log = CapturedLog()
        try await withDaemon(store: { try BrokenStore(.fail, config: $0) }, log: log) { addresses, _ in
            let client = try await PolicyTestClient(addresses[0])
            #expect(try await client.ask(rcptRequest()) == "action=DUNNO")
        }
        #expect(log.contains("store degraded: "), "\(log.all)")
        #expect(log.contains("reason=store_unavailable"), "\(log.all)")
        try await withDaemon(configure: { $0.failureMode = .defer },
                             store: { try BrokenStore(.fail, config: $0) }) { addresses, _ in
            let client = try await PolicyTestClient(addresses[0])
            #expect(try await client.ask(rcptRequest())?.hasPrefix("action=DEFER_IF_PERMIT ") == true)
        }
    }

    @Test func hangingStoreIsAnsweredWithinTheTimeout() async throws {
        let log = CapturedLog()
        try await withDaemon(configure: { $0.storeTimeout = 0.3 },
                             store: { try BrokenStore(.hang, config: $0) }, log: log) { addresses, _ in
            let client = try await PolicyTestClient(addresses[0])
            let start = ContinuousClock.now
            #expect(try await client.ask(rcptRequest()) == "action=DUNNO")
            #expect(ContinuousClock.now - start < .seconds(5))
        }
        #expect(log.contains("decision not ready after 300 ms"))
    }

    /// A decision that needs no store finishes before its timeout would be
    /// armed, so it arms none; the next one, sent in the same packet, must
    /// still get its own.
    @Test func timeoutIsArmedAfterADecisionThatNeededNoStore() async throws {
        let lists = try ConfigurationLoader.parse("""
            [whitelist]
            builtin = false
            clients = ["203.0.113.0/24"]
            """, file: "t.toml").lists
        try await withDaemon(configure: { $0.storeTimeout = 0.3; $0.lists = lists },
                             store: { try BrokenStore(.hang, config: $0) }) { addresses, _ in
            let client = try await PolicyTestClient(addresses[0])
            let requests = [rcptRequest(client: "203.0.113.5"), rcptRequest()]
            try await client.send(requests.map { $0.map { "\($0.0)=\($0.1)\n" }.joined() + "\n" }.joined())
            #expect(try await client.reply() == "action=DUNNO")  // whitelisted
            let start = ContinuousClock.now
            #expect(try await client.reply() == "action=DUNNO")  // the failure mode, after 300 ms
            #expect(ContinuousClock.now - start >= .milliseconds(200))
            #expect(ContinuousClock.now - start < .seconds(5))
        }
    }

    /// A connection has one timeout timer, armed for the decision it was
    /// armed for: when it fires for an answered decision while a later one
    /// is awaited, that one still gets its whole timeout, then its answer.
    @Test func aLaterDecisionGetsItsWholeTimeout() async throws {
        try await withDaemon(configure: { $0.storeTimeout = 0.8 },
                             store: { try BrokenStore(.hangAfter(1), config: $0) }) { addresses, _ in
            let client = try await PolicyTestClient(addresses[0])
            #expect(try await client.ask(rcptRequest())?.hasPrefix("action=DEFER_IF_PERMIT ") == true)
            try await Task.sleep(for: .milliseconds(400))
            let start = ContinuousClock.now
            // The timer armed for the first decision fires in about 400 ms;
            // this one is due 800 ms after it was asked.
            #expect(try await client.ask(rcptRequest(sender: "other@example.org")) == "action=DUNNO")
            #expect(ContinuousClock.now - start >= .milliseconds(700))
            #expect(ContinuousClock.now - start < .seconds(5))
        }
    }

    @Test func shutdownFinishesTheQueryInFlight() async throws {
        try await withDaemon(store: { try BrokenStore(.slow(.milliseconds(600)), config: $0) }) { addresses, shutdown in
            let client = try await PolicyTestClient(addresses[0])
            try await client.send(rcptRequest().map { "\($0.0)=\($0.1)\n" }.joined() + "\n")
            try await Task.sleep(for: .milliseconds(150))
            await shutdown()
            #expect(try await client.reply() == "action=DEFER_IF_PERMIT Greylisted, please try again in 300 seconds")
            #expect(try await client.isClosedByServer())
        }
    }

    @Test func idleConnectionsAreClosed() async throws {
        try await withDaemon(configure: { $0.idleTimeout = 1 }) { addresses, _ in
            let idle = try await PolicyTestClient(addresses[0])
            #expect(try await idle.ask(rcptRequest()) != nil)
            let start = ContinuousClock.now
            #expect(try await idle.isClosedByServer())
            #expect(ContinuousClock.now - start >= .milliseconds(800))
        }
    }

    @Test func ipv6Listener() async throws {
        try await withDaemon(configure: { $0.policyListeners = [.tcp(host: "::1", port: 0)] }) { addresses, _ in
            let address = try #require(addresses.first)
            #expect(address.hasPrefix("[::1]:"))
            let client = try await PolicyTestClient(address)
            #expect(try await client.ask(rcptRequest(client: "2001:db8::25"))
                    == "action=DEFER_IF_PERMIT Greylisted, please try again in 300 seconds")
        }
    }

    @Test func unixSocketListener() async throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/policy.sock"
        try await withDaemon(configure: { $0.policyListeners = [.unix(path: path)]; $0.socketMode = 0o660 }) { addresses, _ in
            #expect(addresses == ["unix:\(path)"])
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.posixPermissions] as? Int) == 0o660)
            let client = try await PolicyTestClient("unix:\(path)")
            #expect(try await client.ask(rcptRequest())?.hasPrefix("action=DEFER_IF_PERMIT ") == true)
            // A second daemon must not steal the socket of a running one.
            let log = CapturedLog()
            await #expect(throws: (any Error).self) {
                try await withDaemon(configure: { $0.policyListeners = [.unix(path: path)] }, log: log) { _, _ in }
            }
            #expect(log.contains("another process is listening on \(path)"))
            #expect(try await client.ask(rcptRequest(sender: "again@example.org"))?.hasPrefix("action=DEFER_IF_PERMIT ") == true)
        }
        #expect(!FileManager.default.fileExists(atPath: path), "the socket file is removed at shutdown")
        // A socket file left behind by a crashed daemon is replaced.
        try leaveStaleSocket(at: path)
        try await withDaemon(configure: { $0.policyListeners = [.unix(path: path)] }) { addresses, _ in
            let client = try await PolicyTestClient(addresses[0])
            #expect(try await client.ask(rcptRequest())?.hasPrefix("action=") == true)
        }
    }
}

/// Binds a unix socket at `path` and closes it without removing the file,
/// as a killed process leaves it.
func leaveStaleSocket(at path: String) throws {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (i, b) in path.utf8.enumerated() { raw[i] = b }
    }
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard rc == 0 else { throw TestFailure("bind \(path) failed: errno \(errno)") }
}
