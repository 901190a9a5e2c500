import GreylagCore
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Tells systemd (or any supervisor speaking the sd_notify protocol) what
/// the daemon is doing, without libsystemd: each state is one datagram of
/// `KEY=value` lines sent to the unix socket named by `NOTIFY_SOCKET`
/// (a path, or `@name` for an abstract socket).
///
/// Sending never blocks and never fails the daemon: the socket is
/// non-blocking, a datagram that cannot be sent is dropped, and the first
/// failure is logged (later ones at debug level).
public final class SystemdNotifier: Sendable {
    /// The socket address, as `sendto` takes it.
    private let address: SocketAddressBytes
    /// What `NOTIFY_SOCKET` said, for logs.
    public let socketName: String
    private let fd: Int32
    private let logger: Logger
    private let failedOnce = Atomic(false)
    /// How often systemd expects `WATCHDOG=1` (`WATCHDOG_USEC`), nil without a watchdog.
    public let watchdogInterval: Duration?

    /// A notifier for the socket in `NOTIFY_SOCKET`, nil when it is unset or
    /// empty. An address greylag cannot use (relative, too long, `vsock:`)
    /// is logged once and gives nil: the daemon runs, unsupervised.
    ///
    /// `NOTIFY_SOCKET` stays in the environment: greylag starts no other
    /// programs that could mistake it for theirs, and `unsetenv` in a
    /// process whose threads may be reading the environment is unsafe.
    public static func fromEnvironment(_ environment: [String: String], logger: Logger) -> SystemdNotifier? {
        guard let value = environment["NOTIFY_SOCKET"], !value.isEmpty else { return nil }
        switch SocketAddressBytes.parse(value) {
        case .success(let address):
            return SystemdNotifier(address: address, name: value, logger: logger,
                                   watchdog: watchdogInterval(environment))
        case .failure(let problem):
            logger.warning("NOTIFY_SOCKET=\(value.logEscaped) is not usable (\(problem.message)); not telling systemd the daemon's state")
            return nil
        }
    }

    /// A notifier for `address` (a path, or `@name`); nil when it is not a usable address.
    public convenience init?(socket: String, logger: Logger, watchdog: Duration? = nil) {
        guard case .success(let address) = SocketAddressBytes.parse(socket) else { return nil }
        self.init(address: address, name: socket, logger: logger, watchdog: watchdog)
    }

    private init(address: SocketAddressBytes, name: String, logger: Logger, watchdog: Duration?) {
        self.address = address
        self.socketName = name
        self.logger = logger
        self.watchdogInterval = watchdog
        self.fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// systemd's watchdog interval for this process: `WATCHDOG_USEC` when it
    /// is a positive number and `WATCHDOG_PID`, if set, is this process.
    static func watchdogInterval(_ environment: [String: String]) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let usec = UInt64(text), usec > 0,
              usec <= 86_400 * 1_000_000 * 365 else { return nil }
        if let pid = environment["WATCHDOG_PID"], Int32(pid) != getpid() { return nil }
        return .microseconds(Int64(usec))
    }

    /// The daemon serves: every listener accepts and the store is open, or
    /// the daemon serves with the failure mode (then `status` says so).
    public func ready(status: String) {
        send("READY=1\nSTATUS=\(Self.statusText(status))\nMAINPID=\(getpid())")
    }

    /// A reload starts; `ready(status:)` ends it.
    public func reloading(status: String) {
        send("RELOADING=1\nSTATUS=\(Self.statusText(status))\nMONOTONIC_USEC=\(Self.monotonicMicroseconds())")
    }

    /// Shutdown starts.
    public func stopping(status: String) {
        send("STOPPING=1\nSTATUS=\(Self.statusText(status))")
    }

    /// A new status line alone (the store opened after all).
    public func status(_ status: String) {
        send("STATUS=\(Self.statusText(status))")
    }

    /// The watchdog keep-alive.
    public func watchdog() {
        send("WATCHDOG=1")
    }

    /// One line, no longer than systemd shows, and escaped: a status may
    /// quote a peer's or a file's text, and a newline in it would start a
    /// field of its own (`READY=1` sent early).
    static func statusText(_ s: String) -> String {
        let oneLine = s.logEscaped
        return oneLine.utf8.count <= 1024 ? oneLine : String(oneLine.prefix(1000)) + "..."
    }

    /// CLOCK_MONOTONIC in microseconds, as systemd's `MONOTONIC_USEC` wants it.
    static func monotonicMicroseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
    }

    /// Sends one datagram; a failure is logged the first time only.
    public func send(_ message: String) {
        var failure: Int32 = 0
        if fd < 0 {
            failure = EBADF
        } else {
            let bytes = Array(message.utf8)
            let sent = address.withSockaddr { addr, length in
                bytes.withUnsafeBytes { Glibc.sendto(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL), addr, length) }
            }
            if sent < 0 { failure = errno }
        }
        guard failure != 0 else { return }
        let first = failedOnce.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
        let what = message.split(separator: "\n").first.map(String.init) ?? ""
        let line = "cannot tell systemd \(what) through NOTIFY_SOCKET \(socketName.logEscaped): \(String(cString: strerror(failure)))"
        if first {
            logger.warning("\(line) (greylag serves on; later failures are logged at debug level)")
        } else {
            logger.debug("\(line)")
        }
    }
}
