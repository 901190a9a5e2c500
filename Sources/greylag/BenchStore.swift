import ArgumentParser
import Foundation
import GreylagCore
import GreylagServer
import GreylagStore
import Synchronization

struct BenchStore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-store",
        abstract: "Measure the SQLite store alone: concurrent decisions without any network.")

    @Option(help: "SQLite file to use (created; removed afterwards unless --keep).")
    var path = "greylag-bench-store.db"
    @Option(help: "Concurrent callers.")
    var callers = 16
    @Option(help: "Seconds to run.")
    var duration = 5.0
    @Option(help: "Share of decisions on brand-new triplets, 0 to 1.")
    var newShare = 0.3
    @Option(help: "synchronous: full or normal.")
    var synchronous = "full"
    @Flag(help: "Keep the file afterwards.")
    var keep = false

    func run() async throws {
        guard let sync = SQLiteStore.Synchronous(rawValue: synchronous) else {
            throw ValidationError("--synchronous must be full or normal")
        }
        let store = try SQLiteStore(path: path, synchronous: sync)
        let engine = Engine()
        let deadline = ContinuousClock.now + .milliseconds(Int64(duration * 1000))
        let start = ContinuousClock.now
        let share = newShare
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for caller in 0..<callers {
                group.addTask {
                    var count = 0
                    var known: [Triplet] = []
                    var rng = SystemRandomNumberGenerator()
                    while ContinuousClock.now < deadline {
                        let fresh = known.isEmpty || Double.random(in: 0..<1, using: &rng) < share
                        let t = fresh
                            ? Triplet(network: "198.51.\(caller).0/24", sender: "s\(count)@bench.example",
                                      recipient: "user\(Int.random(in: 0..<5000, using: &rng))@example.net")
                            : known[Int.random(in: 0..<known.count, using: &rng)]
                        if fresh && known.count < 10_000 { known.append(t) }
                        let now = unixNow()
                        _ = try await store.decide(t, now: now) { engine.decide(t, state: $0, now: now) }
                        count += 1
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        let seconds = Double((ContinuousClock.now - start).components.attoseconds) / 1e18
            + Double((ContinuousClock.now - start).components.seconds)
        print(String(format: "store: %d callers, %.0f%% new, synchronous %@: %.0f decisions/s, %.1f decisions per commit",
                     callers, newShare * 100, synchronous, Double(total) / seconds,
                     Double(store.writeCount) / Double(max(1, store.commitCount))))
        try await store.close()
        if !keep {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        }
    }
}
