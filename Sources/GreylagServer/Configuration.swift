import GreylagCore
import GreylagDNS
import GreylagMariaDB
import GreylagPostgres
import GreylagStore
import Logging
import Milter
import NIOCore
import PolicyProtocol

/// Everything `greylag serve` runs with. Every field has a default, so no
/// file is needed; `ConfigurationLoader` documents the TOML keys.
public struct GreylagConfiguration: Sendable {
    /// What the store does when it cannot answer within `storeTimeout`.
    public enum FailureMode: String, Sendable, CaseIterable {
        /// Let the mail through and log (greylisting must not stop mail).
        case pass
        /// Defer the recipient (mail is retried later).
        case `defer`
    }

    // [greylist]
    public var policy = GreylistPolicy()

    // [server]
    /// Event-loop threads serving the policy and milter connections; 0: one per core.
    public var threads = 0

    /// The threads the daemon starts: `threads`; else one with the SQLite
    /// store at `synchronous = "normal"`, whose writer commits on that
    /// thread (every decision made without a hand-off between threads costs
    /// a fifth less CPU, BENCHMARKS.md), or one per core with a store that
    /// waits (a database server, or SQLite syncing every commit).
    public var effectiveThreads: Int {
        if threads > 0 { return threads }
        if case .sqlite = backend, synchronous == .normal { return 1 }
        return max(1, System.coreCount)
    }

    // [policy]
    public var policyListeners: [ListenAddress] = [.tcp(host: "127.0.0.1", port: 10023)]
    /// Policy listeners for greylag's qmail helpers: only these honour the
    /// `greylag_*` attributes (`policy.helper_listen`).
    public var policyHelperListeners: [ListenAddress] = []
    /// The socket the qmail helpers ask when given no `--socket`: a
    /// configuration without `policy.helper_listen` serves it.
    public static let defaultHelperSocket = "/run/greylag/policy.sock"
    /// `policy.helper_listen` was not set and holds the default socket: a
    /// daemon that cannot serve it (no permission to make its directory,
    /// another greylag on it) says why and goes on without it.
    public var helperListenIsDefault = false
    /// Permissions of the helpers' unix sockets: whoever can connect chooses
    /// `greylag_delay`, so only greylag's user and group by default.
    public var helperSocketMode: Int = 0o660
    /// The group given the helpers' unix sockets (qmail-smtpd runs as
    /// `qmaild:nofiles`); nil: the daemon's own group.
    public var helperSocketGroup: String? = nil
    public var replies: PolicyReplyConfig = {
        var r = PolicyReplyConfig()
        r.software = GreylagVersion.software
        return r
    }()
    /// Idle policy connections are closed after this many seconds.
    public var idleTimeout: Int64 = 600
    /// Permissions of unix sockets greylag creates.
    public var socketMode: Int = 0o666
    /// Open policy connections at most; more are closed at once, with a warning.
    public var policyMaxConnections = 2000

    // [greylistd]
    /// greylistd-compatible listeners, for MTA configurations written for
    /// greylistd (Debian's Exim ACLs); none by default.
    public var greylistdListeners: [ListenAddress] = []
    /// Permissions of greylistd unix sockets: greylistd's own 0660.
    public var greylistdSocketMode: Int = 0o660

    // [milter]
    /// Milter listeners (Sendmail `INPUT_MAIL_FILTER`, Postfix `smtpd_milters`).
    public var milterListeners: [ListenAddress] = [.tcp(host: "127.0.0.1", port: 10029)]
    /// Permissions of milter unix sockets: the MTA's user must be able to connect.
    public var milterSocketMode: Int = 0o666
    /// Open milter connections at most.
    public var milterMaxConnections = 2000
    public var milterReplies: MilterReplyConfig = {
        var r = MilterReplyConfig()
        r.software = GreylagVersion.software
        return r
    }()

    // [store]
    /// Which database keeps the state.
    public enum Backend: Sendable, Hashable {
        /// The embedded SQLite file at `storePath`.
        case sqlite
        /// A PostgreSQL server shared by several MX hosts.
        case postgresql(PostgresStore.Settings)
        /// A MySQL or MariaDB server shared by several MX hosts (builds with the MariaDB trait).
        case mysql(MariaDBSettings)
    }
    public var backend: Backend = .sqlite
    public var storePath = "greylag.db"
    /// `normal`: safe against a crash of greylag (SIGKILL, OOM), and a power
    /// loss costs at most the last checkpoint interval; `full` syncs every
    /// commit and serves fewer decisions per second.
    public var synchronous: SQLiteStore.Synchronous = .normal
    /// Seconds the counts and last-seen times of retries that change no
    /// state wait in memory before SQLite gets them (0: every decision).
    public var flushInterval: Int64 = 5
    public var expiryInterval: Int64 = 60
    /// Seconds between counts of the store's records for `/metrics` (0: never).
    public var sizesInterval: Int64 = 600
    public var expiryBatch = 500
    /// Seconds a decision may wait for the store before `failureMode` applies.
    public var storeTimeout: Double = 5
    public var failureMode: FailureMode = .pass
    /// Seconds between attempts to open a store that could not be opened
    /// (a damaged or foreign file, a database server that was down at start).
    public var reopenInterval: Int64 = 30

    // [log]
    public var logLevel: Logger.Level = .info
    /// Seconds between stats lines (counts per verdict since the last one); 0: none.
    public var statsInterval: Int64 = 300
    /// Where log lines go: standard error (in the journal's format when
    /// it is the journal), or a syslog socket.
    public enum LogDestination: String, Sendable, CaseIterable {
        case stderr
        case syslog
    }
    public var logDestination: LogDestination = .stderr
    /// The facility of syslog lines (`log.syslog_facility`).
    public var syslogFacility: SyslogFacility = .mail
    /// The syslog daemon's datagram socket (`log.syslog_socket`).
    public var syslogSocket = "/dev/log"

    // [whitelist], [blacklist], [exemptions], [scope], [dry_run], [lists.NAME]
    /// The list rules of the configuration (manual entries from the store
    /// are added by the daemon). `ConfigurationLoader` adds the built-in
    /// whitelist and the trusted loopback networks unless told otherwise.
    public var lists = ListRules()
    /// List files read for `lists`, watched for changes.
    public var listFiles: [String] = []

    // [spf], [[dnslists]], [selective], greylist.dns_deadline
    /// How DNS facts change decisions (the engine's part).
    public var dns = DNSPolicy()
    /// DNS lists, the deadline, dynamic names, the reject reply.
    public var dnsChecks = DNSCheckSettings()
    /// `selective.dynamic_names_file`, as a full path (also in `listFiles`, so it is watched).
    public var dynamicNamesFile: String? = nil

    // [admin]
    /// Where the daemon listens for admin commands.
    public enum AdminSocket: Sendable, Hashable {
        /// `STORE_PATH.sock`, next to the SQLite file (the default).
        case besideStore
        case path(String)
        case off
    }
    public var adminSocket: AdminSocket = .besideStore
    /// Permissions of the admin socket: only its owner by default.
    public var adminSocketMode: Int = 0o600

    /// The admin socket path in force, or nil when turned off.
    public var adminSocketPath: String? {
        switch adminSocket {
        case .besideStore: return storePath + ".sock"
        case .path(let p): return p
        case .off: return nil
        }
    }

    // [http]
    /// Where `/metrics` is served; nil: nowhere. Loopback by default.
    public var httpListener: ListenAddress? = .tcp(host: "127.0.0.1", port: 10080)
    /// The bearer token of the admin API: required for every change, and
    /// for every request on a listener that is not local. Reloadable.
    public var httpToken: String?
    /// Permissions of an HTTP unix socket: only its owner by default.
    public var httpSocketMode: Int = 0o600
    /// Open HTTP connections at most; more are closed at once, with a warning.
    public var httpMaxConnections = 64
    /// Seconds a connection may stay without a complete request head (after
    /// opening or after its last answer) before it is closed.
    public var httpIdleTimeout: Int64 = 30
    /// Seconds a request's body may take after its head.
    public var httpRequestTimeout: Int64 = 10
    /// How long the dashboard's hourly history is kept, in seconds.
    public var historyKeep: Int64 = 90 * 86_400
    /// Seconds between writes of the hourly counts to the store.
    public var historyFlushInterval: Int64 = 60
    /// Seconds the dashboard reuses what it read from the store.
    public var dashboardCacheSeconds: Double = 10

    // [reload]
    /// Seconds between checks of the configuration and list files for
    /// changes; 0 turns watching off (SIGHUP still reloads).
    public var watchInterval: Double = 2

    // [dns]
    /// The DNS client's settings in force: `dns.servers`, or the servers and
    /// `attempts` of `resolverConfPath` (127.0.0.1 and ::1 when it names
    /// none), `dns.timeout` and `dns.cache_entries`.
    public var resolverSettings = DNSSettings(servers: [DNSServerAddress(host: "127.0.0.1"), DNSServerAddress(host: "::1")])
    /// Where the servers came from, for check-config and the log:
    /// `dns.servers` or the resolv.conf path, with a note when it had none.
    public var resolverServersSource = "defaults"
    /// The resolv.conf read when `dns.servers` is not set (`dns.resolv_conf`).
    public var resolverConfPath = "/etc/resolv.conf"

    /// The store for logs: `sqlite:greylag.db`, `postgresql://greylag@db1:5432/greylag`.
    public var backendDescription: String {
        switch backend {
        case .sqlite: return "sqlite:\(storePath)"
        case .postgresql(let s): return "postgresql://\(s.user)@\(s.host):\(s.port)/\(s.database)"
        case .mysql(let s): return s.description
        }
    }

    /// Where the configuration came from ("defaults" or a path), for logs.
    public var source = "defaults"

    public init() {}
}
