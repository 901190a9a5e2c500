import Foundation
import GreylagMigrate
import Testing
import TOMLKit

/// Odd bytes, unterminated constructs and huge input give notes or errors,
/// never a crash, and whatever is written is TOML that reads back as written.
@Suite struct HostileInputTests {
    /// The written text parses and `[milter] defer_text`-style values read back unchanged.
    func roundTrips(_ m: Migration) throws -> TOMLKit.TOMLTable {
        try TOMLKit.TOMLTable(string: m.toml())
    }

    @Test func stringsWithQuotesBackslashesAndControlBytesRoundTrip() throws {
        let nasty = "a\"b\\c'd\u{01}e\u{7F}f\tg{h}% é \u{FFFD}"
        var m = Migration(source: .postgrey, inputs: ["x\ny"])
        m.set("policy", "defer_text", .string(nasty), comment: "comment with\nnewline and \"quotes\"")
        m.set("lists.a b", "files", .strings(["x'y", "p\\q", ""]))
        var rule = GreylagMigrate.TOMLTable(header: "rules", comments: ["line\rbreak"])
        rule.set("senders", .strings(["/\\d+'/"]))
        m.rules.append(rule)
        let t = try roundTrips(m)
        #expect(t["policy"]?["defer_text"]?.string == nasty)
        #expect(t["lists"]?["a b"]?["files"]?.array?.compactMap(\.string) == ["x'y", "p\\q", ""])
        #expect(t["rules"]?.array?.first?["senders"]?.array?.first?.string == "/\\d+'/")
    }

    @Test func milterGreylistMsgWithOddBytesRoundTrips() throws {
        let conf = Array("racl blacklist addr 192.0.2.1 msg \"x\\y 'q' \u{07} %%\"\n".utf8)
        let m = try MilterGreylistConfig.migrate(conf, file: "g")
        let t = try roundTrips(m)
        #expect(t["rules"]?.array?.first?["reject_text"]?.string == "x\\y 'q' \u{07} %")
    }

    @Test func unterminatedBracesAndQuotesAreNotes() throws {
        let m = try MilterGreylistConfig.migrate(Array("greylist 10m\nracl whitelist msg \"open\nlist \"x\" addr { 192.0.2.1\nracl whitelist default\n".utf8), file: "g")
        #expect(m.string("greylist", "delay") == "10m")
        #expect(!m.notes(containing: "g:2: not carried over: racl whitelist msg: a quoted string that is not closed").isEmpty)
        #expect(!m.notes(containing: "g:3: not carried over: list \"x\" addr { 192.0.2.1 racl whitelist default: a { that is never closed; the rest of the file was not read").isEmpty)
        #expect(m.rules.isEmpty)
        _ = try roundTrips(m)
    }

    @Test func strayClosingBraceAndGarbageAreNotes() throws {
        let m = try MilterGreylistConfig.migrate(Array("}\n\"just a string\"\nracl\nracl maybe addr 1.2.3.4\nracl whitelist addr 999.1.1.1\nsubnetmatch /99\ngreylist forever\n".utf8), file: "g")
        #expect(m.notes.count == 8)  // the bad address gives two: the value, and the rule left out
        #expect(!m.notes(containing: "g:5: not carried over: addr \"999.1.1.1\"").isEmpty)
        #expect(m.rules.isEmpty)
    }

    @Test func randomBytesNeverTrap() throws {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("racl whitelist list addr from rcpt { } \" / \\ # \n 1.2.3.4 default delay 1h msg %r %".utf8) + [0, 0xFF, 0xC3]
        for _ in 0..<300 {
            let bytes = (0..<Int.random(in: 0..<400, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            let m = try MilterGreylistConfig.migrate(bytes, file: "fuzz")
            _ = try roundTrips(m)
            _ = try SqlgreyConfig.migrate(bytes, file: "fuzz", read: { _ in nil })
            _ = try QmailConfig.migrate(controlFile: bytes, file: "fuzz")
            _ = try PostgreyOptions.migrate(defaultsFile: bytes, file: "fuzz", read: { _ in nil })
            _ = PostgreyOptions.migrate(arguments: String(decoding: bytes, as: UTF8.self), read: { _ in nil })
        }
    }

    @Test func hugeLinesCostLinearWorkAndOversizedFilesAreRefused() throws {
        let line = "racl whitelist rcpt " + String(repeating: "a", count: 1_000_000) + "\n" + String(repeating: "{", count: 100_000)
        let clock = ContinuousClock()
        let elapsed = try clock.measure {
            let m = try MilterGreylistConfig.migrate(Array(line.utf8), file: "big")
            #expect(!m.notes(containing: "big:1: not carried over: rcpt a value of").isEmpty)
            #expect(m.rules.isEmpty)
        }
        #expect(elapsed < .seconds(10))
        let tooBig = [UInt8](repeating: 0x41, count: MigrationLimits.maxFileBytes + 1)
        #expect(throws: MigrationError.self) { try MilterGreylistConfig.migrate(tooBig, file: "big") }
        #expect(throws: MigrationError.self) { try SqlgreyConfig.migrate(tooBig, file: "big", read: { _ in nil }) }
    }

    @Test func durationsOutOfRangeAreNotes() throws {
        let m = try QmailConfig.migrate(controlFile: Array("block_expire=99999999999999999999\nrecord_expire_good=4000\n".utf8), file: "c")
        #expect(m.string("greylist", "delay") == "55m")  // the plugin's default stays
        #expect(!m.notes(containing: "c:1: not carried over: block_expire=").isEmpty)
        #expect(!m.notes(containing: "c:2: not carried over: record_expire_good=4000").isEmpty)
    }
}
