import Foundation
import GreylagCore
import TOMLKit

/// Rule sections as read, before named lists are resolved.
struct RuleSections {
    struct Spec {
        var rules: [ListRule] = []
        /// Named lists this section uses, with the key that named them.
        var lists: [(name: String, key: String)] = []
    }

    var whitelist = Spec()
    var blacklist = Spec()
    var scope = Spec()
    var dryRun = Spec()
    var named: [String: Spec] = [:]
    var builtin = true
    var files: [String] = []
}

/// The keys shared by [whitelist], [blacklist], [scope], [dry_run] and [lists.NAME].
///
/// ```toml
/// [whitelist]
/// builtin = true                 # the shipped list of senders that retry from pools (whitelist only)
/// clients = ["192.0.2.0/24", "2001:db8::/32"]
/// client_names = ["example.com", ".example.net", "=mx.example.org", '/^mx\d+\.example\.com$/']
/// helo_names = []
/// senders = ["user@example.com", "user@", "example.com", "<>"]
/// sender_domains = []
/// recipients = ["postmaster@"]
/// recipient_domains = []
/// files = ["lists/partners"]                          # greylag format: "FIELD VALUE" per line
/// client_files = ["/etc/postgrey/whitelist_clients"]  # postgrey whitelist_clients format
/// recipient_files = ["/etc/postgrey/whitelist_recipients"]
/// lists = ["friendly"]           # named lists defined as [lists.friendly]
///
/// [scope]
/// mode = "opt-out"               # or "opt-in"
///
/// [exemptions]
/// authenticated = true
/// trusted_networks = ["127.0.0.0/8", "::1"]
/// ```
extension Reader {
    static let fileFormats: [String: ListFileFormat] = [
        "files": .greylag, "client_files": .postgreyClients, "recipient_files": .postgreyRecipients,
    ]

    /// Relative list file paths are taken from the configuration file's directory.
    var directory: String { (file as NSString).deletingLastPathComponent }

    mutating func readRuleSection(_ t: TOMLTable, name: String, into c: inout GreylagConfiguration) {
        var spec = RuleSections.Spec()
        for (key, value) in t {
            let k = "\(name).\(key)"
            guard known(name, key) else { continue }
            switch (name, key) {
            case ("whitelist", "builtin"):
                if let v = boolean(k, value) { ruleSections.builtin = v }
            case ("scope", "mode"):
                if let v = string(k, value) {
                    if let m = ListRules.ScopeMode(rawValue: v.lowercased()) { c.lists.scopeMode = m } else {
                        fail(k, "\"\(v)\" is not \"opt-out\" or \"opt-in\"")
                    }
                }
            case (_, "lists"):
                if let names = strings(k, value) { spec.lists += names.map { ($0, k) } }
            default:
                readRuleKey(key, value, section: name, into: &spec)
            }
        }
        switch name {
        case "whitelist": ruleSections.whitelist = spec
        case "blacklist": ruleSections.blacklist = spec
        case "scope": ruleSections.scope = spec
        default: ruleSections.dryRun = spec
        }
    }

    /// `[lists.NAME]` tables: named sets of rules the other sections use.
    mutating func readNamedLists(_ t: TOMLTable) {
        for (name, value) in t {
            guard let table = value.table else {
                fail("lists.\(name)", "expected a table [lists.\(name)] with keys such as sender_domains")
                continue
            }
            var spec = RuleSections.Spec()
            for (key, item) in table {
                if key == "lists" {
                    fail("lists.\(name).lists", "named lists cannot include other lists")
                } else if known("lists.\(name)", key) {
                    readRuleKey(key, item, section: "lists.\(name)", into: &spec)
                }
            }
            ruleSections.named[name] = spec
        }
    }

    /// One selector key (`clients`, `sender_domains`, ...) or file key.
    mutating func readRuleKey(_ key: String, _ value: any TOMLValueConvertible, section: String,
                              into spec: inout RuleSections.Spec) {
        let k = "\(section).\(key)"
        if let field = SelectorField(configKey: key) {
            guard let items = strings(k, value) else { return }
            spec.rules += rules(field, items, key: k)
        } else if let format = Self.fileFormats[key] {
            guard let paths = strings(k, value) else { return }
            for path in paths {
                let full = path.hasPrefix("/") ? path : (directory as NSString).appendingPathComponent(path)
                ruleSections.files.append(full)
                let text: String
                do {
                    if access(full, R_OK) != 0 {
                        fail(k, item: path, "cannot read list file \(full): \(String(cString: strerror(errno)))")
                        continue
                    }
                    text = try String(contentsOfFile: full, encoding: .utf8)
                } catch {
                    fail(k, item: path, "cannot read list file \(full): \(Self.reason(error))")
                    continue
                }
                let parsed = ListFileParser.parse(text, format: format, name: path)
                spec.rules += parsed.rules
                for e in parsed.errors {
                    errors.append(ConfigurationError(file: full, line: e.line, key: nil, message: e.message))
                }
            }
        } else {
            unread(k)
        }
    }

    /// The rules of the items of one array key, each with origin
    /// `FILE:LINE KEY`; items that do not parse are reported at their line.
    mutating func rules(_ field: SelectorField, _ items: [String], key: String) -> [ListRule] {
        var out: [ListRule] = []
        for item in items {
            let line = locator.line(of: key, item: item).map(String.init) ?? "?"
            do {
                out.append(try ListRule(field: field, text: item, origin: "\(file):\(line) \(key)"))
            } catch {
                fail(key, item: item, error.message)
            }
        }
        return out
    }

    mutating func readExemptions(_ t: TOMLTable, into c: inout GreylagConfiguration) {
        for (key, value) in t {
            let k = "exemptions.\(key)"
            guard known("exemptions", key) else { continue }
            switch key {
            case "authenticated":
                if let v = boolean(k, value) { c.lists.exemptAuthenticated = v }
            case "trusted_networks":
                guard let items = strings(k, value) else { continue }
                c.lists.trusted = RuleSet(rules(.client, items, key: k))
            default:
                unread(k)
            }
        }
    }

    mutating func readAdmin(_ t: TOMLTable, into c: inout GreylagConfiguration) {
        for (key, value) in t {
            let k = "admin.\(key)"
            guard known("admin", key) else { continue }
            switch key {
            case "socket":
                if let v = string(k, value) {
                    if v.isEmpty || v == "none" { c.adminSocket = .off }
                    else if v.utf8.count > 100 { fail(k, "a unix socket path must be shorter than 100 bytes") }
                    else { c.adminSocket = .path(v) }
                }
            case "socket_mode":
                if let v = mode(k, value) { c.adminSocketMode = v }
            default:
                unread(k)
            }
        }
    }

    mutating func readHTTP(_ t: TOMLTable, into c: inout GreylagConfiguration) {
        for (key, value) in t {
            let k = "http.\(key)"
            guard known("http", key) else { continue }
            switch key {
            case "listen":
                if let v = string(k, value) {
                    if v.isEmpty || v == "none" { c.httpListener = nil }
                    else if let a = ListenAddress(v) { c.httpListener = a }
                    else { fail(k, "\"\(v)\" is not HOST:PORT, [IPV6]:PORT, unix:/path or \"none\"") }
                }
            case "token":
                if let v = string(k, value) {
                    if v.count < 16 { fail(k, "must be at least 16 characters") } else { c.httpToken = v }
                }
            case "token_file":
                if let v = string(k, value) {
                    let path = v.hasPrefix("/") ? v : (directory as NSString).appendingPathComponent(v)
                    if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
                        if token.count < 16 { fail(k, "the token in \(path) must be at least 16 characters") }
                        else { c.httpToken = token }
                    } else {
                        fail(k, "cannot read \(path)")
                    }
                }
            case "history_keep":
                if let v = duration(k, value, unit: 86_400) {
                    if v >= 86_400 { c.historyKeep = v } else { fail(k, "must be at least 1d") }
                }
            case "socket_mode":
                if let v = mode(k, value) { c.httpSocketMode = v }
            case "max_connections":
                if let v = integer(k, value, in: 1...100_000) { c.httpMaxConnections = v }
            case "idle_timeout":
                if let v = duration(k, value, unit: 1, in: 1...86_400) { c.httpIdleTimeout = v }
            case "request_timeout":
                if let v = duration(k, value, unit: 1, in: 1...3_600) { c.httpRequestTimeout = v }
            default:
                unread(k)
            }
        }
    }

    mutating func readReload(_ t: TOMLTable, into c: inout GreylagConfiguration) {
        for (key, value) in t {
            let k = "reload.\(key)"
            guard known("reload", key) else { continue }
            switch key {
            case "watch_interval":
                if let v = seconds(k, value, in: 0.1...86_400, zeroIsOff: true) { c.watchInterval = v }
            default:
                unread(k)
            }
        }
    }

    /// Puts the named lists into the sections that use them and compiles
    /// the rule sets.
    mutating func resolveLists(into c: inout GreylagConfiguration) {
        func rules(_ reader: inout Reader, _ spec: RuleSections.Spec) -> [ListRule] {
            var out = spec.rules
            for (name, key) in spec.lists {
                if let named = reader.ruleSections.named[name] { out += named.rules } else {
                    let known = reader.ruleSections.named.keys.sorted()
                    reader.fail(key, item: name, "no list named \"\(name)\""
                                + (known.isEmpty ? "; define it as [lists.\(name)]" : "; defined: " + known.joined(separator: ", ")))
                }
            }
            return out
        }
        var white = rules(&self, ruleSections.whitelist)
        if ruleSections.builtin { white += BuiltinLists.whitelistClients }
        c.lists.whitelist = RuleSet(white)
        c.lists.blacklist = RuleSet(rules(&self, ruleSections.blacklist))
        c.lists.scope = RuleSet(rules(&self, ruleSections.scope))
        c.lists.dryRun = RuleSet(rules(&self, ruleSections.dryRun))
        c.listFiles = ruleSections.files
    }

    static func reason(_ error: any Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if ns.domain == NSCocoaErrorDomain && ns.code == NSFileReadNoSuchFileError { return "no such file" }
        return ns.localizedDescription
    }
}

/// The lists shipped inside greylag.
public enum BuiltinLists {
    /// Mail services known to retry from pools of hosts or to handle
    /// temporary errors badly, by client host name (and a few networks):
    /// the file `Sources/GreylagServer/Resources/builtin-whitelist-clients`.
    public static let whitelistClients: [ListRule] = {
        let text = String(decoding: PackageResources.builtin_whitelist_clients, as: UTF8.self)
        return ListFileParser.parse(text, format: .postgreyClients, name: "builtin").rules
    }()

    /// The shipped file's text.
    public static var whitelistClientsText: String {
        String(decoding: PackageResources.builtin_whitelist_clients, as: UTF8.self)
    }
}
