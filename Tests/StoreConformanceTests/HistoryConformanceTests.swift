import GreylagCore
import GreylagStore
import Testing

/// The dashboard's queries: the hourly history and the groups of waiting
/// triplets, the same on every backend.
@Suite struct HistoryConformanceTests {
    @Test(arguments: Backend.available)
    func historyAddsUpAcrossWritersAndPrunes(backend: Backend) async throws {
        try await backend.withStore { store in
            let h: Int64 = t0 / 3600
            // One write with a repeated key, then a second writer adding to the same rows.
            try await store.addHistory([HistoryCount(hour: h, name: "defer", count: 3),
                                        HistoryCount(hour: h, name: "defer", count: 2),
                                        HistoryCount(hour: h + 1, name: "pass", count: 7),
                                        HistoryCount(hour: h - 30, name: "defer", count: 1)])
            try await store.addHistory([HistoryCount(hour: h, name: "defer", count: 10),
                                        HistoryCount(hour: h, name: "returned", count: 4)])
            try await store.addHistory([])
            let rows = try await store.history(since: h)
            #expect(rows == [HistoryCount(hour: h, name: "defer", count: 15),
                             HistoryCount(hour: h, name: "returned", count: 4),
                             HistoryCount(hour: h + 1, name: "pass", count: 7)])
            #expect(try await store.history(since: h - 30).count == 4)
            #expect(try await store.pruneHistory(before: h) == 1)
            #expect(try await store.history(since: 0).count == 3)
        }
    }

    @Test(arguments: Backend.available)
    func concurrentHistoryWritersLoseNothing(backend: Backend) async throws {
        try await backend.withStore { store in
            let h: Int64 = t0 / 3600
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        for _ in 0..<5 {
                            try await store.addHistory([HistoryCount(hour: h, name: "defer", count: 1),
                                                        HistoryCount(hour: h, name: "pass", count: 2)])
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await store.history(since: h) == [HistoryCount(hour: h, name: "defer", count: 40),
                                                          HistoryCount(hour: h, name: "pass", count: 80)])
        }
    }

    @Test(arguments: Backend.available)
    func waitingGroupsCountPendingLiveTripletsOnly(backend: Backend) async throws {
        try await backend.withStore { store in
            let a = "198.51.100.0/24", b = "203.0.113.0/24"
            // Network a: three pending triplets, one deferred twice; b: one pending, one passed.
            for n in 1...3 { _ = try await decide(store, triplet(n, network: a), at: t0 + Int64(n)) }
            _ = try await decide(store, triplet(1, network: a), at: t0 + 10)
            _ = try await decide(store, triplet(4, network: b), at: t0 + 20)
            let passed = triplet(5, network: b)
            _ = try await decide(store, passed, at: t0)
            #expect(try await decide(store, passed, at: t0 + engine.policy.delay + 1).action == .pass)
            // A pending triplet whose record expired is not waiting any more.
            _ = try await decide(store, Triplet(network: "192.0.2.0/24", sender: "old@example.org", recipient: "x@example.net"),
                                 at: t0 - engine.policy.retryWindow - 100)

            let now = t0 + engine.policy.delay + 2
            let networks = try await store.waiting(by: .network, now: now, limit: 10)
            #expect(networks == [WaitingGroup(key: a, triplets: 3, attempts: 4, oldestFirstSeen: t0 + 1),
                                 WaitingGroup(key: b, triplets: 1, attempts: 1, oldestFirstSeen: t0 + 20)])
            #expect(try await store.waiting(by: .network, now: now, limit: 1).map(\.key) == [a])
            // Senders sender1..sender4 wait with one triplet each: ordered by key after the count.
            let senders = try await store.waiting(by: .sender, now: now, limit: 10)
            #expect(senders.map(\.key) == (1...4).map { "sender\($0)@example.org" })
            #expect(senders.first?.attempts == 2)
        }
    }
}
