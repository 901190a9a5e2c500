import Foundation
import GreylagCore
@testable import GreylagServer
import GreylagStore
import Logging
import Synchronization
import Testing

/// A store that cannot be opened at start is tried again; an attempt asked
/// for (a reload) while another runs, or while the open begun at start has
/// not ended, must not be lost on that older attempt's failure: the
/// postmaster may have fixed the cause in between.
@Suite struct StoreReopenerTests {
    struct Refused: Error {}

    func reopener(dir: TemporaryDirectory, pending: Task<any GreylistStore, any Error>?,
                  opens: @escaping @Sendable (Int) async throws -> Void) -> (StoreReopener, SwappableStore) {
        let swappable = SwappableStore(UnavailableStore(reason: "broken"))
        let calls = Mutex(0)
        let path = dir.path + "/greylag.db"
        let logger = Logger(label: "test") { _ in CapturingHandler(log: CapturedLog()) }
        let service = GreylistService(policy: GreylistPolicy(), store: swappable, logger: logger)
        let reopener = StoreReopener(store: swappable, open: {
            let n = calls.withLock { $0 += 1; return $0 }
            try await opens(n)
            return try SQLiteStore(path: path)
        }, service: service, logger: logger, pending: pending)
        return (reopener, swappable)
    }

    @Test func anOpenBegunAtStartThatFailsIsFollowedByAFreshOne() async throws {
        let dir = TemporaryDirectory()
        let pending = Task<any GreylistStore, any Error> {
            try await Task.sleep(for: .milliseconds(200))
            throw Refused()
        }
        let (reopener, store) = reopener(dir: dir, pending: pending) { _ in }
        #expect(await reopener.attempt(trigger: "admin command"))
        #expect(store.unavailableReason == nil)
        try await store.close()
    }

    @Test func anAttemptAskedForWhileOneRunsTriesAgainAfterIt() async throws {
        let dir = TemporaryDirectory()
        // The first open fails after a while; any later one works.
        let (reopener, store) = reopener(dir: dir, pending: nil) { n in
            if n == 1 {
                try await Task.sleep(for: .milliseconds(300))
                throw Refused()
            }
        }
        let first = Task { await reopener.attempt(trigger: "retry every 1s") }
        try await Task.sleep(for: .milliseconds(100))
        #expect(await reopener.attempt(trigger: "admin command"))
        #expect(await first.value == false)
        #expect(store.unavailableReason == nil)
        try await store.close()
    }
}
