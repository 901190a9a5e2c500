import Foundation
import GRDB
import GreylagCore
@testable import GreylagStore
import Testing

/// The triplets table found through a keyed hash: the hash itself, the
/// migration of a store made with the three-text key, and rows that share
/// a hash.
@Suite struct TripletHashTests {
    let t0: Int64 = 1_700_000_000

    /// The reference vector of the SipHash paper (appendix A): key 00..0f,
    /// message 00..0e; and the same fed in uneven pieces.
    @Test func sipHashMatchesTheReferenceVector() {
        let k0 = UInt64(littleEndianBytes: 0..<8), k1 = UInt64(littleEndianBytes: 8..<16)
        let message = (0..<15).map(UInt8.init)
        var whole = SipHash24(k0: k0, k1: k1)
        message.withUnsafeBufferPointer { whole.add($0) }
        #expect(whole.finish() == 0xa129_ca61_49be_45e5)
        var pieces = SipHash24(k0: k0, k1: k1)
        pieces.add(message[0])
        message[1..<10].withUnsafeBufferPointer { pieces.add($0) }
        for b in message[10...] { pieces.add(b) }
        #expect(pieces.finish() == 0xa129_ca61_49be_45e5)
        var empty = SipHash24(k0: k0, k1: k1)
        #expect(empty.finish() == 0x726f_db47_dd0e_0e31)
    }

    @Test func theTextsAreKeptApartAndTheKeyMatters() {
        let key = TripletHash(k0: 1, k1: 2)
        #expect(key.hash("ab", "c", "d") != key.hash("a", "bc", "d"))
        #expect(key.hash("a", "b", "cd") != key.hash("a", "bc", "d"))
        #expect(key.hash("a", "b", "c") == key(Triplet(network: "a", sender: "b", recipient: "c")))
        #expect(TripletHash(k0: 1, k1: 3).hash("a", "b", "c") != key.hash("a", "b", "c"))
    }

    /// A store made before the hash (schema v3, the three texts as the
    /// primary key) is migrated at open: every record and client kept as
    /// it was, decided on as before, and new triplets added once each.
    @Test func aStoreWithTheTextKeyIsMigratedWithEveryRecord() async throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/greylag.db"
        let passed = triplet(1), waiting = triplet(2), other = triplet(3, network: "2001:db8::/64")
        do {
            let db = try DatabaseQueue(path: path)
            try await db.write { db in
                try db.execute(sql: Self.schemaV3)
                for (t, first, blockExpires, passedCount) in [(passed, t0 - 3_600, t0 - 3_300, Int64(2)),
                                                              (waiting, t0 - 60, t0 + 240, Int64(0)),
                                                              (other, t0 - 7_200, t0 - 6_900, Int64(1))] {
                    try db.execute(sql: """
                        INSERT INTO triplets (client_network, sender, recipient, first_seen, last_seen, block_expires,
                            record_expires, blocked_count, passed_count, origin)
                        VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, 'AUTO')
                        """, arguments: [t.network, t.sender, t.recipient, first, first, blockExpires, t0 + 86_400,
                                         passedCount])
                }
                try db.execute(sql: """
                    INSERT INTO clients VALUES ('192.0.2.0/24', 1, ?, ?, ?)
                    """, arguments: [t0 - 3_600, t0 - 3_300, t0 + 86_400])
            }
            try await db.close()
        }
        let store = try SQLiteStore(path: path)
        #expect(try store.appliedMigrations().last == "v4: triplets appended, found by a keyed hash")
        // The rewritten table is in the file, not left in the log for the first decisions' commits.
        #expect(Self.walSize(path) == 0)
        let kept = try #require(try await store.record(for: passed))
        #expect(kept.firstSeen == t0 - 3_600 && kept.blockExpires == t0 - 3_300 && kept.passedCount == 2)
        #expect(try await store.record(for: other)?.firstSeen == t0 - 7_200)
        #expect(try await store.exportClients(after: nil, limit: 10).map(\.network) == ["192.0.2.0/24"])
        #expect(try await decide(store, passed, at: t0).reason == .knownTriplet)
        #expect(try await decide(store, waiting, at: t0).reason == .tooEarly)
        #expect(try await decide(store, triplet(4), at: t0).reason == .newTriplet)
        #expect(try await decide(store, triplet(4), at: t0 + 1).reason == .tooEarly)
        try await store.close()

        let db = try DatabaseQueue(path: path)
        let rows = try await db.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM triplets") }
        #expect(rows == 4)
        let check = try await db.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
        #expect(check == ["ok"])
        try await db.close()
    }

    /// Two rows with one hash are told apart by their texts, whichever
    /// comes first. A row whose hash is not its own (a file changed by
    /// other means) is found by no lookup and passed over by the export,
    /// which still ends.
    @Test func rowsSharingAHashAreToldApart() async throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/greylag.db"
        let first = triplet(1), second = triplet(2)
        do {
            let store = try SQLiteStore(path: path, flushInterval: .zero)
            #expect(try await decide(store, second, at: t0).reason == .newTriplet)
            #expect(try await decide(store, first, at: t0 + 10).reason == .newTriplet)
            try await store.close()
        }
        do {
            // `second`'s row, the older one, takes `first`'s hash.
            let db = try DatabaseQueue(path: path)
            try await db.write { db in
                try db.execute(sql: """
                    UPDATE triplets SET triplet_hash = (SELECT triplet_hash FROM triplets WHERE sender = ?)
                    WHERE sender = ?
                    """, arguments: [first.sender, second.sender])
            }
            try await db.close()
        }
        let store = try SQLiteStore(path: path, flushInterval: .zero)
        #expect(try await store.record(for: first)?.firstSeen == t0 + 10)
        #expect(try await decide(store, first, at: t0 + 20).reason == .tooEarly)
        #expect(try await store.record(for: first)?.blockedCount == 2)
        #expect(try await store.record(for: second) == nil)
        var exported: [GreylistRecord] = []
        try await store.exportAll(page: 1, records: { exported += $0 }, clients: { _ in })
        #expect(exported.map(\.triplet) == [first])
        try await store.close()
    }

    /// The size of the store's write-ahead log, 0 when there is none.
    static func walSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? Int) ?? 0
    }

    /// A clean close leaves no log for the next start to copy.
    @Test func closingEmptiesTheWriteAheadLog() async throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/greylag.db"
        let store = try SQLiteStore(path: path)
        for i in 0..<200 { _ = try await decide(store, triplet(i), at: t0) }
        #expect(Self.walSize(path) > 0)
        try await store.close()
        #expect(Self.walSize(path) == 0)
        let reopened = try SQLiteStore(path: path)
        #expect(try await reopened.record(for: triplet(199))?.firstSeen == t0)
        try await reopened.close()
    }

    /// Schema v3 as greylag made it, with its migrations marked applied.
    static let schemaV3 = """
        CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
        INSERT INTO grdb_migrations VALUES ('v1: triplets and clients'), ('v2: manual list entries'),
            ('v3: hourly history');
        CREATE TABLE triplets (
            client_network TEXT NOT NULL, sender TEXT NOT NULL, recipient TEXT NOT NULL,
            first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, block_expires INTEGER NOT NULL,
            record_expires INTEGER NOT NULL, blocked_count INTEGER NOT NULL DEFAULT 0,
            passed_count INTEGER NOT NULL DEFAULT 0,
            origin TEXT NOT NULL DEFAULT 'AUTO' CHECK (origin IN ('AUTO', 'MANUAL')),
            PRIMARY KEY (client_network, sender, recipient)
        ) WITHOUT ROWID;
        CREATE INDEX triplets_record_expires ON triplets (record_expires);
        CREATE TABLE clients (
            client_network TEXT NOT NULL PRIMARY KEY, passed_triplets INTEGER NOT NULL,
            first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, record_expires INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX clients_record_expires ON clients (record_expires);
        CREATE TABLE manual_entries (
            id INTEGER PRIMARY KEY,
            list TEXT NOT NULL CHECK (list IN ('whitelist', 'blacklist')),
            field TEXT NOT NULL, value TEXT NOT NULL, comment TEXT NOT NULL DEFAULT '',
            origin TEXT NOT NULL DEFAULT 'MANUAL', created INTEGER NOT NULL, expires INTEGER,
            UNIQUE (list, field, value)
        );
        CREATE TABLE history (
            hour INTEGER NOT NULL, name TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (hour, name)
        ) WITHOUT ROWID;
        """
}

private extension UInt64 {
    /// The little-endian word of the bytes `range` (each byte its own index).
    init(littleEndianBytes range: Range<Int>) {
        self = range.enumerated().reduce(0) { $0 | UInt64($1.element) << (UInt64($1.offset) * 8) }
    }
}
