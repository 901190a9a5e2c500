import GreylagCore

/// sqlgrey's `sqlgrey.conf` (`key = value`, `#` comments) and its client
/// whitelists (`clients_ip_whitelist`, `clients_fqdn_whitelist` and their
/// `.local` files in `conf_dir`) to greylag.
public enum SqlgreyConfig {
    public typealias ReadFile = PostgreyOptions.ReadFile

    static let ignored: [String: String] = [
        "loglevel": "set [log] level if wanted", "log_override": "set [log] level if wanted",
        "log_ident": "greylag logs as greylag", "user": "greylag's service runs as the greylag user",
        "group": "greylag's service runs as the greylag user", "pidfile": "systemd tracks greylag's process",
        "connect_src_throttle": "greylag does not throttle new triplets per client",
        "whitelists_host": "greylag's lists are files you keep (whitelist.builtin is updated with greylag)",
        "admin_mail": "greylag does not send mail; watch its /metrics or logs",
        "discrimination": "greylag greylists every sender its rules do not exempt",
        "discrimination_add_rulenr": "greylag greylists every sender its rules do not exempt",
        "db_prepare_cache": "greylag manages its own store", "db_cleandelay": "greylag expires records itself ([store] expiry_interval)",
        "clean_method": "greylag expires records itself ([store] expiry_interval)",
        "db_cluster": "greylag shares state through one PostgreSQL or MySQL store (see [store])",
        "read_hosts": "greylag shares state through one PostgreSQL or MySQL store (see [store])",
        "optin_optout_file": "", "conf_dir": "",
    ]
    static let database: Set<String> = ["db_type", "db_name", "db_host", "db_port", "db_user", "db_pass", "db_dsn"]

    public static func migrate(_ bytes: [UInt8], file: String, read: ReadFile) throws(MigrationError) -> Migration {
        let text = try ValueForms.text(bytes, file: file)
        var m = Migration(source: .sqlgrey, inputs: [file])
        var settings: [String: (String, Int)] = [:]
        var number = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            var line = Substring(raw)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            let t = line.blankTrimmed()
            if t.isEmpty { continue }
            guard let eq = t.firstIndex(of: "=") else {
                m.note(file, number, "\(ValueForms.printable(t)): not key = value")
                continue
            }
            let key = t[..<eq].blankTrimmed().lowercased()
            let value = t[t.index(after: eq)...].blankTrimmed()
            settings[key] = (value, number)
        }
        func note(_ key: String, _ why: String, _ kind: MigrationNote.Kind = .notCarriedOver) {
            if let (v, line) = settings[key] {
                m.note(file, line, "\(key) = \(ValueForms.printable(v)): \(why)", kind: kind)
            } else {
                m.note(file, 0, "\(key) (sqlgrey's default): \(why)", kind: kind)
            }
        }
        func timing(_ key: String, unit: Int64, defaultValue: Int64, target: String, what: String) {
            var count = defaultValue
            var comment = "\(key) = \(defaultValue) (sqlgrey's default)"
            if let (v, _) = settings[key] {
                if let s = ValueForms.seconds(v, unit: unit), s > 0 {
                    count = s / unit
                    comment = "\(key) = \(v)"
                } else {
                    note(key, "not a positive number of \(what); sqlgrey's default \(defaultValue) is used")
                }
            }
            m.set("greylist", target, ValueForms.duration(count * unit), comment: comment)
        }
        timing("reconnect_delay", unit: 60, defaultValue: 5, target: "delay", what: "minutes")
        timing("max_connect_age", unit: 3600, defaultValue: 24, target: "retry_window", what: "hours")
        timing("awl_age", unit: 86_400, defaultValue: 60, target: "pass_ttl", what: "days")
        note("awl_age", "sqlgrey's auto-whitelist lets a sender through from its client network to any recipient; "
             + "greylag's passed triplets are per recipient", .differs)

        var level = Int64(2)
        if let (v, _) = settings["group_domain_level"] {
            if let n = Int64(v), (0...1_000_000).contains(n) { level = n } else { note("group_domain_level", "not a count; 2 is used") }
        }
        m.set("greylist", "client_autowhitelist", .integer(level), comment: "group_domain_level = \(level)")
        note("group_domain_level", "sqlgrey whitelists a sender domain from a client network after this many senders "
               + "passed; greylag whitelists the client network after this many distinct triplets passed", .differs)

        switch (settings["greymethod"]?.0 ?? "smart").lowercased() {
        case "full":
            m.set("greylist", "ipv4_prefix", .integer(32), comment: "greymethod = full")
            m.set("greylist", "ipv6_prefix", .integer(128))
        case "classc":
            m.set("greylist", "ipv4_prefix", .integer(24), comment: "greymethod = classc")
            m.set("greylist", "ipv6_prefix", .integer(64))
        case "smart":
            m.set("greylist", "ipv4_prefix", .integer(24), comment: "greymethod = smart")
            m.set("greylist", "ipv6_prefix", .integer(64))
            note("greymethod", "sqlgrey's smart method keys clients without a reverse name "
                 + "or with a dial-up look by their exact address; greylag keys every client by its /24 (/64)", .differs)
        default:
            note("greymethod", "not full, classc or smart; greylag keys by /24 and /64")
            m.set("greylist", "ipv4_prefix", .integer(24))
            m.set("greylist", "ipv6_prefix", .integer(64))
        }

        var listen = "127.0.0.1:2501"
        var listenComment = "sqlgrey's default, inet = 2501"
        if let (v, _) = settings["unix"] {
            if v.hasPrefix("/") { listen = "unix:" + v; listenComment = "unix = \(v)" } else { note("unix", "not an absolute path") }
        } else if let (v, _) = settings["inet"] {
            if !v.isEmpty, v.allSatisfy(\.isNumber), let port = Int(v), (1...65535).contains(port) {
                listen = "127.0.0.1:\(port)"
                listenComment = "inet = \(v)"
            } else if let colon = v.lastIndex(of: ":"), let port = Int(v[v.index(after: colon)...]), (1...65535).contains(port) {
                let host = String(v[..<colon])
                listen = "\(host == "localhost" ? "127.0.0.1" : host):\(port)"
                listenComment = "inet = \(v)"
            } else {
                note("inet", "not [HOST:]PORT; sqlgrey's default port 2501 is used")
            }
        }
        m.set("policy", "listen", .strings([listen]), comment: listenComment)
        m.set("milter", "listen", .strings([]), comment: "sqlgrey serves the policy protocol only")

        let first = (settings["reject_first_attempt"]?.0 ?? "delay").lowercased()
        let early = (settings["reject_early_reconnect"]?.0 ?? first).lowercased()
        if first != early {
            note("reject_early_reconnect", "greylag answers first attempts and early retries the same way; reject_first_attempt = \(first) is used")
        }
        switch first {
        case "delay":
            m.set("policy", "defer_action", .string("DEFER_IF_PERMIT"), comment: "reject_first_attempt = delay")
        case "immed":
            let code = settings["reject_code"]?.0 ?? "451"
            if code.count == 3, code.first == "4", code.allSatisfy(\.isNumber) {
                m.set("policy", "defer_action", .string(code), comment: "reject_first_attempt = immed, reject_code = \(code)")
            } else {
                note("reject_code", "greylag defers with a 4xx code; DEFER is used")
                m.set("policy", "defer_action", .string("DEFER"), comment: "reject_first_attempt = immed")
            }
        default:
            note("reject_first_attempt", "not delay or immed; DEFER_IF_PERMIT is used")
        }
        if let (v, _) = settings["prepend"] {
            m.set("policy", "add_header", .bool(v != "0"), comment: "prepend = \(v)")
        }
        if let (v, _) = settings["optmethod"], v.lowercased() != "none" {
            note("optmethod", "sqlgrey keeps its opt-in/opt-out addresses in database tables; "
                 + "write them into greylag's [scope] (mode = \"opt-in\" or \"opt-out\") by hand")
        }
        for (key, (v, line)) in settings.sorted(by: { $0.value.1 < $1.value.1 }) {
            if database.contains(key) {
                m.note(file, line, "\(key) = \(key == "db_pass" ? "(hidden)" : ValueForms.printable(v)): sqlgrey's state stays in its "
                       + "database; greylag starts with an empty store (greylag import has no sqlgrey format), "
                       + "so senders seen before are greylisted once more")
            } else if let why = ignored[key] {
                if !why.isEmpty { m.note(file, line, "\(key) = \(ValueForms.printable(v)): \(why)") }
            } else if !["reconnect_delay", "max_connect_age", "awl_age", "group_domain_level", "greymethod", "inet", "unix",
                        "reject_first_attempt", "reject_early_reconnect", "reject_code", "prepend", "optmethod"].contains(key) {
                m.note(file, line, "\(ValueForms.printable(key)): unknown sqlgrey setting")
            }
        }
        m.set("exemptions", "authenticated", .bool(false), comment: "sqlgrey greylists authenticated clients too (Postfix usually permits them before)")
        m.set("exemptions", "trusted_networks", .strings([]), comment: "sqlgrey trusts no network itself")
        m.set("whitelist", "builtin", .bool(false), comment: "sqlgrey's own lists are below; true adds greylag's built-in list")

        // The client whitelists.
        let dir = settings["conf_dir"]?.0 ?? "/etc/sqlgrey"
        var body = "# sqlgrey's client whitelists from \(TOMLWriter.commentText(dir)), converted by greylag migrate\n"
        var count = 0
        for (name, isIP) in [("clients_ip_whitelist", true), ("clients_ip_whitelist.local", true),
                             ("clients_fqdn_whitelist", false), ("clients_fqdn_whitelist.local", false)] {
            let path = dir.hasSuffix("/") ? dir + name : dir + "/" + name
            guard let bytes = read(path) else {
                if !name.hasSuffix(".local") {
                    m.note(file, settings["conf_dir"]?.1 ?? 0, "cannot read \(ValueForms.printable(path)); its entries were not carried over")
                }
                continue
            }
            guard bytes.count <= MigrationLimits.maxFileBytes else {
                m.note(path, 0, "larger than \(MigrationLimits.maxFileBytes) bytes; not carried over")
                continue
            }
            body += "# \(TOMLWriter.commentText(path))\n"
            var n = 0
            for raw in String(decoding: bytes, as: UTF8.self).replacing("\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false) {
                n += 1
                var line = Substring(raw)
                var comment = ""
                if let hash = line.firstIndex(of: "#") {
                    comment = line[line.index(after: hash)...].blankTrimmed()
                    line = line[..<hash]
                }
                let entry = line.blankTrimmed()
                if entry.isEmpty { continue }
                let converted: (SelectorField, String)
                if isIP {
                    converted = (.client, ipEntry(entry))
                } else if entry.hasPrefix("/") && entry.hasSuffix("/") && entry.count >= 2 {
                    converted = (.clientName, entry)
                } else if entry.hasPrefix("*.") {
                    converted = (.clientName, "." + entry.dropFirst(2).lowercased())
                } else {
                    converted = (.clientName, "=" + entry.lowercased())
                }
                if let p = ValueForms.problem(converted.0, converted.1) {
                    m.note(path, n, p)
                    continue
                }
                if converted.1.contains(" #") || converted.1.contains("\t#") {
                    m.note(path, n, "\(ValueForms.printable(entry)): a list file cannot hold \" #\"")
                    continue
                }
                body += "\(converted.0.rawValue) \(converted.1)" + (comment.isEmpty ? "" : "   # \(TOMLWriter.commentText(comment))") + "\n"
                count += 1
            }
        }
        if count > 0 {
            let name = m.addListFile(base: "sqlgrey-clients.list", text: body)
            m.set("whitelist", "files", .strings([name]), comment: "clients_ip_whitelist and clients_fqdn_whitelist, \(count) entries")
        }
        return m
    }

    /// A sqlgrey IP whitelist entry as a greylag client value: `a.b.c` is /24, `a.b` /16, `a` /8.
    static func ipEntry(_ s: String) -> String {
        guard !s.contains(":"), !s.contains("/") else { return s }
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) }) else { return s }
        switch parts.count {
        case 1: return "\(s).0.0.0/8"
        case 2: return "\(s).0.0/16"
        case 3: return "\(s).0/24"
        default: return s
        }
    }
}
