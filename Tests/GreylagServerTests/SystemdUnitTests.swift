import Foundation
import GreylagCore
@testable import GreylagServer
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// sd_notify datagrams, the journal's and syslog's line formats and the
/// `[log]` keys, without a daemon.
@Suite struct SystemdUnitTests {
    @Test func severitiesFollowSyslog() {
        let expected: [Logger.Level: Int] = [.critical: 2, .error: 3, .warning: 4, .notice: 5, .info: 6, .debug: 7, .trace: 7]
        for (level, severity) in expected { #expect(LogFormat.severity(level) == severity, "\(level)") }
    }

    /// Logs through a writer of `format` into a pipe and returns what came out.
    func capture(_ format: LogFormat, _ body: (Logger) -> Void) -> String {
        let pipe = Pipe()
        let writer = LogWriter(fd: pipe.fileHandleForWriting.fileDescriptor, format: format)
        let logger = Logger(label: "greylag") { GreylagLogHandler(label: $0, level: .debug, writer: writer) }
        body(logger)
        writer.flush()
        try? pipe.fileHandleForWriting.close()
        return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    @Test func journalLinesCarryThePriorityAndNoTimestamp() {
        let out = capture(.journal) { logger in
            logger.debug("d")
            logger.info("defer: client=192.0.2.7", metadata: ["greylag.peer": "127.0.0.1:4000"])
            logger.notice("n")
            logger.warning("w")
            logger.error("refused:\n/etc/greylag/greylag.toml:3: bad")
            logger.critical("c")
        }
        #expect(out.split(separator: "\n").map(String.init) == [
            "<7>debug greylag: d",
            "<6>info greylag: defer: client=192.0.2.7 greylag.peer=127.0.0.1:4000",
            "<5>notice greylag: n",
            "<4>warning greylag: w",
            "<3>error greylag: refused:",
            "<3>/etc/greylag/greylag.toml:3: bad",  // each line of a message keeps its priority
            "<2>critical greylag: c",
        ])
    }

    @Test func plainLinesKeepTheirTimestamp() {
        let out = capture(.plain) { $0.warning("w") }
        #expect(out.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ warning greylag: w\n$"#, options: .regularExpression) != nil, "\(out)")
    }

    @Test func syslogLinesAreRFC3164() {
        let line = LogFormat.syslog(SyslogFacility.named("local3")!).render(level: .info, body: "info greylag: x")
        let pattern = #"^<158>(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 123]\d \d\d:\d\d:\d\d greylag\["#
            + "\(getpid())" + #"\]: info greylag: x$"#
        #expect(line.range(of: pattern, options: .regularExpression) != nil, "\(line)")
        let mail = LogFormat.syslog(.mail).render(level: .critical, body: "a\nb")
        #expect(mail.split(separator: "\n").allSatisfy { $0.hasPrefix("<18>") }, "\(mail)")
    }

    @Test func facilitiesByName() {
        #expect(SyslogFacility.named("mail")?.code == 2)
        #expect(SyslogFacility.named("daemon")?.code == 3)
        #expect(SyslogFacility.named("local0")?.code == 16 && SyslogFacility.named("local7")?.code == 23)
        #expect(SyslogFacility.named("kern") == nil && SyslogFacility.named("Mail") == nil && SyslogFacility.named("") == nil)
    }

    @Test func journalIsRecognisedByStderrsDeviceAndInode() {
        var st = stat()
        #expect(fstat(2, &st) == 0)
        #expect(LogFormat.stderrIsJournal(["JOURNAL_STREAM": "\(st.st_dev):\(st.st_ino)"]))
        #expect(!LogFormat.stderrIsJournal(["JOURNAL_STREAM": "\(st.st_dev):\(st.st_ino &+ 1)"]))
        #expect(!LogFormat.stderrIsJournal([:]))
        for bad in ["", ":", "1", "1:2:3", "x:y", "-1:5", "99999999999999999999999:1", " 1:2"] {
            #expect(!LogFormat.stderrIsJournal(["JOURNAL_STREAM": bad]), "\(bad)")
        }
    }

    @Test func socketAddresses() throws {
        let offset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
        #expect(try SocketAddressBytes.parse("/run/systemd/notify").get().length == socklen_t(offset + 20))
        #expect(try SocketAddressBytes.parse("@greylag").get().length == socklen_t(offset + 8))
        for bad in ["", "relative/path", "@", "vsock:2:1234", "/a\0b", "/" + String(repeating: "x", count: 107),
                    "@" + String(repeating: "x", count: 108)] {
            guard case .failure = SocketAddressBytes.parse(bad) else {
                Issue.record("accepted \(bad.debugDescription)")
                continue
            }
        }
        #expect((try? SocketAddressBytes.parse("/" + String(repeating: "x", count: 106)).get()) != nil)
        #expect((try? SocketAddressBytes.parse("@" + String(repeating: "x", count: 107)).get()) != nil)
    }

    @Test func notifierSendsEachStateAsOneDatagram() async throws {
        let dir = TemporaryDirectory()
        let sink = try DatagramSink(dir.path + "/notify")
        let log = CapturedLog()
        let logger = Logger(label: "test") { _ in CapturingHandler(log: log) }
        let notifier = try #require(SystemdNotifier.fromEnvironment(["NOTIFY_SOCKET": sink.name], logger: logger))
        #expect(notifier.watchdogInterval == nil)
        notifier.ready(status: "serving policy on 127.0.0.1:10023\nREADY=1")
        #expect(try await sink.receive() == "READY=1\nSTATUS=serving policy on 127.0.0.1:10023\\x0aREADY=1\nMAINPID=\(getpid())")
        notifier.reloading(status: "reloading (SIGHUP)")
        let reloading = try #require(try await sink.receive())
        #expect(reloading.range(of: #"^RELOADING=1\nSTATUS=reloading \(SIGHUP\)\nMONOTONIC_USEC=[1-9]\d*$"#,
                                options: .regularExpression) != nil, "\(reloading)")
        notifier.stopping(status: "shutting down")
        #expect(try await sink.receive() == "STOPPING=1\nSTATUS=shutting down")
        #expect(log.all.isEmpty)
    }

    @Test func abstractNotifySocket() async throws {
        let sink = try DatagramSink("@greylag-test-" + UUID().uuidString)
        let notifier = try #require(SystemdNotifier.fromEnvironment(["NOTIFY_SOCKET": sink.name], logger: Logger(label: "t")))
        notifier.status("hello")
        #expect(try await sink.receive() == "STATUS=hello")
    }

    @Test func aNotifySocketThatFailsIsLoggedOnceAndNeverThrows() throws {
        let log = CapturedLog()
        let logger = Logger(label: "test") { _ in CapturingHandler(log: log) }
        let missing = NSTemporaryDirectory() + "greylag-no-such-socket-" + UUID().uuidString
        let notifier = try #require(SystemdNotifier.fromEnvironment(["NOTIFY_SOCKET": missing], logger: logger))
        notifier.ready(status: "x")
        notifier.reloading(status: "y")
        notifier.stopping(status: "z")
        let warnings = log.all.filter { $0.hasPrefix("warning") }
        #expect(warnings.count == 1 && warnings[0].contains("cannot tell systemd READY=1"), "\(log.all)")
        #expect(log.all.filter { $0.hasPrefix("debug") }.count == 2)
    }

    @Test func unusableNotifySocketsAreRefusedWithAWarning() {
        let log = CapturedLog()
        let logger = Logger(label: "test") { _ in CapturingHandler(log: log) }
        #expect(SystemdNotifier.fromEnvironment([:], logger: logger) == nil)
        #expect(SystemdNotifier.fromEnvironment(["NOTIFY_SOCKET": ""], logger: logger) == nil)
        #expect(log.all.isEmpty)
        #expect(SystemdNotifier.fromEnvironment(["NOTIFY_SOCKET": "vsock:2:999"], logger: logger) == nil)
        #expect(log.all.count == 1 && log.all[0].contains("NOTIFY_SOCKET=vsock:2:999 is not usable"))
    }

    @Test func watchdogIntervalFromTheEnvironment() {
        let me = "\(getpid())"
        #expect(SystemdNotifier.watchdogInterval(["WATCHDOG_USEC": "20000000"]) == .seconds(20))
        #expect(SystemdNotifier.watchdogInterval(["WATCHDOG_USEC": "20000000", "WATCHDOG_PID": me]) == .seconds(20))
        #expect(SystemdNotifier.watchdogInterval(["WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"]) == nil)
        for bad in ["", "0", "-5", "abc", "99999999999999999999999"] {
            #expect(SystemdNotifier.watchdogInterval(["WATCHDOG_USEC": bad]) == nil, "\(bad)")
        }
    }

    @Test func syslogWriterSendsOneDatagramPerLine() async throws {
        let dir = TemporaryDirectory()
        let sink = try DatagramSink(dir.path + "/log")
        let writer = try LogWriter(syslogSocket: sink.name, facility: .mail)
        let logger = Logger(label: "greylag") { GreylagLogHandler(label: $0, level: .info, writer: writer) }
        logger.info("first")
        logger.error("second\nthird")
        writer.flush()
        let got = [try await sink.receive(), try await sink.receive(), try await sink.receive()]
        #expect(got[0]?.hasPrefix("<22>") == true && got[0]?.hasSuffix(": info greylag: first") == true, "\(got)")
        #expect(got[1]?.hasPrefix("<19>") == true && got[1]?.hasSuffix(": error greylag: second") == true)
        #expect(got[2]?.hasPrefix("<19>") == true && got[2]?.hasSuffix("]: third") == true)
        #expect(writer.droppedLines == 0)
    }

    @Test func aMissingSyslogSocketDropsAndCountsThenReportsTheCount() async throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/log"
        let writer = try LogWriter(syslogSocket: path, facility: .named("daemon")!)
        let logger = Logger(label: "greylag") { GreylagLogHandler(label: $0, level: .info, writer: writer) }
        logger.info("lost 1")
        logger.info("lost 2")
        writer.flush()
        #expect(writer.droppedLines == 2)
        let sink = try DatagramSink(path)
        logger.info("back")
        writer.flush()
        let notice = try #require(try await sink.receive())
        #expect(notice.hasPrefix("<28>") && notice.hasSuffix("]: warning greylag: 2 log line(s) dropped: the syslog socket \(path) was full or missing"),
                "\(notice)")
        #expect(try await sink.receive()?.hasSuffix("]: info greylag: back") == true)
        #expect(writer.droppedLines == 2)
    }

    @Test func aFullSyslogSocketNeverBlocksTheLogger() async throws {
        let dir = TemporaryDirectory()
        let sink = try DatagramSink(dir.path + "/log")  // never read: its queue fills
        let writer = try LogWriter(syslogSocket: sink.name, facility: .mail)
        let logger = Logger(label: "greylag") { GreylagLogHandler(label: $0, level: .info, writer: writer) }
        let start = ContinuousClock.now
        for i in 0..<5000 { logger.info("line \(i) \(String(repeating: "x", count: 200))") }
        writer.flush()
        #expect(ContinuousClock.now - start < .seconds(10))
        #expect(writer.droppedLines > 0)
    }

    @Test func logKeysAreReadAndChecked() throws {
        let c = try ConfigurationLoader.parse("""
            [log]
            destination = "syslog"
            syslog_facility = "local5"
            syslog_socket = "/run/rsyslog/log"
            """, file: "g.toml")
        #expect(c.logDestination == .syslog && c.syslogFacility.code == 21 && c.syslogSocket == "/run/rsyslog/log")
        let d = try ConfigurationLoader.parse("", file: "g.toml")
        #expect(d.logDestination == .stderr && d.syslogFacility == .mail && d.syslogSocket == "/dev/log")
        let long = "/" + String(repeating: "s", count: 120)
        do {
            _ = try ConfigurationLoader.parse("""
                [log]
                destination = "journal"
                syslog_facility = "kern"
                syslog_socket = "dev/log"

                [greylist]
                delay = "1m"

                [log.extra]
                """, file: "g.toml")
            Issue.record("accepted")
        } catch let e as ConfigurationErrors {
            let text = e.errors.map(\.description)
            #expect(text.contains(#"g.toml:2: log.destination: "journal" is not one of "stderr", "syslog""#), "\(text)")
            #expect(text.contains { $0.hasPrefix(#"g.toml:3: log.syslog_facility: "kern" is not a facility: user, mail"#) })
            #expect(text.contains(#"g.toml:4: log.syslog_socket: "dev/log" is not an absolute path"#))
        }
        do {
            _ = try ConfigurationLoader.parse("[log]\nsyslog_socket = \"\(long)\"\ndestination = 3\n", file: "g.toml")
            Issue.record("accepted")
        } catch let e as ConfigurationErrors {
            let text = e.errors.map(\.description)
            #expect(text.contains { $0.hasPrefix("g.toml:2: log.syslog_socket: ") && $0.contains("longer than 107 bytes") }, "\(text)")
            #expect(text.contains { $0.hasPrefix("g.toml:3: log.destination: expected a string") })
        }
    }

    @Test func logKeysTakeEffectAtTheNextRestart() {
        let a = GreylagConfiguration()
        var b = a
        b.logDestination = .syslog
        b.syslogFacility = .named("local1")!
        b.syslogSocket = "/tmp/log"
        #expect(ConfigReloader.restartOnly(a, b) == ["log.destination", "log.syslog_facility", "log.syslog_socket"])
    }
}
