import Foundation
import GreylagCore
import GreylagImport
import GreylagStore
import Testing

/// Import and export behave the same on every backend.
@Suite struct ImportExportConformanceTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../GreylagImportTests/Fixtures").standardized

    /// Every record of the store, in the store's order, through the export
    /// pages; each exactly once (checked here).
    static func exportAll(_ store: any GreylistStore, page: Int) async throws -> ([GreylistRecord], [ClientRecord]) {
        var records: [GreylistRecord] = []
        var clients: [ClientRecord] = []
        try await store.exportAll(page: page, records: { records += $0 }, clients: { clients += $0 })
        #expect(Set(records.map(\.triplet)).count == records.count, "a record exported twice")
        #expect(Set(clients.map(\.network)).count == clients.count, "a client exported twice")
        return (records, clients)
    }

    static func sorted(_ records: [GreylistRecord]) -> [GreylistRecord] {
        records.sorted { ($0.triplet.network, $0.triplet.sender, $0.triplet.recipient)
            < ($1.triplet.network, $1.triplet.sender, $1.triplet.recipient) }
    }

    @Test(arguments: Backend.available)
    func importedStateIsStoredWithItsCountsAndTimings(backend: Backend) async throws {
        // Each seed format, parsed, then written into the backend and read back.
        let now: Int64 = 1_267_450_000  // 2010-03-01 13:26:40 UTC, before the fixtures' expiries
        let cases: [(String, ImportFormat, Int64)] = [
            ("postgrey.db_dump", .postgrey, 1_709_294_400), ("milter-greylist.db", .milterGreylist, now),
            ("relaytofrom.sql", .relaytofrom, 1_163_592_000), ("qmail-spp.sql", .qmailSpp, 1_433_937_600),
        ]
        for (file, format, at) in cases {
            let bytes = [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent(file)))
            let parsed = try Importer.parse(bytes: bytes, format: format, options: ImportOptions(now: at))
            #expect(!parsed.records.isEmpty, "\(file)")
            try await backend.withStore { store in
                try await store.importState(records: parsed.records, clients: parsed.clients)
                let (records, clients) = try await Self.exportAll(store, page: 3)
                #expect(Self.sorted(records) == Self.sorted(parsed.records), "\(file)")
                #expect(Set(clients) == Set(parsed.clients), "\(file)")
                // The imported state decides: a passed triplet passes at once.
                if let passed = parsed.records.first(where: { $0.hasPassed && $0.recordExpires > at + 1 }) {
                    let verdict = try await decide(store, passed.triplet, at: at + 1)
                    #expect(verdict.action == .pass, "\(file): \(passed.triplet) \(verdict.reason)")
                }
            }
        }
    }

    @Test(arguments: Backend.available)
    func importMergesIdempotentlyWithWhatIsStored(backend: Backend) async throws {
        try await backend.withStore { store in
            let t = triplet(1)
            _ = try await decide(store, t, at: t0)          // stored: first t0, blocked 1, pending
            let imported = GreylistRecord(triplet: t, firstSeen: t0 - 1000, lastSeen: t0 - 500, blockExpires: t0 - 700,
                                          recordExpires: t0 + 86_400 * 30, blockedCount: 1, passedCount: 3)
            let other = GreylistRecord(triplet: triplet(2), firstSeen: t0, lastSeen: t0, blockExpires: t0 + 300,
                                       recordExpires: t0 + 3600, blockedCount: 2, passedCount: 0, origin: .manual)
            let client = ClientRecord(network: t.network, passedTriplets: 4, firstSeen: t0 - 1000, lastSeen: t0 - 500,
                                      recordExpires: t0 + 86_400)
            for _ in 0..<2 {
                try await store.importState(records: [imported, other], clients: [client])
            }
            let merged = try #require(try await store.record(for: t))
            #expect(merged.firstSeen == t0 - 1000 && merged.lastSeen == t0 && merged.blockExpires == t0 - 700)
            #expect(merged.blockedCount == 1 && merged.passedCount == 3 && merged.recordExpires == t0 + 86_400 * 30)
            #expect(try await store.record(for: triplet(2)) == other)
            let (records, clients) = try await Self.exportAll(store, page: 1)
            #expect(Set(records.map(\.triplet)) == [triplet(1), triplet(2)] && records.count == 2)
            #expect(clients == [client])
            // The merged triplet passed: it is known, and the client's count is what was imported.
            #expect(try await decide(store, t, at: t0 + 10).reason == .knownTriplet)
            #expect(try await store.counts(now: t0 + 10) == StoreCounts(pending: 1, passed: 1, clients: 1))
        }
    }
}
