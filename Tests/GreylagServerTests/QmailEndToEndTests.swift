import Foundation
import GreylagTestSupport
import GreylagCore
import GreylagServer
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs a program with exactly `environment`, standard input closed (as
/// qmail-smtpd runs its plugins), and returns status, stdout and stderr.
func runQmailHelper(_ path: String, _ arguments: [String], environment: [String: String])
    async throws -> (status: Int32, stdout: String, stderr: String) {
    try await PolicyTestClient.offPool { try runCapturing(path, arguments, environment: environment) }
}

/// The ways to start a qmail helper, which must behave alike: `greylag
/// HELPER`, `greylag-qmail HELPER` (the small program docs/qmail.md
/// recommends), and greylag-qmail through a link named `greylag-HELPER`.
enum HelperEntry: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case greylag = "greylag"
    case greylagQmail = "greylag-qmail"
    case link = "link greylag-HELPER"

    var testDescription: String { rawValue }

    /// The built greylag-qmail: `GREYLAG_QMAIL_BINARY`, or the one next to
    /// `GREYLAG_BINARY` (`swift build` makes both).
    static func smallBinary() throws -> String {
        if let path = E2E.environment["GREYLAG_QMAIL_BINARY"], !path.isEmpty { return path }
        let path = URL(fileURLWithPath: try E2E.value("GREYLAG_BINARY")).deletingLastPathComponent()
            .appendingPathComponent("greylag-qmail").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestFailure("no greylag-qmail next to GREYLAG_BINARY (\(path)); swift build --product greylag-qmail")
        }
        return path
    }

    /// The program and the first arguments that run `helper` this way
    /// (a link is made in `dir`).
    func command(_ helper: String, in dir: TemporaryDirectory) throws -> (path: String, arguments: [String]) {
        switch self {
        case .greylag: return (try E2E.value("GREYLAG_BINARY"), [helper])
        case .greylagQmail: return (try Self.smallBinary(), [helper])
        case .link:
            let link = dir.path + "/greylag-" + helper
            if !FileManager.default.fileExists(atPath: link) {
                try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: try Self.smallBinary())
            }
            return (link, [])
        }
    }
}

/// The qmail helpers as qmail runs them: the real binaries, a real daemon on
/// a unix socket, and Debian's tcpserver in front of the wrapper.
@Suite(.serialized, .enabled(if: E2E.enabled)) struct QmailEndToEndTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../..").standardized.path

    /// As the README's qmail section sets it up: the helpers' socket is a
    /// `helper_listen` listener, next to a plain one for other MTAs.
    func configure(_ socket: String) -> @Sendable (inout GreylagConfiguration) -> Void {
        { c in
            c.policyListeners = [.tcp(host: "127.0.0.1", port: 0)]
            c.policyHelperListeners = [.unix(path: socket)]
            c.lists.blacklist = RuleSet([try! ListRule(field: .sender, text: "bad@spam.example", origin: "test")])
        }
    }

    @Test(arguments: HelperEntry.allCases) func sppPluginAnswersAsQmailExpects(_ entry: HelperEntry) async throws {
        let dir = TemporaryDirectory()
        let (binary, helper) = try entry.command("qmail-spp", in: dir)
        let socket = dir.path + "/policy.sock"
        let clock = ManualClock()
        let log = CapturedLog()
        let base = ["GREYLAG_SOCKET": socket, "GREYLISTING": "", "PROTO": "TCP6", "TCPREMOTEIP": "::ffff:198.51.100.7",
                    "TCPREMOTEHOST": "mail.example.org", "SMTPHELOHOST": "mail.example.org",
                    "SMTPMAILFROM": "a@example.org", "SMTPRCPTTO": "b@example.net"]
        @Sendable func plugin(_ env: [String: String], _ args: [String] = []) async throws -> PluginRun {
            let r = try await runQmailHelper(binary, helper + args, environment: env)
            return PluginRun(r.status, r.stdout, r.stderr)
        }
        try await withDaemon(configure: configure(socket), clock: clock, log: log) { (_, _) async throws in
            #expect(try await plugin(base).matches(PluginRun(0, "E451 4.7.1 Greylisted, please try again in 300 seconds\n", "")))
            clock.advance(301)
            #expect(try await plugin(base).matches(PluginRun(0, "", "")))
            var env = base
            env["SMTPMAILFROM"] = "bad@spam.example"
            #expect(try await plugin(env).matches(PluginRun(0, "E553 5.7.1 Refused by greylag policy\n", "")))
            #expect(try await plugin(env, ["--legacy-text"]).matches(PluginRun(0, "E553 sorry, your envelope sender has been denied (#5.7.1)\n", "")))
            env = base
            env["SMTPRCPTTO"] = "new@example.net"
            #expect(try await plugin(env, ["--legacy-text"]).matches(PluginRun(0, "E451 temporary failure (#4.3.0)\n", "")))
            env["RELAYCLIENT"] = ""
            #expect(try await plugin(env).matches(PluginRun(0, "", "")))
            env["RELAYCLIENT"] = nil
            env["SMTPAUTHUSER"] = "alice"
            #expect(try await plugin(env).matches(PluginRun(0, "", "")))
            env["SMTPAUTHUSER"] = nil
            env["GREYLISTING"] = nil
            #expect(try await plugin(env).matches(PluginRun(0, "", "")))
        }
        #expect(log.contains("defer: client=198.51.100.7 network=198.51.100.0/24 sender=<a@example.org> "
                             + "recipient=<b@example.net> reason=new_triplet retry_in=300s via=qmail-spp"))
        #expect(log.contains("pass: client=198.51.100.7 network=198.51.100.0/24 sender=<a@example.org> "
                             + "recipient=<b@example.net> reason=delay_elapsed delayed=301s via=qmail-spp"))
        // Relay, authenticated and inactive runs did not ask the daemon.
        #expect(log.all.filter { $0.contains("via=qmail-spp") }.count == 5)
        // The daemon is gone: the mail passes and the reason goes to the log.
        let down = try await plugin(base)
        #expect(down.status == 0 && down.stdout == "")
        #expect(down.stderr.hasPrefix("greylag qmail-spp: cannot connect to \(socket): "), "\(down.stderr)")
        #expect(down.stderr.hasSuffix("; passing the mail\n"))
    }

    @Test(arguments: HelperEntry.allCases) func envelopeScannerExitCodes(_ entry: HelperEntry) async throws {
        let dir = TemporaryDirectory()
        let (binary, helper) = try entry.command("qmail-envelope-scanner", in: dir)
        let socket = dir.path + "/policy.sock"
        let clock = ManualClock()
        let env = ["GREYLAG_SOCKET": socket, "TCPREMOTEIP": "198.51.100.9"]
        // The command of docs/qmail.md's ENVELOPE_SCANNER line, which
        // qmail-smtpd runs with the sender and the recipient after it.
        let line = try DocSnippets.snippet("qmail-envelope-scanner").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(line.hasPrefix("ENVELOPE_SCANNER=\""), "\(line)")
        let command = line.dropFirst("ENVELOPE_SCANNER=\"".count).dropLast().split(separator: " ").map(String.init)
        #expect(command.first == "/usr/sbin/greylag-qmail", "\(command)")
        #expect(Array(command.dropFirst()) == ["qmail-envelope-scanner"], "\(command)")
        @Sendable func scan(_ from: String, _ to: String, _ e: [String: String] = [:]) async throws -> PluginRun {
            let r = try await runQmailHelper(binary, helper + [from, to],
                                             environment: env.merging(e) { $1 })
            return PluginRun(r.status, r.stdout, r.stderr)
        }
        try await withDaemon(configure: configure(socket), clock: clock) { (_, _) async throws in
            #expect(try await scan("a@example.org", "b@example.net").status == 101)
            clock.advance(301)
            #expect(try await scan("a@example.org", "b@example.net").status == 0)
            #expect(try await scan("bad@spam.example", "b@example.net").status == 100)
            #expect(try await scan("x@example.org", "b@example.net", ["RELAYCLIENT": ""]).status == 0)
        }
        let down = try await runQmailHelper(binary, helper + ["a@example.org", "c@example.net"],
                                            environment: env)
        #expect(down.status == 0 && down.stderr.contains("passing the mail"))
    }

    /// Starts `tcpserver` on a free loopback port in front of the wrapper
    /// (`binary` with `helper`, the arguments that name qmail-wrap) and the
    /// stand-in SMTP server; returns the process and port.
    func tcpserver(_ binary: String, _ helper: [String], socket: String, environment: [String: String]) throws -> (Process, Int) {
        let port = try freePort()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/tcpserver")
        p.arguments = ["-q", "-H", "-R", "-l", "mx.greylag.test", "127.0.0.1", String(port), binary] + helper
            + ["--socket", "unix:" + socket, "/bin/bash", Self.repository + "/scripts/lib/fake-smtpd.sh"]
        p.environment = environment.merging(["PATH": "/usr/bin:/bin"]) { $1 }
        p.standardOutput = FileHandle.nullDevice
        try spawn(p)
        return (p, port)
    }

    func waitForListener(_ port: Int) async throws {
        for _ in 0..<100 {
            if (try? await PolicyTestClient("127.0.0.1:\(port)")) != nil { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("tcpserver did not listen on \(port)")
    }

    func swaks(_ port: Int, from: String = "a@example.org") async throws -> (status: Int32, output: String) {
        try await runProgram("/usr/bin/swaks", ["--server", "127.0.0.1", "--port", String(port), "--from", from,
                                                "--to", "b@example.net", "--timeout", "20"])
    }

    @Test(arguments: HelperEntry.allCases) func wrapperUnderTcpserver(_ entry: HelperEntry) async throws {
        let dir = TemporaryDirectory()
        let (binary, helper) = try entry.command("qmail-wrap", in: dir)
        let socket = dir.path + "/policy.sock"
        try await withDaemon(configure: configure(socket), clock: nil) { _, _ in
            let servers = [
                try tcpserver(binary, helper, socket: socket, environment: ["JGREYLIST_HOLDTIME": "2"]),
                try tcpserver(binary, helper, socket: socket, environment: ["JGREYLIST": ""]),
                try tcpserver(binary, helper, socket: socket, environment: ["JGREYLIST": "Your network is not welcome"]),
                try tcpserver(binary, helper, socket: socket, environment: ["JGREYLIST_NOREV": "1"]),
            ]
            // SIGKILL: a child of the test process may start with SIGTERM blocked.
            defer { for (p, _) in servers { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
            for (_, port) in servers { try await waitForListener(port) }
            let first = try await swaks(servers[0].1)
            #expect(first.output.contains("220 mx.greylag.test ESMTP greylag"), "\(first.output)")
            // (The listener check above was the first attempt, so the time left may be 1 or 2 s.)
            #expect(first.output.contains("450 4.7.1 Greylisted, please try again in "), "\(first.output)")
            #expect(!first.output.contains("fake-smtpd"))
            try await Task.sleep(for: .milliseconds(2500))
            let second = try await swaks(servers[0].1)
            #expect(second.status == 0, "\(second.output)")
            #expect(second.output.contains("250 2.0.0 fake-smtpd queued"), "\(second.output)")
            let whitelisted = try await swaks(servers[1].1)
            #expect(whitelisted.output.contains("250 2.0.0 fake-smtpd queued"), "\(whitelisted.output)")
            let denied = try await swaks(servers[2].1)
            #expect(denied.output.contains("553 5.7.1 Your network is not welcome"), "\(denied.output)")
            let noReverse = try await swaks(servers[3].1)
            #expect(noReverse.output.contains("553 5.7.1 No reverse DNS for 127.0.0.1"), "\(noReverse.output)")
        }
    }
}

extension QmailEndToEndTests {
    /// The SMTP service's `run` line of docs/qmail.md, run by /bin/sh as
    /// daemontools would, with only what a test host must change: the
    /// address and port (`0 smtp`), the tcprules database (here made with
    /// `tcprules`, setting the wrapper's hold time for loopback clients as
    /// a site would), the paths of greylag, its socket and qmail-smtpd (a
    /// stand-in that answers as fake-smtpd). tcpserver drops to qmaild and
    /// nofiles as in production, so the wrapper reaches the helpers' socket
    /// through its group.
    @Test func docsRunFileUnderTcpserver() async throws {
        let binary = try HelperEntry.smallBinary()
        guard let qmaild = getpwnam("qmaild"), let nofiles = getgrnam("nofiles") else {
            throw TestFailure("no qmaild user or nofiles group (scripts/test.sh makes them as qmail's install does)")
        }
        let uid = qmaild.pointee.pw_uid, gid = nofiles.pointee.gr_gid
        let dir = TemporaryDirectory()
        chmod(dir.path, 0o755)
        let socket = dir.path + "/policy.sock"
        let rules = dir.path + "/tcp.smtp"
        try "127.:allow,JGREYLIST_HOLDTIME=\"2\"\n:allow\n".write(toFile: rules, atomically: true, encoding: .utf8)
        let made = try await runProgram("/bin/sh", ["-c", "/usr/bin/tcprules \(rules).cdb \(rules).tmp < \(rules)"])
        #expect(made.status == 0, "\(made.output)")
        let smtpd = dir.path + "/qmail-smtpd"
        try "#!/bin/sh\nexec /bin/bash \(Self.repository)/scripts/lib/fake-smtpd.sh\n"
            .write(toFile: smtpd, atomically: true, encoding: .utf8)
        chmod(smtpd, 0o755)
        let port = try freePort()
        var runLine = try DocSnippets.snippet("qmail-tcpserver-run")
        for (old, new) in [(" 0 smtp ", " 127.0.0.1 \(port) "), ("-x /etc/tcp.smtp.cdb", "-x \(rules).cdb"),
                           ("/usr/sbin/greylag-qmail", binary), ("--socket /run/greylag/policy.sock", "--socket \(socket)"),
                           ("/var/qmail/bin/qmail-smtpd", smtpd)] {
            runLine = try DocSnippets.replacingOnce(runLine, old, new)
        }
        let line = runLine
        try await withDaemon(configure: { c in
            configure(socket)(&c)
            c.helperSocketMode = 0o660
            c.helperSocketGroup = "nofiles"
        }, clock: nil) { _, _ in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", line]
            p.environment = ["PATH": "/usr/bin:/bin", "LOCAL": "mx.greylag.test",
                             "QMAILDUID": String(uid), "NOFILESGID": String(gid)]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try spawn(p)
            defer { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
            try await waitForListener(port)
            let first = try await swaks(port)
            #expect(first.output.contains("220 mx.greylag.test ESMTP greylag"), "\(first.output)")
            #expect(first.output.contains("450 4.7.1 Greylisted, please try again in "), "\(first.output)")
            try await Task.sleep(for: .milliseconds(2500))
            let second = try await swaks(port)
            #expect(second.status == 0, "\(second.output)")
            #expect(second.output.contains("250 2.0.0 fake-smtpd queued"), "\(second.output)")
        }
    }
}

extension QmailEndToEndTests {
    /// greylag-qmail is the small program it is meant to be: nothing of
    /// Foundation, the networking or the store, neither as a shared library
    /// it needs nor linked into it (on Linux it is a static executable).
    @Test func smallBinaryLinksNeitherFoundationNorTheDaemon() async throws {
        let binary = try HelperEntry.smallBinary()
        let dynamic = try await runProgram("/usr/bin/readelf", ["-dW", binary])
        #expect(dynamic.status == 0, "\(dynamic.output)")
        let needed = dynamic.output.split(separator: "\n").filter { $0.contains("(NEEDED)") }
            .compactMap { $0.split(separator: "[").last?.split(separator: "]").first.map(String.init) }
        // Linked statically on Linux: no dynamic section at all, or (a build without those flags) only
        // the Swift runtime and the C libraries.
        #expect(needed.allSatisfy { $0.hasPrefix("libswift") || $0.hasPrefix("libc.") || $0.hasPrefix("libm.")
                                    || $0.hasPrefix("libstdc++") || $0.hasPrefix("libgcc_s") || $0.hasPrefix("libdispatch")
                                    || $0.hasPrefix("libBlocksRuntime") || $0.hasPrefix("ld-linux") },
                "\(needed)")
        #expect(!needed.contains { $0.contains("Foundation") }, "\(needed)")
        // And nothing of them inside: symbols of the modules Foundation, FoundationEssentials, NIOCore, GRDB.
        // (Booleans first: a failed expectation would print the whole symbol table.)
        let symbols = try await runProgram("/usr/bin/readelf", ["-sW", binary])
        let readable = symbols.status == 0 && symbols.output.contains("QmailGate")
        #expect(readable, "the symbol table was read")
        for module in ["$s10Foundation", "$s20FoundationEssentials", "$s7NIOCore", "$s4GRDB", "$s11GreylagCore",
                       "sqlite3_open"] {
            let linked = symbols.output.contains(module)
            #expect(!linked, "greylag-qmail links \(module)")
        }
        // The big binary, for contrast, does have them: the check can see a dependency.
        let big = try await runProgram("/usr/bin/readelf", ["-sW", try E2E.value("GREYLAG_BINARY")])
        let bigHasNIO = big.output.contains("$s7NIOCore")
        #expect(bigHasNIO)
    }

    /// Its command line: a helper named by the first argument or by the
    /// program's name; anything else is a usage error (64) that names the
    /// helpers; each helper's usage names the program as it was called.
    @Test func smallBinaryCommandLine() async throws {
        let small = try HelperEntry.smallBinary()
        let dir = TemporaryDirectory()
        let env = ["GREYLAG_SOCKET": dir.path + "/none.sock"]
        let none = try await runQmailHelper(small, [], environment: env)
        #expect(none.status == 64 && none.stdout.isEmpty, "\(none)")
        #expect(none.stderr.hasPrefix("usage: greylag-qmail qmail-spp|qmail-envelope-scanner|qmail-wrap"), "\(none)")
        let unknown = try await runQmailHelper(small, ["serve"], environment: env)
        #expect(unknown.status == 64 && unknown.stderr.hasPrefix("greylag-qmail: unknown helper serve\nusage: "),
                "\(unknown)")
        let help = try await runQmailHelper(small, ["--help"], environment: env)
        #expect(help.status == 0 && help.stdout.hasPrefix("usage: greylag-qmail ") && help.stderr.isEmpty, "\(help)")
        let sppHelp = try await runQmailHelper(small, ["qmail-spp", "--help"], environment: env)
        #expect(sppHelp.status == 0 && sppHelp.stdout.hasPrefix("usage: greylag-qmail qmail-spp [--socket "), "\(sppHelp)")
        // The same helper in the big binary says what it always said.
        let bigHelp = try await runQmailHelper(try E2E.value("GREYLAG_BINARY"), ["qmail-spp", "--help"], environment: env)
        #expect(bigHelp.status == 0 && bigHelp.stdout.hasPrefix("""
            usage: greylag qmail-spp [--socket unix:/path|HOST:PORT] [--timeout MS] [--legacy-text]
                                     [--always | --activation VARIABLE] [--reject-code 553|550]
            """), "\(bigHelp)")
        // Through links: greylag-HELPER and the bare helper name.
        for name in ["greylag-qmail-wrap", "qmail-wrap"] {
            let link = dir.path + "/" + name
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: small)
            let r = try await runQmailHelper(link, [], environment: env)
            #expect(r.status == 111 && r.stderr.hasPrefix("usage: \(name) [--socket "), "\(name): \(r)")
        }
        // Each helper's own failure code when its arguments are wrong: 120 (qmail answers 451), 0 (the
        // scanner never blocks mail on a set-up mistake), 111 (tcpserver's wrapper).
        #expect(try await runQmailHelper(small, ["qmail-spp", "--timeout", "x"], environment: env).status == 120)
        #expect(try await runQmailHelper(small, ["qmail-envelope-scanner", "only-one"], environment: env).status == 0)
        #expect(try await runQmailHelper(small, ["qmail-wrap"], environment: env).status == 111)
        // Hostile arguments are refused with the usage, never a trap.
        let odd = try await runQmailHelper(small, ["qmail-spp", "--socket"], environment: env)
        #expect(odd.status == 120 && odd.stderr.contains("usage: greylag-qmail qmail-spp"), "\(odd)")
        let long = try await runQmailHelper(small, ["qmail-envelope-scanner", "--socket", "unix:/" + String(repeating: "x", count: 5000),
                                                    "a@example.org", "b@example.net"], environment: env)
        #expect(long.status == 0 && long.stderr.contains("passing the mail"), "\(long)")
    }
}

/// One run of the plugin: exit status, standard output, standard error.
struct PluginRun: Equatable, CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String
    init(_ status: Int32, _ stdout: String, _ stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
    func matches(_ other: PluginRun) -> Bool { self == other }
    var description: String { "exit \(status), stdout \(stdout.debugDescription), stderr \(stderr.debugDescription)" }
}
