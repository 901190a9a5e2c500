import Foundation
import NIOCore
import Synchronization
import Logging

/// Makes the connection caps of all listeners fit the process's descriptor
/// limit, so that running out of descriptors is not how a flood of
/// connections ends. At start the soft `RLIMIT_NOFILE` is raised to the
/// hard limit; what is then left after a reserve (the store's files, the
/// event loops' own descriptors, the listeners, logs, a DNS socket, the
/// admin socket's few connections) is shared by the caps, and a cap that
/// does not fit is lowered with a warning naming its key.
enum DescriptorBudget {
    /// The soft and hard descriptor limits after raising the soft one as far as allowed.
    static func raiseLimit() -> (soft: Int, hard: Int) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (1024, 1024) }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return (clamp(limit.rlim_cur), clamp(limit.rlim_max))
    }

    private static func clamp(_ v: rlim_t) -> Int { v > rlim_t(Int32.max) ? Int(Int32.max) : Int(v) }

    /// Descriptors open now (from /proc/self/fd; 16 where that cannot be read).
    static func inUse() -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return 16 }
        return max(0, names.count - 1)  // the directory listing's own descriptor
    }

    /// Descriptors kept back for what is not a connection.
    static func reserve(threads: Int) -> Int { 64 + 4 * threads }

    /// Connections the admin socket may have open at once.
    static let adminConnections = 64

    struct Caps: Equatable {
        var policy: Int
        var milter: Int
        var http: Int
    }

    /// The caps that fit `limit`, and the warning when they had to be lowered.
    /// A cap of 0 is a listener that is not in use.
    static func fit(_ caps: Caps, limit: Int, inUse: Int, reserve: Int) -> (caps: Caps, warning: String?) {
        let available = max(3, limit - inUse - reserve - adminConnections)
        let wanted = caps.policy + caps.milter + caps.http
        guard wanted > available else { return (caps, nil) }
        func share(_ cap: Int) -> Int { cap == 0 ? 0 : max(1, Int(Int64(cap) * Int64(available) / Int64(wanted))) }
        let fitted = Caps(policy: share(caps.policy), milter: share(caps.milter), http: share(caps.http))
        var was: [String] = []
        var now: [String] = []
        for (key, old, new) in [("policy.max_connections", caps.policy, fitted.policy),
                                ("milter.max_connections", caps.milter, fitted.milter),
                                ("http.max_connections", caps.http, fitted.http)] where old > 0 {
            was.append("\(key) \(old)")
            now.append("\(key) \(new)")
        }
        let warning = "the descriptor limit (RLIMIT_NOFILE \(limit), \(inUse) open, \(reserve + adminConnections) kept "
            + "in reserve) leaves room for \(available) connections, fewer than \(was.joined(separator: " + ")); "
            + "lowered to \(now.joined(separator: ", ")). Raise the limit (LimitNOFILE= in the systemd unit, "
            + "ulimit -n) or lower the caps"
        return (fitted, warning)
    }
}

/// What a listener does when `accept` fails for want of descriptors or
/// memory (EMFILE, ENFILE, ENOBUFS, ENOMEM): it pauses accepting for a
/// quarter of a second and tries again, so the connections already open
/// go on and new ones wait in the backlog; this is logged at most every
/// 10 seconds per listener, with the count.
final class AcceptPause: Sendable {
    private let what: String
    private let logger: Logger
    private let throttle = LogThrottle(every: .seconds(10))

    init(what: String, logger: Logger) {
        self.what = what
        self.logger = logger
    }

    /// The backoff for `AcceptBackoffHandler`.
    func backoff(_ error: IOError) -> TimeAmount? {
        switch error.errnoCode {
        case EMFILE, ENFILE, ENOBUFS, ENOMEM:
            if let held = throttle.due() {
                let n = held + 1
                let line = "\(what): cannot accept a connection: \(String(cString: strerror(error.errnoCode))); "
                    + "pausing accepts for 250 ms (\(n) time(s) since the last message). Open connections "
                    + "go on; check the descriptor limit (RLIMIT_NOFILE) and the max_connections keys"
                logger.error("\(line)")
            }
            return .milliseconds(250)
        default:
            return nil
        }
    }
}
