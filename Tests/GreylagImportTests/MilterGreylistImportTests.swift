import Foundation
import GreylagCore
import Testing
@testable import GreylagImport

/// Fixtures: `milter-greylist.db` (4.x "stored tuples" dump, tuples on lines
/// 11-19) and `milter-greylist-3.db` (3.x sections, padded fields).
@Suite struct MilterGreylistImportTests {
    /// 2010-03-01 12:00:00 UTC; delay 300, timeout (retry window) 172800,
    /// autowhite (pass TTL) 3110400.
    let now: Int64 = 1_267_444_800

    @Test func storedTuples() throws {
        let result = try Importer.parse(try Fixture.text("milter-greylist.db"), format: .milterGreylist,
                                        options: ImportOptions(now: now))
        #expect(result.records == [
            // line 11 greylisted, accepted from 1267446000 (2010-03-01 12:20:00),
            // merged with line 13: 192.0.2.99 in the same /24, auto-whitelisted
            // until 1267621200, so last passed 1267621200 - 3110400 = 1264510800.
            record("192.0.2.0/24", "alice@example.org", "bob@example.net", first: 1_264_510_500, last: 1_267_445_700,
                   block: 1_267_446_000, expires: 1_267_621_200, blocked: 2, passed: 1),
            // line 12: IPv6, null sender; accepted from 1267445400.
            record("2001:db8:1:2::/64", "<>", "postmaster@example.net", first: 1_267_445_100, last: 1_267_445_100,
                   block: 1_267_445_400, expires: 1_267_618_200, blocked: 1, passed: 0),
            // line 14: auto-whitelisted until 1267704000; +list dropped.
            record("2001:db8:1:2::/64", "carol@example.com", "dave@example.net", first: 1_264_593_300,
                   last: 1_264_593_600, block: 1_264_593_600, expires: 1_267_704_000, blocked: 1, passed: 1),
            // line 15: greylisted and tarpitted.
            record("198.51.100.0/24", "erin@example.com", "frank@example.net", first: 1_267_444_200, last: 1_267_444_200,
                   block: 1_267_444_500, expires: 1_267_617_300, blocked: 1, passed: 0),
        ])
        // line 16: whitelist over at 11:00; line 17: greylisted 2010-02-26, timed out.
        #expect(result.expired == 2)
        #expect(result.skipped == [
            ImportProblem(line: 18, reason: "not an IP address: mx.example.com"),
            ImportProblem(line: 19, reason: "time is not a number: soon"),
        ])
        #expect(result.clients == [
            ClientRecord(network: "192.0.2.0/24", passedTriplets: 1, firstSeen: 1_264_510_500, lastSeen: 1_267_445_700,
                         recordExpires: 1_267_621_200),
            ClientRecord(network: "2001:db8:1:2::/64", passedTriplets: 1, firstSeen: 1_264_593_300,
                         lastSeen: 1_264_593_600, recordExpires: 1_267_704_000),
        ])
    }

    @Test func version3Sections() throws {
        // 2007-01-10 08:00:00 UTC
        let result = try Importer.parse(try Fixture.text("milter-greylist-3.db"), format: .milterGreylist,
                                        options: ImportOptions(now: 1_168_416_000))
        #expect(result.records == [
            record("192.0.2.0/24", "judy@example.com", "kim@example.net", first: 1_168_416_000, last: 1_168_416_000,
                   block: 1_168_416_300, expires: 1_168_589_100, blocked: 1, passed: 0),
            // until 1168675200 (2007-01-13 08:00:00)
            record("192.0.2.0/24", "louis@example.com", "kim@example.net", first: 1_165_564_500, last: 1_165_564_800,
                   block: 1_165_564_800, expires: 1_168_675_200, blocked: 1, passed: 1),
        ])
        #expect(result.skipped.isEmpty)
    }

    @Test func notADump() throws {
        #expect(throws: ImportError(line: 2, "not a milter-greylist dump: expected address, sender, recipient and time, found 2 fields")) {
            try Importer.parse(try Fixture.text("not-a-dump.txt"), format: .milterGreylist, options: ImportOptions(now: now))
        }
        // Only comments: an empty dump, not an error.
        let empty = try Importer.parse("#\n# Summary: 0 records, 0 greylisted, 0 whitelisted\n#\n",
                                       format: .milterGreylist, options: ImportOptions(now: now))
        #expect(empty == ImportResult())
    }
}
