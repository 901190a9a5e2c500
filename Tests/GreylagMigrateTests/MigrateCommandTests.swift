import Foundation
import GreylagTestSupport
import Testing

/// The `greylag migrate` command itself, run as a program: it writes,
/// refuses to overwrite without --force, checks what it wrote, and says
/// what it left out on standard error. Runs under scripts/test.sh, which
/// builds the binary and names it in GREYLAG_BINARY (GREYLAG_E2E=1 without
/// it is a failure); elsewhere it is skipped.
@Suite struct MigrateCommandTests {
    func binary() -> String? {
        let env = ProcessInfo.processInfo.environment
        if let b = env["GREYLAG_BINARY"], !b.isEmpty { return b }
        if env["GREYLAG_E2E"] == "1" { Issue.record("GREYLAG_BINARY is not set; run the suite through scripts/test.sh") }
        return nil
    }

    func run(_ binary: String, _ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let r = try runCapturing(binary, args)
        return (r.status, r.stdout, r.stderr)
    }

    @Test func writesChecksRefusesToOverwriteAndNotes() throws {
        guard let greylag = binary() else { return }
        let conf = try #require(Bundle.module.url(forResource: "Fixtures/greylist.conf", withExtension: nil)).path
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("greylag-migrate-cli-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }

        let first = try run(greylag, ["migrate", "--from", "milter-greylist", conf, "--output", dir])
        #expect(first.status == 0, "\(first.err)")
        #expect(first.out.contains("8 rules") && first.out.contains("check-config: OK"))
        #expect(first.out.contains("greylag import --config greylag.toml --format milter-greylist /var/milter-greylist/greylist.db"))
        #expect(first.err.contains("\(conf):41: not carried over: racl whitelist dnsrbl \"SORBS DUN\""))
        for f in ["greylag.toml", "my_network.list", "broken_mta.list", "grey_users.list"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/" + f), "\(f)")
        }
        let again = try run(greylag, ["migrate", "--from", "milter-greylist", conf, "--output", dir])
        #expect(again.status == 73 && again.err.contains("already there; --force replaces"))
        let forced = try run(greylag, ["migrate", "--from", "milter-greylist", conf, "--output", dir, "--force"])
        #expect(forced.status == 0)

        let args = try run(greylag, ["migrate", "--from", "postgrey", "--args", "--inet=10023 --delay=60 --whitelist-clients=/nonexistent",
                                     "--output", dir + "/pg"])
        #expect(args.status == 0, "\(args.err)")
        #expect(try String(contentsOfFile: dir + "/pg/greylag.toml", encoding: .utf8).contains("delay = \"1m\""))
        #expect(args.err.contains("--args:1: not carried over: cannot read the list file /nonexistent"))

        let missing = try run(greylag, ["migrate", "--from", "sqlgrey", dir + "/no-such-file", "--output", dir + "/x"])
        #expect(missing.status == 66)
        let big = dir + "/big.conf"
        FileManager.default.createFile(atPath: big, contents: Data(repeating: 0x41, count: 5 << 20))
        let tooBig = try run(greylag, ["migrate", "--from", "milter-greylist", big, "--output", dir + "/y"])
        #expect(tooBig.status == 65 && tooBig.err.contains("larger than a configuration can be"))
    }
}
