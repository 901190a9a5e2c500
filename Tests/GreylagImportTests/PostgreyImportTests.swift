import Foundation
import GreylagCore
import Testing
@testable import GreylagImport

/// Fixtures made with `db_load` from postgrey 1.37-style keys and dumped with
/// `db_dump` (hex) and `db_dump -p`: `postgrey.db_dump*` (keys on lines
/// 6, 8, ..., 28) and `postgrey_clients.db_dump*` (keys on lines 6...14).
@Suite struct PostgreyImportTests {
    /// 2024-03-01 12:00:00 UTC; delay 300, retry window 172800, pass TTL 3110400.
    let now: Int64 = 1_709_294_400

    let expectedRecords = [
        // line 6: empty sender; 1709290000 - 1709200000 >= 300: passed, kept
        // 36 days after the last sighting.
        record("192.0.2.0/24", "<>", "postmaster@example.net", first: 1_709_200_000, last: 1_709_290_000,
               block: 1_709_200_300, expires: 1_712_400_400, blocked: 1, passed: 1),
        // line 8: 400 s between first and last: passed.
        record("192.0.2.0/24", "alice@example.org", "bob@example.net", first: 1_709_280_000, last: 1_709_280_400,
               block: 1_709_280_300, expires: 1_712_390_800, blocked: 1, passed: 1),
        // line 10 (\\ in -p): never retried, kept for the retry window after first seen.
        record("192.0.2.0/24", "back\\slash@example.com", "trent@example.net", first: 1_709_260_000,
               last: 1_709_260_000, block: 1_709_260_300, expires: 1_709_432_800, blocked: 1, passed: 0),
        // line 12: retried after 100 s only: not passed.
        record("192.0.2.0/24", "bounce-#-x@lists.example.com", "carol@example.net", first: 1_709_290_000,
               last: 1_709_290_100, block: 1_709_290_300, expires: 1_709_462_800, blocked: 1, passed: 0),
        // line 18: UTF-8 sender (\c3\a9 in -p).
        record("192.0.2.0/24", "ren\u{e9}@example.fr", "peggy@example.net", first: 1_709_270_000, last: 1_709_270_900,
               block: 1_709_270_300, expires: 1_712_381_300, blocked: 1, passed: 1),
        // lines 20 and 22: the --lookup-by-host key 198.51.100.7/32 keys to the
        // same /24 as 198.51.100.0: merged.
        record("198.51.100.0/24", "frank@example.com", "grace@example.net", first: 1_709_240_000, last: 1_709_250_000,
               block: 1_709_250_300, expires: 1_712_351_000, blocked: 2, passed: 1),
        // line 24: NetAddr::IP's full IPv6 network address.
        record("2001:db8:1:2::/64", "dave@example.com", "erin@example.net", first: 1_709_100_000, last: 1_709_150_000,
               block: 1_709_100_300, expires: 1_712_260_400, blocked: 1, passed: 1),
        // line 26: the partial net "203.0.113" and an old three-field value.
        record("203.0.113.0/24", "heidi@example.com", "ivan@example.net", first: 1_709_000_000, last: 1_709_001_000,
               block: 1_709_000_300, expires: 1_712_111_400, blocked: 1, passed: 1),
    ]

    @Test(arguments: ["postgrey.db_dump", "postgrey.db_dump-p"])
    func tripletDatabase(fixture: String) throws {
        let result = try Importer.parse(try Fixture.text(fixture), format: .postgrey, options: ImportOptions(now: now))
        #expect(result.records == expectedRecords)
        // line 16: last seen 1700000400, max-age over.
        #expect(result.expired == 1)
        #expect(result.skipped == [
            ImportProblem(line: 14, reason: "value is not two comma-separated numbers: garbage"),
            ImportProblem(line: 28, reason: "key hashed by postgrey --privacy cannot be mapped back to a triplet or client"),
        ])
        #expect(result.manualEntries.isEmpty)
        // No client table: derived from the passed triplets.
        #expect(result.clients == [
            ClientRecord(network: "192.0.2.0/24", passedTriplets: 3, firstSeen: 1_709_200_000, lastSeen: 1_709_290_000,
                         recordExpires: 1_712_400_400),
            ClientRecord(network: "198.51.100.0/24", passedTriplets: 1, firstSeen: 1_709_240_000,
                         lastSeen: 1_709_250_000, recordExpires: 1_712_351_000),
            ClientRecord(network: "2001:db8:1:2::/64", passedTriplets: 1, firstSeen: 1_709_100_000,
                         lastSeen: 1_709_150_000, recordExpires: 1_712_260_400),
            ClientRecord(network: "203.0.113.0/24", passedTriplets: 1, firstSeen: 1_709_000_000,
                         lastSeen: 1_709_001_000, recordExpires: 1_712_111_400),
        ])
    }

    @Test(arguments: ["postgrey_clients.db_dump", "postgrey_clients.db_dump-p"])
    func clientDatabase(fixture: String) throws {
        let result = try Importer.parse(try Fixture.text(fixture), format: .postgrey, options: ImportOptions(now: now))
        #expect(result.records.isEmpty)
        #expect(result.clients == [
            // 192.0.2.10 (7, last 1709280400) and 192.0.2.20 (2, last 1709200000).
            ClientRecord(network: "192.0.2.0/24", passedTriplets: 9, firstSeen: 1_709_200_000, lastSeen: 1_709_280_400,
                         recordExpires: 1_712_390_800),
            ClientRecord(network: "2001:db8:1:2::/64", passedTriplets: 5, firstSeen: 1_709_150_000,
                         lastSeen: 1_709_150_000, recordExpires: 1_712_260_400),
        ])
        // line 6: 10.1.2.3 last seen 1700000000.
        #expect(result.expired == 1)
        #expect(result.skipped == [
            ImportProblem(line: 14, reason: "key hashed by postgrey --privacy cannot be mapped back to a triplet or client"),
        ])
    }

    @Test func delayDecidesWhatPassed() throws {
        var options = ImportOptions(now: now)
        options.delay = 600
        let result = try Importer.parse(try Fixture.text("postgrey.db_dump-p"), format: .postgrey, options: options)
        // 400 s between first and last is not enough with a 600 s delay.
        let r = try #require(result.record("192.0.2.0/24", "alice@example.org", "bob@example.net"))
        #expect(r.passedCount == 0)
        #expect(r.blockExpires == 1_709_280_600)
        #expect(r.recordExpires == 1_709_280_000 + 172_800)
    }

    @Test func malformedDumps() throws {
        #expect(throws: ImportError(line: 1, "not db_dump output: expected a header such as VERSION=3")) {
            try Importer.parse(try Fixture.text("not-a-dump.txt"), format: .postgrey, options: ImportOptions(now: now))
        }
        #expect(throws: ImportError(line: 1, "not db_dump output: expected a header such as VERSION=3")) {
            try Importer.parse(try Fixture.text("milter-greylist.db"), format: .postgrey, options: ImportOptions(now: now))
        }
        let truncated = "VERSION=3\nformat=print\nHEADER=END\n 192.0.2.0/a@example.org/b@example.net\n 1,2\nnot data\n"
        #expect(throws: ImportError(line: 6, "expected a db_dump data line (starting with a space) or DATA=END")) {
            try Importer.parse(truncated, format: .postgrey, options: ImportOptions(now: 0))
        }
        let odd = "VERSION=3\nformat=bytevalue\nHEADER=END\n 3g\n 31\n 3132\nDATA=END\n"
        let result = try Importer.parse(odd, format: .postgrey, options: ImportOptions(now: 0))
        #expect(result.skipped == [
            ImportProblem(line: 4, reason: "malformed hex key"),
            ImportProblem(line: 6, reason: "key without a value"),
        ])
    }
}
