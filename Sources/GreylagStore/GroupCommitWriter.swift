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
    private struct Job: Sendable {
        /// Runs inside the transaction; returns what to do after the commit.
        let run: @Sendable (Database) -> @Sendable () -> Void
        /// Called instead when the transaction could not be committed.
        let abort: @Sendable (any Error) -> Void
    }

    private struct State: ~Copyable {
        var pending: [Job] = []
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
        let job = Job(
            run: { db in
                do {
                    let value = try body(db)
                    return { completion(.success(value)) }
                } catch {
                    return { completion(.failure(error)) }
                }
            },
            abort: { error in completion(.failure(error)) })
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

    /// Commits one group, then hands the rest back to the executor, so an
    /// event loop that runs the writer gets to its own connections between
    /// groups however busy the other loops keep the writer.
    private func drain() {
        let batch: [Job]? = state.withLock { state in
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
        var completions: [@Sendable () -> Void] = []
        completions.reserveCapacity(batch.count)
        var answered = false
        do {
            try pool.writeWithoutTransaction { db in
                // GRDB's `inTransaction` compiles BEGIN and COMMIT anew
                // each time, which cost a tenth of a decision; cached, they
                // are compiled once per connection.
                try db.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute()
                do {
                    for job in batch { completions.append(job.run(db)) }
                    if answerBeforeCommit {
                        // TEST ONLY (see StoreTestSwitch): the wrong order.
                        answered = true
                        completions.forEach { $0() }
                        usleep(StoreTestSwitch.heldCommit)
                    }
                    try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
                } catch {
                    // A failed COMMIT may leave the transaction open.
                    if db.isInsideTransaction { try? db.execute(sql: "ROLLBACK TRANSACTION") }
                    throw error
                }
            }
            afterTransaction?(true)
            commits.add(1, ordering: .relaxed)
            writes.add(batch.count, ordering: .relaxed)
            if !answered { completions.forEach { $0() } }
        } catch {
            afterTransaction?(false)
            if !answered { batch.forEach { $0.abort(error) } }
        }
        execute { self.drain() }
    }
}
