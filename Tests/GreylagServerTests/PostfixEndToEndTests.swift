import Foundation
import GreylagCore
import GreylagServer
import Testing

/// Greylisting through a real Postfix: `scripts/test.sh` starts a private
/// Postfix on loopback (IPv4 and IPv6) whose recipient restrictions query
/// greylag on GREYLAG_E2E_POLICY_PORT; each test serves that port itself
/// with a 2 second delay and talks SMTP to Postfix with swaks.
@Suite(.serialized, .enabled(if: E2E.enabled)) struct PostfixEndToEndTests {
    @Test func greylistsOverIPv4() async throws {
        try await greylist(server: "127.0.0.1", tag: "v4")
    }

    @Test func greylistsOverIPv6() async throws {
        try await greylist(server: "::1", tag: "v6")
    }

    func greylist(server: String, tag: String) async throws {
        let smtpPort = try E2E.value("GREYLAG_E2E_SMTP_PORT")
        let policyPort = try #require(Int(try E2E.value("GREYLAG_E2E_POLICY_PORT")))
        let maildir = try E2E.value("GREYLAG_E2E_MAILDIR")
        let id = UUID().uuidString
        let sender = "sender-\(tag)-\(id.prefix(8))@example.org"
        let recipient = "user-\(tag)@example.net"
        let swaks = ["--server", server, "--port", smtpPort, "--from", sender, "--to", recipient,
                     "--header", "X-Greylag-Test: \(id)", "--timeout", "30"]
        let log = CapturedLog()
        try await withDaemon(configure: {
            $0.policy.delay = 2
            $0.policyListeners = [.tcp(host: "127.0.0.1", port: policyPort)]
            $0.replies.hostname = "mx.greylag.test"
        }, clock: nil, log: log) { _, _ in
            let first = try await runProgram("/usr/bin/swaks", swaks)
            #expect(first.status != 0, "the first attempt must be refused")
            #expect(first.output.contains("450 4.7.1 <\(recipient)>: Recipient address rejected: Greylisted, please try again in"),
                    "\(first.output)")
            try await Task.sleep(for: .milliseconds(2500))
            let second = try await runProgram("/usr/bin/swaks", swaks)
            #expect(second.status == 0, "\(second.output)")
            #expect(second.output.contains("250 2.0.0 Ok: queued as"), "\(second.output)")
        }
        let message = try #require(try await waitForMessage(in: maildir, containing: id), "no delivered message")
        let header = message.split(separator: "\n").first { $0.hasPrefix("X-Greylist: ") }
        let line = try #require(header, "no X-Greylist header in:\n\(message)")
        #expect(line.hasPrefix("X-Greylist: delayed "))
        #expect(line.contains(" seconds by greylag-\(GreylagVersion.string) at mx.greylag.test; "))
        let client = server == "::1" ? "client=::1 network=::/64" : "client=127.0.0.1 network=127.0.0.0/24"
        #expect(log.contains("defer: \(client) sender=<\(sender)> recipient=<\(recipient)> reason=new_triplet"))
        #expect(log.contains("pass: \(client) sender=<\(sender)> recipient=<\(recipient)> reason=delay_elapsed"))
    }

    /// The null sender through the docs' main.cf (greylag asked at RCPT and
    /// at DATA) with `null_sender_at_data`: a call-out (RCPT, then QUIT)
    /// is accepted and leaves no record; a bounce is accepted at RCPT,
    /// deferred at DATA, and delivered on its retry after the delay.
    @Test func theNullSenderIsGreylistedAtData() async throws {
        let smtpPort = try E2E.value("GREYLAG_E2E_SMTP_PORT")
        let policyPort = try #require(Int(try E2E.value("GREYLAG_E2E_POLICY_PORT")))
        let maildir = try E2E.value("GREYLAG_E2E_MAILDIR")
        let id = UUID().uuidString
        let recipient = "bounce-\(id.prefix(8).lowercased())@example.net"
        let swaks = ["--server", "127.0.0.1", "--port", smtpPort, "--from", "<>", "--to", recipient,
                     "--header", "X-Greylag-Test: \(id)", "--timeout", "30"]
        let log = CapturedLog()
        try await withDaemon(configure: {
            $0.policy.delay = 2
            $0.policyListeners = [.tcp(host: "127.0.0.1", port: policyPort)]
            $0.replies.nullSenderAtData = true
        }, clock: nil, log: log) { _, _ in
            let callout = try await runProgram("/usr/bin/swaks", swaks + ["--quit-after", "RCPT"])
            #expect(callout.status == 0, "a call-out must not be deferred: \(callout.output)")
            #expect(callout.output.contains("250 2.1.5"), "\(callout.output)")
            #expect(!log.contains("defer:"), "\(log.all)")
            let first = try await runProgram("/usr/bin/swaks", swaks)
            #expect(first.status != 0, "the bounce's first DATA must be deferred")
            #expect(first.output.contains("250 2.1.5"), "RCPT must be accepted: \(first.output)")
            #expect(first.output.contains("450 4.7.1") && first.output.contains("Greylisted, please try again in"),
                    "\(first.output)")
            try await Task.sleep(for: .milliseconds(2500))
            let second = try await runProgram("/usr/bin/swaks", swaks)
            #expect(second.status == 0, "\(second.output)")
            #expect(second.output.contains("250 2.0.0 Ok: queued as"), "\(second.output)")
        }
        #expect(try await waitForMessage(in: maildir, containing: id) != nil, "no delivered message")
        // One deferral, made by the first bounce at DATA (the call-out made no record).
        let defers = log.all.filter { $0.contains("defer: ") && $0.contains("recipient=<\(recipient)>") }
        #expect(defers.count == 1, "\(log.all)")
        #expect(defers.first?.contains("sender=<> recipient=<\(recipient)> reason=new_triplet") == true, "\(defers)")
        #expect(log.contains("pass: client=127.0.0.1 network=127.0.0.0/24 sender=<> recipient=<\(recipient)> reason=delay_elapsed"))
    }

    /// A blacklisted sender gets the configured 5xx from Postfix; an
    /// authenticated client (SMTP AUTH with swaks) passes at the first try
    /// although greylisting would defer it for five minutes (the docs'
    /// `permit_sasl_authenticated` lets it through before greylag is asked;
    /// greylag's own exemption of `sasl_username` is tested on the policy
    /// protocol in ListsServerTests and through Exim and OpenSMTPD).
    @Test func blacklistRejectsAndAuthenticationPasses() async throws {
        let smtpPort = try E2E.value("GREYLAG_E2E_SMTP_PORT")
        let policyPort = try #require(Int(try E2E.value("GREYLAG_E2E_POLICY_PORT")))
        let user = try E2E.value("GREYLAG_E2E_SASL_USER")
        let password = try E2E.value("GREYLAG_E2E_SASL_PASSWORD")
        let id = UUID().uuidString.prefix(8)
        let config = try ConfigurationLoader.parse("""
            [blacklist]
            senders = ["spammer@bad.example"]
            [policy]
            reject_action = "554 5.7.1"
            reject_text = "Refused by policy for {sender}"
            [exemptions]
            trusted_networks = []
            """, file: "e2e.toml")
        let log = CapturedLog()
        try await withDaemon(configure: { c in
            using(config)(&c)
            c.policyListeners = [.tcp(host: "127.0.0.1", port: policyPort)]
        }, clock: nil, log: log) { _, _ in
            let refused = try await runProgram("/usr/bin/swaks", [
                "--server", "127.0.0.1", "--port", smtpPort, "--from", "spammer@bad.example",
                "--to", "victim-\(id)@example.net", "--timeout", "30"])
            #expect(refused.status != 0)
            #expect(refused.output.contains("554 5.7.1 <victim-\(id)@example.net>: Recipient address rejected: "
                                            + "Refused by policy for spammer@bad.example"), "\(refused.output)")
            let plain = try await runProgram("/usr/bin/swaks", [
                "--server", "127.0.0.1", "--port", smtpPort, "--from", "roaming-\(id)@example.org",
                "--to", "colleague-\(id)@example.net", "--timeout", "30"])
            #expect(plain.output.contains("450 4.7.1"), "without AUTH the same user is greylisted: \(plain.output)")
            let authenticated = try await runProgram("/usr/bin/swaks", [
                "--server", "127.0.0.1", "--port", smtpPort, "--from", "roaming-\(id)@example.org",
                "--to", "colleague-\(id)@example.net", "--auth", "PLAIN", "--auth-user", user,
                "--auth-password", password, "--timeout", "30"])
            #expect(authenticated.status == 0, "\(authenticated.output)")
            #expect(authenticated.output.contains("235 2.7.0 Authentication successful"))
            #expect(authenticated.output.contains("250 2.0.0 Ok: queued as"), "\(authenticated.output)")
        }
        #expect(log.contains("reject: client=127.0.0.1 sender=<spammer@bad.example> recipient=<victim-\(id)@example.net> "
                             + "reason=blacklisted rule=\"e2e.toml:2 blacklist.senders (spammer@bad.example)\""))
        // The docs' restrictions put permit_sasl_authenticated before the
        // policy service: Postfix accepts the authenticated client without
        // asking greylag, which saw only the attempt without AUTH.
        let asked = log.all.filter { $0.contains("recipient=<colleague-\(id)@example.net>") }
        #expect(asked.count == 1 && asked[0].contains("defer: client=127.0.0.1 "), "\(asked)")
    }

}
