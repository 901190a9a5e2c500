import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The real `greylag serve` under a stand-in for systemd: its notify
/// socket, a journal stream and a syslog socket, all bound by the test.
@Suite(.serialized, .enabled(if: GreylagBinary.available)) struct SystemdDaemonTests {
    /// A configuration with a policy listener, optionally milter and HTTP ones, and `extra` appended.
    func writeConfig(_ path: String, dir: String, policy: Int, milter: Int? = nil, http: Int? = nil,
                     extra: String = "") throws {
        try """
            [policy]
            listen = ["127.0.0.1:\(policy)"]
            helper_listen = []
            [milter]
            listen = [\(milter.map { "\"inet:\($0)@127.0.0.1\"" } ?? "")]
            [http]
            listen = "\(http.map { "127.0.0.1:\($0)" } ?? "none")"
            [store]
            path = "\(dir)/greylag.db"
            [admin]
            socket = "\(dir)/admin.sock"
            [reload]
            watch_interval = 0
            \(extra)
            """.write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test func readyComesOnlyWhenEveryListenerAnswersAndReloadAndStopAreTold() async throws {
        let dir = TemporaryDirectory()
        let notify = try DatagramSink(dir.path + "/notify.sock")
        let (policy, milter, http) = (try freePort(), try freePort(), try freePort())
        let config = dir.path + "/greylag.toml"
        try writeConfig(config, dir: dir.path, policy: policy, milter: milter, http: http)
        let daemon = try startGreylag(config: config, log: dir.path + "/daemon.log",
                                      environment: ["NOTIFY_SOCKET": notify.name])
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        func log() -> String { (try? String(contentsOfFile: dir.path + "/daemon.log", encoding: .utf8)) ?? "" }

        // The first datagram is READY=1; at once every listener answers.
        let ready = try #require(try await notify.receive(within: 60), "no READY=1; log:\n\(log())")
        let fields = ready.split(separator: "\n").map(String.init)
        #expect(fields.first == "READY=1", "\(ready)")
        #expect(fields.contains("MAINPID=\(daemon.processIdentifier)"), "\(ready)")
        #expect(fields.contains { $0.hasPrefix("STATUS=serving policy on 127.0.0.1:\(policy); milter on 127.0.0.1:\(milter); http on 127.0.0.1:\(http)") },
                "\(ready)")
        #expect(!ready.contains("STORE NOT OPEN"))
        let c = try await PolicyTestClient("127.0.0.1:\(policy)")
        #expect(try await c.ask(request()) == defer300)
        let m = try await PolicyTestClient("127.0.0.1:\(milter)")
        try await m.send(bytes: MilterServerTests.negotiate)
        #expect(try await m.packet()?.0 == "O")
        #expect(try await httpGet("127.0.0.1:\(http)", "/metrics").status == 200)

        // SIGHUP: RELOADING=1 (with the monotonic time newer systemd wants), then READY=1.
        kill(daemon.processIdentifier, SIGHUP)
        let reloading = try #require(try await notify.receive(), "log:\n\(log())")
        #expect(reloading.hasPrefix("RELOADING=1\nSTATUS=reloading (SIGHUP)\nMONOTONIC_USEC="), "\(reloading)")
        let reloaded = try #require(try await notify.receive())
        #expect(reloaded.hasPrefix("READY=1\nSTATUS=reloaded \(config) (SIGHUP)"), "\(reloaded)")

        // `greylag reload` (the admin socket) is told the same way.
        let binary = try #require(GreylagBinary.path)
        let cli = try await runProgram(binary, ["reload", "-c", config])
        #expect(cli.status == 0, "\(cli.output)")
        #expect(try await notify.receive()?.hasPrefix("RELOADING=1\nSTATUS=reloading (admin command)") == true)
        #expect(try await notify.receive()?.hasPrefix("READY=1\nSTATUS=reloaded") == true)

        // A refused configuration ends the reload too: the one in force serves on.
        try "[policy]\nlisten = 5\n".write(toFile: config, atomically: true, encoding: .utf8)
        kill(daemon.processIdentifier, SIGHUP)
        #expect(try await notify.receive()?.hasPrefix("RELOADING=1") == true)
        let refused = try #require(try await notify.receive())
        #expect(refused.hasPrefix("READY=1\nSTATUS=reload (SIGHUP) refused, the configuration in force stays"), "\(refused)")
        #expect(try await c.ask(request(recipient: "carol@example.net")) == defer300)

        // SIGTERM: STOPPING=1 before the process ends.
        kill(daemon.processIdentifier, SIGTERM)
        let stopping = try #require(try await notify.receive())
        #expect(stopping.hasPrefix("STOPPING=1\nSTATUS=shutting down"), "\(stopping)")
        #expect(try await waitForExit(daemon) == 0, "\(log())")
        #expect(try await notify.receive(within: 0.2) == nil)
    }

    @Test func abstractNotifySocket() async throws {
        let dir = TemporaryDirectory()
        let notify = try DatagramSink("@greylag-test-" + UUID().uuidString)
        let policy = try freePort()
        let config = dir.path + "/greylag.toml"
        try writeConfig(config, dir: dir.path, policy: policy)
        let daemon = try startGreylag(config: config, log: dir.path + "/daemon.log",
                                      environment: ["NOTIFY_SOCKET": notify.name])
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        let ready = try #require(try await notify.receive(within: 60))
        #expect(ready.hasPrefix("READY=1\nSTATUS=serving policy on 127.0.0.1:\(policy)"), "\(ready)")
        let c = try await PolicyTestClient("127.0.0.1:\(policy)")
        #expect(try await c.ask(request()) == defer300)
        kill(daemon.processIdentifier, SIGTERM)
        #expect(try await notify.receive()?.hasPrefix("STOPPING=1") == true)
        #expect(try await waitForExit(daemon) == 0)
    }

    @Test func aStoreThatCannotBeOpenedStillMakesTheDaemonReadyAndSaysSo() async throws {
        let dir = TemporaryDirectory()
        let notify = try DatagramSink(dir.path + "/notify.sock")
        let policy = try freePort()
        let config = dir.path + "/greylag.toml"
        // A directory where the SQLite file should be: it cannot be opened.
        try FileManager.default.createDirectory(atPath: dir.path + "/greylag.db", withIntermediateDirectories: false)
        try writeConfig(config, dir: dir.path, policy: policy)
        let daemon = try startGreylag(config: config, log: dir.path + "/daemon.log",
                                      environment: ["NOTIFY_SOCKET": notify.name])
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        let ready = try #require(try await notify.receive(within: 60))
        #expect(ready.hasPrefix("READY=1\nSTATUS=serving policy on 127.0.0.1:\(policy); STORE NOT OPEN ("), "\(ready)")
        #expect(ready.contains("every decision that needs it gets the failure mode (pass) until it opens"))
        let c = try await PolicyTestClient("127.0.0.1:\(policy)")
        #expect(try await c.ask(request()) == "action=DUNNO")  // the failure mode: pass
        kill(daemon.processIdentifier, SIGTERM)
        #expect(try await waitForExit(daemon) == 0)
    }

    /// Runs a daemon with stderr to `log` and `environment`: one decision,
    /// a reload with a restart-only change (a warning) and a refused one
    /// (an error of two lines); returns the log.
    func runLoggingDaemon(_ dir: TemporaryDirectory, journal: (String) throws -> String?) async throws -> String {
        let policy = try freePort()
        let config = dir.path + "/greylag.toml"
        try writeConfig(config, dir: dir.path, policy: policy)
        let logPath = dir.path + "/daemon.log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        var environment: [String: String] = [:]
        if let stream = try journal(logPath) { environment["JOURNAL_STREAM"] = stream }
        let daemon = try startGreylag(config: config, log: logPath, environment: environment)
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
        try await waitForPort(policy)
        let c = try await PolicyTestClient("127.0.0.1:\(policy)")
        #expect(try await c.ask(request()) == defer300)
        try writeConfig(config, dir: dir.path, policy: policy, extra: "[server]\nthreads = 3\n")
        kill(daemon.processIdentifier, SIGHUP)
        try await waitForLog(log, containing: "server.threads changed")
        try writeConfig(config, dir: dir.path, policy: policy, extra: "[server]\nthreads = 9999\n")
        kill(daemon.processIdentifier, SIGHUP)
        try await waitForLog(log, containing: "out of range")
        kill(daemon.processIdentifier, SIGTERM)
        #expect(try await waitForExit(daemon) == 0, "\(log())")
        return log()
    }

    func waitForLog(_ log: () -> String, containing text: String) async throws {
        for _ in 0..<200 {
            if log().contains(text) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("the log never said \(text):\n\(log())")
    }

    @Test func inTheJournalEveryLineCarriesItsPriorityAndNoTimestamp() async throws {
        let dir = TemporaryDirectory()
        let out = try await runLoggingDaemon(dir) { try journalStream(of: $0) }
        let lines = out.split(separator: "\n").map(String.init)
        #expect(!lines.isEmpty)
        for line in lines {
            #expect(line.range(of: #"^<[2-7]>"#, options: .regularExpression) != nil, "no priority: \(line)")
        }
        #expect(lines.contains { $0.hasPrefix("<6>info greylag: defer: client=192.0.2.7 ") }, "\(out)")
        #expect(lines.contains { $0.hasPrefix("<5>notice greylag: greylag ") && $0.contains(" serving policy on ") })
        #expect(lines.contains { $0.hasPrefix("<4>warning greylag: reload: server.threads changed") })
        let refused = try #require(lines.firstIndex { $0.hasPrefix("<3>error greylag: reload (SIGHUP) refused") }, "\(out)")
        #expect(lines.count > refused + 1 && lines[refused + 1].hasPrefix("<3>\(dir.path)/greylag.toml:"), "\(out)")
        #expect(out.range(of: #"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"#, options: .regularExpression) == nil, "\(out)")
    }

    @Test func outsideTheJournalLinesKeepTheirFormat() async throws {
        let dir = TemporaryDirectory()
        // JOURNAL_STREAM set, but for another stream (stderr was redirected): the plain format.
        let out = try await runLoggingDaemon(dir) { _ in "1:2" }
        let lines = out.split(separator: "\n").map(String.init)
        let stamp = #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "#
        #expect(lines.contains { $0.range(of: stamp + "info greylag: defer: client=192\\.0\\.2\\.7 ", options: .regularExpression) != nil },
                "\(out)")
        #expect(lines.contains { $0.range(of: stamp + "warning greylag: reload: server.threads changed", options: .regularExpression) != nil })
        #expect(!lines.contains { $0.hasPrefix("<") })
    }

    @Test func syslogGetsEveryLineWithTheFacilitysPriority() async throws {
        let dir = TemporaryDirectory()
        let syslog = try DatagramSink(dir.path + "/log.sock")
        let policy = try freePort()
        let config = dir.path + "/greylag.toml"
        try writeConfig(config, dir: dir.path, policy: policy, extra: """
            [log]
            destination = "syslog"
            syslog_facility = "local3"
            syslog_socket = "\(syslog.name)"
            """)
        let daemon = try startGreylag(config: config, log: dir.path + "/daemon.log")
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        let pid = daemon.processIdentifier
        let header = #"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 123]\d \d\d:\d\d:\d\d greylag\["# + "\(pid)" + #"\]: "#
        let start = try await syslog.receive(until: "serving policy on", within: 60)
        #expect(start.last?.range(of: "^<157>" + header + "notice greylag: greylag ", options: .regularExpression) != nil, "\(start)")
        let c = try await PolicyTestClient("127.0.0.1:\(policy)")
        #expect(try await c.ask(request()) == defer300)
        let decision = try await syslog.receive(until: "defer: client=192.0.2.7")
        #expect(decision.last?.range(of: "^<158>" + header + "info greylag: defer: client=192\\.0\\.2\\.7 ",
                                     options: .regularExpression) != nil, "\(decision)")
        kill(pid, SIGTERM)
        _ = try await syslog.receive(until: "greylag stopped")
        #expect(try await waitForExit(daemon) == 0)
        let stderr = try String(contentsOfFile: dir.path + "/daemon.log", encoding: .utf8)
        #expect(!stderr.contains("defer: client="), "\(stderr)")
    }

    @Test func aMissingSyslogSocketStopsNeitherTheDaemonNorMail() async throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/log.sock"
        let policy = try freePort()
        let config = dir.path + "/greylag.toml"
        try writeConfig(config, dir: dir.path, policy: policy, extra: """
            [log]
            destination = "syslog"
            syslog_socket = "\(path)"
            """)
        let logPath = dir.path + "/daemon.log"
        let daemon = try startGreylag(config: config, log: logPath)
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        try await waitForPort(policy)
        let c = try await PolicyTestClient("127.0.0.1:\(policy)")
        #expect(try await c.ask(request()) == defer300)
        try await waitForLog({ (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" },
                             containing: "cannot log to the syslog socket \(path): No such file or directory; "
                                + "log lines are dropped and counted")
        // The syslog daemon comes (back): the count of lost lines comes first.
        let syslog = try DatagramSink(path)
        #expect(try await c.ask(request(recipient: "carol@example.net")) == defer300)
        let got = try await syslog.receive(until: "recipient=<carol@example.net>")
        #expect(got.first?.range(of: #"^<20>.*\]: warning greylag: \d+ log line\(s\) dropped: the syslog socket "#,
                                 options: .regularExpression) != nil, "\(got)")
        #expect(got.last?.hasPrefix("<22>") == true)
        kill(daemon.processIdentifier, SIGTERM)
        #expect(try await waitForExit(daemon) == 0)
    }
}
