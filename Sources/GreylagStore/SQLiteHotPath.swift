import GRDB
import GRDBSQLite
import GreylagCore

/// The statements every decision runs, bound and read through SQLite's C
/// API on statements prepared once on the writer's connection (`Statements`).
/// GRDB's row and argument types cost more than the queries themselves on
/// this path; everything else in the store goes through GRDB as usual.
enum SQLiteHotPath {
    /// A NUL byte: what an empty string is bound as (an empty buffer may
    /// have no address, and a null pointer would bind NULL).
    private static let emptyText: StaticString = ""

    /// The hot path's statements, prepared once on the writer's connection.
    typealias Statements = PreparedStatements<Query>

    enum Query: Int, PreparedQuery {
        case selectTriplet, selectClient, upsert, updateCounts, refreshClient, countClientPass, flushTriplet,
             flushBlockedTriplet, flushClient
        var sql: String {
            switch self {
            case .selectTriplet: SQLiteHotPath.selectTriplet
            case .selectClient: SQLiteHotPath.selectClient
            case .upsert: SQLiteHotPath.upsertTriplet
            case .updateCounts: SQLiteHotPath.updateCounts
            case .refreshClient: SQLiteHotPath.refreshClient
            case .countClientPass: SQLiteHotPath.countClientPass
            case .flushTriplet: SQLiteHotPath.flushTriplet
            case .flushBlockedTriplet: SQLiteHotPath.flushBlockedTriplet
            case .flushClient: SQLiteHotPath.flushClient
            }
        }
    }

    /// The rows of a hash (`TripletHash`): the triplet's, if stored, and
    /// any other whose hash is the same, told apart by their texts.
    static let selectTriplet = """
        SELECT id, client_network, sender, recipient, first_seen, last_seen, block_expires, record_expires,
            blocked_count, passed_count, origin
        FROM triplets WHERE triplet_hash = ?1
        """
    static let selectClient = """
        SELECT passed_triplets, record_expires FROM clients WHERE client_network = ?1
        """

    /// The triplet's record as stored and the id of its row, if any.
    static func find(_ triplet: Triplet, hash: Int64, in db: Database,
                     _ statements: Statements) throws -> (record: GreylistRecord?, row: Int64?) {
        let select = try statements.statement(.selectTriplet, in: db).sqliteStatement
        sqlite3_bind_int64(select, 1, hash)
        defer { sqlite3_reset(select) }
        return try withUTF8(of: triplet) { n, s, r in
            while true {
                switch sqlite3_step(select) {
                case SQLITE_ROW:
                    guard same(select, 1, n), same(select, 2, s), same(select, 3, r) else { continue }
                    let origin = sqlite3_column_text(select, 10).map { String(cString: $0) } ?? "AUTO"
                    let record = GreylistRecord(
                        triplet: triplet,
                        firstSeen: sqlite3_column_int64(select, 4), lastSeen: sqlite3_column_int64(select, 5),
                        blockExpires: sqlite3_column_int64(select, 6), recordExpires: sqlite3_column_int64(select, 7),
                        blockedCount: sqlite3_column_int64(select, 8), passedCount: sqlite3_column_int64(select, 9),
                        origin: RecordOrigin(rawValue: origin) ?? .auto)
                    return (record, sqlite3_column_int64(select, 0))
                case SQLITE_DONE:
                    return (nil, nil)
                case let code:
                    throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
                }
            }
        }
    }

    /// The triplet's record, the id of its row and its network's passed
    /// count at `now`, with `touches` (the writes not yet flushed) laid
    /// over them. `hash` is the triplet's `TripletHash`.
    static func state(of triplet: Triplet, hash: Int64, now: Int64, touches: RetryTouches? = nil, in db: Database,
                      _ statements: Statements) throws -> (state: TripletState, row: Int64?) {
        let found = try find(triplet, hash: hash, in: db, statements)
        var record = found.record
        if let touches, let r = record { record = touches.overlay(r) }
        let client = try statements.statement(.selectClient, in: db).sqliteStatement
        var passed: Int64 = 0
        try withBound(triplet.network, to: client) {
            switch sqlite3_step(client) {
            case SQLITE_ROW:
                var expires = sqlite3_column_int64(client, 1)
                if let t = touches?.client(triplet.network) { expires = max(expires, t.recordExpires) }
                if expires >= now { passed = sqlite3_column_int64(client, 0) }
            case SQLITE_DONE: break
            case let code:
                throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
            }
        }
        return (TripletState(record: record, clientPassedTriplets: passed), found.row)
    }

    /// Whether text column `column` of the current row holds exactly `bytes`.
    private static func same(_ statement: OpaquePointer, _ column: Int32, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let text = sqlite3_column_text(statement, column) else { return bytes.isEmpty }
        let count = Int(sqlite3_column_bytes(statement, column))
        return count == bytes.count && UnsafeBufferPointer(start: text, count: count).elementsEqual(bytes)
    }

    /// Every statement on a triplet's row has its texts at ?1 to ?3 and the
    /// row's id at ?4: NULL here for a triplet not stored, a new row.
    static let upsertTriplet = """
        INSERT INTO triplets (id, triplet_hash, \(SQLiteSchema.columns))
        VALUES (?4, ?5, ?1, ?2, ?3, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
        ON CONFLICT (id) DO UPDATE SET
            first_seen = excluded.first_seen, last_seen = excluded.last_seen,
            block_expires = excluded.block_expires, record_expires = excluded.record_expires,
            blocked_count = excluded.blocked_count, passed_count = excluded.passed_count,
            origin = excluded.origin
        """

    /// Replaces the record in row `row`, or inserts it when `row` is nil
    /// (the caller looked it up in the same transaction and found none).
    static func upsert(_ r: GreylistRecord, row: Int64?, hash: Int64, in db: Database, _ s: Statements) throws {
        try execute(.upsert, r.triplet, row: row, hash, r.firstSeen, r.lastSeen, r.blockExpires, r.recordExpires,
                    r.blockedCount, r.passedCount, text: r.origin.rawValue, in: db, s)
    }

    /// Writes a record whole, found by its triplet (imports, tests, manual entries).
    static func put(_ r: GreylistRecord, hash: TripletHash, in db: Database, _ s: Statements) throws {
        let h = hash(r.triplet)
        try upsert(r, row: find(r.triplet, hash: h, in: db, s).row, hash: h, in: db, s)
    }

    static let refreshClient = """
        UPDATE clients SET last_seen = ?2, record_expires = max(record_expires, ?3) WHERE client_network = ?1
        """
    static let countClientPass = """
        INSERT INTO clients (client_network, passed_triplets, first_seen, last_seen, record_expires)
        VALUES (?1, 1, ?2, ?2, ?3)
        ON CONFLICT (client_network) DO UPDATE SET
            passed_triplets = CASE WHEN clients.record_expires >= excluded.last_seen
                                   THEN clients.passed_triplets + 1 ELSE 1 END,
            last_seen = excluded.last_seen,
            record_expires = excluded.record_expires
        """

    static let updateCounts = """
        UPDATE triplets SET last_seen = ?5, blocked_count = ?6, passed_count = ?7 WHERE id = ?4
        """

    /// Writes a record that `previous` was read for in the same transaction.
    /// A retry that is still blocked changes only the counters and the time
    /// last seen: an UPDATE of just those columns leaves the expiry index
    /// alone, which saves a page in the WAL for most decisions.
    /// `previous` is in row `row` (nil: none is stored); `hash` is the triplet's.
    static func write(_ r: GreylistRecord, previous: GreylistRecord?, row: Int64?, hash: Int64, in db: Database,
                      _ s: Statements) throws {
        guard let p = previous, let row, p.firstSeen == r.firstSeen, p.blockExpires == r.blockExpires,
              p.recordExpires == r.recordExpires, p.origin == r.origin else {
            try upsert(r, row: row, hash: hash, in: db, s)
            return
        }
        try execute(.updateCounts, r.triplet, row: row, r.lastSeen, r.blockedCount, r.passedCount, in: db, s)
    }

    /// Runs `query` with the triplet bound to ?1 to ?3, `row` (or NULL) to
    /// ?4, `values` to the parameters after it and `text`, if any, to the
    /// last one.
    private static func execute(_ query: Query, _ t: Triplet, row: Int64?, _ values: Int64..., text: String? = nil,
                                in db: Database, _ s: Statements) throws {
        let statement = try s.statement(query, in: db).sqliteStatement
        if let row { sqlite3_bind_int64(statement, 4, row) } else { sqlite3_bind_null(statement, 4) }
        for (i, value) in values.enumerated() { sqlite3_bind_int64(statement, Int32(5 + i), value) }
        try withBound(t, to: statement) {
            guard var text else { return try run(statement, in: db) }
            try text.withUTF8 { bytes in
                bindText(bytes, to: statement, at: Int32(5 + values.count))
                try run(statement, in: db)
            }
        }
    }

    /// Writes a decision's change; `previous` is the record the decision
    /// was made on. With `touches`, a change that leaves the record's state
    /// as it was (`onlyTouches`) and a client network's refresh are kept
    /// there instead, to be written by `flush`.
    static func apply(_ change: StoreChange, for triplet: Triplet, previous: GreylistRecord?, row: Int64?, hash: Int64,
                      now: Int64, touches: RetryTouches? = nil, in db: Database, _ s: Statements) throws {
        if let record = change.record {
            if let touches, let p = previous, let row, onlyTouches(record, previous: p) {
                touches.touch(record, row: row)
            } else {
                touches?.remove(record.triplet)
                try write(record, previous: previous, row: row, hash: hash, in: db, s)
            }
        }
        switch change.client {
        case .none:
            return
        case .refresh(let e):
            if let touches {
                touches.touchClient(triplet.network, lastSeen: now, expires: e)
            } else {
                try client(.refreshClient, triplet.network, now, e, in: db, s)
            }
        case .countPass(let e):
            // The count restarts when the stored expiry has passed: it must
            // be the one a pending refresh moved on.
            if let t = touches?.takeClient(triplet.network) {
                try client(.flushClient, triplet.network, t.lastSeen, t.recordExpires, in: db, s)
            }
            try client(.countClientPass, triplet.network, now, e, in: db, s)
        }
    }

    /// True when `r`, made from `p` by a decision, differs from it only in
    /// what may lag: the time last seen and the counts, and for a passed
    /// record its expiry, moved on. First sighting, block expiry, whether it
    /// passed and origin are the same, and `p` was live.
    static func onlyTouches(_ r: GreylistRecord, previous p: GreylistRecord) -> Bool {
        guard r.triplet == p.triplet, r.firstSeen == p.firstSeen, r.blockExpires == p.blockExpires,
              r.origin == p.origin, r.hasPassed == p.hasPassed, p.recordExpires >= r.lastSeen,
              r.lastSeen >= p.lastSeen, r.blockedCount >= p.blockedCount, r.passedCount >= p.passedCount
        else { return false }
        return r.recordExpires == p.recordExpires || (p.hasPassed && r.recordExpires > p.recordExpires)
    }

    /// A touch's row, found by its id and checked to be the same triplet's
    /// and the same generation's (first sighting and block expiry).
    static let flushTriplet = """
        UPDATE triplets SET last_seen = max(last_seen, ?5), blocked_count = max(blocked_count, ?6),
            passed_count = max(passed_count, ?7), record_expires = max(record_expires, ?8)
        WHERE id = ?4 AND client_network = ?1 AND sender = ?2 AND recipient = ?3 AND first_seen = ?9
            AND block_expires = ?10
        """
    /// `flushTriplet` for a record that never passed, whose expiry no touch
    /// moves (see `onlyTouches`): without `record_expires` in the SET the
    /// expiry index is left alone. SQLite deletes and re-inserts an index
    /// entry whose column is set even to the same value, which made every
    /// such row dirty a random leaf of the index.
    static let flushBlockedTriplet = """
        UPDATE triplets SET last_seen = max(last_seen, ?5), blocked_count = max(blocked_count, ?6),
            passed_count = max(passed_count, ?7)
        WHERE id = ?4 AND client_network = ?1 AND sender = ?2 AND recipient = ?3 AND first_seen = ?8
            AND block_expires = ?9
        """
    static let flushClient = """
        UPDATE clients SET last_seen = max(last_seen, ?2), record_expires = max(record_expires, ?3)
        WHERE client_network = ?1
        """

    /// Writes every touch held (in the caller's transaction); returns how many.
    @discardableResult
    static func flush(_ touches: RetryTouches, in db: Database, _ s: Statements) throws -> Int {
        let (records, clients) = touches.takeAll()
        try write(records, clients, in: db, s)
        return records.count + clients.count
    }

    /// Writes up to `limit` touches of the generation the flush timer is
    /// writing (in the caller's transaction); true when some are left.
    static func flushChunk(_ touches: RetryTouches, limit: Int, in db: Database, _ s: Statements) throws -> Bool {
        let (records, clients, more) = touches.takeChunk(limit)
        try write(records, clients, in: db, s)
        return more
    }

    private static func write(_ records: [(Triplet, RetryTouches.Record)], _ clients: [(String, RetryTouches.Client)],
                              in db: Database, _ s: Statements) throws {
        for (t, r) in records {
            if r.passedCount == 0 {
                try execute(.flushBlockedTriplet, t, row: r.row, r.lastSeen, r.blockedCount, r.passedCount, r.firstSeen,
                            r.blockExpires, in: db, s)
            } else {
                try execute(.flushTriplet, t, row: r.row, r.lastSeen, r.blockedCount, r.passedCount, r.recordExpires,
                            r.firstSeen, r.blockExpires, in: db, s)
            }
        }
        for (network, c) in clients {
            try client(.flushClient, network, c.lastSeen, c.recordExpires, in: db, s)
        }
    }

    /// Runs one of the client statements: network, a time, an expiry.
    private static func client(_ query: Query, _ network: String, _ time: Int64, _ expires: Int64,
                               in db: Database, _ s: Statements) throws {
        let statement = try s.statement(query, in: db).sqliteStatement
        sqlite3_bind_int64(statement, 2, time)
        sqlite3_bind_int64(statement, 3, expires)
        try withBound(network, to: statement) { try run(statement, in: db) }
    }

    /// Runs `body` with the triplet bound to ?1, ?2 and ?3 of `statement`.
    ///
    /// SQLite reads the strings' own bytes (SQLITE_STATIC) instead of
    /// copying each into a buffer of its own, as SQLITE_TRANSIENT does, and
    /// Swift lends them without making C strings: together that was a
    /// quarter of the allocations of a decision. The bytes are lent only
    /// for `body`, so `body` runs the statement, and the statement is
    /// reset and its bindings cleared before they go.
    private static func withBound<R>(_ t: Triplet, to statement: OpaquePointer, _ body: () throws -> R) throws -> R {
        try withUTF8(of: t) { n, s, r in
            bindText(n, to: statement, at: 1)
            bindText(s, to: statement, at: 2)
            bindText(r, to: statement, at: 3)
            defer { unbind(statement) }
            return try body()
        }
    }

    /// Runs `body` with the UTF-8 bytes of the triplet's network, sender and recipient.
    private static func withUTF8<R>(of t: Triplet, _ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>,
                                                            UnsafeBufferPointer<UInt8>) throws -> R) throws -> R {
        var network = t.network, sender = t.sender, recipient = t.recipient
        return try network.withUTF8 { n in
            try sender.withUTF8 { s in
                try recipient.withUTF8 { r in try body(n, s, r) }
            }
        }
    }

    /// `withBound` for one text, bound to ?1.
    private static func withBound<R>(_ text: String, to statement: OpaquePointer, _ body: () throws -> R) throws -> R {
        var text = text
        return try text.withUTF8 { bytes in
            bindText(bytes, to: statement, at: 1)
            defer { unbind(statement) }
            return try body()
        }
    }

    /// Binds bytes SQLite does not copy: valid until `unbind`.
    private static func bindText(_ bytes: UnsafeBufferPointer<UInt8>, to statement: OpaquePointer, at index: Int32) {
        let start = bytes.baseAddress ?? emptyText.utf8Start
        let pointer = UnsafeRawPointer(start).assumingMemoryBound(to: CChar.self)
        // Protocol limits keep every text far below SQLite's own limit (1 GB).
        sqlite3_bind_text(statement, index, pointer, Int32(clamping: bytes.count), nil)
    }

    /// Resets `statement` and drops its bindings, which may point at bytes
    /// that are about to go.
    private static func unbind(_ statement: OpaquePointer) {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
    }

    private static func run(_ statement: OpaquePointer, in db: Database) throws {
        let code = sqlite3_step(statement)
        guard code == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
        }
    }
}
