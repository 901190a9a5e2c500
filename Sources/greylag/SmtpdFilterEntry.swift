#if canImport(Glibc)
import Glibc
#endif
import QmailGate
import SmtpdFilter

/// `greylag smtpd-filter`: the OpenSMTPD filter, run by smtpd for its whole
/// life (`filter "greylag" proc-exec "..."`). Dispatched before the argument
/// parser like the qmail helpers. smtpd stops all mail when a filter exits
/// or writes a bad line, so nothing here exits but end of input, and a bad
/// command line still registers and passes everything.
enum SmtpdFilterEntry {
    static let usage = """
        usage: greylag smtpd-filter [--socket unix:/path|HOST:PORT] [--timeout MS] [--header]
        An OpenSMTPD filter (smtpd.conf: filter "greylag" proc-exec "/usr/sbin/greylag smtpd-filter"):
        greylists at RCPT TO through the greylag daemon (default \(QmailEntry.defaultSocket), or
        $GREYLAG_SOCKET; a listener of policy.helper_listen). --timeout: milliseconds per question (3000);
        when the daemon cannot answer in time the mail passes. --header: add greylag's X-Greylist header
        to mail let through after a delay (every message then passes through the filter line by line).
        """

    static func run(_ args: [String]) -> Int32? {
        guard args.count > 1, args[1] == "smtpd-filter" else { return nil }
        var target = QmailEntry.env("GREYLAG_SOCKET") ?? QmailEntry.defaultSocket
        var timeout: Int32 = 3000
        var settings = FilterStateMachine.Settings()
        var problems: [String] = []
        var it = args.dropFirst(2).makeIterator()
        while let a = it.next() {
            switch a {
            case "--socket":
                if let v = it.next() { target = v } else { problems.append("--socket needs a value") }
            case "--timeout":
                if let v = it.next(), let ms = Int32(v), ms > 0, ms <= 600_000 { timeout = ms } else {
                    problems.append("--timeout needs milliseconds, 1 to 600000; using \(timeout)")
                }
            case "--header": settings.header = true
            case "-h", "--help":
                QmailEntry.write(1, usage + "\n")
                return 0
            default: problems.append("unknown argument \(a)")
            }
        }
        signal(SIGPIPE, SIG_IGN)
        for p in problems { QmailEntry.write(2, "greylag smtpd-filter: \(p)\n") }
        let socket = target
        let runner = FilterRunner(settings: settings, timeoutMilliseconds: timeout, ask: { attributes, ms in
            try PolicyClient(target: socket, timeoutMilliseconds: ms).ask(attributes)
        }, output: { line in
            if !writeAll(1, line) { _exit(0) }  // smtpd is gone
        }, logLine: { QmailEntry.write(2, $0) })
        QmailEntry.write(2, "greylag smtpd-filter: asking \(target), timeout \(timeout) ms\n")
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = read(0, &buffer, buffer.count)
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            if n <= 0 { return 0 }
            runner.feed(buffer[0..<n])
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + sent, $0.count - sent) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN {
                    var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&p, 1, 1000)
                    continue
                }
                return false
            }
            sent += n
        }
        return true
    }
}
