#if MariaDB
import Foundation
import GreylagCore
import GreylagStore
import Logging

/// The greylisting store on MySQL or MariaDB (InnoDB), shared by several MX
/// hosts.
///
/// A decision takes two round trips on one connection, without locks held
/// between them: a read of the triplet with its `revision` and the client's
/// pass count, then one `CALL greylag_write(...)`. The procedure writes the
/// record only if the revision is still the one read (or, for a new
/// triplet, only if nobody inserted it meanwhile) and updates the client's
/// pass count in the same transaction, and says whether it wrote. When
/// another host won the race, the decision is made again on the fresh
/// state; a triplet that keeps losing is decided under a named lock
/// (`GET_LOCK`). Every statement is prepared; values travel as parameters.
public final class MariaDBStore: GreylistStore {
    /// Another host changed the triplet every time it was decided.
    public struct ConflictError: Error, CustomStringConvertible {
        public var description: String { "the triplet kept changing under concurrent decisions" }
    }

    private let pool: MariaDBPool
    private let settings: MariaDBSettings
    private let logger: Logger

    /// Connects lazily through the pool and creates or migrates the schema.
    public init(settings: MariaDBSettings, logger: Logger = Logger(label: "greylag.mariadb")) async throws {
        self.settings = settings
        self.logger = logger
        pool = MariaDBPool(settings: settings)
        do {
            try await migrate()
        } catch {
            try? await pool.close()
            throw error
        }
    }

    /// The schema versions, each a list of statements run once, in order.
    /// Addresses are VARBINARY: compared byte for byte, as greylag has
    /// normalised them, on MySQL and MariaDB alike.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE IF NOT EXISTS triplets (
                client_network VARBINARY(64) NOT NULL,
                sender VARBINARY(512) NOT NULL,
                recipient VARBINARY(512) NOT NULL,
                first_seen BIGINT NOT NULL,
                last_seen BIGINT NOT NULL,
                block_expires BIGINT NOT NULL,
                record_expires BIGINT NOT NULL,
                blocked_count BIGINT NOT NULL DEFAULT 0,
                passed_count BIGINT NOT NULL DEFAULT 0,
                origin ENUM('AUTO', 'MANUAL') NOT NULL DEFAULT 'AUTO',
                revision BIGINT NOT NULL DEFAULT 0,
                PRIMARY KEY (client_network, sender, recipient),
                KEY triplets_record_expires (record_expires)
            ) ENGINE = InnoDB
            """,
            """
            CREATE TABLE IF NOT EXISTS clients (
                client_network VARBINARY(64) NOT NULL PRIMARY KEY,
                passed_triplets BIGINT NOT NULL,
                first_seen BIGINT NOT NULL,
                last_seen BIGINT NOT NULL,
                record_expires BIGINT NOT NULL,
                KEY clients_record_expires (record_expires)
            ) ENGINE = InnoDB
            """,
            "DROP PROCEDURE IF EXISTS greylag_write",
            """
            CREATE PROCEDURE greylag_write(
                IN p_network VARBINARY(64), IN p_sender VARBINARY(512), IN p_recipient VARBINARY(512),
                IN p_now BIGINT, IN p_revision BIGINT, IN p_has_record TINYINT,
                IN p_first BIGINT, IN p_last BIGINT, IN p_block BIGINT, IN p_expires BIGINT,
                IN p_blocked BIGINT, IN p_passed BIGINT, IN p_origin VARCHAR(6),
                IN p_client TINYINT, IN p_client_expires BIGINT)
            BEGIN
                DECLARE written INT DEFAULT 1;
                DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
                START TRANSACTION;
                IF p_has_record THEN
                    IF p_revision IS NULL THEN
                        INSERT INTO triplets (client_network, sender, recipient, first_seen, last_seen, block_expires,
                                              record_expires, blocked_count, passed_count, origin)
                        VALUES (p_network, p_sender, p_recipient, p_first, p_last, p_block, p_expires,
                                p_blocked, p_passed, p_origin)
                        ON DUPLICATE KEY UPDATE revision = revision;
                    ELSE
                        UPDATE triplets SET first_seen = p_first, last_seen = p_last, block_expires = p_block,
                            record_expires = p_expires, blocked_count = p_blocked, passed_count = p_passed,
                            origin = p_origin, revision = revision + 1
                        WHERE client_network = p_network AND sender = p_sender AND recipient = p_recipient
                          AND revision = p_revision;
                    END IF;
                    SET written = ROW_COUNT();
                END IF;
                IF written > 0 THEN
                    IF p_client = 1 THEN
                        UPDATE clients SET last_seen = p_now, record_expires = GREATEST(record_expires, p_client_expires)
                        WHERE client_network = p_network;
                    ELSEIF p_client = 2 THEN
                        INSERT INTO clients (client_network, passed_triplets, first_seen, last_seen, record_expires)
                        VALUES (p_network, 1, p_now, p_now, p_client_expires)
                        ON DUPLICATE KEY UPDATE
                            passed_triplets = IF(record_expires >= p_now, passed_triplets + 1, 1),
                            last_seen = p_now, record_expires = p_client_expires;
                    END IF;
                END IF;
                COMMIT;
                SELECT written;
            END
            """,
        ],
        [
            """
            CREATE TABLE IF NOT EXISTS manual_entries (
                id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
                list ENUM('whitelist', 'blacklist') NOT NULL,
                field VARCHAR(32) NOT NULL,
                value VARBINARY(512) NOT NULL,
                comment TEXT CHARACTER SET utf8mb4 NOT NULL,
                origin VARCHAR(8) NOT NULL DEFAULT 'MANUAL',
                created BIGINT NOT NULL,
                expires BIGINT NULL,
                UNIQUE KEY manual_entries_key (list, field, value)
            ) ENGINE = InnoDB
            """,
        ],
        [
            """
            CREATE TABLE IF NOT EXISTS history (
                hour BIGINT NOT NULL,
                name VARBINARY(64) NOT NULL,
                count BIGINT NOT NULL,
                PRIMARY KEY (hour, name)
            ) ENGINE = InnoDB
            """,
        ],
    ]

    /// Applies the migrations not applied yet, under a named lock so two
    /// daemons starting together do not race; returns the schema version.
    @discardableResult
    func migrate() async throws -> Int {
        let timeout = Int64(max(1, settings.queryTimeout.rounded(.up)))
        return try await pool.withConnection { db in
            let got = try db.execute("SELECT GET_LOCK('greylag_schema', ?)", [.int(timeout)]).rows.first?.first?.int
            guard got == 1 else { throw MariaDBError(code: 0, message: "another greylag holds the schema lock") }
            defer { _ = try? db.execute("SELECT RELEASE_LOCK('greylag_schema')") }
            try db.run("CREATE TABLE IF NOT EXISTS greylag_schema (version INT NOT NULL, applied BIGINT NOT NULL) ENGINE = InnoDB")
            var version = Int(try db.execute("SELECT COALESCE(MAX(version), 0) FROM greylag_schema").rows.first?.first?.int ?? 0)
            for (i, statements) in Self.migrations.enumerated() where i + 1 > version {
                for sql in statements { try db.run(sql) }
                try db.execute("INSERT INTO greylag_schema (version, applied) VALUES (?, UNIX_TIMESTAMP())", [.int(Int64(i + 1))])
                version = i + 1
            }
            return version
        }
    }

    /// The schema version in the database.
    public func schemaVersion() async throws -> Int {
        try await pool.withConnection { db in
            Int(try db.execute("SELECT COALESCE(MAX(version), 0) FROM greylag_schema").rows.first?.first?.int ?? 0)
        }
    }

    // MARK: Decisions

    public func decide(_ triplet: Triplet, now: Int64, _ decide: @escaping @Sendable (TripletState) -> Decision,
                       completion: @escaping @Sendable (Result<Decision, any Error>) -> Void) {
        Task {
            do {
                completion(.success(try await self.pool.withConnection { db in
                    try self.decide(triplet, now: now, decide, on: db)
                }))
            } catch {
                completion(.failure(error))
            }
        }
    }

    func decide(_ t: Triplet, now: Int64, _ decide: (TripletState) -> Decision,
                on db: MariaDBConnection) throws -> Decision {
        // Optimistic first: no lock, the write checks that nothing changed.
        for _ in 0..<3 {
            let (state, revision) = try read(t, now: now, on: db)
            let decision = decide(state)
            if try write(decision.change, for: t, now: now, revision: revision, on: db) { return decision }
        }
        // A triplet this contended is decided by one host at a time.
        let name = "greylag-" + String(Self.hash("\(t.network) \(t.sender) \(t.recipient)"), radix: 16)
        let timeout = Int64(max(1, settings.queryTimeout.rounded(.up)))
        guard try db.execute("SELECT GET_LOCK(?, ?)", [.text(name), .int(timeout)]).rows.first?.first?.int == 1 else {
            throw ConflictError()
        }
        defer { _ = try? db.execute("SELECT RELEASE_LOCK(?)", [.text(name)]) }
        for _ in 0..<10 {
            let (state, revision) = try read(t, now: now, on: db)
            let decision = decide(state)
            if try write(decision.change, for: t, now: now, revision: revision, on: db) { return decision }
        }
        throw ConflictError()
    }

    /// FNV-1a, for lock names of a bounded length.
    static func hash(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        return h
    }

    /// The triplet (expired or not) with its revision, and the client's live pass count.
    func read(_ t: Triplet, now: Int64, on db: MariaDBConnection) throws -> (TripletState, Int64?) {
        let rows = try db.execute("""
            SELECT t.first_seen, t.last_seen, t.block_expires, t.record_expires, t.blocked_count, t.passed_count,
                   t.origin, t.revision,
                   (SELECT c.passed_triplets FROM clients c WHERE c.client_network = ? AND c.record_expires >= ?)
            FROM (SELECT 1 AS one) AS one
            LEFT JOIN triplets t ON t.client_network = ? AND t.sender = ? AND t.recipient = ?
            """, [.text(t.network), .int(now), .text(t.network), .text(t.sender), .text(t.recipient)]).rows
        guard let row = rows.first else { return (TripletState(record: nil), nil) }
        var record: GreylistRecord? = nil
        if let first = row[0].int, let last = row[1].int, let block = row[2].int, let expires = row[3].int {
            record = GreylistRecord(triplet: t, firstSeen: first, lastSeen: last, blockExpires: block,
                                    recordExpires: expires, blockedCount: row[4].int ?? 0, passedCount: row[5].int ?? 0,
                                    origin: RecordOrigin(rawValue: row[6].text ?? "") ?? .auto)
        }
        return (TripletState(record: record, clientPassedTriplets: row[8].int ?? 0), row[7].int)
    }

    /// Writes a decision's change; false when another host changed the
    /// triplet since it was read, or the write lost a deadlock.
    func write(_ change: StoreChange, for t: Triplet, now: Int64, revision: Int64?,
               on db: MariaDBConnection) throws -> Bool {
        let client: (Int64, Int64)
        switch change.client {
        case .none: client = (0, 0)
        case .refresh(let expires): client = (1, expires)
        case .countPass(let expires): client = (2, expires)
        }
        let r = change.record
        if r == nil && client.0 == 0 { return true }
        let parameters: [SQLValue] = [
            .text(t.network), .text(t.sender), .text(t.recipient), .int(now), SQLValue(revision), .int(r == nil ? 0 : 1),
            .int(r?.firstSeen ?? 0), .int(r?.lastSeen ?? 0), .int(r?.blockExpires ?? 0), .int(r?.recordExpires ?? 0),
            .int(r?.blockedCount ?? 0), .int(r?.passedCount ?? 0), .text(r?.origin.rawValue ?? "AUTO"),
            .int(client.0), .int(client.1),
        ]
        do {
            let rows = try db.execute("CALL greylag_write(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", parameters).rows
            return (rows.first?.first?.int ?? 0) > 0
        } catch let error as MariaDBError where error.transient {
            return false
        }
    }

    // MARK: Administration

    static let recordColumns = """
        client_network, sender, recipient, first_seen, last_seen, block_expires, record_expires,
        blocked_count, passed_count, origin
        """

    static func record(_ row: [SQLValue]) -> GreylistRecord {
        GreylistRecord(triplet: Triplet(network: row[0].text ?? "", sender: row[1].text ?? "", recipient: row[2].text ?? ""),
                       firstSeen: row[3].int ?? 0, lastSeen: row[4].int ?? 0, blockExpires: row[5].int ?? 0,
                       recordExpires: row[6].int ?? 0, blockedCount: row[7].int ?? 0, passedCount: row[8].int ?? 0,
                       origin: RecordOrigin(rawValue: row[9].text ?? "") ?? .auto)
    }

    public func record(for t: Triplet) async throws -> GreylistRecord? {
        try await pool.withConnection { db in
            try db.execute("""
                SELECT \(Self.recordColumns) FROM triplets
                WHERE client_network = ? AND sender = ? AND recipient = ?
                """, [.text(t.network), .text(t.sender), .text(t.recipient)]).rows.first.map(Self.record)
        }
    }

    public func records(matching filter: RecordFilter, now: Int64) async throws -> [GreylistRecord] {
        var conditions: [String] = []
        var parameters: [SQLValue] = []
        for (column, value) in [("client_network", filter.network), ("sender", filter.sender),
                                ("recipient", filter.recipient)] {
            if let value {
                conditions.append("\(column) = ?")
                parameters.append(.text(value))
            }
        }
        conditions.append("record_expires >= ?")
        parameters.append(.int(now))
        switch filter.state {
        case .any: break
        case .pending: conditions.append("passed_count = 0")
        case .passed: conditions.append("passed_count > 0")
        }
        parameters.append(.int(Int64(max(0, filter.limit))))
        let sql = "SELECT \(Self.recordColumns) FROM triplets WHERE " + conditions.joined(separator: " AND ")
            + " ORDER BY last_seen DESC LIMIT ?"
        return try await pool.withConnection { [parameters] db in try db.execute(sql, parameters).rows.map(Self.record) }
    }

    public func delete(_ t: Triplet) async throws -> Bool {
        try await pool.withConnection { db in
            try db.execute("DELETE FROM triplets WHERE client_network = ? AND sender = ? AND recipient = ?",
                           [.text(t.network), .text(t.sender), .text(t.recipient)]).affected > 0
        }
    }

    public func expire(now: Int64, limit: Int) async throws -> Int {
        try await pool.withConnection { db in
            var removed = Int(try db.execute("DELETE FROM triplets WHERE record_expires < ? LIMIT ?",
                                             [.int(now), .int(Int64(limit))]).affected)
            if removed < limit {
                removed += Int(try db.execute("DELETE FROM clients WHERE record_expires < ? LIMIT ?",
                                              [.int(now), .int(Int64(limit - removed))]).affected)
            }
            if removed < limit {
                removed += Int(try db.execute("DELETE FROM manual_entries WHERE expires < ? LIMIT ?",
                                              [.int(now), .int(Int64(limit - removed))]).affected)
            }
            return removed
        }
    }

    public func counts(now: Int64) async throws -> StoreCounts {
        try await pool.withConnection { db in
            let row = try db.execute("""
                SELECT COALESCE(SUM(passed_count = 0), 0), COALESCE(SUM(passed_count > 0), 0),
                       (SELECT COUNT(*) FROM clients WHERE record_expires >= ?)
                FROM triplets WHERE record_expires >= ?
                """, [.int(now), .int(now)]).rows.first ?? []
            return StoreCounts(pending: row.first?.int ?? 0, passed: row.dropFirst().first?.int ?? 0,
                               clients: row.last?.int ?? 0)
        }
    }

    public func manualEntries() async throws -> [ManualEntry] {
        try await pool.withConnection { db in
            try db.execute("SELECT id, list, field, value, comment, created, expires FROM manual_entries ORDER BY id")
                .rows.compactMap { row in
                    guard let list = ListKind(rawValue: row[1].text ?? ""),
                          let field = SelectorField(rawValue: row[2].text ?? "") else { return nil }
                    return ManualEntry(id: row[0].int ?? 0, list: list, field: field, value: row[3].text ?? "",
                                       comment: row[4].text ?? "", created: row[5].int ?? 0, expires: row[6].int)
                }
        }
    }

    public func addManualEntry(_ e: ManualEntry) async throws -> ManualEntry {
        try await pool.withConnection { db in
            try db.execute("""
                INSERT INTO manual_entries (list, field, value, comment, created, expires) VALUES (?, ?, ?, ?, ?, ?)
                ON DUPLICATE KEY UPDATE comment = VALUES(comment), expires = VALUES(expires)
                """, [.text(e.list.rawValue), .text(e.field.rawValue), .text(e.value), .text(e.comment),
                      .int(e.created), SQLValue(e.expires)])
            var out = e
            if let row = try db.execute("SELECT id, created FROM manual_entries WHERE list = ? AND field = ? AND value = ?",
                                        [.text(e.list.rawValue), .text(e.field.rawValue), .text(e.value)]).rows.first {
                out.id = row[0].int ?? 0
                out.created = row[1].int ?? e.created
            }
            return out
        }
    }

    public func removeManualEntry(list: ListKind, field: SelectorField, value: String) async throws -> Bool {
        try await pool.withConnection { db in
            try db.execute("DELETE FROM manual_entries WHERE list = ? AND field = ? AND value = ?",
                           [.text(list.rawValue), .text(field.rawValue), .text(value)]).affected > 0
        }
    }

    // MARK: Import and export

    public func importState(records: [GreylistRecord], clients: [ClientRecord]) async throws {
        let set = { (columns: [(String, String)]) in
            ImportMerge.assignments(columns, min: "LEAST", max: "GREATEST", old: { $0 }, new: { "VALUES(\($0))" })
        }
        for start in stride(from: 0, to: records.count, by: importBatchSize) {
            let batch = records[start..<min(start + importBatchSize, records.count)]
            var parameters: [SQLValue] = []
            for r in batch {
                parameters += [.text(r.triplet.network), .text(r.triplet.sender), .text(r.triplet.recipient),
                               .int(r.firstSeen), .int(r.lastSeen), .int(r.blockExpires), .int(r.recordExpires),
                               .int(r.blockedCount), .int(r.passedCount), .text(r.origin.rawValue)]
            }
            // `origin` is assigned last: the other assignments must see the stored values.
            let sql = """
                INSERT INTO triplets (\(Self.recordColumns))
                VALUES \(Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", count: batch.count).joined(separator: ", "))
                ON DUPLICATE KEY UPDATE \(set(ImportMerge.tripletColumns)), revision = revision + 1
                """
            _ = try await pool.withConnection { [parameters] db in try db.execute(sql, parameters).affected }
        }
        for start in stride(from: 0, to: clients.count, by: importBatchSize) {
            let batch = clients[start..<min(start + importBatchSize, clients.count)]
            var parameters: [SQLValue] = []
            for c in batch {
                parameters += [.text(c.network), .int(c.passedTriplets), .int(c.firstSeen), .int(c.lastSeen),
                               .int(c.recordExpires)]
            }
            let sql = """
                INSERT INTO clients (client_network, passed_triplets, first_seen, last_seen, record_expires)
                VALUES \(Array(repeating: "(?, ?, ?, ?, ?)", count: batch.count).joined(separator: ", "))
                ON DUPLICATE KEY UPDATE \(set(ImportMerge.clientColumns))
                """
            _ = try await pool.withConnection { [parameters] db in try db.execute(sql, parameters).affected }
        }
    }

    public func exportRecords(after: Triplet?, limit: Int) async throws -> [GreylistRecord] {
        let sql: String
        var parameters: [SQLValue] = []
        if let a = after {
            sql = """
                SELECT \(Self.recordColumns) FROM triplets WHERE (client_network, sender, recipient) > (?, ?, ?)
                ORDER BY client_network, sender, recipient LIMIT ?
                """
            parameters = [.text(a.network), .text(a.sender), .text(a.recipient)]
        } else {
            sql = "SELECT \(Self.recordColumns) FROM triplets ORDER BY client_network, sender, recipient LIMIT ?"
        }
        parameters.append(.int(Int64(limit)))
        return try await pool.withConnection { [parameters] db in try db.execute(sql, parameters).rows.map(Self.record) }
    }

    public func exportClients(after: String?, limit: Int) async throws -> [ClientRecord] {
        try await pool.withConnection { db in
            try db.execute("""
                SELECT client_network, passed_triplets, first_seen, last_seen, record_expires FROM clients
                WHERE client_network > ? ORDER BY client_network LIMIT ?
                """, [.text(after ?? ""), .int(Int64(limit))]).rows.map {
                ClientRecord(network: $0[0].text ?? "", passedTriplets: $0[1].int ?? 0, firstSeen: $0[2].int ?? 0,
                             lastSeen: $0[3].int ?? 0, recordExpires: $0[4].int ?? 0)
            }
        }
    }

    // MARK: History and the dashboard

    public func addHistory(_ counts: [HistoryCount]) async throws {
        let rows = HistoryCount.merged(counts)
        guard !rows.isEmpty else { return }
        try await pool.withConnection { db in
            try db.run("START TRANSACTION")
            do {
                for start in stride(from: 0, to: rows.count, by: importBatchSize) {
                    let batch = rows[start..<min(start + importBatchSize, rows.count)]
                    let parameters = batch.flatMap { [SQLValue.int($0.hour), .text($0.name), .int($0.count)] }
                    _ = try db.execute("""
                        INSERT INTO history (hour, name, count)
                        VALUES \(Array(repeating: "(?, ?, ?)", count: batch.count).joined(separator: ", "))
                        ON DUPLICATE KEY UPDATE count = count + VALUES(count)
                        """, parameters)
                }
                try db.run("COMMIT")
            } catch {
                try? db.run("ROLLBACK")
                throw error
            }
        }
    }

    public func history(since: Int64) async throws -> [HistoryCount] {
        try await pool.withConnection { db in
            try db.execute("SELECT hour, name, count FROM history WHERE hour >= ? ORDER BY hour, name", [.int(since)])
                .rows.map { HistoryCount(hour: $0[0].int ?? 0, name: $0[1].text ?? "", count: $0[2].int ?? 0) }
        }
    }

    public func pruneHistory(before: Int64) async throws -> Int {
        try await pool.withConnection { db in
            Int(try db.execute("DELETE FROM history WHERE hour < ?", [.int(before)]).affected)
        }
    }

    public func waiting(by field: WaitingField, now: Int64, limit: Int) async throws -> [WaitingGroup] {
        let column = field == .network ? "client_network" : "sender"
        return try await pool.withConnection { db in
            try db.execute("""
                SELECT \(column), COUNT(*), CAST(SUM(blocked_count) AS SIGNED), MIN(first_seen) FROM triplets
                WHERE passed_count = 0 AND record_expires >= ?
                GROUP BY \(column) ORDER BY COUNT(*) DESC, \(column) LIMIT ?
                """, [.int(now), .int(Int64(max(0, limit)))]).rows.map {
                WaitingGroup(key: $0[0].text ?? "", triplets: $0[1].int ?? 0, attempts: $0[2].int ?? 0,
                             oldestFirstSeen: $0[3].int ?? 0)
            }
        }
    }

    public func close() async throws {
        try await pool.close()
    }
}
#endif
