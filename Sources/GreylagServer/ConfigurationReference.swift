/// One key of the configuration file, as the reference documents it.
///
/// The registry below is the single source of the keys: the loader refuses
/// every key it does not list, and `greylag reference` writes the Markdown
/// tables of docs/configuration.md, the greylag.toml(5) man page and the
/// commented /etc/greylag/greylag.toml from it.
public struct ConfigKey: Sendable {
    /// The key as written in its table (`delay`).
    public var name: String
    /// The default as a TOML value whose line, uncommented, changes nothing
    /// (the conffile's `# key = DEFAULT` line); nil when the default is not
    /// one value (derived from another key or the host, or only meaningful
    /// with another setting): the conffile then shows `example` instead.
    public var defaultValue: String?
    /// The default as shown to a reader (Markdown inline).
    public var shownDefault: String
    /// What the key does (Markdown inline: `code`, links).
    public var meaning: String
    /// A TOML value the loader accepts for this key.
    public var example: String
    /// The tables of a section that take this key; nil: all of them.
    public var only: [String]?
    /// Lines of the same table the example needs (`backend = "postgresql"`).
    public var exampleSiblings: [String] = []
    /// TOML tables the example needs elsewhere in the file.
    public var exampleTables: String = ""
    /// Files the example names (relative to the configuration's directory) and their text.
    public var exampleFiles: [String: String] = [:]

    /// A key whose default is the TOML value `defaultValue`.
    public static func key(_ name: String, _ defaultValue: String, _ meaning: String, example: String,
                           only: [String]? = nil, needs: [String] = [], files: [String: String] = [:],
                           tables: String = "") -> ConfigKey {
        ConfigKey(name: name, defaultValue: defaultValue, shownDefault: "`\(defaultValue)`", meaning: meaning,
                  example: example, only: only, exampleSiblings: needs, exampleTables: tables, exampleFiles: files)
    }

    /// A key whose default is described in words (`shown`, Markdown), not one value to write.
    public static func key(_ name: String, shown: String, _ meaning: String, example: String,
                           needs: [String] = [], files: [String: String] = [:], tables: String = "") -> ConfigKey {
        ConfigKey(name: name, defaultValue: nil, shownDefault: shown, meaning: meaning, example: example,
                  only: nil, exampleSiblings: needs, exampleTables: tables, exampleFiles: files)
    }
}

/// A TOML table of the configuration as a reader sees it: `[greylist]`,
/// `[lists.NAME]` (named tables) or `[[rules]]` (an array of tables).
public struct ConfigTable: Sendable, Hashable {
    public enum Form: Sendable, Hashable {
        /// `[name]`
        case table
        /// `[name.NAME]`: any number of tables, each named by the user.
        case named
        /// `[[name]]`: an array of tables.
        case array
    }

    public var name: String
    public var form: Form

    public init(_ name: String, _ form: Form = .table) {
        self.name = name
        self.form = form
    }

    /// `[greylist]`, `[lists.NAME]`, `[[rules]]`.
    public var header: String {
        switch form {
        case .table: return "[\(name)]"
        case .named: return "[\(name).NAME]"
        case .array: return "[[\(name)]]"
        }
    }

    /// How keys are named in messages and in `--set`: `greylist`, `lists.NAME`, `rules`.
    public var path: String { form == .named ? "\(name).NAME" : name }
}

/// One section of the reference: one or more tables that take the same keys
/// (the list tables share theirs), one Markdown table and one man page subsection.
public struct ConfigSection: Sendable {
    /// How the loader words an unknown key in these tables (texts kept as
    /// they were before the registry, which tests and users rely on).
    public enum UnknownKeyText: Sendable {
        /// `unknown key`
        case bare
        /// `unknown key; expected one of a, b, c`
        case oneOf
        /// `unknown key; expected a, b or c`
        case list
    }

    /// The name `greylag reference --section` takes.
    public var id: String
    /// The heading (Markdown inline).
    public var title: String
    public var tables: [ConfigTable]
    /// A short introduction (Markdown inline).
    public var intro: String
    public var keys: [ConfigKey]
    public var unknownKey: UnknownKeyText = .bare

    /// The keys `table` takes, in order.
    public func keys(of table: ConfigTable) -> [ConfigKey] {
        keys.filter { $0.only == nil || $0.only!.contains(table.name) }
    }
}

/// The registry of every section and key the configuration loader accepts.
public enum ConfigurationReference {
    /// The sections in the order the reference presents them.
    public static let sections: [ConfigSection] = [
        greylist, server, policy, milter, greylistd, store, lists, rules, exemptions, spf, dnslists, selective, admin,
        reload, log, http, dns,
    ]

    /// The section with `id`, or the one holding the table named `name`
    /// (`whitelist`, `lists`, `lists.NAME`).
    public static func section(named name: String) -> ConfigSection? {
        if let s = sections.first(where: { $0.id == name }) { return s }
        return sections.first { $0.tables.contains { $0.name == name || $0.path == name } }
    }

    /// The table a top-level TOML key opens, if any.
    public static func table(topLevel name: String) -> (ConfigSection, ConfigTable)? {
        for s in sections {
            if let t = s.tables.first(where: { $0.name == name }) { return (s, t) }
        }
        return nil
    }

    /// The table of `path` as the loader names it: `greylist`, or
    /// `lists.partners` for a named table.
    static func table(path: String) -> (ConfigSection, ConfigTable)? {
        if let found = table(topLevel: path), found.1.form != .named { return found }
        let parts = path.split(separator: ".", maxSplits: 1)
        if parts.count == 2, let found = table(topLevel: String(parts[0])), found.1.form == .named { return found }
        return nil
    }

    /// Every table header, for the message about an unknown section:
    /// `[greylist], [server], ... or [http]`.
    public static var tableList: String {
        let all = sections.flatMap(\.tables).map(\.header)
        return all.dropLast().joined(separator: ", ") + " or " + all.last!
    }

    /// nil when the table at `path` takes `key`; else the loader's message.
    public static func unknownKeyMessage(table path: String, key: String) -> String? {
        guard let found = table(path: path) else { return "unknown key" }
        let (section, table) = found
        let names = section.keys(of: table).map(\.name)
        if names.contains(key) { return nil }
        switch section.unknownKey {
        case .bare: return "unknown key"
        case .oneOf: return "unknown key; expected one of " + names.joined(separator: ", ")
        case .list: return "unknown key; expected "
            + (names.count < 2 ? names.joined() : names.dropLast().joined(separator: ", ") + " or " + names.last!)
        }
    }

    // MARK: The sections

    static let greylist = ConfigSection(
        id: "greylist", title: "`[greylist]`", tables: [ConfigTable("greylist")],
        intro: "How long a new triplet (client network, sender, recipient) is deferred, and how long greylag "
            + "remembers it. The timing names of the tools greylag replaces are accepted as aliases; setting an "
            + "alias and its canonical name together is an error.",
        keys: [
            .key("delay", "\"5m\"", "a new triplet is deferred until this long after it was first seen",
                 example: "\"10m\""),
            .key("retry_window", "\"2d\"",
                 "a deferred triplet that does not come back within this (from its first attempt) is forgotten; "
                 + "must be longer than `delay`", example: "\"3d\""),
            .key("pass_ttl", "\"36d\"", "a passed triplet stays passed this long after its last use",
                 example: "\"60d\""),
            .key("client_autowhitelist", "5",
                 "a client network that passed this many distinct triplets skips greylisting; `0` turns it off; "
                 + "`0` to `1000000`", example: "10"),
            .key("ipv4_prefix", "24",
                 "IPv4 clients are keyed by this network (`0` to `32`); `32` keys by exact address", example: "32"),
            .key("ipv6_prefix", "64",
                 "IPv6 clients are keyed by this network (`0` to `128`); `128` keys by exact address", example: "48"),
            .key("normalize_sender", "true", "BATV, `+ext` and VERP normalisation of senders", example: "false"),
            .key("dry_run", "false", "pass everything, log what would have been deferred", example: "true"),
            .key("dns_deadline", "\"2s\"",
                 "all the DNS checks of one decision (SPF, `[[dnslists]]`, reverse names) end within this; a check "
                 + "that has not answered is skipped, logged (`skipped=`) and counted, and the decision goes on "
                 + "without it. Seconds with a fraction (`0.5`) or a duration, `0.01` to `60`, and at most half of "
                 + "`store.timeout` when DNS checks are configured", example: "0.5"),
            .key("block_expire", shown: "as `delay`",
                 "alias of `delay` (the qmail greylisting setups): a plain number counts minutes, a string such as "
                 + "`\"30m\"` is a duration", example: "10"),
            .key("record_expire", shown: "as `retry_window`",
                 "alias of `retry_window` (the qmail greylisting setups): a plain number counts minutes",
                 example: "4320"),
            .key("record_expire_good", shown: "as `pass_ttl`",
                 "alias of `pass_ttl` (the qmail greylisting setups): a plain number counts days", example: "30"),
            .key("greylist", shown: "as `delay`",
                 "alias of `delay` (milter-greylist): a plain number counts seconds", example: "\"15m\""),
            .key("autowhite", shown: "as `pass_ttl`",
                 "alias of `pass_ttl` (milter-greylist): a plain number counts seconds", example: "\"3d\""),
        ])

    static let server = ConfigSection(
        id: "server", title: "`[server]`", tables: [ConfigTable("server")],
        intro: "The threads that serve the MTAs' connections.",
        keys: [
            .key("threads", "0",
                 "event-loop threads that read requests and write answers for the policy and milter listeners; "
                 + "`0` starts one with the SQLite store at `synchronous = \"normal\"` (its writer commits on "
                 + "that thread, so no decision is handed between threads: a fifth less CPU per decision, and one "
                 + "thread answers well over 10,000 decisions a second) and one per core otherwise; `0` to `256`. "
                 + "The store has one writer whatever the number",
                 example: "4"),
        ])

    static let policy = ConfigSection(
        id: "policy", title: "`[policy]`", tables: [ConfigTable("policy")],
        intro: "The Postfix policy delegation listeners (also asked by greylag's qmail helpers and its OpenSMTPD "
            + "filter) and the answers they give. Texts may use the placeholders `{seconds}`, `{left}`, `{hms}`, "
            + "`{delayed}`, `{client}`, `{network}`, `{sender}` and `{recipient}`.",
        keys: [
            .key("listen", "[\"127.0.0.1:10023\"]",
                 "addresses: `HOST:PORT`, `[IPV6]:PORT`, `*:PORT` (all addresses), `unix:/path` or `/path`",
                 example: "[\"127.0.0.1:10023\", \"unix:/var/spool/postfix/private/greylag\"]"),
            .key("helper_listen", shown: "`[\"unix:/run/greylag/policy.sock\"]`",
                 "policy listeners for greylag's qmail helpers, in the same syntax: only these take the helpers' "
                 + "`greylag_*` attributes (see qmail); an address may not be in both lists. The default is left "
                 + "out when `listen` has it, and skipped with a notice when it cannot be served; `[]` for none",
                 example: "[\"unix:/run/greylag/policy.sock\"]"),
            .key("helper_socket_mode", "\"0660\"", "permissions of the helpers' unix sockets", example: "\"0600\""),
            .key("helper_socket_group", shown: "`\"nofiles\"` when the host has that group, else `\"\"`",
                 "group of the helpers' unix sockets (qmail-smtpd runs as `qmaild:nofiles`); `\"\"` keeps "
                 + "greylag's own; a group the host lacks is an error", example: "\"\""),
            .key("defer_action", "\"DEFER_IF_PERMIT\"",
                 "`DEFER_IF_PERMIT`, `DEFER`, `DEFER_IF_REJECT`, or a code such as `\"450 4.7.1\"`",
                 example: "\"450 4.7.1\""),
            .key("defer_text", "\"Greylisted, please try again in {seconds} seconds\"", "text after the defer action",
                 example: "\"Greylisted for {left}, see https://example.net/greylisting\""),
            .key("reject_action", "\"REJECT\"",
                 "`REJECT` or a code such as `\"550 5.7.1\"` (used by the `[blacklist]`)", example: "\"554 5.7.1\""),
            .key("reject_text", "\"Refused by greylag policy\"", "text after the reject action",
                 example: "\"Not accepted here\""),
            .key("add_header", "true", "add `X-Greylist` on the first pass after a delay", example: "false"),
            .key("null_sender_at_data", "false",
                 "Postfix asks at DATA too (`check_policy_service` in `smtpd_data_restrictions` as well as in "
                 + "`smtpd_recipient_restrictions`): mail from the null sender `<>` then passes at RCPT and is "
                 + "greylisted at DATA, so another MTA's call-out verification (RCPT, then QUIT) is never deferred. "
                 + "Set it only when main.cf asks at DATA, or bounces pass ungreylisted (docs/sender-kinds.md)",
                 example: "true"),
            .key("hostname", shown: "`\"\"`: this host's name", "host name in the header; empty means this machine's name",
                 example: "\"mx.example.net\""),
            .key("idle_timeout", "\"10m\"",
                 "close a policy connection idle this long (Postfix closes its own after 300 s); more than 0",
                 example: "\"5m\""),
            .key("socket_mode", "\"0666\"",
                 "permissions of the `listen` unix sockets: an octal string, `\"0\"` to `\"0777\"`. greylag makes a "
                 + "socket's missing directories, mode 0755 (for every unix listener)", example: "\"0660\""),
            .key("max_connections", "2000",
                 "open policy connections at most (`1` to `1000000`); one more is closed at once (the MTA applies "
                 + "its default action), counted in `greylag_connections_refused_total` and logged once per 10 s: "
                 + "`policy connection from ... refused: 2000 connections are open, the limit set by "
                 + "policy.max_connections`",
                 example: "500"),
        ])

    static let milter = ConfigSection(
        id: "milter", title: "`[milter]`", tables: [ConfigTable("milter")],
        intro: "The milter listeners (Sendmail, Postfix `smtpd_milters`) and the replies they give.",
        keys: [
            .key("listen", "[\"inet:10029@127.0.0.1\"]",
                 "milter listeners: `inet:PORT@HOST`, `inet:PORT` (all IPv4), `inet6:PORT@HOST`, `inet6:PORT`, "
                 + "`unix:/path`, `local:/path`, a bare path, or `HOST:PORT`; `[]` turns the milter off",
                 example: "[\"unix:/run/greylag/milter.sock\"]"),
            .key("defer_code", "\"451 4.7.1\"", "SMTP code (4xx) and enhanced code for a deferred recipient",
                 example: "\"450 4.7.1\""),
            .key("defer_text", "\"Greylisting in action, please come back in {hms}\"",
                 "text after it; placeholders as for `[policy]`", example: "\"Greylisted for {left}\""),
            .key("reject_code", "\"550 5.7.1\"", "SMTP code (5xx) for a blacklisted recipient",
                 example: "\"554 5.7.1\""),
            .key("reject_text", "\"Refused by greylag policy\"", "text after it", example: "\"Not accepted here\""),
            .key("header", "\"delayed\"",
                 "which `X-Greylist` header is added: `none`, `delayed`, `whitelisted`, `all`", example: "\"all\""),
            .key("hostname", shown: "this host's name", "server name in the header when the MTA sends no `j` macro",
                 example: "\"mx.example.net\""),
            .key("socket_mode", "\"0666\"",
                 "permissions of milter unix sockets; the MTA's user must be able to connect (Postfix's `smtpd` "
                 + "runs as `postfix`)", example: "\"0660\""),
            .key("max_connections", "2000", "open milter connections at most (`1` to `1000000`), as for `[policy]`",
                 example: "500"),
        ])

    static let greylistd = ConfigSection(
        id: "greylistd", title: "`[greylistd]`", tables: [ConfigTable("greylistd")],
        intro: "A socket that speaks greylistd's protocol, for MTA configurations written for greylistd "
            + "(Debian's Exim ACLs).",
        keys: [
            .key("listen", "[]",
                 "listeners that speak greylistd's protocol (see \"greylistd's socket\"): `unix:/var/run/greylistd/socket`, also `HOST:PORT`; must not be "
                 + "a policy listener. Restart to change", example: "[\"unix:/var/run/greylistd/socket\"]"),
            .key("socket_mode", "\"0660\"",
                 "permissions of its unix sockets: the MTA's group must be able to connect. Restart to change",
                 example: "\"0666\""),
        ])

    static let pg = ["backend = \"postgresql\""]

    static let store = ConfigSection(
        id: "store", title: "`[store]`", tables: [ConfigTable("store")],
        intro: "Where greylag keeps its triplets: an SQLite file, or a PostgreSQL or MySQL/MariaDB server "
            + "shared by several MX hosts.",
        keys: [
            .key("backend", "\"sqlite\"",
                 "`sqlite` (embedded file), `postgresql` or `mysql` (MySQL or MariaDB; `mariadb` is the same; "
                 + "needs a build with the MariaDB trait): shared by several MX hosts", example: "\"postgresql\""),
            .key("path", "\"greylag.db\"",
                 "SQLite file; production: `/var/lib/greylag/greylag.db` (with a server backend, the admin socket "
                 + "is still named after it)", example: "\"/var/lib/greylag/greylag.db\""),
            .key("host", shown: "`\"127.0.0.1\"`", "the database server's host name or address (`postgresql` and `mysql`)",
                 example: "\"db.example.net\"", needs: pg),
            .key("port", shown: "`5432` (`3306` for mysql)", "the database server's port, `1` to `65535` (`postgresql` and `mysql`)",
                 example: "5433", needs: pg),
            .key("socket", shown: "none", "a unix socket instead of `host` and `port` (`mysql` only)",
                 example: "\"/run/mysqld/mysqld.sock\"", needs: ["backend = \"mysql\""]),
            .key("user", shown: "`\"greylag\"`", "the login (`postgresql` and `mysql`)", example: "\"mail\"", needs: pg),
            .key("password", shown: "none", "the login's password (`postgresql` and `mysql`)", example: "\"secret\"", needs: pg),
            .key("database", shown: "`\"greylag\"`",
                 "the database, created beforehand; greylag creates and migrates its tables (`postgresql` and `mysql`)",
                 example: "\"greylist\"", needs: pg),
            .key("max_connections", shown: "`16`",
                 "connection pool size, `1` to `1000` (`postgresql` and `mysql`; for `mysql` also the threads that "
                 + "wait on them)", example: "32", needs: pg),
            .key("synchronous", "\"normal\"",
                 "`normal`: nothing an MTA was told is lost when greylag crashes or is killed; a power loss or "
                 + "kernel crash can lose the decisions of the last fraction of a second (the log is synced at every "
                 + "checkpoint, 5 times a second). `full`: every commit waits for an fsync, so a power loss loses "
                 + "nothing acknowledged either, at about three quarters of the rate with 16 connections (see "
                 + "`BENCHMARKS.md`)",
                 example: "\"full\""),
            .key("flush_interval", "\"5s\"",
                 "SQLite: how long the counts and last-seen times of retries that change no state (a retry still "
                 + "blocked, a known triplet passing again, a network's refresh) wait in memory before they are "
                 + "written in bulk; every state an MTA was told (first sighting, block expiry, pass) is still "
                 + "written before the answer. After a crash those counts and times lag by at most this. `0` "
                 + "writes them with every decision; at most `1m`", example: "\"2s\""),
            .key("expiry_interval", "\"1m\"", "how often expired records are removed; more than 0",
                 example: "\"5m\""),
            .key("expiry_batch", "500",
                 "records removed per transaction, so expiry never holds up decisions; `1` to `100000`",
                 example: "1000"),
            .key("sizes_interval", "\"10m\"",
                 "how often the records are counted for `/metrics` (`greylag_records`, ...), the first time a "
                 + "minute after start; a count reads the whole store (about 5 s of CPU at 10 million records on "
                 + "SQLite); `0` never", example: "\"1h\""),
            .key("timeout", "\"5s\"",
                 "a decision waits this long for the store, then `failure_mode` applies; also the limit of every "
                 + "database statement (queueing for a connection included), except PostgreSQL's schema check at "
                 + "start, which may take 30 s (greylag serves with `failure_mode` meanwhile). A duration or a "
                 + "number of seconds with a fraction (`0.5`), from `0.001` to `3600`", example: "0.5"),
            .key("failure_mode", "\"pass\"",
                 "`pass` (let the mail through) or `defer` (temporary error) when the store fails",
                 example: "\"defer\""),
            .key("reopen_interval", "\"30s\"",
                 "how often greylag tries again to open a store it could not open, after quicker first tries from "
                 + "1 s on (see \"Recovering a broken store\"); at most `1d`", example: "\"1m\""),
        ])

    /// The tables that take list rules.
    static let listTables = ["whitelist", "blacklist", "scope", "dry_run"]

    static let lists = ConfigSection(
        id: "lists", title: "Lists: `[whitelist]`, `[blacklist]`, `[scope]`, `[dry_run]`, `[lists.NAME]`",
        tables: listTables.map { ConfigTable($0) } + [ConfigTable("lists", .named)],
        intro: "Each of these tables takes the same rule keys. A whitelist rule passes the mail without "
            + "greylisting; a blacklist rule refuses it with `policy.reject_action` and `policy.reject_text`; a "
            + "`[scope]` rule opts a recipient out of greylisting (or, with `mode = \"opt-in\"`, in); a `[dry_run]` "
            + "rule turns a defer for that mail into a logged pass; a `[lists.NAME]` table is a named set of rules "
            + "the others take with `lists`. Names: `example.com` (and every name under it), `.example.com` (only "
            + "names under it), `=mx.example.com` (that name only), `'/regex/'`. Addresses: `user@example.com`, "
            + "`user@`, `@example.com`, a domain as for names, `<>` (the null sender), `'/regex/'`.",
        keys: [
            .key("clients", "[]",
                 "the client address: `192.0.2.7`, `192.0.2.0/24`, `2001:db8::/32`, `[2001:db8::]/48`, `192.0.2` "
                 + "(= /24)", example: "[\"192.0.2.0/24\", \"2001:db8::/32\"]"),
            .key("client_names", "[]", "the client's verified host name: names",
                 example: "[\"example.com\", \".example.net\", \"=mx.example.org\", '/^mx\\d+\\.example\\.com$/']"),
            .key("helo_names", "[]", "the HELO/EHLO name: names", example: "[\"mail.example.com\"]"),
            .key("senders", "[]", "the envelope sender: addresses",
                 example: "[\"user@example.com\", \"user@\", \"<>\"]"),
            .key("sender_domains", "[]", "the sender's domain: names", example: "[\"example.com\"]"),
            .key("recipients", "[]", "the envelope recipient: addresses", example: "[\"postmaster@\", \"abuse@\"]"),
            .key("recipient_domains", "[]", "the recipient's domain: names", example: "[\"trial.example.net\"]"),
            .key("files", "[]",
                 "list files in greylag's format, any of the fields above: `FIELD VALUE` per line, e.g. "
                 + "`sender_domain example.com`, `client 192.0.2.0/24`; relative paths are taken from the "
                 + "configuration file's directory", example: "[\"partners.list\"]",
                 files: ["partners.list": "# partners\nsender_domain partner.example\nclient 198.51.100.0/24\n"]),
            .key("client_files", "[]",
                 "client address or name: postgrey's `whitelist_clients` format, read as it is",
                 example: "[\"whitelist_clients\"]", files: ["whitelist_clients": "example.com\n192.0.2\n"]),
            .key("recipient_files", "[]", "the recipient: postgrey's `whitelist_recipients` format, read as it is",
                 example: "[\"whitelist_recipients\"]", files: ["whitelist_recipients": "postmaster@\n"]),
            .key("lists", "[]", "names of `[lists.NAME]` tables, whose rules are added here (not in `[lists.NAME]`)",
                 example: "[\"partners\"]", only: listTables,
                 tables: "[lists.partners]\nsender_domains = [\"partner.example\"]\n"),
            .key("builtin", "true",
                 "`[whitelist]` only: the built-in list of mail services that retry from pools of hosts (matched "
                 + "by verified client host name); `false` turns it off", example: "false", only: ["whitelist"]),
            .key("mode", "\"opt-out\"",
                 "`[scope]` only: `opt-out` greylists every recipient except those the rules match; `opt-in` only "
                 + "those", example: "\"opt-in\"", only: ["scope"]),
        ],
        unknownKey: .oneOf)

    /// A selector most examples of `[[rules]]` keys need (a rule without one is refused).
    static let ruleSelector = "senders = [\"user@example.com\"]"
    /// The same for the example of `senders` itself.
    static let otherSelector = "recipients = [\"postmaster@\"]"

    static let rules = ConfigSection(
        id: "rules", title: "`[[rules]]`: rules with their own timings and replies", tables: [ConfigTable("rules", .array)],
        intro: "Checked in file order after the exemptions and before the list tables; the first rule whose "
            + "selectors all match decides: it whitelists, blacklists with its own reply, or greylists with its "
            + "own timings and reply (see [rules.md](rules.md)). Every selector given must match, any value of one "
            + "will do, and a rule needs at least one; values are written as in the list tables.",
        keys: [
            .key("clients", shown: "none", "selector: the client address or network", example: "[\"192.0.2.0/24\"]", needs: [ruleSelector]),
            .key("client_names", shown: "none", "selector: the client's verified host name",
                 example: "[\".example.net\"]", needs: [ruleSelector]),
            .key("helo_names", shown: "none", "selector: the HELO/EHLO name", example: "['/^[0-9.]+$/']", needs: [ruleSelector]),
            .key("senders", shown: "none", "selector: the envelope sender", example: "[\"<>\"]", needs: [otherSelector]),
            .key("sender_domains", shown: "none", "selector: the sender's domain", example: "[\"example.com\"]", needs: [ruleSelector]),
            .key("recipients", shown: "none", "selector: the envelope recipient",
                 example: "[\"list@example.net\"]", needs: [ruleSelector]),
            .key("recipient_domains", shown: "none", "selector: the recipient's domain",
                 example: "[\"example.net\"]", needs: [ruleSelector]),
            .key("lists", shown: "none", "selector: names of `[lists.NAME]` tables, any of their entries",
                 example: "[\"partners\"]", needs: [ruleSelector],
                 tables: "[lists.partners]\nsender_domains = [\"partner.example\"]\n"),
            .key("files", shown: "none", "selector: greylag list files (`FIELD VALUE` per line), any of their entries",
                 example: "[\"partners.list\"]", needs: [ruleSelector], files: ["partners.list": "sender_domain partner.example\n"]),
            .key("client_files", shown: "none", "selector: postgrey's `whitelist_clients` format",
                 example: "[\"whitelist_clients\"]", needs: [ruleSelector], files: ["whitelist_clients": "example.com\n"]),
            .key("recipient_files", shown: "none", "selector: postgrey's `whitelist_recipients` format",
                 example: "[\"whitelist_recipients\"]", needs: [ruleSelector], files: ["whitelist_recipients": "postmaster@\n"]),
            .key("action", shown: "`\"greylist\"`", "`greylist`, `whitelist` or `blacklist`",
                 example: "\"whitelist\"", needs: [ruleSelector]),
            .key("delay", shown: "`[greylist] delay`", "greylist only: how long a new triplet is deferred",
                 example: "\"1h\"", needs: [ruleSelector]),
            .key("retry_window", shown: "`[greylist] retry_window`",
                 "greylist only: how long a deferred triplet is remembered; longer than the rule's delay",
                 example: "\"3d\"", needs: [ruleSelector]),
            .key("pass_ttl", shown: "`[greylist] pass_ttl`",
                 "greylist only: how long a passed triplet stays passed after its last use (milter-greylist's "
                 + "`autowhite`)", example: "\"7d\"", needs: [ruleSelector]),
            .key("defer_code", shown: "the protocol's", "greylist only: a 4xx code with an optional enhanced code, "
                 + "for the milter, the policy action and the helpers", example: "\"450 4.7.1\"", needs: [ruleSelector]),
            .key("defer_text", shown: "the protocol's",
                 "greylist only: the deferral's text; placeholders as in `[policy] defer_text`",
                 example: "\"Come back in {left}\"", needs: [ruleSelector]),
            .key("reject_code", shown: "the protocol's", "blacklist only: a 5xx code with an optional enhanced code",
                 example: "\"554 5.7.1\"", needs: [ruleSelector, "action = \"blacklist\""]),
            .key("reject_text", shown: "the protocol's", "blacklist only: the refusal's text",
                 example: "\"No mail from {client}\"", needs: [ruleSelector, "action = \"blacklist\""]),
        ],
        unknownKey: .oneOf)

    static let exemptions = ConfigSection(
        id: "exemptions", title: "`[exemptions]`", tables: [ConfigTable("exemptions")],
        intro: "Clients that are never greylisted.",
        keys: [
            .key("authenticated", "true", "clients that authenticated (SMTP AUTH) are never greylisted",
                 example: "false"),
            .key("trusted_networks", "[\"127.0.0.0/8\", \"::1\"]",
                 "client networks never greylisted, like Postfix `mynetworks`",
                 example: "[\"127.0.0.0/8\", \"::1\", \"192.0.2.0/24\"]"),
        ],
        unknownKey: .list)

    static let spf = ConfigSection(
        id: "spf", title: "`[spf]`: SPF keying", tables: [ConfigTable("spf")],
        intro: "When the sender's domain authorises the client by SPF (`pass`), the triplet is keyed by that "
            + "authorisation instead of the client network, so a retry from another host of the same pool continues "
            + "the same triplet (see [selective.md](selective.md)).",
        keys: [
            .key("keying", "\"off\"",
                 "`off`: triplets keyed by the client network; `domain`: by the sender domain that authorised the "
                 + "client (`spf:example.com`); `mechanism`: by that domain and the SPF mechanism that matched",
                 example: "\"domain\""),
        ],
        unknownKey: .list)

    /// The zone most examples of `[[dnslists]]` keys need.
    static let dnslistZone = "zone = \"list.dnswl.example\""

    static let dnslists = ConfigSection(
        id: "dnslists", title: "`[[dnslists]]`: DNS allow- and block-lists", tables: [ConfigTable("dnslists", .array)],
        intro: "Each entry is one DNS list zone. A zone that lists the client (its reversed address), the sender's "
            + "domain or the HELO name adds its weight to the client's score: at or below "
            + "`selective.allow_threshold` the mail passes without greylisting, in selective mode at or above "
            + "`selective.greylist_threshold` it is greylisted, at or above `selective.reject_threshold` refused. "
            + "Every decision names the zones that listed it (see [selective.md](selective.md)).",
        keys: [
            .key("zone", shown: "none (required)", "the list's DNS zone", example: "\"list.dnswl.example\""),
            .key("kind", "\"client\"",
                 "`client`: the reversed client address (IPv4 octets, IPv6 nibbles); `sender`: the sender's domain; "
                 + "`helo`: the HELO name", example: "\"sender\"", needs: [dnslistZone, "weight = 3"]),
            .key("weight", "1", "added to the score when the zone lists the query; below zero for an allow-list; "
                 + "`-1000` to `1000`", example: "-5", needs: [dnslistZone]),
            .key("codes", shown: "any 127.0.0.0/8 answer except 127.255.255.0/24",
                 "the answers that count: patterns of four octets, each a number, a range `[2..11]` or a list "
                 + "`[1;3;5..7]` (postscreen's syntax)", example: "[\"127.0.0.[2..11]\", \"127.0.1.2\"]",
                 needs: [dnslistZone]),
            .key("mask", shown: "none",
                 "only answers whose last octet has one of these bits count (`1` to `255`); with `codes`, both must hold",
                 example: "12", needs: [dnslistZone, "weight = -5"]),
        ],
        unknownKey: .oneOf)

    static let selective = ConfigSection(
        id: "selective", title: "`[selective]`: greylist the suspicious", tables: [ConfigTable("selective")],
        intro: "Selective mode greylists only clients that something makes suspicious: a DNS-list score at or above "
            + "`greylist_threshold`, no forward-confirmed reverse name, or a reverse name that looks dynamic. The "
            + "thresholds `allow_threshold` and `reject_threshold` apply in every mode (see "
            + "[selective.md](selective.md)).",
        keys: [
            .key("enabled", "false", "greylist only suspicious clients; the others pass (`not_suspicious`)",
                 example: "true"),
            .key("greylist_threshold", "1", "a DNS-list score at or above this makes a client suspicious",
                 example: "3"),
            .key("allow_threshold", "-1",
                 "a score at or below this, with at least one allow-list listing, passes without greylisting "
                 + "(`dns_allowlisted`); below `greylist_threshold`", example: "-5"),
            .key("reject_threshold", shown: "none: never rejects",
                 "a score at or above this refuses the mail (`dns_rejected`); above `allow_threshold`",
                 example: "10"),
            .key("reject_code", shown: "the protocol's", "the refusal's 5xx code with an optional enhanced code",
                 example: "\"554 5.7.1\""),
            .key("reject_text", shown: "the protocol's",
                 "the refusal's text; placeholders as in `[policy] defer_text`",
                 example: "\"{client} is listed in DNS block lists\""),
            .key("suspect_unconfirmed_reverse", "true",
                 "a client without a forward-confirmed reverse name (its PTR name does not resolve back to it, or "
                 + "it has none) is suspicious", example: "false"),
            .key("suspect_dynamic_names", "true",
                 "a client whose reverse name matches a dynamic-name pattern is suspicious", example: "false"),
            .key("dynamic_names_file", shown: "the shipped set",
                 "a file of dynamic-name patterns (one regular expression a line) that replaces the shipped set; a "
                 + "relative path is taken from the configuration file's directory", example: "\"dynamic-names\"",
                 files: ["dynamic-names": "# our providers' pools\n\\.dyn\\.example\\.net$\n"]),
        ],
        unknownKey: .list)

    static let admin = ConfigSection(
        id: "admin", title: "`[admin]`", tables: [ConfigTable("admin")],
        intro: "The unix socket the admin commands (`greylag whitelist`, `greylag stats`, ...) talk to.",
        keys: [
            .key("socket", shown: "the store path + `.sock`",
                 "unix socket for the admin commands (shorter than 100 bytes); `\"none\"` turns it off",
                 example: "\"/run/greylag/admin.sock\""),
            .key("socket_mode", "\"0600\"", "its permissions: who may run admin commands (`\"0\"` to `\"0777\"`)",
                 example: "\"0660\""),
        ],
        unknownKey: .list)

    static let reload = ConfigSection(
        id: "reload", title: "`[reload]`", tables: [ConfigTable("reload")],
        intro: "The configuration and every list file it names are reloaded on `SIGHUP`, on `greylag reload`, "
            + "and when one of the files changes on disk.",
        keys: [
            .key("watch_interval", "\"2s\"",
                 "how often the configuration and list files are checked for changes: `0.1` to `86400` seconds "
                 + "(a fraction such as `0.5` or a duration); `0` turns watching off", example: "0.5"),
        ],
        unknownKey: .list)

    static let log = ConfigSection(
        id: "log", title: "`[log]`", tables: [ConfigTable("log")],
        intro: "What greylag logs.",
        keys: [
            .key("level", "\"info\"",
                 "`trace`, `debug`, `info` (one line per decision), `notice`, `warning`, `error`, `critical`; "
                 + "`--log-level` overrides it", example: "\"debug\""),
            .key("stats_interval", "\"5m\"",
                 "every this long, one line with the decisions since the last line; `0` turns it off",
                 example: "\"1h\""),
            .key("destination", "\"stderr\"",
                 "`stderr`: standard error, with the journal's `<N>` priorities and no timestamp when standard "
                 + "error is the journal (`JOURNAL_STREAM`); `syslog`: RFC 3164 datagrams to `syslog_socket`, for "
                 + "hosts without journald (see [logging.md](logging.md)). Restart to change",
                 example: "\"syslog\""),
            .key("syslog_facility", "\"mail\"",
                 "the facility of syslog lines: `user`, `mail`, `daemon`, `auth`, `syslog`, `lpr`, `news`, `uucp`, "
                 + "`cron`, `authpriv`, `ftp`, `local0` to `local7`. Restart to change",
                 example: "\"local3\""),
            .key("syslog_socket", "\"/dev/log\"",
                 "the syslog daemon's datagram socket: an absolute path of at most 107 bytes. Restart to change",
                 example: "\"/run/systemd/journal/dev-log\""),
        ])

    static let http = ConfigSection(
        id: "http", title: "`[http]`: dashboard, metrics and admin API", tables: [ConfigTable("http")],
        intro: "The HTTP listener of the dashboard, the Prometheus `/metrics` and the JSON admin API.",
        keys: [
            .key("listen", "\"127.0.0.1:10080\"",
                 "where the dashboard, `/metrics` and the admin API are served (`HOST:PORT`, `[IPV6]:PORT`, "
                 + "`unix:/path`); `\"none\"` turns it off", example: "\"unix:/run/greylag/http.sock\""),
            .key("token", shown: "none",
                 "the token of the dashboard and the admin API (at least 16 characters); every change through the "
                 + "API needs it. A reload puts a new token in force for the next request",
                 example: "\"0123456789abcdef\""),
            .key("token_file", shown: "none",
                 "a file holding the token instead (relative paths are taken from the configuration file's "
                 + "directory)", example: "\"http-token\"", files: ["http-token": "0123456789abcdef0123\n"]),
            .key("history_keep", "\"90d\"",
                 "how long the dashboard's hourly counts stay in the store (at least `1d`, at most 10 years; a "
                 + "bare number is days)", example: "30"),
            .key("socket_mode", "\"0600\"",
                 "permissions of a `unix:` HTTP socket (owner only; `\"0660\"` for a proxy in the socket's group)",
                 example: "\"0660\""),
            .key("max_connections", "64",
                 "open HTTP connections at most (1 to 100000); more are closed at once, with a warning",
                 example: "128"),
            .key("idle_timeout", "\"30s\"",
                 "a connection that sends no complete request head for this long, after opening or after its last "
                 + "answer, is closed (1s to 1d); this also bounds slow headers", example: "\"1m\""),
            .key("request_timeout", "\"10s\"", "a request's body must have arrived this long after its head (1s to 1h)",
                 example: "\"30s\""),
        ],
        unknownKey: .list)

    static let dns = ConfigSection(
        id: "dns", title: "`[dns]`: the resolver", tables: [ConfigTable("dns")],
        intro: "How greylag asks DNS (SPF, DNS lists, reverse names): which servers, how long a lookup may take, "
            + "how much it remembers. A lookup that gets no answer in time is skipped by the check that needed it; "
            + "see [dns.md](dns.md). Changes take effect at the next restart.",
        keys: [
            .key("servers", shown: "those of `resolv_conf`",
                 "the recursive resolvers to ask, in turn: `\"ADDRESS\"`, `\"ADDRESS:PORT\"` or `\"[IPV6]:PORT\"` "
                 + "(port 53 by default; at most 8; addresses only, no names); `[]` asks none, so every DNS check is "
                 + "skipped", example: "[\"127.0.0.1\", \"[::1]:5353\"]"),
            .key("timeout", "\"1s\"",
                 "how long one lookup may take in all, every server and retry included: `0.1` to `30` seconds (a "
                 + "fraction such as `0.5` or a duration); a lookup that takes longer fails, and the check that "
                 + "needed it is skipped", example: "0.5"),
            .key("cache_entries", "10000",
                 "answers kept at most (`0` to `1000000`; `0`: no cache). Answers are kept for their TTL, at most "
                 + "one day; NXDOMAIN and NODATA for the zone's negative TTL, at most three hours; failures for "
                 + "five seconds", example: "50000"),
            .key("resolv_conf", "\"/etc/resolv.conf\"",
                 "where the servers (`nameserver`, at most 3) and `options attempts:` are read when `servers` is "
                 + "not set; relative paths are taken from the configuration file's directory. A missing file "
                 + "means the resolver on 127.0.0.1 and ::1, as for the C library",
                 example: "\"resolv.conf\"", files: ["resolv.conf": "nameserver 192.0.2.53\noptions attempts:1\n"]),
        ],
        unknownKey: .list)
}
