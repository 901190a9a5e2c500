import Foundation
import GreylagCore
import GreylagStore
import Logging
import PostgresNIO

/// The greylisting store on PostgreSQL, shared by several MX hosts.
///
/// A decision is read and written without locks and without lost updates:
/// the triplet is read with its `revision`, the engine decides, and one
/// statement writes the record only if the revision is still the one read
/// (or, for a new triplet, only if nobody inserted it meanwhile), updating
/// the client's pass count in the same statement. When another host won
/// the race the decision is made again on the fresh state. Two round trips
/// per decision; every statement commits on its own, so the MTA is
/// answered only after its decision is durable.
public final class PostgresStore: GreylistStore {
    public struct Settings: Sendable, Hashable {
        public var host: String
        public var port: Int
        public var user: String
        public var password: String?
        public var database: String
        /// Seconds a statement may take before it fails.
        public var queryTimeout: Double
        public var maxConnections: Int

        public init(host: String = "127.0.0.1", port: Int = 5432, user: String = "greylag", password: String? = nil,
                    database: String = "greylag", queryTimeout: Double = 5, maxConnections: Int = 16) {
            self.host = host
            self.port = port
            self.user = user
            self.password = password
            self.database = database
            self.queryTimeout = queryTimeout
            self.maxConnections = maxConnections
        }
    }

    /// Another host changed the triplet every time it was decided.
    public struct ConflictError: Error, CustomStringConvertible {
        public var description: String { "the triplet kept changing under concurrent decisions" }
    }

    /// A statement took longer than the query timeout.
    public struct TimeoutError: Error, CustomStringConvertible {
        public var seconds: Double
        public var description: String { "PostgreSQL did not answer within \(seconds) s" }
    }

    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let settings: Settings
    private let logger: Logger

    /// Connects (lazily, through a pool that reconnects by itself) and
    /// creates or migrates the schema.
    public init(settings: Settings, logger: Logger = Logger(label: "greylag.postgres")) async throws {
        var configuration = PostgresClient.Configuration(host: settings.host, port: settings.port,
                                                         username: settings.user, password: settings.password,
                                                         database: settings.database, tls: .disable)
        configuration.options.maximumConnections = settings.maxConnections
        configuration.options.connectTimeout = .milliseconds(Int64(settings.queryTimeout * 1000))
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        self.settings = settings
        self.logger = logger
        self.runner = Task { await client.run() }
        do {
            try await migrate()
        } catch {
            runner.cancel()
            throw error
        }
    }

    /// The schema versions; each step runs once, under an advisory lock so
    /// two daemons starting together do not race.
    static let migrations: [String] = [
        """
        CREATE TABLE IF NOT EXISTS triplets (
            client_network TEXT NOT NULL,
            sender TEXT NOT NULL,
            recipient TEXT NOT NULL,
            first_seen BIGINT NOT NULL,
            last_seen BIGINT NOT NULL,
            block_expires BIGINT NOT NULL,
            record_expires BIGINT NOT NULL,
            blocked_count BIGINT NOT NULL DEFAULT 0,
            passed_count BIGINT NOT NULL DEFAULT 0,
            origin TEXT NOT NULL DEFAULT 'AUTO' CHECK (origin IN ('AUTO', 'MANUAL')),
            revision BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (client_network, sender, recipient)
        );
        CREATE INDEX IF NOT EXISTS triplets_record_expires ON triplets (record_expires);
        CREATE TABLE IF NOT EXISTS clients (
            client_network TEXT NOT NULL PRIMARY KEY,
            passed_triplets BIGINT NOT NULL,
            first_seen BIGINT NOT NULL,
            last_seen BIGINT NOT NULL,
            record_expires BIGINT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS clients_record_expires ON clients (record_expires);
        """,
        """
        CREATE TABLE IF NOT EXISTS manual_entries (
            id BIGSERIAL PRIMARY KEY,
            list TEXT NOT NULL CHECK (list IN ('whitelist', 'blacklist')),
            field TEXT NOT NULL,
            value TEXT NOT NULL,
            comment TEXT NOT NULL DEFAULT '',
            origin TEXT NOT NULL DEFAULT 'MANUAL',
            created BIGINT NOT NULL,
            expires BIGINT,
            UNIQUE (list, field, value)
        );
        """,
        """
        CREATE TABLE IF NOT EXISTS history (
            hour BIGINT NOT NULL,
            name TEXT NOT NULL,
            count BIGINT NOT NULL,
            PRIMARY KEY (hour, name)
        );
        """,
    ]

    /// Applies the migrations not applied yet; returns the schema version.
    @discardableResult
    func migrate() async throws -> Int {
        // Once at start, not in the path of an MTA: a server that was just
        // started, or is busy, gets more than a decision's time for it.
        try await timed(seconds: max(settings.queryTimeout, 30)) {
            try await self.client.withConnection { connection in
                try await connection.query("SELECT pg_advisory_lock(7405261)", logger: self.logger)
                do {
                    try await connection.query(
                        "CREATE TABLE IF NOT EXISTS greylag_schema (version INTEGER NOT NULL, applied BIGINT NOT NULL)",
                        logger: self.logger)
                    var version = 0
                    for try await v in try await connection.query("SELECT coalesce(max(version), 0) FROM greylag_schema",
                                                                  logger: self.logger).decode(Int.self) { version = v }
                    for (i, sql) in Self.migrations.enumerated() where i + 1 > version {
                        for statement in sql.split(separator: ";") where !statement.allSatisfy(\.isWhitespace) {
                            try await connection.query(PostgresQuery(unsafeSQL: String(statement)), logger: self.logger)
                        }
                        try await connection.query(
                            "INSERT INTO greylag_schema (version, applied) VALUES (\(i + 1), extract(epoch from now())::bigint)",
                            logger: self.logger)
                        version = i + 1
                    }
                    try await connection.query("SELECT pg_advisory_unlock(7405261)", logger: self.logger)
                    return version
                } catch {
                    _ = try? await connection.query("SELECT pg_advisory_unlock(7405261)", logger: self.logger)
                    throw error
                }
            }
        }
    }

    /// The schema version in the database.
    public func schemaVersion() async throws -> Int {
        try await timed {
            var version = 0
            for try await v in try await self.client.query("SELECT coalesce(max(version), 0) FROM greylag_schema",
                                                           logger: self.logger).decode(Int.self) { version = v }
            return version
        }
    }

    /// Runs `body`, failing with `TimeoutError` after the query timeout.
    func timed<T: Sendable>(seconds: Double? = nil, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let seconds = seconds ?? settings.queryTimeout
        return try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                throw TimeoutError(seconds: seconds)
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    // MARK: Decisions

    public func decide(_ triplet: Triplet, now: Int64, _ decide: @escaping @Sendable (TripletState) -> Decision,
                       completion: @escaping @Sendable (Result<Decision, any Error>) -> Void) {
        Task {
            do {
                completion(.success(try await self.timed { try await self.decide(triplet, now: now, decide) }))
            } catch {
                completion(.failure(error))
            }
        }
    }

    /// Runs one statement, on the pool or on one connection.
    typealias Run = (PostgresQuery) async throws -> PostgresRowSequence

    func decide(_ triplet: Triplet, now: Int64, _ decide: @Sendable (TripletState) -> Decision) async throws -> Decision {
        let logger = self.logger
        let pool: Run = { try await self.client.query($0, logger: logger) }
        // Optimistic first: no lock, the write checks nothing changed.
        for _ in 0..<3 {
            let (state, revision) = try await read(triplet, now: now, run: pool)
            let decision = decide(state)
            if try await write(decision.change, for: triplet, now: now, revision: revision, run: pool) { return decision }
        }
        // A triplet this contended is decided in a transaction holding an
        // advisory lock on its key (against other locked deciders) and the
        // row lock of the record (against optimistic ones): once the row
        // exists, the write cannot lose again.
        let key = "\(triplet.network) \(triplet.sender) \(triplet.recipient)"
        let decided: Decision? = try await client.withTransaction(logger: logger) { connection in
            let run: Run = { try await connection.query($0, logger: logger) }
            try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(key), 0))", logger: logger)
            for _ in 0..<3 {
                try await connection.query("""
                    SELECT 1 FROM triplets WHERE client_network = \(triplet.network) AND sender = \(triplet.sender)
                    AND recipient = \(triplet.recipient) FOR UPDATE
                    """, logger: logger)
                let (state, revision) = try await self.read(triplet, now: now, run: run)
                let decision = decide(state)
                if try await self.write(decision.change, for: triplet, now: now, revision: revision, run: run) {
                    return decision
                }
            }
            return nil
        }
        guard let decided else { throw ConflictError() }
        return decided
    }

    /// The triplet (expired or not) with its revision, and the client's live pass count.
    func read(_ t: Triplet, now: Int64, run: Run) async throws -> (TripletState, Int64?) {
        let rows = try await run("""
            SELECT t.first_seen, t.last_seen, t.block_expires, t.record_expires, t.blocked_count, t.passed_count,
                   t.origin, t.revision,
                   (SELECT c.passed_triplets FROM clients c WHERE c.client_network = \(t.network)
                    AND c.record_expires >= \(now))
            FROM (SELECT 1) AS one
            LEFT JOIN triplets t ON t.client_network = \(t.network) AND t.sender = \(t.sender) AND t.recipient = \(t.recipient)
            """)
        for try await row in rows.decode((Int64?, Int64?, Int64?, Int64?, Int64?, Int64?, String?, Int64?, Int64?).self) {
            var record: GreylistRecord? = nil
            if let first = row.0, let last = row.1, let block = row.2, let expires = row.3 {
                record = GreylistRecord(triplet: t, firstSeen: first, lastSeen: last, blockExpires: block,
                                        recordExpires: expires, blockedCount: row.4 ?? 0, passedCount: row.5 ?? 0,
                                        origin: RecordOrigin(rawValue: row.6 ?? "") ?? .auto)
            }
            return (TripletState(record: record, clientPassedTriplets: row.8 ?? 0), row.7)
        }
        return (TripletState(record: nil), nil)
    }

    /// Writes a decision's change; false when another host changed the
    /// triplet since it was read (revision moved, or inserted meanwhile).
    func write(_ change: StoreChange, for t: Triplet, now: Int64, revision: Int64?, run: Run) async throws -> Bool {
        var binds = PostgresBindings()
        binds.append(t.network)  // $1
        binds.append(now)        // $2
        var clientSQL = ""
        switch change.client {
        case .none: break
        case .refresh(let expires):
            binds.append(expires)  // $3
            clientSQL = """
                UPDATE clients SET last_seen = $2, record_expires = GREATEST(record_expires, $3)
                WHERE client_network = $1
                """
        case .countPass(let expires):
            binds.append(expires)  // $3
            clientSQL = """
                INSERT INTO clients (client_network, passed_triplets, first_seen, last_seen, record_expires)
                SELECT $1, 1, $2, $2, $3 %WHERE%
                ON CONFLICT (client_network) DO UPDATE SET
                    passed_triplets = CASE WHEN clients.record_expires >= excluded.last_seen
                                           THEN clients.passed_triplets + 1 ELSE 1 END,
                    last_seen = excluded.last_seen, record_expires = excluded.record_expires
                """
        }
        guard let r = change.record else {
            if clientSQL.isEmpty { return true }
            _ = try await run(PostgresQuery(unsafeSQL: clientSQL.replacingWhere(""), binds: binds))
            return true
        }
        let first = binds.count + 1
        for s in [t.sender, t.recipient] { binds.append(s) }
        for v in [r.firstSeen, r.lastSeen, r.blockExpires, r.recordExpires, r.blockedCount, r.passedCount] { binds.append(v) }
        binds.append(r.origin.rawValue)
        let p = (first..<(first + 9)).map { "$\($0)" }  // sender, recipient, 6 numbers, origin
        var tripletSQL: String
        if let revision {
            binds.append(revision)
            tripletSQL = """
                UPDATE triplets SET first_seen = \(p[2]), last_seen = \(p[3]), block_expires = \(p[4]),
                    record_expires = \(p[5]), blocked_count = \(p[6]), passed_count = \(p[7]), origin = \(p[8]),
                    revision = revision + 1
                WHERE client_network = $1 AND sender = \(p[0]) AND recipient = \(p[1]) AND revision = $\(first + 9)
                RETURNING 1
                """
        } else {
            tripletSQL = """
                INSERT INTO triplets (client_network, sender, recipient, first_seen, last_seen, block_expires,
                                      record_expires, blocked_count, passed_count, origin)
                VALUES ($1, \(p.joined(separator: ", ")))
                ON CONFLICT DO NOTHING
                RETURNING 1
                """
        }
        var sql = "WITH t AS (\(tripletSQL))"
        if !clientSQL.isEmpty {
            let conditional = clientSQL.contains("%WHERE%")
                ? clientSQL.replacingWhere("WHERE EXISTS (SELECT 1 FROM t)")
                : clientSQL + " AND EXISTS (SELECT 1 FROM t)"
            sql += ", c AS (\(conditional) RETURNING 1)"
        }
        sql += " SELECT count(*) FROM t"
        var written = 0
        for try await n in try await run(PostgresQuery(unsafeSQL: sql, binds: binds)).decode(Int.self) { written = n }
        return written > 0
    }

    // MARK: Administration

    public func record(for t: Triplet) async throws -> GreylistRecord? {
        try await records(sql: "WHERE client_network = $1 AND sender = $2 AND recipient = $3",
                          binds: [t.network, t.sender, t.recipient], integers: [], limit: 1).first
    }

    public func records(matching filter: RecordFilter, now: Int64) async throws -> [GreylistRecord] {
        var conditions: [String] = []
        var strings: [String] = []
        for (column, value) in [("client_network", filter.network), ("sender", filter.sender),
                                ("recipient", filter.recipient)] {
            if let value {
                strings.append(value)
                conditions.append("\(column) = $\(strings.count)")
            }
        }
        conditions.append("record_expires >= $\(strings.count + 1)")
        switch filter.state {
        case .any: break
        case .pending: conditions.append("passed_count = 0")
        case .passed: conditions.append("passed_count > 0")
        }
        return try await records(sql: "WHERE " + conditions.joined(separator: " AND ") + " ORDER BY last_seen DESC",
                                 binds: strings, integers: [now], limit: max(0, filter.limit))
    }

    private func records(sql: String, binds strings: [String], integers: [Int64], limit: Int) async throws -> [GreylistRecord] {
        try await timed {
            var binds = PostgresBindings()
            for s in strings { binds.append(s) }
            for i in integers { binds.append(i) }
            binds.append(Int64(limit))
            let query = PostgresQuery(unsafeSQL: """
                SELECT client_network, sender, recipient, first_seen, last_seen, block_expires, record_expires,
                       blocked_count, passed_count, origin FROM triplets \(sql) LIMIT $\(binds.count)
                """, binds: binds)
            var out: [GreylistRecord] = []
            for try await row in try await self.client.query(query, logger: self.logger)
                .decode((String, String, String, Int64, Int64, Int64, Int64, Int64, Int64, String).self) {
                out.append(GreylistRecord(triplet: Triplet(network: row.0, sender: row.1, recipient: row.2),
                                          firstSeen: row.3, lastSeen: row.4, blockExpires: row.5, recordExpires: row.6,
                                          blockedCount: row.7, passedCount: row.8,
                                          origin: RecordOrigin(rawValue: row.9) ?? .auto))
            }
            return out
        }
    }

    public func delete(_ t: Triplet) async throws -> Bool {
        try await timed {
            var n = 0
            for try await c in try await self.client.query("""
                WITH d AS (DELETE FROM triplets WHERE client_network = \(t.network) AND sender = \(t.sender)
                           AND recipient = \(t.recipient) RETURNING 1) SELECT count(*) FROM d
                """, logger: self.logger).decode(Int.self) { n = c }
            return n > 0
        }
    }

    public func expire(now: Int64, limit: Int) async throws -> Int {
        try await timed {
            var removed = 0
            for try await c in try await self.client.query("""
                WITH d AS (DELETE FROM triplets WHERE ctid IN (
                    SELECT ctid FROM triplets WHERE record_expires < \(now) LIMIT \(limit)) RETURNING 1)
                SELECT count(*) FROM d
                """, logger: self.logger).decode(Int.self) { removed = c }
            if removed < limit {
                for try await c in try await self.client.query("""
                    WITH d AS (DELETE FROM clients WHERE ctid IN (
                        SELECT ctid FROM clients WHERE record_expires < \(now) LIMIT \(limit - removed)) RETURNING 1)
                    SELECT count(*) FROM d
                    """, logger: self.logger).decode(Int.self) { removed += c }
            }
            if removed < limit {
                for try await c in try await self.client.query("""
                    WITH d AS (DELETE FROM manual_entries WHERE expires < \(now) RETURNING 1) SELECT count(*) FROM d
                    """, logger: self.logger).decode(Int.self) { removed += c }
            }
            return removed
        }
    }

    public func counts(now: Int64) async throws -> StoreCounts {
        try await timed {
            var counts = StoreCounts(pending: 0, passed: 0, clients: 0)
            for try await row in try await self.client.query("""
                SELECT count(*) FILTER (WHERE passed_count = 0), count(*) FILTER (WHERE passed_count > 0),
                       (SELECT count(*) FROM clients WHERE record_expires >= \(now))
                FROM triplets WHERE record_expires >= \(now)
                """, logger: self.logger).decode((Int64, Int64, Int64).self) {
                counts = StoreCounts(pending: row.0, passed: row.1, clients: row.2)
            }
            return counts
        }
    }

    public func manualEntries() async throws -> [ManualEntry] {
        try await timed {
            var out: [ManualEntry] = []
            for try await row in try await self.client.query("""
                SELECT id, list, field, value, comment, created, expires FROM manual_entries ORDER BY id
                """, logger: self.logger).decode((Int64, String, String, String, String, Int64, Int64?).self) {
                guard let list = ListKind(rawValue: row.1), let field = SelectorField(rawValue: row.2) else { continue }
                out.append(ManualEntry(id: row.0, list: list, field: field, value: row.3, comment: row.4,
                                       created: row.5, expires: row.6))
            }
            return out
        }
    }

    public func addManualEntry(_ e: ManualEntry) async throws -> ManualEntry {
        try await timed {
            var out = e
            for try await row in try await self.client.query("""
                INSERT INTO manual_entries (list, field, value, comment, created, expires)
                VALUES (\(e.list.rawValue), \(e.field.rawValue), \(e.value), \(e.comment), \(e.created), \(e.expires))
                ON CONFLICT (list, field, value) DO UPDATE SET comment = excluded.comment, expires = excluded.expires
                RETURNING id, created
                """, logger: self.logger).decode((Int64, Int64).self) {
                out.id = row.0
                out.created = row.1
            }
            return out
        }
    }

    public func removeManualEntry(list: ListKind, field: SelectorField, value: String) async throws -> Bool {
        try await timed {
            var n = 0
            for try await c in try await self.client.query("""
                WITH d AS (DELETE FROM manual_entries WHERE list = \(list.rawValue) AND field = \(field.rawValue)
                           AND value = \(value) RETURNING 1) SELECT count(*) FROM d
                """, logger: self.logger).decode(Int.self) { n = c }
            return n > 0
        }
    }

    // MARK: Import and export

    public func importState(records: [GreylistRecord], clients: [ClientRecord]) async throws {
        let set = { (columns: [(String, String)], table: String) in
            ImportMerge.assignments(columns, min: "LEAST", max: "GREATEST", old: { "\(table).\($0)" },
                                    new: { "excluded.\($0)" })
        }
        for start in stride(from: 0, to: records.count, by: importBatchSize) {
            let batch = records[start..<min(start + importBatchSize, records.count)]
            var binds = PostgresBindings()
            var rows: [String] = []
            for r in batch {
                let first = binds.count + 1
                for v in [r.triplet.network, r.triplet.sender, r.triplet.recipient] { binds.append(v) }
                for v in [r.firstSeen, r.lastSeen, r.blockExpires, r.recordExpires, r.blockedCount, r.passedCount] {
                    binds.append(v)
                }
                binds.append(r.origin.rawValue)
                rows.append("(" + (first..<(first + 10)).map { "$\($0)" }.joined(separator: ", ") + ")")
            }
            let sql = """
                INSERT INTO triplets (client_network, sender, recipient, first_seen, last_seen, block_expires,
                                      record_expires, blocked_count, passed_count, origin)
                VALUES \(rows.joined(separator: ", "))
                ON CONFLICT (client_network, sender, recipient) DO UPDATE SET
                    \(set(ImportMerge.tripletColumns, "triplets")), revision = triplets.revision + 1
                """
            let query = PostgresQuery(unsafeSQL: sql, binds: binds)
            try await timed { _ = try await self.client.query(query, logger: self.logger) }
        }
        for start in stride(from: 0, to: clients.count, by: importBatchSize) {
            let batch = clients[start..<min(start + importBatchSize, clients.count)]
            var binds = PostgresBindings()
            var rows: [String] = []
            for c in batch {
                let first = binds.count + 1
                binds.append(c.network)
                for v in [c.passedTriplets, c.firstSeen, c.lastSeen, c.recordExpires] { binds.append(v) }
                rows.append("(" + (first..<(first + 5)).map { "$\($0)" }.joined(separator: ", ") + ")")
            }
            let sql = """
                INSERT INTO clients (client_network, passed_triplets, first_seen, last_seen, record_expires)
                VALUES \(rows.joined(separator: ", "))
                ON CONFLICT (client_network) DO UPDATE SET \(set(ImportMerge.clientColumns, "clients"))
                """
            let query = PostgresQuery(unsafeSQL: sql, binds: binds)
            try await timed { _ = try await self.client.query(query, logger: self.logger) }
        }
    }

    public func exportRecords(after: Triplet?, limit: Int) async throws -> [GreylistRecord] {
        // COLLATE "C": byte order, the same in the ORDER BY and the paging condition.
        guard let a = after else {
            return try await records(sql: "ORDER BY client_network COLLATE \"C\", sender COLLATE \"C\", recipient COLLATE \"C\"",
                                     binds: [], integers: [], limit: limit)
        }
        return try await records(sql: """
            WHERE (client_network COLLATE "C", sender COLLATE "C", recipient COLLATE "C") > ($1, $2, $3)
            ORDER BY client_network COLLATE "C", sender COLLATE "C", recipient COLLATE "C"
            """, binds: [a.network, a.sender, a.recipient], integers: [], limit: limit)
    }

    public func exportClients(after: String?, limit: Int) async throws -> [ClientRecord] {
        try await timed {
            var out: [ClientRecord] = []
            for try await row in try await self.client.query("""
                SELECT client_network, passed_triplets, first_seen, last_seen, record_expires FROM clients
                WHERE client_network COLLATE "C" > \(after ?? "") ORDER BY client_network COLLATE "C" LIMIT \(Int64(limit))
                """, logger: self.logger).decode((String, Int64, Int64, Int64, Int64).self) {
                out.append(ClientRecord(network: row.0, passedTriplets: row.1, firstSeen: row.2, lastSeen: row.3,
                                        recordExpires: row.4))
            }
            return out
        }
    }

    // MARK: History and the dashboard

    public func addHistory(_ counts: [HistoryCount]) async throws {
        let rows = HistoryCount.merged(counts)
        guard !rows.isEmpty else { return }
        var binds = PostgresBindings()
        binds.append(rows.map(\.hour))
        binds.append(rows.map(\.name))
        binds.append(rows.map(\.count))
        let query = PostgresQuery(unsafeSQL: """
            INSERT INTO history (hour, name, count)
            SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[])
            ON CONFLICT (hour, name) DO UPDATE SET count = history.count + excluded.count
            """, binds: binds)
        try await timed { _ = try await self.client.query(query, logger: self.logger) }
    }

    public func history(since: Int64) async throws -> [HistoryCount] {
        try await timed {
            var out: [HistoryCount] = []
            for try await row in try await self.client.query("""
                SELECT hour, name, count FROM history WHERE hour >= \(since) ORDER BY hour, name COLLATE "C"
                """, logger: self.logger).decode((Int64, String, Int64).self) {
                out.append(HistoryCount(hour: row.0, name: row.1, count: row.2))
            }
            return out
        }
    }

    public func pruneHistory(before: Int64) async throws -> Int {
        try await timed {
            var n = 0
            for try await c in try await self.client.query("""
                WITH d AS (DELETE FROM history WHERE hour < \(before) RETURNING 1) SELECT count(*) FROM d
                """, logger: self.logger).decode(Int.self) { n = c }
            return n
        }
    }

    public func waiting(by field: WaitingField, now: Int64, limit: Int) async throws -> [WaitingGroup] {
        let column = field == .network ? "client_network" : "sender"
        var binds = PostgresBindings()
        binds.append(now)
        binds.append(Int64(max(0, limit)))
        let query = PostgresQuery(unsafeSQL: """
            SELECT \(column), count(*), sum(blocked_count)::bigint, min(first_seen) FROM triplets
            WHERE passed_count = 0 AND record_expires >= $1
            GROUP BY \(column) ORDER BY count(*) DESC, \(column) COLLATE "C" LIMIT $2
            """, binds: binds)
        return try await timed {
            var out: [WaitingGroup] = []
            for try await row in try await self.client.query(query, logger: self.logger)
                .decode((String, Int64, Int64, Int64).self) {
                out.append(WaitingGroup(key: row.0, triplets: row.1, attempts: row.2, oldestFirstSeen: row.3))
            }
            return out
        }
    }

    public func close() async throws {
        runner.cancel()
        _ = await runner.value
    }
}

extension String {
    fileprivate func replacingWhere(_ with: String) -> String {
        var out = self
        if let r = out.range(of: "%WHERE%") { out.replaceSubrange(r, with: with) }
        return out
    }
}
