import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Writes log lines to a file descriptor from a background queue, so the
/// threads that answer MTAs never block on the log: a line is formatted
/// where it is logged and appended to a buffer; the buffer is written with
/// one `write` per burst. If the log cannot keep up, lines beyond
/// `maxBuffered` bytes are dropped and counted, and the count is logged.
public final class LogWriter: Sendable {
    private struct State: ~Copyable {
        var buffer: [UInt8] = []
        var scheduled = false
        var dropped = 0
    }

    /// The writer for standard error.
    public static let standardError = LogWriter(fd: 2)

    /// How long lines are gathered before they are written (errors are written at once).
    static let gatherMilliseconds = 5

    private let fd: Int32
    private let maxBuffered: Int
    private let state = Mutex(State())
    private let queue: DispatchQueue

    /// - Parameter queue: the serial queue that writes (tests pass one they suspend).
    public init(fd: Int32, maxBuffered: Int = 8 << 20, queue: DispatchQueue = DispatchQueue(label: "greylag.log")) {
        self.fd = fd
        self.maxBuffered = maxBuffered
        self.queue = queue
    }

    /// Queues one line (a newline is added).
    func append(_ line: String) {
        let schedule = state.withLock { state -> Bool in
            if state.buffer.count + line.utf8.count + 1 > maxBuffered {
                state.dropped += 1
            } else {
                state.buffer.append(contentsOf: line.utf8)
                state.buffer.append(UInt8(ascii: "\n"))
            }
            if state.scheduled { return false }
            state.scheduled = true
            return true
        }
        // A short wait gathers the lines of many decisions into one write
        // and one wake-up of the writing thread, instead of one each.
        if schedule { queue.asyncAfter(deadline: .now() + .milliseconds(Self.gatherMilliseconds)) { self.writePending() } }
    }

    /// Writes everything queued so far before returning.
    public func flush() {
        queue.sync { self.writePending() }
    }

    private func writePending() {
        var (bytes, dropped) = state.withLock { state -> ([UInt8], Int) in
            state.scheduled = false
            defer {
                state.buffer = []
                state.dropped = 0
            }
            return (state.buffer, state.dropped)
        }
        if dropped > 0 {
            bytes.append(contentsOf: "greylag: \(dropped) log line(s) dropped: the log was not written fast enough\n".utf8)
        }
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n > 0 {
                    offset += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    return  // nowhere to report a failing log
                }
            }
        }
    }
}

/// A swift-log handler writing `TIMESTAMP LEVEL LABEL: message key=value`
/// lines through a `LogWriter`. Timestamps are UTC, to the second.
public struct GreylagLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private let writer: LogWriter

    public init(label: String, level: Logger.Level, writer: LogWriter = .standardError) {
        self.label = label
        self.logLevel = level
        self.writer = writer
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = Self.timestamp()
        line.reserveCapacity(256)
        line += " \(event.level) \(label): \(event.message)"
        if let extra = event.metadata, !extra.isEmpty {
            var all = metadata
            all.merge(extra) { $1 }
            for (key, value) in all.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
        } else if metadata.count == 1, let (key, value) = metadata.first {
            line += " \(key)=\(value)"  // the usual case: a connection's peer
        } else if !metadata.isEmpty {
            for (key, value) in metadata.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
        }
        writer.append(line)
        if event.level >= .error { writer.flush() }
    }

    private static let cache = Mutex<(second: Int, text: String)>((-1, ""))

    /// `2026-11-21T20:16:26Z`, formatted once per second.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let second = ts.tv_sec
        if let cached = cache.withLock({ $0.second == second ? $0.text : nil }) { return cached }
        var t = time_t(second)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let text = "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
        cache.withLock { $0 = (second, text) }
        return text
    }
}
