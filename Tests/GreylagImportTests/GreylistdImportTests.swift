import Foundation
import GreylagCore
import GreylistdProtocol
import Testing
@testable import GreylagImport

/// Fixtures `greylistd-states` and `greylistd-triplets`, written as
/// greylistd 0.9 saves them (`saveToFile`, `syncTriplets`): Python 3
/// hashes (signed 64-bit, and one 32-bit one from Python 2), sections in
/// greylistd's order, a blank line after each.
@Suite struct GreylistdImportTests {
    /// 2023-11-14 22:13:20 UTC; delay 300, retry window 172800, pass TTL 3110400.
    let now: Int64 = 1_700_000_000

    func imported(triplets: Bool = true) throws -> ImportResult {
        try Importer.parseGreylistd(states: try Fixture.bytes("greylistd-states"),
                                    triplets: triplets ? try Fixture.bytes("greylistd-triplets") : nil,
                                    tripletsName: "triplets", options: ImportOptions(now: now))
    }

    @Test func statesWithTriplets() throws {
        let result = try imported()
        #expect(result.records == [
            // line 2: white since 1699900000 (when it left the greylist), 3 hits since.
            record("192.0.2.0/24", "alice@example.org", "bob@example.net", first: 1_699_900_000, last: 1_699_990_000,
                   block: 1_699_900_000, expires: 1_703_100_400, blocked: 1, passed: 3),
            // line 3: the /24-masked form of greylistd-setup-exim4 -netmask=24.
            record("198.51.100.0/24", "carol@example.com", "dave@example.net", first: 1_699_995_000, last: 1_699_999_000,
                   block: 1_699_995_000, expires: 1_703_109_400, blocked: 1, passed: 1),
            // line 10: Debian's acl_check_data sends no sender: the null sender.
            record("2001:db8::/64", "<>", "postmaster@example.net", first: 1_699_999_400, last: 1_699_999_500,
                   block: 1_699_999_700, expires: 1_700_172_200, blocked: 2, passed: 0),
            // line 11: four words, keyed by the words themselves.
            record(GreylistdData.wordsNetwork, GreylistdData.wordsSender, "192.0.2.9 erin@example.com frank@example.net extra",
                   first: 1_699_999_800, last: 1_699_999_800, block: 1_700_000_100, expires: 1_700_172_600,
                   blocked: 1, passed: 0),
        ])
        #expect(result.manualEntries == [
            // line 4: an address alone on the whitelist (singlecheck) passes the whole client.
            ManualEntry(id: 0, list: .whitelist, field: .client, value: "203.0.113.5", comment: "greylistd import",
                        created: 1_699_998_000),
            // line 16: an address alone on the blacklist refuses the client.
            ManualEntry(id: 0, list: .blacklist, field: .client, value: "192.0.2.66", comment: "greylistd import",
                        created: 1_699_000_000),
        ])
        // line 6: white, last seen 1600000000, gone after the pass TTL.
        #expect(result.expired == 1)
        #expect(result.unmapped == 2)
        let hashReason = "has no line in the triplets file: greylistd keeps only a hash of the data, which cannot be turned back into a triplet"
        var fromTriplets = [ImportProblem(line: 9, reason: "not HASH = DATA: bogus line"),
                            ImportProblem(line: 10, reason: "no data after the hash: 123 = ")]
        fromTriplets[0].file = "triplets"
        fromTriplets[1].file = "triplets"
        #expect(result.skipped == fromTriplets + [
            ImportProblem(line: 5, reason: "[white] hash -1520066171 \(hashReason)"),
            ImportProblem(line: 7, reason: "value is not LASTSEEN FIRSTSEEN COUNT: soon 1699990000 1"),
            ImportProblem(line: 12, reason: "[grey] hash 99 \(hashReason)"),
            ImportProblem(line: 13, reason: "last seen time 99999999999999 is out of range (Unix seconds of the years 1 to 9999)"),
            ImportProblem(line: 17, reason: "greylistd blacklists \"192.0.2.67 spam@example.com bob@example.net\" as a whole; "
                          + "greylag refuses by client, sender or recipient: add a rule such as `greylag blacklist add sender ADDRESS`"),
        ])
        // Word-keyed entries never make a client network; the two passed triplets do.
        #expect(result.clients.map(\.network) == ["192.0.2.0/24", "198.51.100.0/24"])
    }

    /// The imported triplets are the ones the greylistd socket keys the same words by.
    @Test func importedTripletsMeetTheSocketsKeys() throws {
        let result = try imported()
        let engine = Engine()
        for words in [["192.0.2.7", "alice@example.org", "bob@example.net"],
                      ["198.51.100.0/24", "carol@example.com", "dave@example.net"],
                      ["2001:db8::25", "postmaster@example.net"],
                      ["192.0.2.9", "erin@example.com", "frank@example.net", "extra"]] {
            let t = try #require(GreylistdData(words: words).triplet(engine: engine))
            #expect(result.records.contains { $0.triplet == t }, "\(words)")
        }
    }

    @Test func withoutTripletsNothingMapsAndEachHashIsReported() throws {
        let result = try imported(triplets: false)
        #expect(result.records.isEmpty && result.manualEntries.isEmpty)
        #expect(result.unmapped == 10)
        #expect(result.skipped.filter { $0.reason.contains(GreylistdImport.unmappedReason) }.count == 10)
    }

    @Test func otherFilesAreNotGreylistdStates() throws {
        #expect(throws: ImportError.self) {
            try Importer.parseGreylistd(states: try Fixture.bytes("not-a-dump.txt"), triplets: nil, options: ImportOptions(now: now))
        }
        #expect(throws: ImportError.self) {
            try Importer.parse("", format: .greylistd, options: ImportOptions(now: now))
        }
    }
}
