import Foundation
import GreylagCore
import GreylagTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Greylisting through a real Sendmail 8.17: Debian's packages, unpacked by
/// `scripts/test.sh` into GREYLAG_TEST_SENDMAIL_ROOT, run on loopback by
/// `scripts/lib/sendmail.sh` with the lines of docs/milter.md (its
/// snippets, so the recipe and the test cannot drift apart), against the
/// real `greylag` binary; swaks is the client.
@Suite(.serialized, .enabled(if: E2E.enabled)) struct SendmailEndToEndTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../..").standardized.path

    /// The docs' `sendmail.mc` line alone: the macros of Sendmail's m4
    /// defaults are enough.
    @Test func sendmailMcWithDefaultMacros() async throws {
        let filter = try DocSnippets.snippet("sendmail-mc")
        #expect(filter.hasPrefix("INPUT_MAIL_FILTER(`greylag',"))
        try await greylist(mc: filter, cf: "", smtpPort: 13027, milterPort: 13031, tag: "default")
    }

    /// The docs' `sendmail.mc` line, with the macro lines a sendmail.mc
    /// written for milter-greylist has.
    @Test func sendmailMcWithMilterGreylistMacros() async throws {
        let filter = try DocSnippets.snippet("sendmail-mc")
        let macros = try DocSnippets.snippet("sendmail-mc-macros")
        #expect(filter.hasPrefix("INPUT_MAIL_FILTER(`greylag',"))
        #expect(macros.contains("define(`confMILTER_MACROS_ENVFROM', `i, {auth_authen}')"))
        #expect(macros.contains("define(`confMILTER_MACROS_ENVRCPT', `{greylist}')"))
        try await greylist(mc: filter + macros, cf: "", smtpPort: 13025, milterPort: 13029, tag: "mc")
    }

    /// The docs' `sendmail.cf` lines, appended to a sendmail.cf made
    /// from a sendmail.mc without any filter (so without Milter.macros
    /// lines of its own).
    @Test func sendmailCfLines() async throws {
        let lines = try DocSnippets.snippet("sendmail-cf")
        #expect(lines.hasPrefix("O InputMailFilters=greylag\nXgreylag, "))
        try await greylist(mc: "", cf: lines, smtpPort: 13026, milterPort: 13030, tag: "cf")
    }

    /// Why Sendmail cannot run here, or nil.
    static var sendmailProblem: String? {
        guard let root = ProcessInfo.processInfo.environment["GREYLAG_TEST_SENDMAIL_ROOT"], !root.isEmpty else {
            return "GREYLAG_TEST_SENDMAIL_ROOT is not set (scripts/test.sh unpacks Debian's sendmail-bin, "
                + "sendmail-base and sendmail-cf there)"
        }
        let binary = root + "/usr/libexec/sendmail/sendmail"
        if !FileManager.default.isExecutableFile(atPath: binary) { return "no \(binary)" }
        if !FileManager.default.fileExists(atPath: root + "/usr/share/sendmail/cf/m4/cf.m4") {
            return "no \(root)/usr/share/sendmail/cf/m4/cf.m4 (sendmail-cf)"
        }
        if !FileManager.default.isExecutableFile(atPath: "/usr/bin/m4") { return "no /usr/bin/m4" }
        return nil
    }

    /// Runs `script` with scripts/lib/sendmail.sh sourced; arguments are $1...
    @discardableResult
    static func sendmailShell(_ script: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await runProgram("/bin/bash", ["-c", "source \"$0\" && " + script,
                                           repository + "/scripts/lib/sendmail.sh"] + arguments)
    }

    /// Stops the Sendmail in `dir` from a `defer` (which cannot await).
    static func stopSendmail(_ dir: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", "source \"$0\" && sendmail_stop \"$1\"", repository + "/scripts/lib/sendmail.sh", dir]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? spawn(p)) != nil else { return }
        p.waitUntilExit()
    }

    func greylist(mc: String, cf: String, smtpPort: Int, milterPort: Int, tag: String) async throws {
        try TestGate.check("Sendmail 8.17", problem: Self.sendmailProblem)
        let root = try E2E.value("GREYLAG_TEST_SENDMAIL_ROOT")
        let binary = try E2E.value("GREYLAG_BINARY")
        let docsSocket = "S=inet:10029@127.0.0.1,"
        #expect((mc + cf).contains(docsSocket), "the docs' lines name the default milter listener")
        let socket = "S=inet:\(milterPort)@127.0.0.1,"
        let dir = TemporaryDirectory()
        let sendmailDir = dir.path + "/sendmail"
        try mc.replacingOccurrences(of: docsSocket, with: socket)
            .write(toFile: dir.path + "/lines.mc", atomically: true, encoding: .utf8)
        try cf.replacingOccurrences(of: docsSocket, with: socket)
            .write(toFile: dir.path + "/lines.cf", atomically: true, encoding: .utf8)
        try """
            [greylist]
            delay = 2
            [policy]
            listen = []
            [milter]
            listen = ["inet:\(milterPort)@127.0.0.1"]
            header = "all"
            [http]
            listen = "none"
            [store]
            path = "\(dir.path)/greylag.db"
            [admin]
            socket = "none"
            [reload]
            watch_interval = 0
            [exemptions]
            trusted_networks = []
            [whitelist]
            senders = ["partner@friends.example"]
            [blacklist]
            senders = ["spammer@bad.example"]
            """.write(toFile: dir.path + "/greylag.toml", atomically: true, encoding: .utf8)

        let user = "greylag-test"
        let password = "pw-\(UUID().uuidString.prefix(12))"
        let daemon = try startDaemon(binary, config: dir.path + "/greylag.toml", log: dir.path + "/daemon.log")
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        try await waitForPort(milterPort)
        defer { Self.stopSendmail(sendmailDir) }
        let started = try await Self.sendmailShell("""
            sendmail_config "$1" "$2" "$3" "$4" "$5" && sendmail_enable_sasl "$2" "$6" "$7" && sendmail_start "$1" "$2"
            """, [root, sendmailDir, String(smtpPort), mc.isEmpty ? "" : dir.path + "/lines.mc",
                  cf.isEmpty ? "" : dir.path + "/lines.cf", user, password])
        try #require(started.status == 0, "Sendmail did not start: \(started.output)")

        let id = UUID().uuidString.prefix(8)
        func swaks(from: String, to: String, marker: String, _ extra: [String] = []) async throws -> (status: Int32, output: String) {
            try await runProgram("/usr/bin/swaks", ["--server", "127.0.0.1", "--port", String(smtpPort),
                                                    "--from", from, "--to", to, "--header", "X-Greylag-Test: \(marker)",
                                                    "--timeout", "30"] + extra)
        }
        let sender = "sender-\(tag)-\(id)@example.org", recipient = "user-\(tag)-\(id)@example.net"
        let first = try await swaks(from: sender, to: recipient, marker: "first-\(id)")
        #expect(first.status != 0, "the first attempt must be deferred")
        #expect(first.output.contains("220 mx.example.test ESMTP Sendmail 8.17"), "\(first.output)")
        #expect(first.output.contains("451 4.7.1 Greylisting in action, please come back in 00:00:0"), "\(first.output)")
        try await Task.sleep(for: .milliseconds(2500))
        let retry = try await swaks(from: sender, to: recipient, marker: "retry-\(id)")
        #expect(retry.status == 0, "\(retry.output)")
        #expect(retry.output.contains("250 2.1.5 <\(recipient)>... Recipient ok"), "\(retry.output)")
        #expect(retry.output.contains(" Message accepted for delivery"), "\(retry.output)")

        let partner = try await swaks(from: "partner@friends.example", to: "sales-\(tag)-\(id)@example.net",
                                      marker: "partner-\(id)")
        #expect(partner.status == 0, "a whitelisted sender passes at once: \(partner.output)")

        // {auth_authen} reaches greylag: the same new triplet is deferred
        // without AUTH and passes with it.
        let roaming = "roaming-\(tag)-\(id)@example.org", colleague = "colleague-\(tag)-\(id)@example.net"
        let plain = try await swaks(from: roaming, to: colleague, marker: "plain-\(id)")
        #expect(plain.output.contains("451 4.7.1 Greylisting in action"), "\(plain.output)")
        let authenticated = try await swaks(from: roaming, to: colleague, marker: "auth-\(id)",
                                            ["--auth", "PLAIN", "--auth-user", user, "--auth-password", password])
        #expect(authenticated.output.contains("235 2.0.0 OK Authenticated"), "\(authenticated.output)")
        #expect(authenticated.status == 0, "\(authenticated.output)")

        let victim = "victim-\(tag)-\(id)@example.net"
        let refused = try await swaks(from: "spammer@bad.example", to: victim, marker: "spam-\(id)")
        #expect(refused.status != 0)
        #expect(refused.output.contains("550 5.7.1 <\(victim)>... Refused by greylag policy"), "\(refused.output)")

        // greylag stopped: the docs' lines have no F= flag, so Sendmail passes the mail.
        kill(daemon.processIdentifier, SIGTERM)
        daemon.waitUntilExit()
        let down = try await swaks(from: "late-\(tag)-\(id)@example.org", to: "night-\(tag)-\(id)@example.net",
                                   marker: "down-\(id)")
        #expect(down.status == 0, "with greylag down the mail passes: \(down.output)")
        #expect(down.output.contains(" Message accepted for delivery"), "\(down.output)")

        let version = GreylagVersion.string
        let by = " by greylag-\(version) (mx.example.test); "
        let delayed = try await header(in: sendmailDir, marker: "retry-\(id)")
        #expect(delayed?.hasPrefix("X-Greylist: Delayed for 00:00:0") == true, "\(delayed ?? "no header")")
        #expect(delayed?.contains(by) == true, "Sendmail's j, no [address] on loopback: \(delayed ?? "no header")")
        let whitelisted = try await header(in: sendmailDir, marker: "partner-\(id)")
        #expect(whitelisted?.hasPrefix("X-Greylist: Sender whitelisted, not delayed" + by) == true, "\(whitelisted ?? "no header")")
        let auth = try await header(in: sendmailDir, marker: "auth-\(id)")
        #expect(auth?.hasPrefix("X-Greylist: Sender succeeded SMTP AUTH, not delayed" + by) == true, "\(auth ?? "no header")")
        let passed = try await message(in: sendmailDir, marker: "down-\(id)")
        #expect(passed != nil, "the mail passed with greylag down was not delivered")
        #expect(passed?.contains("X-Greylist:") == false, "\(passed ?? "")")
        #expect(try await message(in: sendmailDir, marker: "first-\(id)", wait: false) == nil)

        let log = try String(contentsOfFile: dir.path + "/daemon.log", encoding: .utf8)
        #expect(log.contains("defer: client=127.0.0.1 network=127.0.0.0/24 sender=<\(sender)> recipient=<\(recipient)> "
                             + "reason=new_triplet retry_in=2s via=milter"), "\(log)")
        #expect(log.contains("pass: client=127.0.0.1 network=127.0.0.0/24 sender=<\(sender)> recipient=<\(recipient)> "
                             + "reason=delay_elapsed"), "\(log)")
        #expect(log.contains("pass: client=127.0.0.1 sender=<\(roaming)> recipient=<\(colleague)> reason=authenticated "
                             + "sasl_user=\(user) via=milter"), "\(log)")
        #expect(log.contains("reject: client=127.0.0.1 sender=<spammer@bad.example> recipient=<\(victim)> "
                             + "reason=blacklisted"), "\(log)")
    }

    /// The delivered message with the `X-Greylag-Test: marker` header,
    /// polled for (delivery runs in the background) unless `wait` is false.
    func message(in dir: String, marker: String, wait: Bool = true) async throws -> String? {
        for _ in 0..<(wait ? 100 : 1) {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir + "/inbox")) ?? [] where !name.hasSuffix(".tmp") {
                if let text = try? String(contentsOfFile: dir + "/inbox/" + name, encoding: .utf8),
                   text.contains("X-Greylag-Test: \(marker)\n") {
                    return text
                }
            }
            if wait { try await Task.sleep(for: .milliseconds(100)) }
        }
        return nil
    }

    /// The X-Greylist line of that message, or nil.
    func header(in dir: String, marker: String) async throws -> String? {
        guard let text = try await message(in: dir, marker: marker) else { return nil }
        return text.split(separator: "\n").first { $0.hasPrefix("X-Greylist: ") }.map(String.init)
    }
}
