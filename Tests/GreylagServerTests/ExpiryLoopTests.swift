import Foundation
import GreylagCore
import GreylagServer
import GreylagStore
import Synchronization
import Testing

@Suite(.serialized) struct ExpiryLoopTests {
    /// The daemon removes records once they expire, by itself, while serving.
    @Test func daemonExpiresRecordsInTheBackground() async throws {
        let clock = ManualClock()
        let opened = Mutex<SQLiteStore?>(nil)
        try await withDaemon(configure: { $0.expiryInterval = 1; $0.expiryBatch = 2 },
                             store: { config in
                                 let store = try SQLiteStore(path: config.storePath)
                                 opened.withLock { $0 = store }
                                 return store
                             },
                             clock: clock) { addresses, _ in
            let client = try await PolicyTestClient(addresses[0])
            for i in 0..<5 {
                #expect(try await client.ask(rcptRequest(sender: "s\(i)@example.org")) != nil)
            }
            let store = try #require(opened.withLock { $0 })
            #expect(try await store.counts(now: clock.now).pending == 5)
            clock.advance(2 * 86_400 + 1)  // past the retry window
            var left = Int64(-1)
            for _ in 0..<50 {
                let all = try await store.records(matching: RecordFilter(limit: 100), now: 0)
                left = Int64(all.count)
                if left == 0 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(left == 0, "expired records still in the store")
        }
    }
}
