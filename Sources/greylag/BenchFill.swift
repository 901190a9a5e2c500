import ArgumentParser
import Foundation
import GreylagCore
import GreylagServer
import GreylagStore

/// Fills a SQLite store with synthetic records, so that the benchmarks can
/// measure greylag at a given store size.
struct BenchFill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-fill",
        abstract: "Fill a SQLite store with synthetic greylisting records (for benchmarks at a store size).")

    @Option(help: "SQLite file (created if missing).")
    var path: String
    @Option(help: "How many triplet records to add.")
    var records = 1_000_000
    @Option(help: "Share of them that have passed, 0 to 1; the rest wait for a retry.")
    var passedShare = 0.5

    func validate() throws {
        guard records >= 0 else { throw ValidationError("--records must not be negative") }
        guard (0...1).contains(passedShare) else { throw ValidationError("--passed-share must be between 0 and 1") }
    }

    func run() async throws {
        let store = try SQLiteStore(path: path)
        let now = unixNow()
        let started = ContinuousClock.now
        let batch = 20_000
        // Keys are made in their sort order (zero-padded), so the B-tree is
        // filled front to back; 100 triplets per /24-like network. They
        // share no key with the load generator's triplets. The next batch
        // is made while the store writes the previous one (the store's
        // writer runs on a thread of its own); most of the time is the
        // store's insert statements.
        var writing: Task<Void, any Error>?
        for start in stride(from: 0, to: records, by: batch) {
            let chunk = makeRecords(start..<min(start + batch, records), now: now)
            try await writing?.value
            if start > 0 && start % 1_000_000 < batch {
                let s = (ContinuousClock.now - started).components.seconds
                FileHandle.standardError.write(Data("bench-fill: \(start) records, \(s) s\n".utf8))
            }
            writing = Task { [store] in try await store.importState(records: chunk, clients: []) }
        }
        try await writing?.value
        try await store.close()
        let d = ContinuousClock.now - started
        let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        print("bench-fill: \(records) records added to \(path) in \(String(format: "%.1f", seconds)) s")
    }

    /// The records of indexes `range`: record i is on network i / 100,
    /// passed if i % 1000 falls below the passed share.
    func makeRecords(_ range: Range<Int>, now: Int64) -> [GreylistRecord] {
        var chunk: [GreylistRecord] = []
        chunk.reserveCapacity(range.count)
        for i in range {
            let net = i / 100
            let network = "100.\(pad(net / 65_536 % 1000, 3)).\(pad(net / 256 % 256, 3)).\(pad(net % 256, 3))/24"
            let passed = Double(i % 1000) < passedShare * 1000
            let first = now - 3600 - Int64(i % 3600)
            chunk.append(GreylistRecord(
                triplet: Triplet(network: network, sender: "filler\(pad(i % 100, 2))@fill.example",
                                 recipient: "user\(i % 7)@example.net"),
                firstSeen: first, lastSeen: first + (passed ? 600 : 0), blockExpires: first + 300,
                recordExpires: passed ? now + 35 * 86_400 : now + 2 * 86_400,
                blockedCount: 1, passedCount: passed ? 1 : 0))
        }
        return chunk
    }

    func pad(_ n: Int, _ width: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
}
