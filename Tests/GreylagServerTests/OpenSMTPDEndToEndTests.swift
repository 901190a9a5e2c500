import Foundation
import GreylagCore
import GreylagTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `greylag smtpd-filter` in Debian's OpenSMTPD 6.8 (unpacked by
/// `scripts/test.sh` into GREYLAG_TEST_OPENSMTPD_ROOT): the real greylag
/// daemon with a 2 second delay, an smtpd of its own on 127.0.0.1:12725
/// with the filter and the X-Greylist header on, local delivery to a
/// maildir, swaks as the client. greylag's helper socket and smtpd's filter
/// lines are docs/opensmtpd.md's snippets.
@Suite(.serialized, .enabled(if: E2E.enabled)) struct OpenSMTPDEndToEndTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../..").standardized.path
    static let smtpPort = 12725

    /// Runs `opensmtpd.sh`'s function with its arguments.
    func script(_ function: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        let quoted = arguments.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        return try await runProgram("/bin/bash", ["-c", "source '\(Self.repository)/scripts/lib/opensmtpd.sh' && \(function) \(quoted)"])
    }

    func swaks(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await runProgram("/usr/bin/swaks", ["--server", "127.0.0.1", "--port", String(Self.smtpPort), "--timeout", "30"]
                             + arguments)
    }

    func smtpdAlive(_ dir: String) -> Bool {
        guard let text = try? String(contentsOfFile: dir + "/smtpd/smtpd.pid", encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return false }
        return kill(pid, 0) == 0
    }

    @Test func greylistsThroughOpenSMTPD() async throws {
        let start = Date()
        let root = ProcessInfo.processInfo.environment["GREYLAG_TEST_OPENSMTPD_ROOT"] ?? ""
        try TestGate.check("OpenSMTPD", problem: root.isEmpty ? "GREYLAG_TEST_OPENSMTPD_ROOT is not set"
                           : FileManager.default.isExecutableFile(atPath: root + "/usr/sbin/smtpd") ? nil
                           : "no usr/sbin/smtpd in \(root)")
        let binary = try E2E.value("GREYLAG_BINARY")
        let dir = TemporaryDirectory()
        // smtpd's filter runs as the opensmtpd user and delivers as nobody.
        chmod(dir.path, 0o755)
        let mail = dir.path + "/mail"
        try FileManager.default.createDirectory(atPath: mail, withIntermediateDirectories: true)
        chmod(mail, 0o777)
        let socket = dir.path + "/policy.sock"
        let config = dir.path + "/greylag.toml"
        // docs/opensmtpd.md's [policy] table on the test's socket, then what a test host adds.
        let policy = try DocSnippets.replacingOnce(try DocSnippets.snippet("opensmtpd-toml"),
                                                   "\"unix:/run/greylag/policy.sock\"", "\"unix:\(socket)\"")
        #expect(policy.hasPrefix("[policy]\n") && policy.contains("helper_socket_group = \"opensmtpd\""), "\(policy)")
        try """
            \(policy)\
            listen = ["127.0.0.1:12726"]
            hostname = "mx.greylag.test"
            [greylist]
            delay = "2s"
            [blacklist]
            senders = ["spammer@bad.example"]
            [exemptions]
            trusted_networks = []
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
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let daemonLog = dir.path + "/daemon.log"
        let daemon = try startDaemon(binary, config: config, log: daemonLog)
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        try await waitForPort(12726)

        let smtpdConf = dir.path + "/smtpd.conf"
        // docs/opensmtpd.md's smtpd.conf lines, on loopback and this test's paths.
        var filter = try DocSnippets.snippet("opensmtpd-conf")
        for (old, new) in [("/usr/sbin/greylag ", binary + " "), ("unix:/run/greylag/policy.sock", "unix:\(socket)"),
                           ("listen on 0.0.0.0 port 25 ", "listen on 127.0.0.1 port \(Self.smtpPort) hostname mx.greylag.test ")] {
            filter = try DocSnippets.replacingOnce(filter, old, new)
        }
        #expect(filter.contains(" --header\""), "\(filter)")
        try """
            table vusers { "@example.net" = "nobody" }
            \(filter)\
            action "local" maildir "\(mail)" virtual <vusers>
            match from any for domain "example.net" action "local"
            """.write(toFile: smtpdConf, atomically: true, encoding: .utf8)
        let check = try await script("opensmtpd_check", [root, smtpdConf])
        #expect(check.status == 0, "smtpd -n: \(check.output)")
        let started = try await script("opensmtpd_start", [root, dir.path + "/smtpd", smtpdConf, String(Self.smtpPort)])
        defer { stopSmtpd(dir.path + "/smtpd") }
        try #require(started.status == 0, "smtpd did not start: \(started.output)")
        let smtpdLog = { (try? String(contentsOfFile: dir.path + "/smtpd/smtpd.log", encoding: .utf8)) ?? "" }

        // First attempt: deferred with greylag's text; the retry after the delay is delivered with the header.
        let id = UUID().uuidString
        let sender = "sender-\(id.prefix(8))@example.org"
        let message = ["--from", sender, "--to", "user@example.net", "--header", "X-Greylag-Test: \(id)"]
        let first = try await swaks(message)
        let daemonText = (try? String(contentsOfFile: daemonLog, encoding: .utf8)) ?? ""
        #expect(first.status != 0, "the first attempt must be refused; smtpd's log:\n\(smtpdLog())\ngreylag's log:\n\(daemonText)")
        #expect(first.output.contains("451 4.7.1 Greylisted, please try again in "), "\(first.output)")
        try await Task.sleep(for: .milliseconds(2500))
        let second = try await swaks(message)
        #expect(second.status == 0, "\(second.output)\n\(smtpdLog())")
        #expect(second.output.contains("250 2.0.0 ") && second.output.contains("Message accepted for delivery"),
                "\(second.output)")
        let delivered = try #require(try await waitForMessage(in: mail, containing: id), "no delivered message")
        let header = delivered.split(separator: "\n").first { $0.hasPrefix("X-Greylist: ") }
        let line = try #require(header, "no X-Greylist header in:\n\(delivered)")
        #expect(line.hasPrefix("X-Greylist: delayed "))
        #expect(line.contains(" seconds by greylag-\(GreylagVersion.string) at mx.greylag.test; "), "\(line)")
        // The header comes before smtpd's own Received line, as Postfix's PREPEND puts it.
        let headerAt = try #require(delivered.range(of: "X-Greylist: ")).lowerBound
        let receivedAt = try #require(delivered.range(of: "Received: from ")).lowerBound
        #expect(headerAt < receivedAt, "\(delivered.prefix(400))")

        // A blacklisted sender: refused with 5xx.
        let refused = try await swaks(["--from", "spammer@bad.example", "--to", "victim@example.net"])
        #expect(refused.status != 0)
        #expect(refused.output.contains("550 5.7.1 Refused by greylag policy"), "\(refused.output)")

        // Hostile bytes from the client: odd RCPT parameters, bars, control and 8-bit bytes, a long line,
        // one command at a time (smtpd refuses pipelining before EHLO).
        // smtpd itself refuses some of these and hangs up after the long line; the filter sees the others.
        let hostile = ["EHLO hostile.example", "MAIL FROM:<h@example.org>", "RCPT TO:<a|b@example.net> NOTIFY=|||",
                       "RCPT TO:<\u{1}\u{7f}x@example.net>", "RCPT TO:<user@example.net> XTEXT=\u{ff}|x", "RCPT TO:<>",
                       "RCPT TO:<@>", "RCPT TO:<c@example.net> ORCPT=rfc822;c|d@example.net",
                       "RCPT TO:<\(String(repeating: "x|", count: 1500))@example.net>"]
        let dialogue = """
            exec 3<>/dev/tcp/127.0.0.1/\(Self.smtpPort) || exit 1
            reply() { while IFS= read -r -t 10 l <&3; do printf '%s\\n' "$l"; [[ $l =~ ^[0-9]{3}\\  ]] && return 0; done; return 1; }
            reply || exit 1
            for c in "$@"; do printf '%s\\r\\n' "$c" >&3; reply || exit 1; done
            """
        let raw = try await runProgram("/bin/bash", ["-c", dialogue, "smtp"] + hostile)
        let answers = raw.output.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("451 4.7.1 Greylisted, please try again in ") }
        #expect(answers.count >= 2, "\(raw.output)")
        #expect(smtpdAlive(dir.path), "smtpd died on hostile input:\n\(smtpdLog())")
        let after = try await swaks(message)
        #expect(after.status == 0, "smtpd still serves after the hostile session: \(after.output)")

        // greylag stopped: mail passes at once (a new triplet) and smtpd lives on.
        kill(daemon.processIdentifier, SIGTERM)
        daemon.waitUntilExit()
        let down = try await swaks(["--from", "new-\(id.prefix(8))@example.org", "--to", "other@example.net"])
        #expect(down.status == 0, "\(down.output)")
        #expect(smtpdAlive(dir.path), "smtpd died with greylag stopped:\n\(smtpdLog())")
        #expect(smtpdLog().contains("cannot ask the greylag daemon"), "\(smtpdLog())")

        let log = (try? String(contentsOfFile: daemonLog, encoding: .utf8)) ?? ""
        #expect(log.contains("defer: client=127.0.0.1 network=127.0.0.0/24 sender=<\(sender)> recipient=<user@example.net> "
                             + "reason=new_triplet"), "\(log)")
        #expect(log.contains("via=smtpd-filter"), "\(log)")
        print("OpenSMTPD end-to-end: \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
    }

    func stopSmtpd(_ dir: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", "source '\(Self.repository)/scripts/lib/opensmtpd.sh' && opensmtpd_stop '\(dir)'"]
        try? spawn(p)
        p.waitUntilExit()
    }

}
