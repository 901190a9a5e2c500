import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How a log line begins, by where it goes. The rest of the line is the
/// same everywhere: `LEVEL LABEL: message key=value ...`.
public enum LogFormat: Sendable, Equatable {
    /// `2026-11-21T20:16:26Z info greylag: ...`: a terminal, a file, a pipe.
    case plain
    /// `<6>info greylag: ...`: standard error connected to the journal,
    /// which reads the priority and adds the time itself.
    case journal
    /// `<22>Nov 21 20:16:26 greylag[PID]: info greylag: ...`: RFC 3164, one
    /// datagram per line to a syslog socket.
    case syslog(SyslogFacility)

    /// The syslog severity of a level: critical 2, error 3, warning 4,
    /// notice 5, info 6, debug and trace 7.
    public static func severity(_ level: Logger.Level) -> Int {
        switch level {
        case .critical: return 2
        case .error: return 3
        case .warning: return 4
        case .notice: return 5
        case .info: return 6
        case .debug, .trace: return 7
        }
    }

    /// `<0>` to `<7>`: journal line prefixes by severity.
    static let journalPrefixes = (0...7).map { "<\($0)>" }

    /// `body` as the line(s) to write: a body of several lines (a refused
    /// reload lists its errors) gets the prefix on each, so the journal and
    /// syslog keep every line at the event's priority.
    func render(level: Logger.Level, body: String) -> String {
        let prefix: String
        switch self {
        case .plain: return PlainClock.timestamp() + " " + body
        case .journal: prefix = Self.journalPrefixes[Self.severity(level)]
        case .syslog(let facility): prefix = SyslogClock.header(priority: facility.code * 8 + Self.severity(level))
        }
        guard body.utf8.contains(UInt8(ascii: "\n")) else { return prefix + body }
        return body.split(separator: "\n", omittingEmptySubsequences: false).map { prefix + $0 }.joined(separator: "\n")
    }

    /// Whether standard error is the journal: systemd sets `JOURNAL_STREAM`
    /// to the `device:inode` of the stream it connects (systemd.exec(5)),
    /// which a redirected stderr no longer matches.
    public static func stderrIsJournal(_ environment: [String: String]) -> Bool {
        guard let value = environment["JOURNAL_STREAM"] else { return false }
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(2, &st) == 0 else { return false }
        return UInt64(st.st_dev) == device && UInt64(st.st_ino) == inode
    }
}

/// A syslog facility by name (`mail`, `daemon`, `local0` ...).
public struct SyslogFacility: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let code: Int

    /// The facilities a daemon may log as (not `kern`, which only the kernel uses).
    public static let all: [SyslogFacility] = [
        ("user", 1), ("mail", 2), ("daemon", 3), ("auth", 4), ("syslog", 5), ("lpr", 6), ("news", 7),
        ("uucp", 8), ("cron", 9), ("authpriv", 10), ("ftp", 11),
    ].map { SyslogFacility(name: $0.0, code: $0.1) } + (0...7).map { SyslogFacility(name: "local\($0)", code: 16 + $0) }

    public static let mail = SyslogFacility(name: "mail", code: 2)

    /// The facility called `name`, nil for an unknown one.
    public static func named(_ name: String) -> SyslogFacility? {
        all.first { $0.name == name }
    }

    public var description: String { name }
}

/// A text made from the current second (UTC seconds since the epoch), made
/// once per second and reused by every line written within it.
final class PerSecondText: Sendable {
    private let cache = Mutex<(second: Int, text: String)>((-1, ""))
    private let make: @Sendable (time_t) -> String

    init(_ make: @escaping @Sendable (time_t) -> String) { self.make = make }

    func text() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let second = ts.tv_sec
        if let cached = cache.withLock({ $0.second == second ? $0.text : nil }) { return cached }
        let text = make(time_t(second))
        cache.withLock { $0 = (second, text) }
        return text
    }

    static func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
}

/// Timestamps of plain lines: `2026-11-21T20:16:26Z`, UTC to the second.
enum PlainClock {
    private static let clock = PerSecondText { second in
        var t = second
        var parts = tm()
        gmtime_r(&t, &parts)
        let two = PerSecondText.two
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }

    static func timestamp() -> String { clock.text() }
}

/// RFC 3164 headers: `<PRI>Mmm dd hh:mm:ss greylag[PID]: `, local time
/// (as syslog daemons expect).
enum SyslogClock {
    private static let pid = getpid()
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    private static let clock = PerSecondText { second in
        var t = second
        var parts = tm()
        localtime_r(&t, &parts)
        let two = PerSecondText.two
        let day = parts.tm_mday < 10 ? " \(parts.tm_mday)" : "\(parts.tm_mday)"
        return "\(months[Int(parts.tm_mon) % 12]) \(day) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
    }

    static func header(priority: Int) -> String {
        "<\(priority)>\(time()) greylag[\(pid)]: "
    }

    static func time() -> String { clock.text() }
}
