import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Writes log lines from a background queue, so the threads that answer
/// MTAs never block on the log: a line is formatted where it is logged and
/// appended to a buffer; the buffer is written with one `write` per burst
/// (to a file descriptor) or one datagram per line (to a syslog socket).
/// If the log cannot keep up, lines beyond `maxBuffered` bytes are dropped
/// and counted, and the count is logged.
public final class LogWriter: Sendable {
    private struct State: ~Copyable {
        var buffer: [UInt8] = []
        var scheduled = false
        var dropped = 0
        /// Lines dropped and not yet reported on the syslog socket.
        var unreported = 0
        /// The syslog socket refused the last line sent.
        var socketFailing = false
        /// Lines dropped in all, for tests and diagnosis.
        var droppedTotal = 0
    }

    /// Where the lines go.
    private enum Sink: Sendable {
        case fd(Int32)
        case syslog(SyslogSocket)
    }

    /// The writer for standard error.
    public static let standardError = LogWriter(fd: 2)

    /// How long lines are gathered before they are written (errors are written at once).
    static let gatherMilliseconds = 5

    /// How the lines written through this writer begin.
    public let format: LogFormat
    private let sink: Sink
    private let maxBuffered: Int
    private let state = Mutex(State())
    private let queue: DispatchQueue

    /// - Parameter queue: the serial queue that writes (tests pass one they suspend).
    public init(fd: Int32, format: LogFormat = .plain, maxBuffered: Int = 8 << 20,
                queue: DispatchQueue = DispatchQueue(label: "greylag.log")) {
        self.sink = .fd(fd)
        self.format = format
        self.maxBuffered = maxBuffered
        self.queue = queue
    }

    /// A writer sending RFC 3164 datagrams to the syslog socket at `path`
    /// (`/dev/log`). The socket is non-blocking: a line it does not take
    /// (full, missing, no daemon reading) is dropped and counted, and the
    /// count is sent once it takes lines again.
    public init(syslogSocket path: String, facility: SyslogFacility, maxBuffered: Int = 8 << 20,
                queue: DispatchQueue = DispatchQueue(label: "greylag.log")) throws {
        self.sink = .syslog(try SyslogSocket(path: path))
        self.format = .syslog(facility)
        self.maxBuffered = maxBuffered
        self.queue = queue
    }

    /// Lines dropped so far: the buffer was full or the syslog socket did not take them.
    public var droppedLines: Int {
        queue.sync {}
        return state.withLock { $0.droppedTotal + $0.dropped }
    }

    /// Queues one line made of `parts` (a newline is added).
    func append(_ parts: String...) {
        enqueue(length: parts.reduce(0) { $0 + $1.utf8.count }) { buffer in
            for p in parts { buffer.append(contentsOf: p.utf8) }
        }
    }

    /// Queues one line: `head`, `middle`, then `body` (one line, no
    /// newline; a newline is added), copied once, straight into the
    /// buffer: the decision lines' path, which no string is made for.
    func appendLine(_ head: String, _ middle: String, body: [UInt8]) {
        enqueue(length: head.utf8.count + middle.utf8.count + body.count) { buffer in
            buffer.append(contentsOf: head.utf8)
            buffer.append(contentsOf: middle.utf8)
            buffer.append(contentsOf: body)
        }
    }

    /// Adds a line of `length` bytes that `write` appends, and its newline,
    /// or counts it dropped when the buffer has no room for it.
    private func enqueue(length: Int, _ write: (inout [UInt8]) -> Void) {
        let schedule = state.withLock { state -> Bool in
            if state.buffer.count + length + 1 > maxBuffered {
                state.dropped += 1
            } else {
                write(&state.buffer)
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
        let (bytes, dropped) = state.withLock { state -> ([UInt8], Int) in
            state.scheduled = false
            state.droppedTotal += state.dropped
            defer {
                state.buffer = []
                state.dropped = 0
            }
            return (state.buffer, state.dropped)
        }
        switch sink {
        case .fd(let fd):
            var bytes = bytes
            if dropped > 0 {
                bytes.append(contentsOf: format.render(level: .warning, body:
                    "warning greylag: \(dropped) log line(s) dropped: the log was not written fast enough").utf8)
                bytes.append(UInt8(ascii: "\n"))
            }
            Self.write(fd, bytes)
        case .syslog(let socket):
            writeDatagrams(bytes, dropped: dropped, to: socket)
        }
    }

    /// Sends each line as a datagram; lines the socket refuses are counted,
    /// and the count is sent before the first line it takes again.
    private func writeDatagrams(_ bytes: [UInt8], dropped: Int, to socket: SyslogSocket) {
        var (unreported, failing) = state.withLock { ($0.unreported + dropped, $0.socketFailing) }
        let wasFailing = failing
        var refused = 0
        var firstError: Int32 = 0
        var start = 0
        for i in bytes.indices where bytes[i] == UInt8(ascii: "\n") {
            let line = bytes[start..<i]
            start = i + 1
            if unreported > 0 {
                let notice = format.render(level: .warning, body: "warning greylag: \(unreported) log line(s) dropped: "
                    + "the syslog socket \(socket.path) was full or missing")
                let error = socket.send(ArraySlice(notice.utf8))
                if error == 0 {
                    unreported = 0
                    failing = false
                } else {
                    // Still refused: the line would be too.
                    unreported += 1
                    refused += 1
                    if firstError == 0 { firstError = error }
                    continue
                }
            }
            let error = socket.send(line)
            if error == 0 {
                failing = false
            } else {
                unreported += 1
                refused += 1
                failing = true
                if firstError == 0 { firstError = error }
            }
        }
        state.withLock { state in
            state.unreported = unreported
            state.droppedTotal += refused
            state.socketFailing = failing || unreported > 0
        }
        if firstError != 0 && !wasFailing {
            // Once per outage, where someone may still read it.
            LogWriter.standardError.append(LogFormat.plain.render(level: .error, body:
                "error greylag: cannot log to the syslog socket \(socket.path): \(String(cString: strerror(firstError))); "
                + "log lines are dropped and counted until it takes them again"))
        }
    }

    private static func write(_ fd: Int32, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
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

/// A non-blocking unix datagram socket to a syslog daemon, sending to its
/// path each time (a restarted syslog daemon makes the socket anew).
final class SyslogSocket: Sendable {
    let path: String
    private let address: SocketAddressBytes
    private let fd: Int32

    /// The longest datagram sent; longer lines are cut (rsyslog's default limit is 8 KiB).
    static let maxLine = 8000

    init(path: String) throws {
        guard path.hasPrefix("/"), case .success(let address) = SocketAddressBytes.parse(path) else {
            throw SyslogSocketError(message: "\(path) is not an absolute socket path of at most 107 bytes")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SyslogSocketError(message: "cannot make a datagram socket: \(String(cString: strerror(errno)))") }
        self.path = path
        self.address = address
        self.fd = fd
    }

    deinit { close(fd) }

    /// Sends one line; 0, or the errno of the failure.
    func send(_ line: ArraySlice<UInt8>) -> Int32 {
        let cut = line.prefix(Self.maxLine)
        let sent = address.withSockaddr { addr, length in
            cut.withUnsafeBytes { Glibc.sendto(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL), addr, length) }
        }
        return sent < 0 ? errno : 0
    }
}

struct SyslogSocketError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A swift-log handler writing `LEVEL LABEL: message key=value` lines
/// through a `LogWriter`, each begun as the writer's `LogFormat` says (a
/// UTC timestamp to the second on plain lines).
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

    /// Lines written without swift-log's event and without a string: the
    /// decision lines. Nil when this handler adds metadata to every line
    /// (those go through `log`).
    var direct: DirectLines? {
        metadata.isEmpty ? DirectLines(label: label, writer: writer) : nil
    }

    /// Writes lines of a `GreylagLogHandler` without metadata, each as
    /// `log(event:)` would write it.
    struct DirectLines: Sendable {
        let writer: LogWriter
        /// What comes between the format's head and the message, by level
        /// (`" info greylag: "` on plain lines), made once.
        private let middles: [String]

        init(label: String, writer: LogWriter) {
            self.writer = writer
            let space = writer.format == .plain ? " " : ""
            middles = Self.levels.map { space + $0.rawValue + " " + label + ": " }
        }

        private static let levels: [Logger.Level] = [.trace, .debug, .info, .notice, .warning, .error, .critical]

        private static func index(_ level: Logger.Level) -> Int {
            switch level {
            case .trace: return 0
            case .debug: return 1
            case .info: return 2
            case .notice: return 3
            case .warning: return 4
            case .error: return 5
            case .critical: return 6
            }
        }

        /// Writes one line at `level`; `body` is the message (one line, escaped).
        func write(_ level: Logger.Level, _ body: [UInt8]) {
            let middle = middles[Self.index(level)]
            switch writer.format {
            case .plain: writer.appendLine(PlainClock.timestamp(), middle, body: body)
            case .journal: writer.appendLine(LogFormat.journalPrefixes[LogFormat.severity(level)], middle, body: body)
            case .syslog(let facility):
                writer.appendLine(SyslogClock.header(priority: facility.code * 8 + LogFormat.severity(level)), middle, body: body)
            }
        }
    }

    public func log(event: LogEvent) {
        var line = ""
        line.reserveCapacity(256)
        // rawValue, not interpolation: that describes the level by reflection.
        line += event.level.rawValue
        line += " "
        line += label
        line += ": "
        line += event.message.description
        if let extra = event.metadata, !extra.isEmpty {
            var all = metadata
            all.merge(extra) { $1 }
            for (key, value) in all.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
        } else if metadata.count == 1, let (key, value) = metadata.first {
            line += " \(key)=\(value)"  // the usual case: a connection's peer
        } else if !metadata.isEmpty {
            for (key, value) in metadata.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
        }
        if case .plain = writer.format {
            writer.append(PlainClock.timestamp(), " ", line)  // the usual case, without one more copy
        } else {
            writer.append(writer.format.render(level: event.level, body: line))
        }
        if event.level >= .error { writer.flush() }
    }
}
