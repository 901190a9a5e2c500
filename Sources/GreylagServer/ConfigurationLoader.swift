import Foundation
import GreylagCore
import GreylagMariaDB
import GreylagPostgres
import GreylagStore
import Logging
import Milter
import TOMLKit

/// One problem in a configuration file, located by file, line and key.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var key: String?
    public var message: String

    public var description: String {
        var where_ = file
        if let line { where_ += ":\(line)" }
        if let key { return "\(where_): \(key): \(message)" }
        return "\(where_): \(message)"
    }
}

/// All problems found in a configuration file; the file is refused as a whole.
public struct ConfigurationErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ConfigurationError]
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// Reads greylag's TOML configuration. The keys each table takes, their
/// defaults and meanings are `ConfigurationReference`'s: a key it does not
/// list is refused as unknown before any reader sees it.
///
/// ```toml
/// [greylist]
/// delay = "5m"                  # alias: block_expire (minutes), greylist
/// retry_window = "2d"           # alias: record_expire (minutes)
/// pass_ttl = "36d"              # alias: record_expire_good (days), autowhite
/// client_autowhitelist = 5      # 0 turns it off
/// ipv4_prefix = 24              # 32 keys by exact address
/// ipv6_prefix = 64              # 128 keys by exact address
/// normalize_sender = true
/// dry_run = false
///
/// [server]
/// threads = 0                   # event-loop threads; 0: one with SQLite "normal", else one per core
///
/// [policy]
/// listen = ["127.0.0.1:10023"]  # also "[::1]:10023", "unix:/run/greylag/policy.sock"
/// helper_listen = ["unix:/run/greylag/policy.sock"]  # the qmail helpers' socket; [] for none
/// helper_socket_mode = "0660"
/// helper_socket_group = "nofiles"  # when the group exists; "" for greylag's own
/// defer_action = "DEFER_IF_PERMIT"
/// defer_text = "Greylisted, please try again in {seconds} seconds"
/// reject_action = "REJECT"
/// reject_text = "Refused by greylag policy"
/// add_header = true
/// hostname = ""                 # empty: this host's name
/// idle_timeout = "10m"
/// socket_mode = "0666"
///
/// [milter]
/// listen = ["inet:10029@127.0.0.1"]  # also "inet6:10029@[::1]", "unix:/run/greylag/milter.sock"
/// defer_code = "451 4.7.1"
/// defer_text = "Greylisting in action, please come back in {hms}"
/// reject_code = "550 5.7.1"
/// reject_text = "Refused by greylag policy"
/// header = "delayed"             # none, delayed, whitelisted, all
/// hostname = ""                  # when the MTA sends no j macro
/// socket_mode = "0666"
///
/// [greylistd]
/// listen = []                    # greylistd's socket for its Exim ACLs: ["unix:/var/run/greylistd/socket"]
/// socket_mode = "0660"
///
/// [store]
/// backend = "sqlite"             # or "postgresql", "mysql" (MySQL or MariaDB; needs --traits MariaDB)
/// path = "greylag.db"            # sqlite
/// host = "127.0.0.1"             # postgresql and mysql: host, port, user, password, database,
/// port = 5432                    #   max_connections; mysql also socket (port 3306 by default)
/// synchronous = "normal"        # or "full" (syncs every commit)
/// expiry_interval = "1m"
/// expiry_batch = 500
/// timeout = "5s"
/// failure_mode = "pass"         # or "defer"
/// reopen_interval = "30s"       # retrying a store that could not be opened
///
/// [log]
/// level = "info"                # trace, debug, info, notice, warning, error, critical
/// stats_interval = "5m"        # 0: no stats lines
/// destination = "stderr"        # or "syslog"; stderr in the journal gets <N> priorities
/// syslog_facility = "mail"      # with destination = "syslog": user, mail, daemon, local0...local7 ...
/// syslog_socket = "/dev/log"    # the syslog daemon's datagram socket
/// ```
public enum ConfigurationLoader {
    /// Loads `path`, or the defaults when `path` is nil.
    public static func load(path: String?) throws -> GreylagConfiguration {
        guard let path else { return defaults() }
        let text: String
        do {
            if let problem = unreadableReason(path) {
                throw ConfigurationErrors(errors: [ConfigurationError(file: path, line: nil, key: nil, message: problem)])
            }
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch let error as ConfigurationErrors {
            throw error
        } catch {
            throw ConfigurationErrors(errors: [ConfigurationError(file: path, line: nil, key: nil,
                                                                  message: "cannot read: not a readable UTF-8 text file")])
        }
        return try parse(text, file: path)
    }

    /// Why `path` cannot be read as a configuration file, in words
    /// (Foundation's own errors say only "NSCocoaErrorDomain error 256").
    static func unreadableReason(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let e = errno
            return e == ENOENT ? "no such file" : "cannot read: \(String(cString: strerror(e)))"
        }
        if (st.st_mode & S_IFMT) == S_IFDIR { return "is a directory, not a configuration file" }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return "is not a regular file, not a configuration file" }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return "cannot read: \(String(cString: strerror(errno)))" }
        close(fd)
        return nil
    }

    /// The configuration `greylag serve` runs with when no file is given:
    /// `GreylagConfiguration`'s defaults plus the built-in whitelist and
    /// loopback as a trusted network.
    public static func defaults() -> GreylagConfiguration {
        (try? parse("", file: "defaults")) ?? GreylagConfiguration()
    }

    /// Parses configuration text; `file` names it in errors.
    public static func parse(_ text: String, file: String) throws -> GreylagConfiguration {
        if let problem = TOMLPrecheck.check(text) {
            throw ConfigurationErrors(errors: [ConfigurationError(file: file, line: problem.line, key: nil,
                                                                  message: problem.message)])
        }
        var reader = Reader(file: file, locator: TOMLKeyLocator(text: text))
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigurationErrors(errors: [ConfigurationError(file: file, line: error.source.begin.line, key: nil,
                                                                  message: error.description)])
        }
        var config = GreylagConfiguration()
        config.source = file
        config.lists.trusted = RuleSet(["127.0.0.0/8", "::1"].map {
            try! ListRule(field: .client, text: $0, origin: "default exemptions.trusted_networks")
        })
        reader.read(table, into: &config)
        if !reader.errors.isEmpty {
            // The configuration file's errors first, by line; then those of list files.
            let sorted = reader.errors.enumerated().sorted { a, b in
                let ka = (a.element.file == file ? 0 : 1, a.element.file, a.element.line ?? 0, a.offset)
                let kb = (b.element.file == file ? 0 : 1, b.element.file, b.element.line ?? 0, b.offset)
                return ka < kb
            }.map(\.element)
            throw ConfigurationErrors(errors: sorted)
        }
        return config
    }
}

/// Walks the parsed TOML, filling a configuration and collecting errors.
struct Reader {
    let file: String
    let locator: TOMLKeyLocator
    var errors: [ConfigurationError] = []
    /// Rule sections read so far, resolved into `ListRules` at the end.
    var ruleSections = RuleSections()

    init(file: String, locator: TOMLKeyLocator) {
        self.file = file
        self.locator = locator
    }

    mutating func fail(_ key: String, _ message: String) {
        errors.append(ConfigurationError(file: file, line: locator.line(of: key), key: key, message: message))
    }

    /// An error about one item of an array value, located at the item's line.
    mutating func fail(_ key: String, item: String, _ message: String) {
        errors.append(ConfigurationError(file: file, line: locator.line(of: key, item: item), key: key, message: message))
    }

    /// Every table header, for the message about an unknown section.
    static var sections: String { ConfigurationReference.tableList }

    /// Whether `ConfigurationReference` lists `key` for the table at `table`
    /// (`policy`, `lists.partners`); if not, reports it with the reference's
    /// message for that table. Every key passes here before it is read, so
    /// the reference is the one list of the keys greylag accepts.
    mutating func known(_ table: String, _ key: String, as located: String? = nil) -> Bool {
        guard let message = ConfigurationReference.unknownKeyMessage(table: table, key: key) else { return true }
        fail(located ?? "\(table).\(key)", message)
        return false
    }

    /// A key the reference lists but no reader handles: a bug the reference
    /// tests catch (every listed key, set to its example, must load).
    mutating func unread(_ key: String) {
        fail(key, "is listed in the configuration reference but not read (a bug in greylag)")
    }

    mutating func read(_ root: TOMLTable, into config: inout GreylagConfiguration) {
        for (name, value) in root {
            if name == "rules" {
                readRules(value)
                continue
            }
            if name == "dnslists" {
                readDNSLists(value, into: &config)
                continue
            }
            guard let section = value.table else {
                fail(name, "unknown top-level key; expected a section: \(Self.sections)")
                continue
            }
            guard ConfigurationReference.table(topLevel: name) != nil else {
                fail(name, "unknown section [\(name)]; expected \(Self.sections)")
                continue
            }
            switch name {
            case "greylist": readGreylist(section, into: &config)
            case "server": readServer(section, into: &config)
            case "policy": readPolicy(section, into: &config)
            case "milter": readMilter(section, into: &config)
            case "greylistd": readGreylistd(section, into: &config)
            case "store": readStore(section, into: &config)
            case "log": readLog(section, into: &config)
            case "whitelist", "blacklist", "scope", "dry_run": readRuleSection(section, name: name, into: &config)
            case "exemptions": readExemptions(section, into: &config)
            case "lists": readNamedLists(section)
            case "admin": readAdmin(section, into: &config)
            case "reload": readReload(section, into: &config)
            case "http": readHTTP(section, into: &config)
            case "spf": readSPF(section, into: &config)
            case "selective": readSelective(section, into: &config)
            case "dns": readDNS(section, into: &config)
            default: unread(name)
            }
        }
        resolveLists(into: &config)
        resolveRules(into: &config)
        checkDNS(root, into: &config)
        if let f = config.dynamicNamesFile { config.listFiles.append(f) }
        resolveDNS(root["dns"]?.table, into: &config)
        defaultHelperSocket(root["policy"]?.table, into: &config)
        let p = config.policy
        if p.retryWindow <= p.delay {
            fail("greylist.retry_window", "must be longer than delay (\(DurationText.format(p.delay)))")
        }
    }

    // MARK: Sections

    mutating func readGreylist(_ t: TOMLTable, into c: inout GreylagConfiguration) {
        var seen: [String: String] = [:]  // canonical name -> key that set it
        func claim(_ reader: inout Reader, _ canonical: String, _ key: String) -> Bool {
            if let other = seen[canonical] {
                reader.fail("greylist.\(key)", "sets the same value as \(other); keep one of them")
                return false
            }
            seen[canonical] = key
            return true
        }
        for (key, value) in t {
            let k = "greylist.\(key)"
            guard known("greylist", key) else { continue }
            switch key {
            case "delay", "greylist":
                let first = claim(&self, "delay", key)
                if let v = duration(k, value, unit: 1), first { c.policy.delay = v }
            case "block_expire":
                let first = claim(&self, "delay", key)
                if let v = duration(k, value, unit: 60), first { c.policy.delay = v }
            case "retry_window":
                let first = claim(&self, "retry_window", key)
                if let v = duration(k, value, unit: 1), first { c.policy.retryWindow = v }
            case "record_expire":
                let first = claim(&self, "retry_window", key)
                if let v = duration(k, value, unit: 60), first { c.policy.retryWindow = v }
            case "pass_ttl", "autowhite":
                let first = claim(&self, "pass_ttl", key)
                if let v = duration(k, value, unit: 1), first { c.policy.passTTL = v }
            case "record_expire_good":
                let first = claim(&self, "pass_ttl", key)
                if let v = duration(k, value, unit: 86_400), first { c.policy.passTTL = v }
            case "client_autowhitelist":
                if let v = integer(k, value, in: 0...1_000_000) { c.policy.clientAutowhitelist = Int64(v) }
            case "ipv4_prefix":
                if let v = integer(k, value, in: 0...32) { c.policy.keying.ipv4Prefix = v }
            case "ipv6_prefix":
                if let v = integer(k, value, in: 0...128) { c.policy.keying.ipv6Prefix = v }
            case "normalize_sender":
                if let v = boolean(k, value) { c.policy.normalizeSender = v }
            case "dry_run":
                if let v = boolean(k, value) { c.policy.dryRun = v }
            case "dns_deadline":
                if let v = seconds(k, value, in: 0.01...60) { c.dnsChecks.deadline = v }
            default:
                unread(k)
            }
        }
        if c.policy.passTTL <= 0 { fail("greylist.pass_ttl", "must be more than 0") }
    }

    mutating func readPolicy(_ t: TOMLTable, into c: inout GreylagConfiguration) {
        for (key, value) in t {
            let k = "policy.\(key)"
            guard known("policy", key) else { continue }
            switch key {
            case "listen":
                if let list = listeners(k, value, expected: "HOST:PORT, [IPV6]:PORT or unix:/path", parse: { ListenAddress($0) }) {
                    c.policyListeners = list
                }
            case "helper_listen":
                if let list = listeners(k, value, expected: "HOST:PORT, [IPV6]:PORT or unix:/path", parse: { ListenAddress($0) }) {
                    c.policyHelperListeners = list
                }
            case "defer_action":
                if let v = string(k, value) {
                    if Self.isAction(v, allowed: ["DEFER_IF_PERMIT", "DEFER", "DEFER_IF_REJECT"], codeClass: "4") {
                        c.replies.deferAction = v
                    } else {
                        fail(k, "\"\(v)\" is not DEFER_IF_PERMIT, DEFER, DEFER_IF_REJECT or a 4xx code such as \"450 4.7.1\"")
                    }
                }
            case "reject_action":
                if let v = string(k, value) {
                    if Self.isAction(v, allowed: ["REJECT"], codeClass: "5") { c.replies.rejectAction = v } else {
                        fail(k, "\"\(v)\" is not REJECT or a 5xx code such as \"550 5.7.1\"")
                    }
                }
            case "defer_text":
                if let v = text(k, value) { c.replies.deferText = v }
            case "reject_text":
                if let v = text(k, value) { c.replies.rejectText = v }
            case "add_header":
                if let v = boolean(k, value) { c.replies.addHeader = v }
            case "null_sender_at_data":
                if let v = boolean(k, value) { c.replies.nullSenderAtData = v }
            case "hostname":
                if let v = string(k, value) {
                    if v.contains(where: { $0.isWhitespace || $0 == ";" }) { fail(k, "must be one host name") } else {
                        c.replies.hostname = v
                    }
                }
            case "idle_timeout":
                if let v = duration(k, value, unit: 1) {
                    if v > 0 { c.idleTimeout = v } else { fail(k, "must be more than 0") }
                }
            case "socket_mode":
                if let v = mode(k, value) { c.socketMode = v }
            case "helper_socket_mode":
                if let v = mode(k, value) { c.helperSocketMode = v }
            case "helper_socket_group":
                if let v = string(k, value) {
                    if v.isEmpty {
                        c.helperSocketGroup = nil
                    } else if SocketPath.groupID(v) == nil {
                        fail(k, "no group \"\(v)\" on this host (\"\" leaves the daemon's own group)")
                    } else {
                        c.helperSocketGroup = v
                    }
                }
            case "max_connections":
                if let v = integer(k, value, in: 1...1_000_000) { c.policyMaxConnections = v }
            default:
                unread(k)
            }
        }
        for a in c.policyHelperListeners where c.policyListeners.contains(a) {
            fail("policy.helper_listen", "\(a) is also in policy.listen; a listener either takes the qmail helpers' "
                 + "greylag_* attributes or ignores them")
        }
    }

    /// Without `policy.helper_listen`, the daemon serves the socket the qmail
    /// helpers ask by default (unless `policy.listen` has it already), and
    /// gives it qmail-smtpd's group `nofiles` when this host has that group.
    mutating func defaultHelperSocket(_ policy: TOMLTable?, into c: inout GreylagConfiguration) {
        if policy?["helper_socket_group"] == nil, SocketPath.groupID("nofiles") != nil {
            c.helperSocketGroup = "nofiles"
        }
        guard policy?["helper_listen"] == nil else { return }
        let socket = ListenAddress.unix(path: GreylagConfiguration.defaultHelperSocket)
        guard !c.policyListeners.contains(socket), !c.greylistdListeners.contains(socket) else { return }
        c.policyHelperListeners = [socket]
        c.helperListenIsDefault = true
    }

    mutating func readGreylistd(_ t: TOMLTable, into c: inout GreylagConfiguration) {
        for (key, value) in t {
            let k = "greylistd.\(key)"
            guard known("greylistd", key) else { continue }
            switch key {
            case "listen":
                if let list = listeners(k, value, expected: "unix:/path, HOST:PORT or [IPV6]:PORT", parse: { ListenAddress($0) }) {
                    c.greylistdListeners = list
                }
            case "socket_mode":
                if let v = mode(k, value) { c.greylistdSocketMode = v }
            default:
                unread(k)
            }
        }
        for a in c.greylistdListeners where c.policyListeners.contains(a) || c.policyHelperListeners.contains(a) {
            fail("greylistd.listen", "\(a) is also a policy listener; one socket speaks one protocol")
        }
    }

    mutating func readMilter(_ t: TOMLTable, into c: inout GreylagConfiguration) {
        for (key, value) in t {
            let k = "milter.\(key)"
            guard known("milter", key) else { continue }
            switch key {
            case "listen":
                if let list = listeners(k, value, expected: "inet:PORT@HOST, inet6:PORT@HOST, unix:/path, a path or HOST:PORT",
                                        parse: { ListenAddress(milter: $0) }) {
                    c.milterListeners = list
                }
            case "defer_code":
                if let v = string(k, value) {
                    if Self.isAction(v, allowed: [], codeClass: "4") { c.milterReplies.deferCode = v } else {
                        fail(k, "\"\(v)\" is not a 4xx code with an optional enhanced code, such as \"451 4.7.1\"")
                    }
                }
            case "reject_code":
                if let v = string(k, value) {
                    if Self.isAction(v, allowed: [], codeClass: "5") { c.milterReplies.rejectCode = v } else {
                        fail(k, "\"\(v)\" is not a 5xx code with an optional enhanced code, such as \"550 5.7.1\"")
                    }
                }
            case "defer_text":
                if let v = text(k, value) { c.milterReplies.deferText = v }
            case "reject_text":
                if let v = text(k, value) { c.milterReplies.rejectText = v }
            case "header":
                if let v = string(k, value) {
                    if let m = MilterReplyConfig.HeaderMode(rawValue: v.lowercased()) { c.milterReplies.header = m } else {
                        fail(k, "\"\(v)\" is not none, delayed, whitelisted or all")
                    }
                }
            case "hostname":
                if let v = string(k, value) {
                    if v.contains(where: { $0.isWhitespace || $0 == ";" || $0 == "(" }) { fail(k, "must be one host name") }
                    else { c.milterReplies.hostname = v }
                }
            case "socket_mode":
                if let v = mode(k, value) { c.milterSocketMode = v }
            case "max_connections":
                if let v = integer(k, value, in: 1...1_000_000) { c.milterMaxConnections = v }
            default:
                unread(k)
            }
        }
    }

    mutating func readStore(_ t: TOMLTable, into c: inout GreylagConfiguration) {
        var backendName = "sqlite"
        // Connection settings of the server backends; unset keys keep each backend's default.
        var host: String?, port: Int?, socket: String?, user: String?, password: String?, database: String?
        var maxConnections: Int?
        var serverKeys: [String] = []
        var socketKey: String?
        for (key, value) in t {
            let k = "store.\(key)"
            guard known("store", key) else { continue }
            switch key {
            case "backend":
                if let v = string(k, value) {
                    switch v.lowercased() {
                    case "sqlite", "postgresql": backendName = v.lowercased()
                    case "mysql", "mariadb":
                        backendName = "mysql"
                        if !MariaDBBackend.isAvailable { fail(k, MariaDBBackend.NotBuiltError().description) }
                    default:
                        fail(k, "\"\(v)\" is not a supported backend: \"sqlite\", \"postgresql\" or \"mysql\"")
                    }
                }
            case "host":
                serverKeys.append(k)
                if let v = string(k, value) { host = v }
            case "port":
                serverKeys.append(k)
                if let v = integer(k, value, in: 1...65535) { port = v }
            case "socket":
                socketKey = k
                if let v = string(k, value) { socket = v }
            case "user":
                serverKeys.append(k)
                if let v = string(k, value) { user = v }
            case "password":
                serverKeys.append(k)
                if let v = string(k, value) { password = v }
            case "database":
                serverKeys.append(k)
                if let v = string(k, value) { database = v }
            case "max_connections":
                serverKeys.append(k)
                if let v = integer(k, value, in: 1...1000) { maxConnections = v }
            case "path":
                if let v = string(k, value) {
                    if v.isEmpty { fail(k, "must not be empty") } else { c.storePath = v }
                }
            case "synchronous":
                if let v = string(k, value) {
                    if let s = SQLiteStore.Synchronous(rawValue: v.lowercased()) { c.synchronous = s } else {
                        fail(k, "\"\(v)\" is not \"full\" or \"normal\"")
                    }
                }
            case "flush_interval":
                if let v = duration(k, value, unit: 1, in: 0...60) { c.flushInterval = v }
            case "expiry_interval":
                if let v = duration(k, value, unit: 1) {
                    if v > 0 { c.expiryInterval = v } else { fail(k, "must be more than 0") }
                }
            case "sizes_interval":
                if let v = duration(k, value, unit: 1) {
                    if v >= 0 { c.sizesInterval = v } else { fail(k, "must not be negative") }
                }
            case "expiry_batch":
                if let v = integer(k, value, in: 1...100_000) { c.expiryBatch = v }
            case "timeout":
                if let v = seconds(k, value, in: 0.001...3600) { c.storeTimeout = v }
            case "reopen_interval":
                if let v = duration(k, value, unit: 1, in: 1...86_400) { c.reopenInterval = v }
            case "failure_mode":
                if let v = string(k, value) {
                    if let m = GreylagConfiguration.FailureMode(rawValue: v.lowercased()) { c.failureMode = m } else {
                        fail(k, "\"\(v)\" is not \"pass\" or \"defer\"")
                    }
                }
            default:
                unread(k)
            }
        }
        switch backendName {
        case "postgresql":
            var pg = PostgresStore.Settings()
            if let host { pg.host = host }
            if let port { pg.port = port }
            if let user { pg.user = user }
            pg.password = password
            if let database { pg.database = database }
            if let maxConnections { pg.maxConnections = maxConnections }
            c.backend = .postgresql(pg)
            if let socketKey { fail(socketKey, "only used with backend = \"mysql\"") }
        case "mysql":
            var my = MariaDBSettings()
            if let host { my.host = host }
            if let port { my.port = port }
            my.socket = socket
            if let user { my.user = user }
            my.password = password
            if let database { my.database = database }
            if let maxConnections { my.maxConnections = maxConnections }
            c.backend = .mysql(my)
        default:
            for k in serverKeys + [socketKey].compactMap({ $0 }) {
                fail(k, "only used with backend = \"postgresql\" or \"mysql\"")
            }
        }
    }

    mutating func readServer(_ t: TOMLTable, into c: inout GreylagConfiguration) {
        for (key, value) in t {
            let k = "server.\(key)"
            guard known("server", key) else { continue }
            switch key {
            case "threads":
                if let v = integer(k, value, in: 0...256) { c.threads = v }
            default:
                unread(k)
            }
        }
    }

    mutating func readLog(_ t: TOMLTable, into c: inout GreylagConfiguration) {
        for (key, value) in t {
            let k = "log.\(key)"
            guard known("log", key) else { continue }
            switch key {
            case "level":
                if let v = string(k, value) {
                    if let level = Logger.Level(rawValue: v.lowercased()) { c.logLevel = level } else {
                        fail(k, "\"\(v)\" is not one of trace, debug, info, notice, warning, error, critical")
                    }
                }
            case "stats_interval":
                if let v = duration(k, value, unit: 1) {
                    if v >= 0 { c.statsInterval = v } else { fail(k, "must not be negative") }
                }
            case "destination":
                if let v = string(k, value) {
                    if let d = GreylagConfiguration.LogDestination(rawValue: v) { c.logDestination = d } else {
                        fail(k, "\"\(v.logEscaped)\" is not one of "
                             + GreylagConfiguration.LogDestination.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))
                    }
                }
            case "syslog_facility":
                if let v = string(k, value) {
                    if let f = SyslogFacility.named(v) { c.syslogFacility = f } else {
                        fail(k, "\"\(v.logEscaped)\" is not a facility: " + SyslogFacility.all.map(\.name).joined(separator: ", "))
                    }
                }
            case "syslog_socket":
                if let v = string(k, value) {
                    if !v.hasPrefix("/") {
                        fail(k, "\"\(v.logEscaped)\" is not an absolute path")
                    } else if case .failure(let problem) = SocketAddressBytes.parse(v) {
                        fail(k, "\"\(v.logEscaped)\" is not a unix socket path: \(problem.message)")
                    } else {
                        c.syslogSocket = v
                    }
                }
            default:
                unread(k)
            }
        }
    }

    // MARK: Values

    mutating func string(_ key: String, _ value: any TOMLValueConvertible) -> String? {
        if let s = value.string { return s }
        fail(key, "expected a string, found \(value.type)")
        return nil
    }

    /// A reply text: one line, placeholders known.
    mutating func text(_ key: String, _ value: any TOMLValueConvertible) -> String? {
        guard let s = string(key, value) else { return nil }
        if s.contains(where: { $0 == "\n" || $0 == "\r" }) {
            fail(key, "must be one line")
            return nil
        }
        var rest = Substring(s)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            let name = String(rest[rest.index(after: open)..<close])
            if !ReplyTemplate.placeholders.contains(name) {
                fail(key, "unknown placeholder {\(name)}; known: "
                     + ReplyTemplate.placeholders.sorted().map { "{\($0)}" }.joined(separator: ", "))
                return nil
            }
            rest = rest[rest.index(after: close)...]
        }
        return s
    }

    mutating func strings(_ key: String, _ value: any TOMLValueConvertible) -> [String]? {
        if let s = value.string { return [s] }
        if let array = value.array {
            var out: [String] = []
            for item in array {
                guard let s = item.string else {
                    fail(key, "expected strings, found \(item.type)")
                    return nil
                }
                out.append(s)
            }
            return out
        }
        fail(key, "expected a string or an array of strings, found \(value.type)")
        return nil
    }

    /// A list of listen addresses; each bad one is reported at its line.
    mutating func listeners(_ key: String, _ value: any TOMLValueConvertible, expected: String,
                            parse: (String) -> ListenAddress?) -> [ListenAddress]? {
        guard let list = strings(key, value) else { return nil }
        var out: [ListenAddress] = []
        for item in list {
            if let a = parse(item) { out.append(a) } else { fail(key, item: item, "\"\(item)\" is not \(expected)") }
        }
        return out
    }

    mutating func boolean(_ key: String, _ value: any TOMLValueConvertible) -> Bool? {
        if let b = value.bool { return b }
        fail(key, "expected true or false, found \(value.type)")
        return nil
    }

    mutating func integer(_ key: String, _ value: any TOMLValueConvertible, in range: ClosedRange<Int>) -> Int? {
        guard let i = value.int else {
            fail(key, "expected an integer, found \(value.type)")
            return nil
        }
        guard range.contains(i) else {
            fail(key, "\(i) is out of range \(range.lowerBound)...\(range.upperBound)")
            return nil
        }
        return i
    }

    /// A duration (as `duration(_:_:unit:)` reads it) within `range` seconds.
    mutating func duration(_ key: String, _ value: any TOMLValueConvertible, unit: Int64,
                           in range: ClosedRange<Int64>) -> Int64? {
        guard let v = duration(key, value, unit: unit) else { return nil }
        guard range.contains(v) else {
            fail(key, "must be from \(DurationText.format(range.lowerBound)) to \(DurationText.format(range.upperBound))")
            return nil
        }
        return v
    }

    /// A duration: a string such as "5m" or "2d", or an integer counted in `unit` seconds;
    /// at most `NumericLimits.maxDuration` (ten years) however it is written.
    mutating func duration(_ key: String, _ value: any TOMLValueConvertible, unit: Int64) -> Int64? {
        let limit = NumericLimits.maxDuration
        if let i = value.int {
            guard i >= 0 else {
                fail(key, "must not be negative")
                return nil
            }
            let (v, overflow) = Int64(i).multipliedReportingOverflow(by: unit)
            guard !overflow, v <= limit else {
                fail(key, "\(i) is out of range 0...\(limit / unit) (at most 10 years)")
                return nil
            }
            return v
        }
        if let s = value.string {
            switch DurationText.read(s, max: limit) {
            case .seconds(let v): return v
            case .tooLong: fail(key, "\"\(s)\" is out of range: at most 10 years (\(DurationText.format(limit)))")
            case .invalid: fail(key, "\"\(s)\" is not a duration such as \"300\", \"90s\", \"5m\", \"2h\", \"36d\"")
            }
            return nil
        }
        if let d = value.double {
            fail(key, d.isFinite ? "\(d) is a float; write whole seconds or a duration such as \"300\" or \"5m\""
                                  : "\(d) is not a duration")
            return nil
        }
        fail(key, "expected a duration, found \(value.type)")
        return nil
    }

    /// Seconds that may have a fraction (a float such as 0.5, an integer or a
    /// duration string), finite and within `range`; 0 also when `zeroIsOff`.
    mutating func seconds(_ key: String, _ value: any TOMLValueConvertible, in range: ClosedRange<Double>,
                          zeroIsOff: Bool = false) -> Double? {
        let v: Double
        if let d = value.double {
            guard d.isFinite else {
                fail(key, "\(d) is not a number of seconds")
                return nil
            }
            v = d
        } else if value.int != nil || value.string != nil {
            guard let s = duration(key, value, unit: 1) else { return nil }
            v = Double(s)
        } else {
            fail(key, "expected a number of seconds or a duration, found \(value.type)")
            return nil
        }
        if zeroIsOff && v == 0 { return 0 }
        guard range.contains(v) else {
            fail(key, "\(Self.number(v)) is out of range \(Self.number(range.lowerBound))...\(Self.number(range.upperBound)) seconds"
                 + (zeroIsOff ? " (or 0 for off)" : ""))
            return nil
        }
        return v
    }

    /// `5`, `0.5`, `1e+308`: a double as the configuration would write it.
    static func number(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : "\(v)"
    }

    mutating func mode(_ key: String, _ value: any TOMLValueConvertible) -> Int? {
        if let s = value.string, let m = Int(s, radix: 8), (0...0o777).contains(m) { return m }
        fail(key, "expected an octal mode string such as \"0660\"")
        return nil
    }

    /// An action keyword or a reply code of the given class, with an optional enhanced code.
    static func isAction(_ v: String, allowed: Set<String>, codeClass: Character) -> Bool {
        if allowed.contains(v) { return true }
        let parts = v.split(separator: " ")
        guard (1...2).contains(parts.count), parts[0].count == 3, parts[0].first == codeClass,
              parts[0].allSatisfy(\.isNumber) else { return false }
        if parts.count == 2 {
            let e = parts[1].split(separator: ".", omittingEmptySubsequences: false)
            guard e.count == 3, e[0] == String(codeClass),
                  e.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) }) else { return false }
        }
        return true
    }
}
