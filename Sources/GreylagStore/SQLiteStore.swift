import Foundation
import GRDB
import GreylagCore
import Synchronization

/// The embedded store: one SQLite file in WAL mode.
///
/// Decisions are written through a group-commit writer: every decision that
/// arrives while a transaction is being committed joins the next one, so the
/// cost of the fsync is shared and each caller is answered only after the
/// commit that holds its change.
public final class SQLiteStore: GreylistStore {
    /// How hard SQLite syncs at commit (PRAGMA synchronous).
    public enum Synchronous: String, Sendable, CaseIterable {
        /// The WAL is synced at every commit: survives power loss.
        case full
        /// Synced at checkpoints only: survives a crash of greylag, not of the machine.
        case normal
    }

    public let path: String
    private let pool: DatabasePool
    private let writer: GroupCommitWriter
    private let checkpointer: WALCheckpointer
    /// Counters and last-seen times of retries not yet written (nil when
    /// `flushInterval` is zero: then every decision writes them).
    private let touches: RetryTouches?
    private let flusher: RepeatingTimer?
    /// The hot path's statements on the writer's connection.
    private let statements: SQLiteHotPath.Statements
    /// The key of the triplets' hash index (`TripletHash`), the store's own.
    private let hash: TripletHash

    /// How many touches may wait for the timer: past this, the next
    /// decision's transaction writes them all, so memory stays bounded
    /// whatever the rate.
    static let maxTouches = 200_000
    /// Touches written per transaction by the timer's flush: each chunk is a
    /// transaction of its own, so decisions are answered between them
    /// instead of waiting for tens of thousands of updates.
    static let flushChunk = 2_000
    /// Whether a chain of flush chunks is under way.
    private let flushing = RunningFlag()

    /// Opens (creating if needed) the store at `path`, migrates its schema
    /// and checks that its tables are greylag's (`SQLiteSchema.check`).
    ///
    /// - Parameter writerExecutor: runs the writer serially; by default a
    ///   private dispatch queue. A server passes its event loop's `execute`
    ///   so decisions are committed on the thread that read them.
    /// - Parameter flushInterval: how long the counters and last-seen times
    ///   of retries that change no state (`RetryTouches`) may wait in memory
    ///   before they are written; after a crash they lag by at most this.
    ///   Zero writes them with every decision.
    public init(path: String, synchronous: Synchronous = .full, maxBatch: Int = 1024,
                flushInterval: Duration = .seconds(5),
                writerExecutor: (@Sendable (@escaping @Sendable () -> Void) -> Void)? = nil) throws {
        self.path = path
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.label = "greylag"
        let sync = synchronous.rawValue.uppercased()
        configuration.prepareDatabase { db in
            // Each commit writes every page it touched to the WAL; records are
            // small, so smaller pages mean fewer bytes per decision (applies to
            // new files only).
            try db.execute(sql: "PRAGMA page_size = 2048")
            // Checkpoints run beside the writer (WALCheckpointer), not in its commits.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
            try db.execute(sql: "PRAGMA journal_size_limit = 67108864")
            // 64 MiB of page cache (SQLite's default is 2 MiB): the hot part of
            // a large store stays in memory instead of being read back per query.
            try db.execute(sql: "PRAGMA cache_size = -65536")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        // Set on the writer after the pool is open: GRDB switches every new
        // WAL connection to NORMAL after running `prepareDatabase`, which
        // would silently undo a FULL set there. Readers do not commit, so
        // their setting does not matter.
        try pool.barrierWriteWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = \(sync)") }
        let migrating = try pool.read { db in try !SQLiteSchema.migrator.hasCompletedMigrations(db) }
        try SQLiteSchema.migrator.migrate(pool)
        if migrating {
            // A migration that rewrote a table left all of it in the
            // write-ahead log: into the file now, before decisions, rather
            // than by the checkpointer's RESTART holding a decision's commit.
            try pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
        }
        hash = try pool.read { db in
            try SQLiteSchema.check(in: db)
            return try SQLiteSchema.tripletHash(in: db)
        }
        let touches: RetryTouches? = flushInterval > .zero ? RetryTouches() : nil
        self.touches = touches
        let statements = SQLiteHotPath.Statements()
        self.statements = statements
        writer = GroupCommitWriter(pool: pool, maxBatch: maxBatch, executor: writerExecutor,
                                   afterTransaction: Self.ender(touches))
        // Once a second: a page written by several commits in that time is
        // copied into the file once. Every 200 ms, under a load of new
        // triplets, the copies cost 5% more CPU per decision.
        checkpointer = try WALCheckpointer(path: path, synchronous: sync, interval: .seconds(1))
        if let touches {
            let writer = self.writer
            let skip = StoreTestSwitch.noTouchFlush
            let flushing = self.flushing
            flusher = RepeatingTimer(label: "greylag.store.flush", every: flushInterval) {
                guard !skip, touches.tick() else { return }
                guard flushing.begin() else { return }
                Self.flushChain(touches, writer: writer, statements: statements, running: flushing)
            }
        } else {
            flusher = nil
        }
    }

    /// How long the flush waits between two chunks, so that a generation of
    /// tens of thousands of touches does not put its pages into the
    /// write-ahead log all at once, and the checkpointer's passive runs and
    /// the decisions get their turns between chunks.
    static let flushPause: DispatchTimeInterval = .milliseconds(10)
    private static let pacing = DispatchQueue(label: "greylag.store.flush-pacing", qos: .utility)

    /// Writes the timer's generation of touches a chunk per transaction,
    /// each chunk submitted a moment after the one before is committed.
    private static func flushChain(_ touches: RetryTouches, writer: GroupCommitWriter,
                                   statements: SQLiteHotPath.Statements, running: RunningFlag) {
        writer.submit({ db -> Bool in try SQLiteHotPath.flushChunk(touches, limit: flushChunk, in: db, statements) },
                      completion: { (result: Result<Bool, any Error>) in
            if case .success(true) = result {
                pacing.asyncAfter(deadline: .now() + flushPause) {
                    // Closed meanwhile: its loop may be gone; `close` wrote the rest.
                    guard !running.isStopped else { return running.end() }
                    flushChain(touches, writer: writer, statements: statements, running: running)
                }
            } else {
                running.end()
            }
        })
    }

    private static func ender(_ touches: RetryTouches?) -> (@Sendable (Bool) -> Void)? {
        guard let touches else { return nil }
        return { committed in touches.end(committed: committed) }
    }

    /// Touches waiting to be written (0 without write-behind).
    public var pendingTouches: Int { touches?.count ?? 0 }

    /// Writes every touch now, and returns once that is committed.
    public func flush() async throws {
        guard let touches, touches.count > 0 else { return }
        _ = try await writer.write { [statements] db in try SQLiteHotPath.flush(touches, in: db, statements) }
    }

    /// Transactions committed so far; with group commit, fewer than writes.
    public var commitCount: Int { writer.commitCount }
    /// Writes committed so far.
    public var writeCount: Int { writer.writeCount }

    /// The synchronous setting the writer commits with.
    public func writerSynchronous() throws -> Synchronous {
        let level = try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
        switch level {
        case 2, 3: return .full  // 3 is EXTRA, stricter than FULL
        default: return .normal
        }
    }

    /// The applied schema migrations, oldest first.
    public func appliedMigrations() throws -> [String] {
        try pool.read { db in try SQLiteSchema.migrator.appliedMigrations(db) }
    }

    public func decide(_ triplet: Triplet, now: Int64, _ decide: @escaping @Sendable (TripletState) -> Decision,
                       completion: @escaping @Sendable (Result<Decision, any Error>) -> Void) {
        writer.submit(DecisionJob(triplet: triplet, hash: hash(triplet), now: now, decide: decide, completion: completion,
                                  touches: touches, statements: statements))
    }

    /// A decision for the writer: its state read, the engine's change
    /// applied, the caller answered after the commit. One object per
    /// decision instead of a closure for each of those steps.
    private final class DecisionJob: ResultJob<Decision>, @unchecked Sendable {
        let triplet: Triplet
        let hash: Int64
        let now: Int64
        let decide: @Sendable (TripletState) -> Decision
        let touches: RetryTouches?
        let statements: SQLiteHotPath.Statements

        init(triplet: Triplet, hash: Int64, now: Int64, decide: @escaping @Sendable (TripletState) -> Decision,
             completion: @escaping @Sendable (Result<Decision, any Error>) -> Void, touches: RetryTouches?,
             statements: SQLiteHotPath.Statements) {
            self.triplet = triplet
            self.hash = hash
            self.now = now
            self.decide = decide
            self.touches = touches
            self.statements = statements
            super.init(completion: completion)
        }

        override func work(_ db: Database) throws -> Decision {
            let (state, row) = try SQLiteHotPath.state(of: triplet, hash: hash, now: now, touches: touches, in: db,
                                                       statements)
            let decision = decide(state)
            try SQLiteHotPath.apply(decision.change, for: triplet, previous: state.record, row: row, hash: hash, now: now,
                                    touches: touches, in: db, statements)
            if let touches, touches.overLimit(SQLiteStore.maxTouches) {
                try SQLiteHotPath.flush(touches, in: db, statements)
            }
            return decision
        }
    }

    public func record(for triplet: Triplet) async throws -> GreylistRecord? {
        let touched = touches?.snapshot()  // before the read: see RetryTouches.snapshot
        let record = try await pool.read { [hash] db in try SQLiteSchema.record(triplet, hash: hash, in: db) }
        guard let touched, let record else { return record }
        return touched.applied(record)
    }

    public func records(matching filter: RecordFilter, now: Int64) async throws -> [GreylistRecord] {
        let touched = touches?.snapshot()
        let records = try await pool.read { db in try SQLiteSchema.records(filter, now: now, in: db) }
        return touched?.applied(records) ?? records
    }

    public func delete(_ triplet: Triplet) async throws -> Bool {
        try await writer.write { [touches, hash] db in
            touches?.remove(triplet)
            return try SQLiteSchema.delete(triplet, hash: hash, in: db)
        }
    }

    public func expire(now: Int64, limit: Int) async throws -> Int {
        // Touches first: one may have moved an expiry past `now`.
        try await writer.write { [touches, statements] db in
            if let touches { try SQLiteHotPath.flush(touches, in: db, statements) }
            return try SQLiteSchema.expire(now: now, limit: limit, in: db)
        }
    }

    public func manualEntries() async throws -> [ManualEntry] {
        try await pool.read { db in try SQLiteSchema.manualEntries(in: db) }
    }

    public func addManualEntry(_ entry: ManualEntry) async throws -> ManualEntry {
        try await writer.write { db in try SQLiteSchema.addManualEntry(entry, in: db) }
    }

    public func removeManualEntry(list: ListKind, field: SelectorField, value: String) async throws -> Bool {
        try await writer.write { db in try SQLiteSchema.removeManualEntry(list: list, field: field, value: value, in: db) }
    }

    public func counts(now: Int64) async throws -> StoreCounts {
        try await pool.read { db in try SQLiteSchema.counts(now: now, in: db) }
    }

    public func importState(records: [GreylistRecord], clients: [ClientRecord]) async throws {
        var start = 0
        // Batches of a few thousand rows keep the writer's other work moving.
        while start < max(records.count, clients.count) {
            let end = start + 5_000
            let r = Array(records[min(start, records.count)..<min(end, records.count)])
            let c = Array(clients[min(start, clients.count)..<min(end, clients.count)])
            try await writer.write { [touches, statements, hash] db in
                if let touches { try SQLiteHotPath.flush(touches, in: db, statements) }
                try SQLiteSchema.importState(records: r, clients: c, hash: hash, in: db)
            }
            start = end
        }
    }

    public func exportRecords(after: Triplet?, limit: Int) async throws -> [GreylistRecord] {
        let touched = touches?.snapshot()
        let records = try await pool.read { [hash] db in
            try SQLiteSchema.exportRecords(after: after, limit: limit, hash: hash, in: db)
        }
        return touched?.applied(records) ?? records
    }

    public func exportClients(after: String?, limit: Int) async throws -> [ClientRecord] {
        let touched = touches?.snapshot()
        let clients = try await pool.read { db in try SQLiteSchema.exportClients(after: after, limit: limit, in: db) }
        return touched?.applied(clients) ?? clients
    }

    public func addHistory(_ counts: [HistoryCount]) async throws {
        guard !counts.isEmpty else { return }
        try await writer.write { db in try SQLiteSchema.addHistory(counts, in: db) }
    }

    public func history(since: Int64) async throws -> [HistoryCount] {
        try await pool.read { db in try SQLiteSchema.history(since: since, in: db) }
    }

    public func pruneHistory(before: Int64) async throws -> Int {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM history WHERE hour < ?", arguments: [before])
            return db.changesCount
        }
    }

    public func waiting(by field: WaitingField, now: Int64, limit: Int) async throws -> [WaitingGroup] {
        // The groups sum the blocked counts: the ones in memory first.
        try await flush()
        return try await pool.read { db in try SQLiteSchema.waiting(by: field, now: now, limit: limit, in: db) }
    }

    /// Writes a record as it is (imports, tests, manual entries).
    public func put(_ record: GreylistRecord) async throws {
        try await writer.write { [touches, statements, hash] db in
            touches?.remove(record.triplet)
            try SQLiteHotPath.put(record, hash: hash, in: db, statements)
        }
    }

    /// Runs SQLite's integrity check; "ok" when the file is sound.
    public func integrityCheck() async throws -> String {
        try await pool.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "; ") }
    }

    public func close() async throws {
        flushing.stop()
        flusher?.cancel()
        // What the timer has not written yet goes into one last transaction;
        // the store is closed even if that fails.
        var failure: (any Error)? = nil
        do { try await flush() } catch { failure = error }
        await writer.drained()
        try writer.dropStatements(also: { [statements] in statements.drop() })
        try checkpointer.close()
        // The write-ahead log into the file and emptied, so that the next
        // start does not begin by copying it (after a bulk import, hundreds
        // of MB: SQLite's own checkpoint at the last close does not run when
        // a read-only reader of the pool closes last). Best effort: another
        // program reading the file may hold it back.
        _ = try? await pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
        try pool.close()
        if let failure { throw failure }
    }
}

/// A timer on a serial queue of its own that runs `handler` every `interval`.
final class RepeatingTimer: @unchecked Sendable {  // DispatchSource is thread-safe
    private let queue: DispatchQueue
    private let timer: any DispatchSourceTimer

    init(label: String, every interval: Duration, handler: @escaping @Sendable () -> Void) {
        queue = DispatchQueue(label: label, qos: .utility)
        let ms = max(1, Int(min(interval / .milliseconds(1), 86_400_000)))
        timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + .milliseconds(ms), repeating: .milliseconds(ms),
                       leeway: .milliseconds(max(1, ms / 20)))
        timer.setEventHandler(handler: handler)
        timer.resume()
    }

    /// Stops the timer; a run under way finishes first (see WALCheckpointer.close).
    func cancel() {
        queue.sync { timer.cancel() }
    }
}

/// Whether something is under way, for one at a time, until stopped.
final class RunningFlag: Sendable {
    private let running = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)

    /// True if it was not running and now is; never once stopped.
    func begin() -> Bool {
        !isStopped && running.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }

    func end() { running.store(false, ordering: .releasing) }

    /// Nothing begins after this.
    func stop() { stopped.store(true, ordering: .releasing) }

    var isStopped: Bool { stopped.load(ordering: .acquiring) }
}
