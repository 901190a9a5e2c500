import Foundation
import GreylagCore
import GreylagServer
import GreylagTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The Exim ACLs of docs/exim.md, taken from the page itself (the
/// `exim-inet` and `exim-greylistd` snippets), so what the docs show is
/// what these tests run.
enum EximReadme {
    static let repository = DocSnippets.repository

    static func text() throws -> String { try DocSnippets.text("docs/exim.md") }

    /// The ACL snippet `exim-NAME`.
    static func block(_ name: String) throws -> String { try DocSnippets.snippet("exim-" + name) }

    static func replacingOnce(_ text: String, _ old: String, _ new: String) throws -> String {
        try DocSnippets.replacingOnce(text, old, new)
    }
}

/// What the Exim tests need here, or nil when they can run.
enum EximSetup {
    static let environment = ProcessInfo.processInfo.environment

    static var root: String { environment["GREYLAG_TEST_EXIM_ROOT"] ?? "" }

    static var problem: String? {
        if geteuid() != 0 {
            return "Exim's daemon must be started by root (run the tests as root, as scripts/test.sh does)"
        }
        if root.isEmpty {
            return "GREYLAG_TEST_EXIM_ROOT is not set (scripts/test.sh unpacks Debian's Exim 4.96 there)"
        }
        if !FileManager.default.isExecutableFile(atPath: root + "/usr/sbin/exim4") {
            return "no \(root)/usr/sbin/exim4 (unpack exim4-daemon-light exim4-base exim4-config there)"
        }
        if !FileManager.default.isExecutableFile(atPath: "/usr/bin/swaks") {
            return "no /usr/bin/swaks (scripts/install-test-deps.sh installs it)"
        }
        return nil
    }
}

/// One throwaway Exim daemon, started and stopped by scripts/lib/exim.sh.
struct EximDaemon: Sendable {
    let dir: String

    var mailbox: String { dir + "/mail/inbox" }
    var configFile: String { dir + "/exim.conf" }

    static func shell(_ function: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await runProgram("/bin/bash", ["-c", "source \"$1\"; shift; \(function) \"$@\"", "exim",
                                           EximReadme.repository + "/scripts/lib/exim.sh"] + arguments)
    }

    /// Runs `body` with Exim listening on 127.0.0.1:`port`, its RCPT ACL
    /// `acl`; stops Exim afterwards whatever happens.
    static func with<T: Sendable>(dir: String, port: Int, acl: String, auth: (user: String, password: String)? = nil,
                                  _ body: @Sendable (EximDaemon) async throws -> T) async throws -> T {
        let aclFile = dir + "/acl.conf"
        try acl.write(toFile: aclFile, atomically: true, encoding: .utf8)
        var arguments = [dir, EximSetup.root, String(port), aclFile]
        if let auth { arguments += [auth.user, auth.password] }
        let started = try await shell("exim_start", arguments)
        let exim = EximDaemon(dir: dir)
        guard started.status == 0 else {
            _ = try? await shell("exim_stop", [dir])
            throw TestFailure("Exim did not start:\n\(started.output)")
        }
        do {
            let result = try await body(exim)
            _ = try await shell("exim_stop", [dir])
            return result
        } catch {
            _ = try? await shell("exim_stop", [dir])
            throw error
        }
    }

    /// Exim's main log, for failure messages.
    var mainlog: String {
        (try? String(contentsOfFile: dir + "/spool/log/mainlog", encoding: .utf8)) ?? "(no mainlog)"
    }

    /// The delivered message holding `marker`, polled for up to 20 s (the
    /// mbox lock can hold a delivery back a few seconds).
    func message(containing marker: String) async throws -> String? {
        for _ in 0..<100 {
            if let text = try? String(contentsOfFile: mailbox, encoding: .utf8) {
                let messages = text.components(separatedBy: "\nFrom ")
                if let m = messages.first(where: { $0.contains(marker) }) { return m }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        return nil
    }
}

/// One SMTP transaction by swaks: exit status, the server's reply lines
/// (`<-  250 ...`, `<** 451 ...`) and the whole output.
struct SwaksRun: Sendable, CustomStringConvertible {
    var status: Int32
    var output: String
    var replies: [String] { output.split(separator: "\n").map(String.init).filter { $0.hasPrefix("<") } }
    var description: String { replies.joined(separator: "\n") }
    /// The server's reply with `code`, its continuation lines joined by
    /// spaces (`<** 451 one two`); nil when there is none.
    func reply(code: String) -> String? {
        var texts: [String] = []
        for line in replies {
            if line.hasPrefix("<** \(code)-") {
                texts.append(String(line.dropFirst(8)))
            } else if line.hasPrefix("<** \(code) ") {
                texts.append(String(line.dropFirst(8)))
                return "<** \(code) " + texts.joined(separator: " ")
            } else {
                texts = []
            }
        }
        return nil
    }

    static func send(port: Int, from: String, to: String, marker: String,
                     auth: (user: String, password: String)? = nil) async throws -> SwaksRun {
        var arguments = ["--server", "127.0.0.1", "--port", String(port), "--from", from, "--to", to,
                         "--header", "X-Greylag-Test: \(marker)", "--timeout", "30"]
        if let auth { arguments += ["--auth", "PLAIN", "--auth-user", auth.user, "--auth-password", auth.password] }
        let r = try await runProgram("/usr/bin/swaks", arguments)
        return SwaksRun(status: r.status, output: r.output)
    }
}

/// The three recipes of docs/exim.md, and Debian's greylistd statement
/// (not a snippet: it is greylistd's, quoted in the prose).
enum EximRecipe: String, CaseIterable, Sendable, CustomStringConvertible, CustomTestStringConvertible {
    /// The ACL on the policy listener over TCP.
    case inet
    /// The same ACL on a unix-socket policy listener.
    case unix
    /// The state words on greylag's greylistd-compatible socket.
    case greylistd
    /// Debian's `--grey` condition on the same socket.
    case greylistdGrey

    var description: String { rawValue }
    var testDescription: String { rawValue }

    var smtpPort: Int {
        switch self {
        case .inet: return 12925
        case .unix: return 12926
        case .greylistd: return 12927
        case .greylistdGrey: return 12928
        }
    }

    static let policyPort = 12920

    var speaksGreylistd: Bool { self == .greylistd || self == .greylistdGrey }

    /// The RCPT ACL Exim runs, asking greylag at `socket` (unix) or on
    /// `policyPort` (inet).
    func acl(socket: String) throws -> String {
        switch self {
        case .inet:
            return try EximReadme.replacingOnce(try EximReadme.block("inet"), "{inet:127.0.0.1:10023}",
                                                "{inet:127.0.0.1:\(Self.policyPort)}")
        case .unix:
            // The page's sentence: the same ACL asks the socket instead.
            let readme = try EximReadme.text().replacingOccurrences(of: "\n", with: " ")
            guard readme.contains("same ACL asks `${readsocket{/run/greylag/policy.sock}` instead of "
                                  + "`${readsocket{inet:127.0.0.1:10023}`") else {
                throw TestFailure("docs/exim.md no longer says how the ACL asks a unix socket")
            }
            return try EximReadme.replacingOnce(try EximReadme.block("inet"), "{inet:127.0.0.1:10023}", "{\(socket)}")
        case .greylistd:
            return try EximReadme.replacingOnce(try EximReadme.block("greylistd"), "{/var/run/greylistd/socket}",
                                                "{\(socket)}")
        case .greylistdGrey:
            // The core of greylistd's exim4-acl-example.txt (the statement
            // greylistd-setup-exim4 adds), without the Debian-only lists.
            return """
                acl_smtp_rcpt = acl_check_rcpt

                begin acl

                acl_check_rcpt:
                  accept  hosts = :
                  defer
                    message        = $sender_host_address is not yet authorized to deliver \\
                                     mail from <$sender_address> to <$local_part@$domain>. \\
                                     Please try later.
                    log_message    = greylisted.
                    !senders       = :
                    !authenticated = *
                    domains        = +local_domains
                    condition      = ${readsocket{\(socket)}\\
                                                 {--grey \\
                                                  $sender_host_address \\
                                                  $sender_address \\
                                                  $local_part@$domain}\\
                                                 {5s}{}{false}}
                  require domains = +local_domains
                  accept

                """
        }
    }

    /// greylag's configuration for this recipe (TOML, as a user writes it).
    func daemonConfig(socket: String) throws -> String {
        var toml = """
            [greylist]
            delay = "2s"
            [blacklist]
            senders = ["spammer@bad.example"]
            [exemptions]
            trusted_networks = []

            """
        if speaksGreylistd {
            // The page's [greylistd] table, on the test's socket.
            toml += try DocSnippets.replacingOnce(try DocSnippets.snippet("greylistd-toml"),
                                                  "\"unix:/var/run/greylistd/socket\"", "\"unix:\(socket)\"")
        }
        return toml
    }

    /// The reply line swaks shows for the first attempt.
    func deferLine(sender: String, recipient: String) -> String {
        speaksGreylistd
            ? "<** 451 127.0.0.1 is not yet authorized to deliver mail from <\(sender)> to <\(recipient)>. Please try later."
            : "<** 451 Greylisted, please try again in 2 seconds"
    }

    /// The reply line for the blacklisted sender, nil where the recipe does
    /// not refuse (Debian's `--grey` statement only defers).
    func refusedLine(recipient: String) -> String? {
        switch self {
        case .inet, .unix: return "<** 550 Refused by greylag policy"
        case .greylistd: return "<** 550 127.0.0.1 may not deliver mail from <spammer@bad.example> to <\(recipient)>."
        case .greylistdGrey: return nil
        }
    }
}

/// Greylisting through Debian's Exim 4.96 (unpacked by scripts/test.sh into
/// GREYLAG_TEST_EXIM_ROOT), asking greylag through the README's ACLs: first
/// attempt deferred with greylag's text on one line, the retry after the
/// delay accepted and delivered (with `X-Greylist` where the protocol
/// carries it), a blacklisted sender refused, and mail passing once greylag
/// is stopped. Exim on 127.0.0.1:12925-12929, greylag's policy port 12920.
@Suite(.serialized) struct EximEndToEndTests {
    /// Skipped with the reason in a plain `swift test` that cannot run
    /// Exim; under GREYLAG_E2E=1 it fails instead.
    @Test(.disabled(if: EximSetup.problem != nil && !TestGate.e2e,
                    Comment(rawValue: "not run: \(EximSetup.problem ?? "")")))
    func eximIsAvailable() throws {
        try TestGate.check("the Exim end-to-end tests", problem: EximSetup.problem)
    }

    /// The page's blocks are where the tests look for them.
    @Test func docsHaveTheRecipes() throws {
        let inet = try EximReadme.block("inet")
        #expect(inet.hasPrefix("acl_smtp_rcpt = acl_check_rcpt\n\nbegin acl\n"))
        #expect(inet.contains("${readsocket{inet:127.0.0.1:10023}"))
        #expect(inet.contains("{5s}{ }{action=DUNNO}}"))
        let greylistd = try EximReadme.block("greylistd")
        #expect(greylistd.contains("${readsocket{/var/run/greylistd/socket}"))
        #expect(try EximRecipe.unix.acl(socket: "/tmp/x.sock").contains("${readsocket{/tmp/x.sock}"))
    }

    @Test(arguments: TestGate.cases(EximRecipe.allCases, problem: { _ in EximSetup.problem }))
    func greylists(_ recipe: EximRecipe) async throws {
        try TestGate.check("Exim \(recipe)", problem: EximSetup.problem)
        let dir = TemporaryDirectory()
        let socket = dir.path + (recipe.speaksGreylistd ? "/greylistd.sock" : "/policy.sock")
        let acl = try recipe.acl(socket: socket)
        let config = try ConfigurationLoader.parse(try recipe.daemonConfig(socket: socket), file: "exim-e2e.toml")
        let id = UUID().uuidString.prefix(8).lowercased()  // greylag logs addresses in lower case
        let sender = "alice-\(recipe.rawValue.lowercased())-\(id)@example.org", recipient = "bob-\(id)@example.net"
        let marker = "exim-\(recipe)-\(id)"
        let port = recipe.smtpPort
        let log = CapturedLog()
        try await EximDaemon.with(dir: dir.path, port: port, acl: acl) { exim in
            try await withDaemon(configure: { c in
                using(config)(&c)
                switch recipe {
                case .inet: c.policyListeners = [.tcp(host: "127.0.0.1", port: EximRecipe.policyPort)]
                case .unix: c.policyListeners = [.unix(path: socket)]
                case .greylistd, .greylistdGrey: break
                }
                c.replies.hostname = "mx.greylag.test"
            }, clock: nil, log: log) { _, _ in
                let first = try await SwaksRun.send(port: port, from: sender, to: recipient, marker: marker)
                #expect(first.status != 0, "the first attempt must be deferred:\n\(first)")
                if recipe.speaksGreylistd {
                    // Exim folds the long text of Debian's ACL over several lines.
                    #expect(first.reply(code: "451") == recipe.deferLine(sender: sender, recipient: recipient), "\(first)")
                } else {
                    #expect(first.replies.contains(recipe.deferLine(sender: sender, recipient: recipient)), "\(first)")
                    #expect(!first.replies.contains { $0.hasPrefix("<** 451-") }, "a multi-line reply:\n\(first)")
                }
                if recipe == .inet {
                    // A request ended by readsocket's shutdown, no empty line.
                    let eof = try await runProgram(EximSetup.root + "/usr/sbin/exim4", [
                        "-C", exim.configFile, "-be",
                        "${readsocket{inet:127.0.0.1:\(EximRecipe.policyPort)}{request=smtpd_access_policy\\n"
                            + "protocol_state=RCPT\\nclient_address=192.0.2.7\\nsender=eof@example.org\\n"
                            + "recipient=\(recipient)\\n}{5s}{ }{action=DUNNO}}"])
                    #expect(eof.output == "action=DEFER_IF_PERMIT Greylisted, please try again in 2 seconds  \n",
                            "\(eof.output.debugDescription)")
                }
                try await Task.sleep(for: .milliseconds(2500))
                let second = try await SwaksRun.send(port: port, from: sender, to: recipient, marker: marker)
                #expect(second.status == 0, "the retry must be accepted:\n\(second)\n\(exim.mainlog)")
                #expect(second.replies.contains("<-  250 Accepted"), "\(second)")
                #expect(second.replies.contains { $0.hasPrefix("<-  250 OK id=") }, "\(second)")
                let spam = try await SwaksRun.send(port: port, from: "spammer@bad.example", to: recipient,
                                                   marker: marker + "-spam")
                if let refused = recipe.refusedLine(recipient: recipient) {
                    #expect(spam.status != 0)
                    #expect(spam.reply(code: "550") == refused, "\(spam)")
                }
                print("Exim \(recipe): first attempt\n\(first)\nretry\n\(second)\nblacklisted sender\n\(spam)")
            }
            // greylag is stopped: a new triplet passes at once.
            let down = try await SwaksRun.send(port: port, from: "carol-\(id)@example.org", to: recipient,
                                               marker: marker + "-down")
            #expect(down.status == 0, "with greylag stopped the mail must pass:\n\(down)\n\(exim.mainlog)")
            #expect(down.replies.contains("<-  250 Accepted"), "\(down)")
            print("Exim \(recipe): greylag stopped\n\(down)")

            let message = try #require(try await exim.message(containing: "X-Greylag-Test: \(marker)\n"),
                                       "the retry was not delivered:\n\(exim.mainlog)")
            let headers = message.split(separator: "\n").filter { $0.hasPrefix("X-Greylist: ") }
            if recipe.speaksGreylistd {
                #expect(headers.isEmpty, "\(message)")
            } else {
                #expect(headers.count == 1, "\(message)")
                let line = try #require(headers.first, "no X-Greylist header in:\n\(message)")
                #expect(line.hasPrefix("X-Greylist: delayed "))
                #expect(line.contains(" seconds by greylag-\(GreylagVersion.string) at mx.greylag.test; "), "\(line)")
            }
            #expect(try await exim.message(containing: "X-Greylag-Test: \(marker)-down\n") != nil,
                    "the mail sent with greylag stopped was not delivered:\n\(exim.mainlog)")
        }
        let client = "client=127.0.0.1 network=127.0.0.0/24"
        #expect(log.contains("defer: \(client) sender=<\(sender)> recipient=<\(recipient)> reason=new_triplet"),
                "\(log.all)")
        #expect(log.contains("pass: \(client) sender=<\(sender)> recipient=<\(recipient)> reason=delay_elapsed"),
                "\(log.all)")
        if recipe.refusedLine(recipient: recipient) != nil {
            #expect(log.contains("reject: client=127.0.0.1 sender=<spammer@bad.example> recipient=<\(recipient)> "
                                 + "reason=blacklisted"), "\(log.all)")
        }
    }

    /// `sasl_username=$authenticated_id`: a client that authenticated to
    /// Exim passes at once, where the same triplet without AUTH is deferred.
    @Test func authenticatedClientPasses() async throws {
        try TestGate.check("Exim with SMTP AUTH", problem: EximSetup.problem)
        let dir = TemporaryDirectory()
        let acl = try EximRecipe.inet.acl(socket: "")
        let config = try ConfigurationLoader.parse(EximRecipe.inet.daemonConfig(socket: ""), file: "exim-e2e.toml")
        let id = UUID().uuidString.prefix(8).lowercased()  // greylag logs addresses in lower case
        let auth = (user: "roaming-\(id)", password: "pw-\(id)")
        let sender = "roaming-\(id)@example.org", recipient = "colleague-\(id)@example.net"
        let port = 12929
        let log = CapturedLog()
        try await EximDaemon.with(dir: dir.path, port: port, acl: acl, auth: auth) { exim in
            try await withDaemon(configure: { c in
                using(config)(&c)
                c.policyListeners = [.tcp(host: "127.0.0.1", port: EximRecipe.policyPort)]
            }, clock: nil, log: log) { _, _ in
                let plain = try await SwaksRun.send(port: port, from: sender, to: recipient, marker: "plain-\(id)")
                #expect(plain.replies.contains("<** 451 Greylisted, please try again in 2 seconds"), "\(plain)")
                let authenticated = try await SwaksRun.send(port: port, from: sender, to: recipient,
                                                            marker: "auth-\(id)", auth: auth)
                #expect(authenticated.status == 0, "\(authenticated)\n\(exim.mainlog)")
                #expect(authenticated.replies.contains("<-  235 Authentication succeeded"), "\(authenticated)")
                #expect(authenticated.replies.contains("<-  250 Accepted"), "\(authenticated)")
                print("Exim with AUTH: without\n\(plain)\nwith\n\(authenticated)")
            }
        }
        #expect(log.contains("pass: client=127.0.0.1 sender=<\(sender)> recipient=<\(recipient)> "
                             + "reason=authenticated sasl_user=\(auth.user)"), "\(log.all)")
    }
}
