import Foundation
import GreylagCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The real `greylag` binary (GREYLAG_BINARY, set by `scripts/test.sh`):
/// admin commands change a running daemon at once, SIGHUP reloads the
/// configuration, and check-config names file and line.
@Suite(.serialized, .enabled(if: E2E.enabled)) struct CommandLineTests {
    @Test func adminCommandsAndSIGHUPWhileTheDaemonServes() async throws {
        let binary = try E2E.value("GREYLAG_BINARY")
        let dir = TemporaryDirectory()
        let port = try freePort()
        let config = dir.path + "/greylag.toml"
        func write(_ extra: String) throws {
            try """
                [policy]
                listen = ["127.0.0.1:\(port)"]
                [milter]
                listen = []
                [http]
                listen = "none"
                [store]
                path = "\(dir.path)/greylag.db"
                [admin]
                socket = "\(dir.path)/admin.sock"
                [reload]
                watch_interval = 0
                \(extra)
                """.write(toFile: config, atomically: true, encoding: .utf8)
        }
        try write("")
        let daemon = try startDaemon(binary, config: config, log: dir.path + "/daemon.log")
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        try await waitForPort(port)
        let c = try await PolicyTestClient("127.0.0.1:\(port)")
        #expect(try await c.ask(request()) == defer300)

        let add = try await runProgram(binary, ["whitelist", "add", "-c", config, "client", "192.0.2.0/24",
                                                "--comment", "partner MX pool", "--expires", "7d"])
        #expect(add.status == 0 && add.output.hasPrefix("added whitelist entry #1 client 192.0.2.0/24"), "\(add.output)")
        #expect(!add.output.contains("not running"))
        #expect(try await c.ask(request(recipient: "second@example.net")) == "action=DUNNO")
        let list = try await runProgram(binary, ["whitelist", "list", "-c", config])
        #expect(list.output.contains("#1\tclient\t192.0.2.0/24\tadded "), "\(list.output)")
        #expect(list.output.contains("# partner MX pool"))
        let remove = try await runProgram(binary, ["whitelist", "remove", "-c", config, "client", "192.0.2.0/24"])
        #expect(remove.status == 0, "\(remove.output)")
        #expect(try await c.ask(request(recipient: "third@example.net")) == defer300)

        let records = try await runProgram(binary, ["list", "-c", config, "--state", "pending"])
        #expect(records.output.contains("192.0.2.0/24\talice@example.org\tbob@example.net\tpending"), "\(records.output)")
        let stats = try await runProgram(binary, ["stats", "-c", config])
        #expect(stats.output.contains("decisions since start: deferred 2, passed 1, rejected 0"), "\(stats.output)")
        #expect(stats.output.contains("triplets: pending 2, passed 0"))

        // release: a waiting triplet passes at its next retry; the others still wait.
        let none = try await runProgram(binary, ["release", "-c", config])
        #expect(none.status != 0 && none.output.contains("give at least one of client, sender, recipient to release records"),
                "\(none.output)")
        let nothing = try await runProgram(binary, ["release", "-c", config, "--sender", "nobody@example.org"])
        #expect(nothing.status != 0 && nothing.output.contains("no waiting triplet matches"), "\(nothing.output)")
        let release = try await runProgram(binary, ["release", "-c", config, "--client", "192.0.2.7",
                                                    "--recipient", "third@example.net"])
        #expect(release.status == 0, "\(release.output)")
        #expect(release.output.contains("released 1 waiting triplet(s):\n192.0.2.0/24\talice@example.org\tthird@example.net"),
                "\(release.output)")
        #expect(try await c.ask(request(recipient: "third@example.net")) == "action=DUNNO")
        #expect(try await c.ask(request())?.hasPrefix("action=DEFER_IF_PERMIT") == true)

        // SIGHUP: a new blacklist rule applies to the next query.
        try write("[blacklist]\nsender_domains = [\"bad.example\"]\n")
        kill(daemon.processIdentifier, SIGHUP)
        var answer: String? = nil
        for _ in 0..<100 {
            answer = try await c.ask(request(sender: "x@bad.example", recipient: "r\(UUID().uuidString.prefix(6))@example.net"))
            if answer == "action=REJECT Refused by greylag policy" { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(answer == "action=REJECT Refused by greylag policy")
        // A broken file on SIGHUP is refused and the blacklist stays.
        try write("[blacklist]\nsender_domains = [\"bad..example\"]\n")
        kill(daemon.processIdentifier, SIGHUP)
        let reload = try await runProgram(binary, ["reload", "-c", dir.path + "/greylag.toml"])
        #expect(reload.status != 0)  // the CLI itself refuses to read the broken file
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await c.ask(request(sender: "y@bad.example")) == "action=REJECT Refused by greylag policy")

        kill(daemon.processIdentifier, SIGTERM)
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)
        let log = try String(contentsOfFile: dir.path + "/daemon.log", encoding: .utf8)
        #expect(log.contains("reloaded \(config) (SIGHUP)"), "\(log)")
        #expect(log.contains("reload (SIGHUP) refused, the configuration in force stays"))
        #expect(log.contains("release client=192.0.2.7 recipient=<third@example.net>: released 1 waiting triplet(s)"), "\(log)")
        #expect(log.contains("\(config):14: blacklist.sender_domains: \"bad..example\" has an empty label"))

        // Without a daemon the command works on the store and says so.
        try write("")
        let offline = try await runProgram(binary, ["blacklist", "add", "-c", config, "sender", "a@b.example"])
        #expect(offline.status == 0 && offline.output.contains("note: greylag is not running"), "\(offline.output)")
        let entries = try await runProgram(binary, ["blacklist", "list", "-c", config])
        #expect(entries.output.contains("\tsender\ta@b.example\t"), "\(entries.output)")
    }

    @Test func checkConfigNamesFileLineAndKey() async throws {
        let binary = try E2E.value("GREYLAG_BINARY")
        let dir = TemporaryDirectory()
        let config = dir.path + "/greylag.toml"
        try """
            [whitelist]
            clients = ["192.0.2.0/24", "2001:db8::/129"]
            client_names = ['/^mx[0-9+$/']
            client_files = ["missing"]
            [blacklist]
            senderz = ["a@b.example"]
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let r = try await runProgram(binary, ["check-config", "-c", config])
        #expect(r.status == 78)
        #expect(r.output.contains("\(config):2: whitelist.clients: \"2001:db8::/129\" is not an IP address"), "\(r.output)")
        #expect(r.output.contains("\(config):3: whitelist.client_names: bad regular expression /^mx[0-9+$/"))
        #expect(r.output.contains("\(config):4: whitelist.client_files: cannot read list file \(dir.path)/missing: "
                                  + "No such file or directory"))
        #expect(r.output.contains("\(config):6: blacklist.senderz: unknown key"))
    }
}
