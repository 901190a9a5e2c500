import Foundation
import GreylagCore
@testable import GreylagStore
import Testing

/// Write-behind of what retries change without changing a state: the
/// decisions see every count at once, a crash loses nothing but counts and
/// times younger than the flush interval, and the states (first sighting,
/// block expiry, passed) are on disk before each answer.
@Suite struct RetryTouchesTests {
    let t0: Int64 = 1_700_000_000
    let engine: Engine = {
        var p = GreylistPolicy()
        p.retryWindow = 86_400
        p.passTTL = 30 * 86_400
        p.clientAutowhitelist = 3
        return Engine(policy: p)
    }()

    func decide(_ store: SQLiteStore, _ t: Triplet, at now: Int64) async throws -> Verdict {
        let engine = self.engine
        return try await store.decide(t, now: now) { engine.decide(t, state: $0, now: now) }.verdict
    }

    /// What a kill -9 would leave now: the database and its write-ahead log
    /// as they are on disk, copied aside and opened (which recovers the log).
    func crashImage(of path: String, in dir: TemporaryDirectory) async throws -> SQLiteStore {
        let copy = dir.path + "/crash-\(UUID().uuidString).db"
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        if FileManager.default.fileExists(atPath: path + "-wal") {
            try FileManager.default.copyItem(atPath: path + "-wal", toPath: copy + "-wal")
        }
        return try SQLiteStore(path: copy, flushInterval: .zero)
    }

    @Test func retriesAreCountedAtOnceButWrittenLater() async throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/greylag.db"
        let store = try SQLiteStore(path: path, flushInterval: .seconds(3600))
        let t = triplet(1)
        #expect(try await decide(store, t, at: t0).reason == .newTriplet)
        for i in 1...3 { #expect(try await decide(store, t, at: t0 + Int64(i)).reason == .tooEarly) }
        #expect(store.pendingTouches == 1)

        // The daemon sees the counts at once...
        var live = try #require(try await store.record(for: t))
        #expect(live.blockedCount == 4 && live.lastSeen == t0 + 3)
        // ...a crash now keeps the record the engine made, with the counts
        // of its last state change.
        var crashed = try await crashImage(of: path, in: dir)
        var after = try #require(try await crashed.record(for: t))
        #expect(after.firstSeen == t0 && after.blockExpires == t0 + 300 && after.recordExpires == t0 + 86_400)
        #expect(after.passedCount == 0 && after.blockedCount == 1 && after.lastSeen == t0)
        try await crashed.close()

        // The pass is a state change: written whole, with the counts so far.
        #expect(try await decide(store, t, at: t0 + 300).reason == .delayElapsed)
        #expect(store.pendingTouches == 0)
        crashed = try await crashImage(of: path, in: dir)
        after = try #require(try await crashed.record(for: t))
        #expect(after.passedCount == 1 && after.blockedCount == 4 && after.lastSeen == t0 + 300)
        #expect(after.recordExpires == t0 + 300 + 30 * 86_400)
        try await crashed.close()

        // Later passes of a known triplet only count and push the expiry on.
        #expect(try await decide(store, t, at: t0 + 400).reason == .knownTriplet)
        #expect(try await decide(store, t, at: t0 + 500).reason == .knownTriplet)
        live = try #require(try await store.record(for: t))
        #expect(live.passedCount == 3 && live.recordExpires == t0 + 500 + 30 * 86_400)
        crashed = try await crashImage(of: path, in: dir)
        after = try #require(try await crashed.record(for: t))
        #expect(after.passedCount == 1 && after.recordExpires == t0 + 300 + 30 * 86_400)
        try await crashed.close()

        // A flush writes them all.
        try await store.flush()
        #expect(store.pendingTouches == 0)
        crashed = try await crashImage(of: path, in: dir)
        #expect(try await crashed.record(for: t) == live)
        try await crashed.close()
        try await store.close()
    }

    /// The bound the README promises: with a flush interval of 1 s, nothing
    /// older than about a second is missing from the file.
    @Test func theTimerWritesWithinTheInterval() async throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/greylag.db"
        let store = try SQLiteStore(path: path, synchronous: .normal, flushInterval: .seconds(1))
        for i in 0..<50 { _ = try await decide(store, triplet(i), at: t0) }
        for i in 0..<50 { _ = try await decide(store, triplet(i), at: t0 + 10) }
        // Written by the timer within about a second; a loaded machine may
        // take longer to run it, so wait for it rather than for a fixed time.
        var waited = 0
        while store.pendingTouches > 0 && waited < 200 {
            try await Task.sleep(for: .milliseconds(50))
            waited += 1
        }
        #expect(store.pendingTouches == 0)
        let crashed = try await crashImage(of: path, in: dir)
        for i in 0..<50 {
            let r = try #require(try await crashed.record(for: triplet(i)))
            #expect(r.blockedCount == 2 && r.lastSeen == t0 + 10)
        }
        try await crashed.close()
        try await store.close()
    }

    @Test func closingWritesWhatIsPending() async throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/greylag.db"
        var store = try SQLiteStore(path: path, flushInterval: .seconds(3600))
        _ = try await decide(store, triplet(1), at: t0)
        _ = try await decide(store, triplet(1), at: t0 + 5)
        try await store.close()
        store = try SQLiteStore(path: path, flushInterval: .zero)
        let r = try #require(try await store.record(for: triplet(1)))
        #expect(r.blockedCount == 2 && r.lastSeen == t0 + 5)
        try await store.close()
    }

    /// A touch belongs to one generation of a record: deleted, or expired
    /// and started over, the record must not get the old counts back.
    @Test func aTouchNeverRevivesAReplacedRecord() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.path + "/greylag.db", flushInterval: .seconds(3600))
        let t = triplet(1)
        _ = try await decide(store, t, at: t0)
        _ = try await decide(store, t, at: t0 + 10)
        #expect(try await store.delete(t))
        #expect(try await decide(store, t, at: t0 + 20).reason == .newTriplet)
        try await store.flush()
        var r = try #require(try await store.record(for: t))
        #expect(r.firstSeen == t0 + 20 && r.blockedCount == 1)

        // Expired (past its retry window): a new generation.
        _ = try await decide(store, t, at: t0 + 30)
        #expect(try await decide(store, t, at: t0 + 20 + 86_401).reason == .newTriplet)
        try await store.flush()
        r = try #require(try await store.record(for: t))
        #expect(r.firstSeen == t0 + 20 + 86_401 && r.blockedCount == 1)
        try await store.close()
    }

    /// A client network's refresh waits in memory like a retry; its count of
    /// passed triplets is a state and is written at once, and restarts only
    /// if the expiry the refreshes moved on has passed.
    @Test func clientRefreshesLagButCountsDoNot() async throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/greylag.db"
        let store = try SQLiteStore(path: path, flushInterval: .seconds(3600))
        for i in 0..<3 {
            _ = try await decide(store, triplet(i), at: t0)
            #expect(try await decide(store, triplet(i), at: t0 + 300).reason == .delayElapsed)
        }
        let crashed = try await crashImage(of: path, in: dir)
        #expect(try await crashed.exportClients(after: nil, limit: 10).map(\.passedTriplets) == [3])
        try await crashed.close()
        #expect(try await decide(store, triplet(9), at: t0 + 400).reason == .clientAutowhitelisted)
        #expect(store.pendingTouches == 1)
        let clients = try await store.exportClients(after: nil, limit: 10)
        #expect(clients.map(\.lastSeen) == [t0 + 400])
        try await store.close()
    }

    /// A transaction that fails takes its touches back with it.
    @Test func aFailedTransactionUndoesItsTouches() {
        let touches = RetryTouches()
        let t = triplet(1)
        let r = GreylistRecord(triplet: t, firstSeen: t0, lastSeen: t0, blockExpires: t0 + 300, recordExpires: t0 + 86_400,
                               blockedCount: 1, passedCount: 0)
        var later = r
        later.blockedCount = 2
        later.lastSeen = t0 + 5
        touches.touch(later, row: 1)
        touches.end(committed: true)
        var latest = later
        latest.blockedCount = 3
        touches.touch(latest, row: 1)
        touches.touchClient("192.0.2.0/24", lastSeen: t0 + 6, expires: t0 + 100)
        touches.end(committed: false)
        #expect(touches.snapshot().applied(r) == later)
        #expect(touches.client("192.0.2.0/24") == nil)
        _ = touches.takeAll()
        touches.end(committed: false)
        #expect(touches.snapshot().applied(r) == later)
        #expect(touches.overLimit(0))
        _ = touches.takeAll()
        #expect(!touches.overLimit(0))  // the open transaction writes them all already
        touches.end(committed: true)
        #expect(touches.snapshot().applied(r) == r && touches.count == 0)
    }

    /// The timer writes a generation a chunk at a time; a chunk whose
    /// transaction fails is taken again, and what is touched meanwhile waits
    /// for the next generation.
    @Test func theTimerWritesInChunksAndLosesNoneOnAFailure() {
        let touches = RetryTouches()
        func record(_ i: Int) -> GreylistRecord {
            GreylistRecord(triplet: triplet(i), firstSeen: t0, lastSeen: t0 + 1, blockExpires: t0 + 300,
                           recordExpires: t0 + 86_400, blockedCount: 2, passedCount: 0)
        }
        for i in 0..<5_000 { touches.touch(record(i), row: Int64(i) + 1) }
        touches.end(committed: true)
        #expect(touches.tick())
        touches.touch(record(9_999), row: 10_000)  // the next generation
        touches.end(committed: true)
        var written = Set<Triplet>()
        var chunk = touches.takeChunk(2_000)
        #expect(chunk.records.count == 2_000 && chunk.more)
        // Until its transaction is committed a chunk stays visible to
        // readers, whose read of the file may not show it yet.
        #expect(touches.count == 5_001)
        let bare = GreylistRecord(triplet: chunk.records[0].0, firstSeen: t0, lastSeen: t0, blockExpires: t0 + 300,
                                  recordExpires: t0 + 86_400, blockedCount: 1, passedCount: 0)
        #expect(touches.snapshot().applied(bare).blockedCount == 2)
        touches.end(committed: false)  // lost: taken again
        var rounds = 0
        repeat {
            chunk = touches.takeChunk(2_000)
            touches.end(committed: true)
            written.formUnion(chunk.records.map(\.0))
            rounds += 1
        } while chunk.more && rounds < 10
        #expect(written == Set((0..<5_000).map { triplet($0) }))
        #expect(rounds == 3)
        // The next tick hands over what was touched meanwhile.
        #expect(touches.tick())
        chunk = touches.takeChunk(2_000)
        #expect(chunk.records.map(\.0) == [triplet(9_999)] && !chunk.more)
        touches.end(committed: true)
        #expect(!touches.tick() && touches.count == 0)
    }
}
