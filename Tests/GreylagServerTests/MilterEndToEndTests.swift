import Foundation
import GreylagCore
import GreylagServer
import Testing

/// The milter against real peers: Debian's `miltertest` driving it from a
/// Lua script, and a Postfix whose `smtpd_milters` points at greylag
/// (started by `scripts/test.sh` on GREYLAG_E2E_MILTER_SMTP_PORT).
@Suite(.serialized, .enabled(if: E2E.enabled)) struct MilterEndToEndTests {
    @Test func miltertestIsDeferredThenPassedWithTheHeader() async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../scripts/miltertest/greylist.lua").standardized.path
        let log = CapturedLog()
        try await withDaemon(configure: {
            $0.policy.delay = 2
            $0.milterListeners = [.tcp(host: "127.0.0.1", port: 0)]
        }, clock: nil, log: log) { addresses, _ in
            let port = try #require(addresses[1].split(separator: ":").last)
            let run = try await runProgram("/usr/bin/miltertest", [
                "-D", "MILTER=inet:\(port)@127.0.0.1", "-D", "SENDER=mt@example.org",
                "-D", "RCPT=user@example.net", "-D", "DELAY=2", "-s", script])
            #expect(run.status == 0, "\(run.output)")
            #expect(run.output.contains("first attempt deferred"))
            #expect(run.output.contains("retry passed with X-Greylist"))
            #expect(run.output.contains("PASS"))
        }
        #expect(log.contains("defer: client=198.51.100.7 network=198.51.100.0/24 sender=<mt@example.org> "
                             + "recipient=<user@example.net> reason=new_triplet retry_in=2s via=milter"))
        #expect(log.contains("reason=delay_elapsed"))
    }

    /// The null sender through Postfix's milter: a call-out (RCPT, then
    /// QUIT) is accepted and leaves no record; a bounce is accepted at RCPT,
    /// deferred at DATA and delivered on its retry after the delay.
    @Test func postfixGreylistsTheNullSenderAtData() async throws {
        let smtpPort = try E2E.value("GREYLAG_E2E_MILTER_SMTP_PORT")
        let milterPort = try #require(Int(try E2E.value("GREYLAG_E2E_MILTER_PORT")))
        let maildir = try E2E.value("GREYLAG_E2E_MILTER_MAILDIR")
        let id = UUID().uuidString
        let recipient = "bounce-m-\(id.prefix(8).lowercased())@example.net"
        let swaks = ["--server", "127.0.0.1", "--port", smtpPort, "--from", "<>", "--to", recipient,
                     "--header", "X-Greylag-Test: \(id)", "--timeout", "30"]
        let log = CapturedLog()
        try await withDaemon(configure: {
            $0.policy.delay = 2
            $0.milterListeners = [.tcp(host: "127.0.0.1", port: milterPort)]
        }, clock: nil, log: log) { _, _ in
            let callout = try await runProgram("/usr/bin/swaks", swaks + ["--quit-after", "RCPT"])
            #expect(callout.status == 0, "a call-out must not be deferred: \(callout.output)")
            #expect(callout.output.contains("250 2.1.5"), "\(callout.output)")
            let first = try await runProgram("/usr/bin/swaks", swaks)
            #expect(first.status != 0, "the bounce's first DATA must be deferred")
            #expect(first.output.contains("250 2.1.5"), "RCPT must be accepted: \(first.output)")
            #expect(first.output.contains("451 4.7.1 Greylisting in action, please come back in 00:00:0"), "\(first.output)")
            try await Task.sleep(for: .milliseconds(2500))
            let second = try await runProgram("/usr/bin/swaks", swaks)
            #expect(second.status == 0, "\(second.output)")
            #expect(second.output.contains("250 2.0.0 Ok: queued as"), "\(second.output)")
        }
        let defers = log.all.filter { $0.contains("defer: ") && $0.contains("recipient=<\(recipient)>") }
        #expect(defers.count == 1, "\(log.all)")
        #expect(defers.first?.contains("sender=<> recipient=<\(recipient)> reason=new_triplet") == true, "\(defers)")
        #expect(log.contains("sender=<> recipient=<\(recipient)> reason=delay_elapsed"))
        var delivered = false
        for _ in 0..<100 where !delivered {
            for sub in ["new", "cur"] {
                let dir = maildir + "/" + sub
                for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
                    if let text = try? String(contentsOfFile: dir + "/" + name, encoding: .utf8), text.contains(id) {
                        delivered = true
                    }
                }
            }
            if !delivered { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(delivered, "no delivered message")
    }

    @Test func postfixDefersThenDeliversWithTheHeader() async throws {
        let smtpPort = try E2E.value("GREYLAG_E2E_MILTER_SMTP_PORT")
        let milterPort = try #require(Int(try E2E.value("GREYLAG_E2E_MILTER_PORT")))
        let maildir = try E2E.value("GREYLAG_E2E_MILTER_MAILDIR")
        let id = UUID().uuidString
        let sender = "milter-\(id.prefix(8))@example.org"
        let swaks = ["--server", "127.0.0.1", "--port", smtpPort, "--from", sender, "--to", "user-m@example.net",
                     "--header", "X-Greylag-Test: \(id)", "--timeout", "30"]
        try await withDaemon(configure: {
            $0.policy.delay = 2
            $0.milterListeners = [.tcp(host: "127.0.0.1", port: milterPort)]
        }, clock: nil) { _, _ in
            let first = try await runProgram("/usr/bin/swaks", swaks)
            #expect(first.status != 0)
            #expect(first.output.contains("451 4.7.1 Greylisting in action, please come back in 00:00:0"), "\(first.output)")
            try await Task.sleep(for: .milliseconds(2500))
            let second = try await runProgram("/usr/bin/swaks", swaks)
            #expect(second.status == 0, "\(second.output)")
            #expect(second.output.contains("250 2.0.0 Ok: queued as"), "\(second.output)")
        }
        var message: String? = nil
        for _ in 0..<100 where message == nil {
            for sub in ["new", "cur"] {
                let dir = maildir + "/" + sub
                for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
                    if let text = try? String(contentsOfFile: dir + "/" + name, encoding: .utf8), text.contains(id) {
                        message = text
                    }
                }
            }
            if message == nil { try await Task.sleep(for: .milliseconds(200)) }
        }
        let text = try #require(message, "no delivered message")
        let header = try #require(text.split(separator: "\n").first { $0.hasPrefix("X-Greylist: ") }, "\(text)")
        #expect(header.hasPrefix("X-Greylist: Delayed for 00:00:0"), "\(header)")
        #expect(header.contains(" by greylag-\(GreylagVersion.string) (mx.example.net [127.0.0.1]); "), "\(header)")
    }
}
