import Foundation
import GRDB
import GreylagCore
import GreylagStore
import Testing

/// Rows that greylag never writes (a hand-edited or foreign file, or an
/// integer SQLite turned into a REAL when `+ 1` overflowed) are read as
/// SQLite's own C API reads them, never stopping the process.
@Suite struct HostileRowTests {
    @Test func hugeRealsTextAndBlobsInIntegerColumnsAreReadNotTrapped() async throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/greylag.db"
        let t = triplet(1)
        do {
            let store = try SQLiteStore(path: path)
            try await store.importState(
                records: [GreylistRecord(triplet: t, firstSeen: 1, lastSeen: 1, blockExpires: 301, recordExpires: 1_000,
                                         blockedCount: 1, passedCount: 0)],
                clients: [ClientRecord(network: t.network, passedTriplets: .max, firstSeen: 1, lastSeen: 1,
                                       recordExpires: 5_000)])
            try await store.addHistory([HistoryCount(hour: 1, name: "pass", count: .max)])
            _ = try await store.addManualEntry(ManualEntry(id: 0, list: .whitelist, field: .client, value: "192.0.2.9",
                                                           comment: "", created: 1, expires: nil))
            try await store.close()
        }
        do {
            let db = try DatabaseQueue(path: path)
            try await db.write { db in
                try db.execute(sql: """
                    UPDATE triplets SET first_seen = 1e300, last_seen = -1e300, block_expires = 'soon',
                        record_expires = 9.5e18, blocked_count = x'ff', passed_count = 'nan';
                    UPDATE clients SET passed_triplets = passed_triplets + 1, record_expires = 1e30;
                    UPDATE history SET count = count + 1, hour = 'x';
                    UPDATE manual_entries SET created = 1e99, expires = 'never', value = x'c0ffee';
                    """)
            }
            try await db.close()
        }
        let store = try SQLiteStore(path: path)
        let record = try #require(try await store.record(for: t))
        #expect(record.firstSeen == .max && record.lastSeen == .min && record.blockExpires == 0)
        #expect(record.recordExpires == .max && record.blockedCount == 0 && record.passedCount == 0)
        #expect(try await store.records(matching: RecordFilter(), now: 2_000).count == 1)
        #expect(try await store.exportRecords(after: nil, limit: 10).count == 1)
        #expect(try await store.exportClients(after: nil, limit: 10).map(\.passedTriplets) == [.max])
        #expect(try await store.history(since: -1).map(\.count) == [.max])
        let entries = try await store.manualEntries()
        #expect(entries.map(\.created) == [.max] && entries.first?.expires == 0)
        _ = try await store.waiting(by: .network, now: 2_000, limit: 10)
        // A decision on the damaged row is made; the engine's arithmetic saturates.
        let now: Int64 = 2_000
        let engine = Engine()
        let decision = try await store.decide(t, now: now) { engine.decide(t, state: $0, now: now) }
        #expect(decision.verdict.action == .pass || decision.verdict.action == .defer)
        try await store.close()
    }
}
