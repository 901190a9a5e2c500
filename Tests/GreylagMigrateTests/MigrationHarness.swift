import Foundation
import GreylagCore
import GreylagTestSupport
import GreylagMigrate
import GreylagServer
import Testing

/// A migration written to a fresh directory and loaded as `greylag serve` would load it.
struct Written {
    let dir: String
    let config: GreylagConfiguration

    init(_ m: Migration) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("greylag-migrate-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try m.toml().write(toFile: dir + "/greylag.toml", atomically: true, encoding: .utf8)
        for f in m.listFiles { try f.text.write(toFile: dir + "/" + f.name, atomically: true, encoding: .utf8) }
        config = try ConfigurationLoader.load(path: dir + "/greylag.toml")
    }

    var engine: Engine { Engine(policy: config.policy, lists: config.lists) }

    func remove() { try? FileManager.default.removeItem(atPath: dir) }
}

func rcpt(_ client: String, from sender: String = "alice@example.org", to recipient: String = "bob@example.net",
          name: String = "") -> GreylistQuery {
    GreylistQuery(stage: .rcpt, clientAddress: client, clientName: name, sender: sender, recipient: recipient, origin: "milter")
}

/// A fixture of this test target.
func fixture(_ name: String) throws -> [UInt8] {
    let url = try #require(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil))
    return Array(try Data(contentsOf: url))
}

/// A file Debian ships on this machine. Under scripts/test.sh (GREYLAG_E2E=1)
/// a missing file fails the test; elsewhere the test is skipped.
func debianFile(_ path: String) throws -> [UInt8]? {
    if let d = FileManager.default.contents(atPath: path) { return Array(d) }
    if ProcessInfo.processInfo.environment["GREYLAG_E2E"] == "1" {
        Issue.record("\(path) is missing or unreadable: run scripts/install-test-deps.sh (as root)")
    }
    return nil
}

let readAny: PostgreyOptions.ReadFile = { path in FileManager.default.contents(atPath: path).map { Array($0) } }

extension Migration {
    func string(_ section: String, _ key: String) -> String? {
        if case .string(let s)? = value(section, key) { return s }
        return nil
    }
    func strings(_ section: String, _ key: String) -> [String]? {
        if case .strings(let s)? = value(section, key) { return s }
        return nil
    }
    func integer(_ section: String, _ key: String) -> Int64? {
        if case .integer(let i)? = value(section, key) { return i }
        return nil
    }
    func notes(containing text: String) -> [MigrationNote] { notes.filter { $0.description.contains(text) } }
}
