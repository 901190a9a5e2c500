import Dispatch
import Foundation
import GRDB
import Synchronization

/// TEST ONLY: switches that break the store's guarantees on purpose, so a
/// test can prove that its check sees the breakage. Read once, when first
/// used (the daemon logs them at start); never set them in production.
public enum StoreTestSwitch {
    /// `GREYLAG_TEST_ANSWER_BEFORE_COMMIT=1`: the SQLite writer hands each
    /// group its answers before the transaction is committed, then holds
    /// the commit for 100 ms, so a kill in between loses decisions the MTA
    /// was already told. `CrashSafetyTests` runs `greylag crash-test` with it
    /// and expects lost answers: without it a check that cannot fail would
    /// pass as well.
    public static let answerBeforeCommit = ProcessInfo.processInfo.environment["GREYLAG_TEST_ANSWER_BEFORE_COMMIT"] == "1"

    /// `GREYLAG_TEST_NO_TOUCH_FLUSH=1`: the SQLite store's flush timer never
    /// writes the counts of retries (`RetryTouches`), so they are lost at a
    /// kill. `CrashSafetyTests` expects `greylag crash-test` to report that.
    public static let noTouchFlush = ProcessInfo.processInfo.environment["GREYLAG_TEST_NO_TOUCH_FLUSH"] == "1"

    /// How long the commit waits after the early answers.
    static let heldCommit: useconds_t = 100_000
}

/// Serialises writes to one SQLite database and commits them in groups.
///
/// Callers submit work; a single drain loop takes everything submitted so far
/// (up to `maxBatch`), runs it in one `BEGIN IMMEDIATE` transaction, commits,
/// and only then resumes the callers. Work submitted during a commit forms
/// the next group, so under load one fsync serves many decisions.
final class GroupCommitWriter: Sendable {
    private struct State: ~Copyable {
        var pending: [GroupJob] = []
        var draining = false
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let pool: DatabasePool
    private let maxBatch: Int
    private let state = Mutex(State())
    /// Runs the drain loop: a private serial queue, or the event loop that
    /// also serves the connections, so a batch is committed at the end of
    /// the loop's turn without handing work between threads.
    private let execute: Executor
    private let commits = Atomic<Int>(0)
    private let writes = Atomic<Int>(0)
    /// `StoreTestSwitch.answerBeforeCommit`, read when the writer is made.
    private let answerBeforeCommit = StoreTestSwitch.answerBeforeCommit
    /// Called on the writer after each transaction, with whether it was
    /// committed, before any of its callers is answered.
    private let afterTransaction: (@Sendable (Bool) -> Void)?
    /// BEGIN and COMMIT, prepared once on the writer's connection.
    private let transactionStatements = PreparedStatements<TransactionQuery>()

    /// Transactions committed so far (each may hold many writes).
    var commitCount: Int { commits.load(ordering: .relaxed) }
    /// Writes committed so far.
    var writeCount: Int { writes.load(ordering: .relaxed) }

    /// Something that runs work serially, one item after another.
    typealias Executor = @Sendable (@escaping @Sendable () -> Void) -> Void

    init(pool: DatabasePool, maxBatch: Int, executor: Executor? = nil,
         afterTransaction: (@Sendable (Bool) -> Void)? = nil) {
        self.pool = pool
        self.maxBatch = max(1, maxBatch)
        self.afterTransaction = afterTransaction
        if let executor {
            self.execute = executor
        } else {
            let queue = DispatchQueue(label: "greylag.store.writer")
            self.execute = { queue.async(execute: $0) }
        }
    }

    /// Runs `body` in the next group transaction and returns its result once
    /// that transaction is committed.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            submit(body) { continuation.resume(with: $0) }
        }
    }

    /// Runs `body` in the next group transaction and calls `completion` with
    /// its result once that transaction is committed (on the writer thread).
    func submit<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T,
                             completion: @escaping @Sendable (Result<T, any Error>) -> Void) {
        submit(ClosureJob(body, completion: completion))
    }

    /// Runs `job` in the next group transaction and answers it once that
    /// transaction is committed (on the writer thread).
    func submit(_ job: GroupJob) {
        let startDrain = state.withLock { state -> Bool in
            state.pending.append(job)
            if state.draining { return false }
            state.draining = true
            return true
        }
        if startDrain { execute { self.drain() } }
    }

    /// Returns once everything submitted so far is committed.
    func drained() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = state.withLock { state -> Bool in
                if !state.draining { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }

    /// Finalizes the statements the writer keeps, on the writer's
    /// connection: call once everything is drained, before the pool is
    /// closed (SQLite does not close a connection with statements left).
    func dropStatements(also other: (@Sendable () -> Void)? = nil) throws {
        try pool.writeWithoutTransaction { _ in
            transactionStatements.drop()
            other?()
        }
    }

    /// Commits one group, then hands the rest back to the executor, so an
    /// event loop that runs the writer gets to its own connections between
    /// groups however busy the other loops keep the writer.
    private func drain() {
        let batch: [GroupJob]? = state.withLock { state in
            if state.pending.isEmpty {
                state.draining = false
                return nil
            }
            if state.pending.count <= maxBatch {
                defer { state.pending.removeAll(keepingCapacity: true) }
                return state.pending
            }
            let head = Array(state.pending.prefix(maxBatch))
            state.pending.removeFirst(maxBatch)
            return head
        }
        guard let batch else {
            let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                // A writer may have been submitted between the two locks.
                if state.draining { return [] }
                defer { state.idleWaiters.removeAll() }
                return state.idleWaiters
            }
            waiters.forEach { $0.resume() }
            return
        }
        var answered = false
        do {
            try pool.writeWithoutTransaction { db in
                // Compiled once (GRDB's `inTransaction` compiled both for
                // every group: a tenth of a decision's CPU).
                try transactionStatements.statement(.begin, in: db).execute()
                do {
                    for job in batch { job.run(db) }
                    if answerBeforeCommit {
                        // TEST ONLY (see StoreTestSwitch): the wrong order.
                        answered = true
                        batch.forEach { $0.committed() }
                        usleep(StoreTestSwitch.heldCommit)
                    }
                    try transactionStatements.statement(.commit, in: db).execute()
                } catch {
                    // A failed COMMIT may leave the transaction open.
                    if db.isInsideTransaction { try? db.execute(sql: "ROLLBACK TRANSACTION") }
                    throw error
                }
            }
            afterTransaction?(true)
            commits.add(1, ordering: .relaxed)
            writes.add(batch.count, ordering: .relaxed)
            if !answered { batch.forEach { $0.committed() } }
        } catch {
            afterTransaction?(false)
            if !answered { batch.forEach { $0.abort(error) } }
        }
        execute { self.drain() }
    }
}

/// One piece of work for a group transaction: `run` inside it, then
/// `committed` once it is committed, or `abort` instead when it failed.
/// A subclass holds what its work needs, so a decision is one object here
/// rather than a closure for each step and one for its result.
///
/// `@unchecked Sendable`: a job is made on one thread and handed to the
/// writer, which alone calls its methods, one after another.
class GroupJob: @unchecked Sendable {
    /// Runs inside the transaction; keeps its result for `committed`.
    func run(_ db: Database) {}
    /// The transaction holding `run`'s writes is committed.
    func committed() {}
    /// The transaction could not be committed: `run`'s writes are gone.
    func abort(_ error: any Error) {}
}

/// A job whose `work` makes a value, handed to its completion after the
/// commit (or the error, when the work or the transaction failed).
class ResultJob<T: Sendable>: GroupJob, @unchecked Sendable {
    private let completion: @Sendable (Result<T, any Error>) -> Void
    private var result: Result<T, any Error>?

    init(completion: @escaping @Sendable (Result<T, any Error>) -> Void) {
        self.completion = completion
    }

    /// What the job does inside the transaction; subclasses override it.
    func work(_ db: Database) throws -> T {
        throw DatabaseError(resultCode: .SQLITE_MISUSE, message: "a job without work")
    }

    final override func run(_ db: Database) {
        result = Result { try work(db) }
    }

    final override func committed() {
        completion(result ?? .failure(DatabaseError(resultCode: .SQLITE_MISUSE, message: "a job answered before it ran")))
    }

    final override func abort(_ error: any Error) {
        completion(.failure(error))
    }
}

/// A job made of a closure and its completion.
private final class ClosureJob<T: Sendable>: ResultJob<T>, @unchecked Sendable {
    private let body: @Sendable (Database) throws -> T

    init(_ body: @escaping @Sendable (Database) throws -> T, completion: @escaping @Sendable (Result<T, any Error>) -> Void) {
        self.body = body
        super.init(completion: completion)
    }

    override func work(_ db: Database) throws -> T {
        try body(db)
    }
}

/// BEGIN IMMEDIATE and COMMIT: GRDB's `inTransaction` compiles both anew
/// for every transaction.
private enum TransactionQuery: Int, PreparedQuery {
    case begin, commit
    var sql: String {
        switch self {
        case .begin: "BEGIN IMMEDIATE TRANSACTION"
        case .commit: "COMMIT TRANSACTION"
        }
    }
}
