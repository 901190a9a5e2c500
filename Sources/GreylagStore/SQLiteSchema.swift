import Foundation
import GRDB
import GreylagCore

/// The SQLite schema, its migrations and the statements on it.
///
/// Table `triplets` has the columns of the qmail/MySQL greylisting setups
/// (relay IP, sender, recipient, block and record expiry, blocked and passed
/// counts, origin); table `clients` counts passed triplets per client network
/// for client auto-whitelisting. Times are Unix seconds.
enum SQLiteSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: triplets and clients") { db in
            try db.execute(sql: """
                CREATE TABLE triplets (
                    client_network TEXT NOT NULL,
                    sender TEXT NOT NULL,
                    recipient TEXT NOT NULL,
                    first_seen INTEGER NOT NULL,
                    last_seen INTEGER NOT NULL,
                    block_expires INTEGER NOT NULL,
                    record_expires INTEGER NOT NULL,
                    blocked_count INTEGER NOT NULL DEFAULT 0,
                    passed_count INTEGER NOT NULL DEFAULT 0,
                    origin TEXT NOT NULL DEFAULT 'AUTO' CHECK (origin IN ('AUTO', 'MANUAL')),
                    PRIMARY KEY (client_network, sender, recipient)
                ) WITHOUT ROWID;
                CREATE INDEX triplets_record_expires ON triplets (record_expires);
                CREATE TABLE clients (
                    client_network TEXT NOT NULL PRIMARY KEY,
                    passed_triplets INTEGER NOT NULL,
                    first_seen INTEGER NOT NULL,
                    last_seen INTEGER NOT NULL,
                    record_expires INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX clients_record_expires ON clients (record_expires);
                """)
        }
        migrator.registerMigration("v2: manual list entries") { db in
            try db.execute(sql: """
                CREATE TABLE manual_entries (
                    id INTEGER PRIMARY KEY,
                    list TEXT NOT NULL CHECK (list IN ('whitelist', 'blacklist')),
                    field TEXT NOT NULL,
                    value TEXT NOT NULL,
                    comment TEXT NOT NULL DEFAULT '',
                    origin TEXT NOT NULL DEFAULT 'MANUAL',
                    created INTEGER NOT NULL,
                    expires INTEGER,
                    UNIQUE (list, field, value)
                );
                """)
        }
        migrator.registerMigration("v3: hourly history") { db in
            try db.execute(sql: """
                CREATE TABLE history (
                    hour INTEGER NOT NULL,
                    name TEXT NOT NULL,
                    count INTEGER NOT NULL,
                    PRIMARY KEY (hour, name)
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v4: triplets appended, found by a keyed hash") { db in
            // See TripletHash: rows in the order first seen, an index of
            // 64-bit hashes to find them.
            let key = TripletHash.random()
            try db.execute(sql: """
                CREATE TABLE store_settings (name TEXT NOT NULL PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID
                """)
            try db.execute(sql: "INSERT INTO store_settings (name, value) VALUES (?, ?), (?, ?)",
                           arguments: [hashKeyNames.0, Int64(bitPattern: key.k0), hashKeyNames.1, Int64(bitPattern: key.k1)])
            let function = hashFunction(key)
            db.add(function: function)
            defer { db.remove(function: function) }
            try db.execute(sql: """
                CREATE TABLE triplets_v4 (
                    id INTEGER PRIMARY KEY,
                    triplet_hash INTEGER NOT NULL,
                    client_network TEXT NOT NULL,
                    sender TEXT NOT NULL,
                    recipient TEXT NOT NULL,
                    first_seen INTEGER NOT NULL,
                    last_seen INTEGER NOT NULL,
                    block_expires INTEGER NOT NULL,
                    record_expires INTEGER NOT NULL,
                    blocked_count INTEGER NOT NULL DEFAULT 0,
                    passed_count INTEGER NOT NULL DEFAULT 0,
                    origin TEXT NOT NULL DEFAULT 'AUTO' CHECK (origin IN ('AUTO', 'MANUAL'))
                );
                INSERT INTO triplets_v4 (triplet_hash, \(columns))
                    SELECT greylag_triplet_hash(client_network, sender, recipient), \(columns)
                    FROM triplets ORDER BY first_seen;
                DROP TABLE triplets;
                ALTER TABLE triplets_v4 RENAME TO triplets;
                CREATE INDEX triplets_hash ON triplets (triplet_hash);
                CREATE INDEX triplets_record_expires ON triplets (record_expires);
                """)
        }
        return migrator
    }

    /// The rows of `store_settings` that hold the store's `TripletHash` key.
    static let hashKeyNames = ("triplet_hash_key_0", "triplet_hash_key_1")

    /// The store's `TripletHash` key; an error naming what is wrong when
    /// the file has none.
    static func tripletHash(in db: Database) throws -> TripletHash {
        var k0: Int64? = nil, k1: Int64? = nil
        for row in try Row.fetchAll(db, sql: "SELECT name, value FROM store_settings WHERE name IN (?, ?)",
                                    arguments: [hashKeyNames.0, hashKeyNames.1]) {
            let value: DatabaseValue = row[1]
            guard case .int64(let v) = value.storage else { continue }
            if row.text(0) == hashKeyNames.0 { k0 = v } else { k1 = v }
        }
        guard let k0, let k1 else {
            throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "the store has no triplet hash key in "
                                + "store_settings (\(hashKeyNames.0), \(hashKeyNames.1)): not a file greylag made")
        }
        return TripletHash(k0: UInt64(bitPattern: k0), k1: UInt64(bitPattern: k1))
    }

    /// `greylag_triplet_hash(network, sender, recipient)` for the migration
    /// that fills the hash column.
    static func hashFunction(_ key: TripletHash) -> DatabaseFunction {
        DatabaseFunction("greylag_triplet_hash", argumentCount: 3, pure: true) { values in
            key.hash(Row.text(values[0]), Row.text(values[1]), Row.text(values[2]))
        }
    }

    /// Every table with the columns greylag reads and writes.
    static let tableColumns: [(table: String, columns: [String])] = [
        ("triplets", ["id", "triplet_hash", "client_network", "sender", "recipient", "first_seen", "last_seen",
                      "block_expires", "record_expires", "blocked_count", "passed_count", "origin"]),
        ("clients", ["client_network", "passed_triplets", "first_seen", "last_seen", "record_expires"]),
        ("manual_entries", ["id", "list", "field", "value", "comment", "origin", "created", "expires"]),
        ("history", ["hour", "name", "count"]),
        ("store_settings", ["name", "value"]),
    ]

    /// Reads one row of every table, with every column greylag uses. A file
    /// whose migrations table says it is up to date but whose tables are
    /// another program's, or whose first pages are damaged or missing (a
    /// truncated copy), fails here, when the store opens, rather than on
    /// every decision. Reads a few pages, whatever the size of the store.
    static func check(in db: Database) throws {
        for (table, columns) in tableColumns {
            _ = try Row.fetchOne(db, sql: "SELECT \(columns.joined(separator: ", ")) FROM \(table) LIMIT 1")
        }
    }

    static func addHistory(_ counts: [HistoryCount], in db: Database) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO history (hour, name, count) VALUES (?, ?, ?)
            ON CONFLICT (hour, name) DO UPDATE SET count = count + excluded.count
            """)
        for c in HistoryCount.merged(counts) { try statement.execute(arguments: [c.hour, c.name, c.count]) }
    }

    static func history(since: Int64, in db: Database) throws -> [HistoryCount] {
        try Row.fetchAll(db, sql: "SELECT hour, name, count FROM history WHERE hour >= ? ORDER BY hour, name",
                         arguments: [since]).map { HistoryCount(hour: $0.int64(0), name: $0.text(1), count: $0.int64(2)) }
    }

    static func waiting(by field: WaitingField, now: Int64, limit: Int, in db: Database) throws -> [WaitingGroup] {
        let column = field == .network ? "client_network" : "sender"
        return try Row.fetchAll(db, sql: """
            SELECT \(column), count(*), sum(blocked_count), min(first_seen) FROM triplets
            WHERE passed_count = 0 AND record_expires >= ?
            GROUP BY \(column) ORDER BY count(*) DESC, \(column) LIMIT ?
            """, arguments: [now, max(0, limit)]).map {
            WaitingGroup(key: $0.text(0), triplets: $0.int64(1), attempts: $0.int64(2), oldestFirstSeen: $0.int64(3))
        }
    }

    static func manualEntries(in db: Database) throws -> [ManualEntry] {
        try Row.fetchAll(db, sql: "SELECT id, list, field, value, comment, created, expires FROM manual_entries ORDER BY id")
            .compactMap { row in
                guard let list = ListKind(rawValue: row.text(1)), let field = SelectorField(rawValue: row.text(2)) else {
                    return nil
                }
                return ManualEntry(id: row.int64(0), list: list, field: field, value: row.text(3), comment: row.text(4),
                                   created: row.int64(5), expires: row.optionalInt64(6))
            }
    }

    static func addManualEntry(_ e: ManualEntry, in db: Database) throws -> ManualEntry {
        try db.execute(sql: """
            INSERT INTO manual_entries (list, field, value, comment, created, expires) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (list, field, value) DO UPDATE SET comment = excluded.comment, expires = excluded.expires
            """, arguments: [e.list.rawValue, e.field.rawValue, e.value, e.comment, e.created, e.expires])
        let row = try Row.fetchOne(db, sql: "SELECT id, created FROM manual_entries WHERE list = ? AND field = ? AND value = ?",
                                   arguments: [e.list.rawValue, e.field.rawValue, e.value])
        var out = e
        out.id = row?.int64(0) ?? 0
        out.created = row?.int64(1) ?? e.created
        return out
    }

    static func removeManualEntry(list: ListKind, field: SelectorField, value: String, in db: Database) throws -> Bool {
        try db.execute(sql: "DELETE FROM manual_entries WHERE list = ? AND field = ? AND value = ?",
                       arguments: [list.rawValue, field.rawValue, value])
        return db.changesCount > 0
    }

    static let columns = """
        client_network, sender, recipient, first_seen, last_seen, block_expires, record_expires, \
        blocked_count, passed_count, origin
        """

    /// The row of `triplet`: its hash through the index, then its texts.
    static let findTriplet = "triplet_hash = ? AND client_network = ? AND sender = ? AND recipient = ?"

    static func findArguments(_ t: Triplet, _ hash: TripletHash) -> StatementArguments {
        [hash(t), t.network, t.sender, t.recipient]
    }

    static func record(_ triplet: Triplet, hash: TripletHash, in db: Database) throws -> GreylistRecord? {
        try Row.fetchOne(db, sql: "SELECT \(columns) FROM triplets WHERE \(findTriplet)",
                         arguments: findArguments(triplet, hash)).map(decode)
    }

    static func delete(_ triplet: Triplet, hash: TripletHash, in db: Database) throws -> Bool {
        try db.execute(sql: "DELETE FROM triplets WHERE \(findTriplet)", arguments: findArguments(triplet, hash))
        return db.changesCount > 0
    }

    static func records(_ filter: RecordFilter, now: Int64, in db: Database) throws -> [GreylistRecord] {
        var conditions = ["record_expires >= ?"]
        var arguments: StatementArguments = [now]
        if let network = filter.network { conditions.append("client_network = ?"); arguments += [network] }
        if let sender = filter.sender { conditions.append("sender = ?"); arguments += [sender] }
        if let recipient = filter.recipient { conditions.append("recipient = ?"); arguments += [recipient] }
        switch filter.state {
        case .any: break
        case .pending: conditions.append("passed_count = 0")
        case .passed: conditions.append("passed_count > 0")
        }
        arguments += [max(0, filter.limit)]
        let sql = "SELECT \(columns) FROM triplets WHERE \(conditions.joined(separator: " AND ")) "
            + "ORDER BY last_seen DESC LIMIT ?"
        return try Row.fetchAll(db, sql: sql, arguments: arguments).map(decode)
    }

    static func expire(now: Int64, limit: Int, in db: Database) throws -> Int {
        try db.execute(sql: """
            DELETE FROM triplets WHERE id IN (SELECT id FROM triplets WHERE record_expires < ? LIMIT ?)
            """, arguments: [now, limit])
        var removed = db.changesCount
        if removed < limit {
            try db.execute(sql: """
                DELETE FROM clients WHERE client_network IN (
                    SELECT client_network FROM clients WHERE record_expires < ? LIMIT ?)
                """, arguments: [now, limit - removed])
            removed += db.changesCount
        }
        if removed < limit {
            try db.execute(sql: "DELETE FROM manual_entries WHERE expires < ?", arguments: [now])
            removed += db.changesCount
        }
        return removed
    }

    static func counts(now: Int64, in db: Database) throws -> StoreCounts {
        let row = try Row.fetchOne(db, sql: """
            SELECT coalesce(sum(passed_count = 0), 0), coalesce(sum(passed_count > 0), 0)
            FROM triplets WHERE record_expires >= ?
            """, arguments: [now])
        let clients = try Int64.fetchOne(db, sql: "SELECT count(*) FROM clients WHERE record_expires >= ?",
                                         arguments: [now]) ?? 0
        return StoreCounts(pending: row?.int64(0) ?? 0, passed: row?.int64(1) ?? 0, clients: clients)
    }

    static func importState(records: [GreylistRecord], clients: [ClientRecord], hash: TripletHash,
                            in db: Database) throws {
        let set = { (columns: [(String, String)]) in
            ImportMerge.assignments(columns, min: "min", max: "max", old: { $0 }, new: { "excluded.\($0)" })
        }
        let find = try db.cachedStatement(sql: "SELECT id FROM triplets WHERE \(findTriplet)")
        // With the row's id when it is stored (a conflict merges), NULL when not (a new row).
        let triplet = try db.cachedStatement(sql: """
            INSERT INTO triplets (id, triplet_hash, \(columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET \(set(ImportMerge.tripletColumns))
            """)
        for r in records {
            let h = hash(r.triplet)
            let id = try Int64.fetchOne(find, arguments: [h, r.triplet.network, r.triplet.sender, r.triplet.recipient])
            try triplet.execute(arguments: [id, h, r.triplet.network, r.triplet.sender, r.triplet.recipient, r.firstSeen,
                                            r.lastSeen, r.blockExpires, r.recordExpires, r.blockedCount,
                                            r.passedCount, r.origin.rawValue])
        }
        let client = try db.cachedStatement(sql: """
            INSERT INTO clients (client_network, passed_triplets, first_seen, last_seen, record_expires)
            VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (client_network) DO UPDATE SET \(set(ImportMerge.clientColumns))
            """)
        for c in clients {
            try client.execute(arguments: [c.network, c.passedTriplets, c.firstSeen, c.lastSeen, c.recordExpires])
        }
    }

    /// Records in the order of the hash index (hash, then the texts), each
    /// page after the record `after`. A row whose stored hash is not its
    /// triplet's (a file changed by other means) is passed over: no lookup
    /// finds it either, and the next page starts after the last record
    /// returned, exactly where it stands in that order.
    static func exportRecords(after: Triplet?, limit: Int, hash: TripletHash,
                              in db: Database) throws -> [GreylistRecord] {
        var cursor: [DatabaseValue]? = after.map {
            [hash($0).databaseValue, $0.network.databaseValue, $0.sender.databaseValue, $0.recipient.databaseValue]
        }
        var out: [GreylistRecord] = []
        while out.count < limit {
            let want = limit - out.count
            let order = "ORDER BY triplet_hash, client_network, sender, recipient LIMIT ?"
            let rows: [Row]
            if let cursor {
                rows = try Row.fetchAll(db, sql: """
                    SELECT triplet_hash, \(columns) FROM triplets
                    WHERE (triplet_hash, client_network, sender, recipient) > (?, ?, ?, ?) \(order)
                    """, arguments: StatementArguments(cursor + [want.databaseValue]))
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT triplet_hash, \(columns) FROM triplets \(order)",
                                        arguments: [want])
            }
            for row in rows {
                let record = decode(row, from: 1)
                cursor = Array(row.databaseValues.prefix(4))
                let stored: DatabaseValue = row[0]
                if case .int64(let h) = stored.storage, h == hash(record.triplet) { out.append(record) }
            }
            if rows.count < want { break }
        }
        return out
    }

    static func exportClients(after: String?, limit: Int, in db: Database) throws -> [ClientRecord] {
        try Row.fetchAll(db, sql: """
            SELECT client_network, passed_triplets, first_seen, last_seen, record_expires FROM clients
            WHERE client_network > ? ORDER BY client_network LIMIT ?
            """, arguments: [after ?? "", limit]).map {
            ClientRecord(network: $0.text(0), passedTriplets: $0.int64(1), firstSeen: $0.int64(2), lastSeen: $0.int64(3),
                         recordExpires: $0.int64(4))
        }
    }

    static func decode(_ row: Row) -> GreylistRecord { decode(row, from: 0) }

    /// A record from `columns`, starting at column `b` of `row`.
    static func decode(_ row: Row, from b: Int) -> GreylistRecord {
        GreylistRecord(
            triplet: Triplet(network: row.text(b), sender: row.text(b + 1), recipient: row.text(b + 2)),
            firstSeen: row.int64(b + 3), lastSeen: row.int64(b + 4), blockExpires: row.int64(b + 5),
            recordExpires: row.int64(b + 6), blockedCount: row.int64(b + 7), passedCount: row.int64(b + 8),
            origin: RecordOrigin(rawValue: row.text(b + 9)) ?? .auto)
    }
}

/// Columns read the way `sqlite3_column_int64` and `sqlite3_column_text`
/// read them on the decision path, where GRDB's typed subscripts stop the
/// process on a value of another type: SQLite turns an integer that
/// overflows (`passed_triplets + 1`) into a REAL, and a hand-edited or
/// foreign file may hold anything in any column.
extension Row {
    /// An integer column: a REAL clamped to `Int64` (NaN as 0), text parsed
    /// as an integer (0 if it is none), a blob or NULL as 0.
    func int64(_ index: Int) -> Int64 {
        let value: DatabaseValue = self[index]
        switch value.storage {
        case .int64(let v): return v
        case .double(let d):
            if d.isNaN { return 0 }
            if d >= 9_223_372_036_854_775_807.0 { return .max }
            if d <= -9_223_372_036_854_775_808.0 { return .min }
            return Int64(d)
        case .string(let s): return Int64(s.trimmingCharacters(in: .whitespaces)) ?? 0
        case .blob, .null: return 0
        }
    }

    /// A nullable integer column: nil for NULL, else as `int64(_:)`.
    func optionalInt64(_ index: Int) -> Int64? {
        (self[index] as DatabaseValue).isNull ? nil : int64(index)
    }

    /// A text column: a blob as UTF-8 (invalid bytes repaired), a number as
    /// its digits, NULL as "".
    func text(_ index: Int) -> String { Row.text(self[index]) }

    /// `text(_:)` of a value.
    static func text(_ value: DatabaseValue) -> String {
        switch value.storage {
        case .string(let s): return s
        case .blob(let b): return String(decoding: b, as: UTF8.self)
        case .int64(let v): return String(v)
        case .double(let d): return String(d)
        case .null: return ""
        }
    }
}
