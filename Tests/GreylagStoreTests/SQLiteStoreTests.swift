import Foundation
import GreylagCore
import GreylagStore
import Testing

/// A fresh directory for one test's database, removed afterwards.
final class TemporaryDirectory {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "greylag-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

func triplet(_ i: Int, network: String = "192.0.2.0/24") -> Triplet {
    Triplet(network: network, sender: "sender\(i)@example.org", recipient: "rcpt@example.net")
}

/// The verdict of `t` at `now` with the default engine, its change written.
func decide(_ store: SQLiteStore, _ t: Triplet, at now: Int64) async throws -> Verdict {
    let engine = Engine()
    return try await store.decide(t, now: now) { engine.decide(t, state: $0, now: now) }.verdict
}

@Suite struct SQLiteStoreTests {
    let t0: Int64 = 1_700_000_000
    let engine = Engine()

    @Test func recordSurvivesAReopen() async throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/greylag.db"
        do {
            let store = try SQLiteStore(path: path)
            #expect(try await decide(store, triplet(1), at: t0).reason == .newTriplet)
            try await store.close()
        }
        let reopened = try SQLiteStore(path: path)
        let record = try #require(try await reopened.record(for: triplet(1)))
        #expect(record.firstSeen == t0)
        #expect(record.blockExpires == t0 + 300)
        #expect(record.recordExpires == t0 + 2 * 86_400)
        #expect(record.blockedCount == 1)
        #expect(record.passedCount == 0)
        #expect(record.origin == .auto)
        #expect(try await decide(reopened, triplet(1), at: t0 + 300).reason == .delayElapsed)
        #expect(try reopened.appliedMigrations() == ["v1: triplets and clients", "v2: manual list entries",
                                                    "v3: hourly history", "v4: triplets appended, found by a keyed hash"])
        try await reopened.close()
    }

    /// A retry that is still blocked is written with an UPDATE of its
    /// counters and time last seen only; a pass and a restart after expiry
    /// rewrite the whole record. Every field must come out as the engine set it.
    @Test func retriesUpdateTheRecordTheEngineMade() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.path + "/greylag.db")
        let t = triplet(7)
        #expect(try await decide(store, t, at: t0).reason == .newTriplet)
        #expect(try await decide(store, t, at: t0 + 60).reason == .tooEarly)
        #expect(try await decide(store, t, at: t0 + 120).reason == .tooEarly)
        var r = try #require(try await store.record(for: t))
        #expect([r.firstSeen, r.lastSeen, r.blockExpires, r.recordExpires, r.blockedCount, r.passedCount]
                == [t0, t0 + 120, t0 + 300, t0 + 2 * 86_400, 3, 0])
        #expect(try await decide(store, t, at: t0 + 400).reason == .delayElapsed)
        r = try #require(try await store.record(for: t))
        #expect([r.lastSeen, r.recordExpires, r.blockedCount, r.passedCount] == [t0 + 400, t0 + 400 + 36 * 86_400, 3, 1])
        // Expired: the record starts over in place.
        let later = t0 + 400 + 37 * 86_400
        #expect(try await decide(store, t, at: later).reason == .newTriplet)
        r = try #require(try await store.record(for: t))
        #expect([r.firstSeen, r.lastSeen, r.blockExpires, r.blockedCount, r.passedCount] == [later, later, later + 300, 1, 0])
        // The expiry index saw every change of record_expires.
        _ = try await store.expire(now: later + 2 * 86_400, limit: 10)
        #expect(try await store.record(for: t) != nil)
        _ = try await store.expire(now: later + 2 * 86_400 + 1, limit: 10)
        #expect(try await store.record(for: t) == nil)
        try await store.close()
    }

    /// GRDB turns every WAL connection to NORMAL after its own set-up; the
    /// setting asked for must still be the one the writer commits with, on a
    /// new file and on a reopened one.
    @Test(arguments: SQLiteStore.Synchronous.allCases)
    func writerCommitsWithTheSynchronousSettingAskedFor(_ setting: SQLiteStore.Synchronous) async throws {
        let dir = TemporaryDirectory()
        for _ in 0..<2 {
            let store = try SQLiteStore(path: dir.path + "/greylag.db", synchronous: setting)
            #expect(try store.writerSynchronous() == setting)
            _ = try await decide(store, triplet(1), at: t0)
            #expect(try store.writerSynchronous() == setting)
            try await store.close()
        }
    }

    @Test func concurrentWritersLoseNothingAndShareCommits() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.path + "/greylag.db", synchronous: .full)
        let engine = self.engine
        let now = t0
        // 400 distinct triplets and 200 hits on one triplet, all at once.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<400 {
                group.addTask {
                    let t = triplet(i, network: "198.51.100.0/24")
                    _ = try await store.decide(t, now: now) { engine.decide(t, state: $0, now: now) }
                }
            }
            for _ in 0..<200 {
                group.addTask {
                    let t = triplet(0)
                    _ = try await store.decide(t, now: now + 10) { engine.decide(t, state: $0, now: now + 10) }
                }
            }
            try await group.waitForAll()
        }
        let counts = try await store.counts(now: now)
        #expect(counts.pending == 401)
        let hot = try #require(try await store.record(for: triplet(0)))
        #expect(hot.blockedCount == 200)  // every defer counted, none lost to a race
        #expect(store.commitCount < 600)  // grouped: fewer commits than writes
        try await store.close()
    }

    @Test func expiryRemovesExactlyWhatIsDueInBatches() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.path + "/greylag.db")
        for i in 0..<25 {
            // Records 0..<10 expired before t0, 10 expires exactly at t0, the rest later.
            let expires = i < 10 ? t0 - 1 - Int64(i) : (i == 10 ? t0 : t0 + Int64(i))
            try await store.put(GreylistRecord(triplet: triplet(i), firstSeen: t0 - 1000, lastSeen: t0 - 1000,
                                               blockExpires: t0 - 700, recordExpires: expires, blockedCount: 1,
                                               passedCount: 0))
        }
        #expect(try await store.expire(now: t0, limit: 4) == 4)
        #expect(try await store.expire(now: t0, limit: 4) == 4)
        #expect(try await store.expire(now: t0, limit: 4) == 2)
        #expect(try await store.expire(now: t0, limit: 4) == 0)
        for i in 0..<25 {
            let present = try await store.record(for: triplet(i)) != nil
            #expect(present == (i >= 10), "record \(i)")
        }
        try await store.close()
    }

    @Test func clientCountsFeedAutowhitelisting() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.path + "/greylag.db")
        for i in 0..<5 {
            _ = try await decide(store, triplet(i), at: t0)
            #expect(try await decide(store, triplet(i), at: t0 + 300).reason == .delayElapsed)
        }
        #expect(try await decide(store, triplet(99), at: t0 + 301).reason == .clientAutowhitelisted)
        #expect(try await store.counts(now: t0 + 301).clients == 1)
        // After the pass TTL the client row expires and is removed.
        #expect(try await store.expire(now: t0 + 301 + 37 * 86_400, limit: 100) == 6)
        #expect(try await decide(store, triplet(99), at: t0 + 301 + 37 * 86_400).reason == .newTriplet)
        try await store.close()
    }

    @Test func listingFiltersAndDeleting() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.path + "/greylag.db")
        _ = try await decide(store, triplet(1), at: t0)
        _ = try await decide(store, triplet(2), at: t0 + 1)
        _ = try await decide(store, triplet(2), at: t0 + 400)
        let pending = try await store.records(matching: RecordFilter(state: .pending), now: t0 + 400)
        #expect(pending.map(\.triplet) == [triplet(1)])
        let passed = try await store.records(matching: RecordFilter(state: .passed), now: t0 + 400)
        #expect(passed.map(\.triplet) == [triplet(2)])
        let bySender = try await store.records(matching: RecordFilter(sender: "sender2@example.org"), now: t0 + 400)
        #expect(bySender.count == 1)
        #expect(try await store.delete(triplet(1)))
        #expect(try await !store.delete(triplet(1)))
        #expect(try await store.records(matching: RecordFilter(), now: t0 + 400).count == 1)
        #expect(try await store.integrityCheck() == "ok")
        try await store.close()
    }

    @Test func manualEntriesAreKeptUpdatedRemovedAndExpired() async throws {
        let dir = TemporaryDirectory()
        var store = try SQLiteStore(path: dir.path + "/greylag.db")
        let a = try await store.addManualEntry(ManualEntry(id: 0, list: .whitelist, field: .client, value: "192.0.2.0/24",
                                                           comment: "partner", created: t0))
        let b = try await store.addManualEntry(ManualEntry(id: 0, list: .blacklist, field: .senderDomain,
                                                           value: "spam.example", created: t0, expires: t0 + 60))
        #expect(a.id > 0 && b.id > a.id)
        // The same list, field and value updates the entry instead of adding one.
        let again = try await store.addManualEntry(ManualEntry(id: 0, list: .whitelist, field: .client,
                                                               value: "192.0.2.0/24", comment: "renewed", created: t0 + 5))
        #expect(again.id == a.id && again.created == t0)
        // The same value on the other list is a separate entry.
        _ = try await store.addManualEntry(ManualEntry(id: 0, list: .blacklist, field: .client, value: "192.0.2.0/24",
                                                       created: t0))
        try await store.close()
        store = try SQLiteStore(path: dir.path + "/greylag.db")  // survives a reopen
        let all = try await store.manualEntries()
        #expect(all.map(\.comment) == ["renewed", "", ""])
        #expect(all.map(\.list) == [.whitelist, .blacklist, .blacklist])
        #expect(try await store.removeManualEntry(list: .blacklist, field: .client, value: "192.0.2.0/24"))
        #expect(try await !store.removeManualEntry(list: .blacklist, field: .client, value: "192.0.2.0/24"))
        // Expiry removes the entry whose time is up, and only that one.
        _ = try await store.expire(now: t0 + 61, limit: 500)
        #expect(try await store.manualEntries().map(\.id) == [a.id])
        #expect(try store.appliedMigrations().contains("v2: manual list entries"))
        try await store.close()
    }

    @Test func unopenablePathIsAClearError() {
        #expect(throws: (any Error).self) {
            _ = try SQLiteStore(path: "/nonexistent-dir-greylag/x/greylag.db")
        }
    }
}
