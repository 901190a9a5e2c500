import GreylagCore

/// The qmail-spp MySQL greylisting plugin's `control/greylisting`
/// (`key=value` lines, `#` or `;` comments) and jgreylist's environment
/// (`JGREYLIST_*`) to greylag.
public enum QmailConfig {
    /// The plugin's defaults (greylisting.c): minutes, minutes, days.
    static let blockExpire: Int64 = 55, recordExpire: Int64 = 500, recordExpireGood: Int64 = 36

    public static func migrate(controlFile bytes: [UInt8], file: String) throws(MigrationError) -> Migration {
        let text = try ValueForms.text(bytes, file: file)
        var m = Migration(source: .qmail, inputs: [file])
        var values: [String: (String, Int)] = [:]
        var number = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let t = raw.blankTrimmed()
            if t.isEmpty || t.hasPrefix("#") || t.hasPrefix(";") { continue }
            guard let eq = t.firstIndex(of: "=") else {
                m.note(file, number, "\(ValueForms.printable(t)): not key=value")
                continue
            }
            values[t[..<eq].blankTrimmed().lowercased()] = (t[t.index(after: eq)...].blankTrimmed(), number)
        }
        for (key, unit, def, target, what) in [("block_expire", Int64(60), blockExpire, "delay", "minutes"),
                                               ("record_expire", 60, recordExpire, "retry_window", "minutes"),
                                               ("record_expire_good", 86_400, recordExpireGood, "pass_ttl", "days")] {
            var seconds = def * unit
            var comment = "\(key)=\(def) (the plugin's default)"
            if let (v, line) = values[key] {
                // The plugin reads the number with atoi(): leading digits only.
                let digits = String(v.prefix(while: { $0.isASCII && $0.isNumber }))
                if let s = ValueForms.seconds(digits, unit: unit) {
                    seconds = s
                    comment = "\(key)=\(v)"
                    if digits != v { m.note(file, line, "\(key)=\(ValueForms.printable(v)): read as \(digits) \(what), as the plugin does", kind: .differs) }
                } else {
                    m.note(file, line, "\(key)=\(ValueForms.printable(v)): not a number of \(what); the plugin's default \(def) is used")
                }
            }
            m.set("greylist", target, ValueForms.duration(seconds), comment: comment)
        }
        if case .string(let d)? = m.value("greylist", "delay"), case .string(let w)? = m.value("greylist", "retry_window"),
           let ds = ValueForms.seconds(d), let ws = ValueForms.seconds(w), ws <= ds {
            m.note(file, values["record_expire"]?.1 ?? 0, "record_expire is not longer than block_expire; greylag needs "
                   + "retry_window > delay, so retry_window is delay + 1h", kind: .differs)
            m.set("greylist", "retry_window", ValueForms.duration(ds + 3600))
        }
        m.set("greylist", "ipv4_prefix", .integer(24), comment: "the plugin matches the client's /24")
        m.set("greylist", "ipv6_prefix", .integer(64), comment: "and /64")
        m.set("greylist", "client_autowhitelist", .integer(0), comment: "the plugin has no per-client auto-whitelist")
        for (key, (v, line)) in values.sorted(by: { $0.value.1 < $1.value.1 }) {
            let shown = "\(key)=\(key.contains("pass") ? "(hidden)" : ValueForms.printable(v))"
            switch key {
            case "block_expire", "record_expire", "record_expire_good": break
            case "mysql_default_file", "mysql_host", "mysql_user", "mysql_passwd", "mysql_pass", "mysql_password", "mysql_db",
                 "mysql_port", "mysql_socket":
                m.note(file, line, "\(shown): the plugin's records stay in its MySQL tables; import them with "
                       + "`greylag import --format qmail-spp` (see the follow-up below); greylag keeps its own store")
            case "loglevel":
                m.note(file, line, "\(shown): greylag logs each decision at info ([log] level)")
            case "explicit":
                if v != "0" {
                    m.note(file, line, "\(shown): greylisting only for the recipient domains enabled in greylisting_lists; "
                           + "list them in greylag's [scope] with mode = \"opt-in\" (greylag import --format qmail-spp "
                           + "brings the white- and blacklist rows, not the opt-in rows)")
                }
            case "loose_match":
                m.note(file, line, "\(shown): greylag always keys by the client's network (ipv4_prefix/ipv6_prefix), sender and recipient")
            default:
                m.note(file, line, "\(ValueForms.printable(key)): unknown key of the plugin")
            }
        }
        qmailListeners(&m)
        m.followUps.append("mysqldump --hex-blob DATABASE greylisting_data greylisting_lists > spp.sql && "
                           + "greylag import --config greylag.toml --format qmail-spp --time-zone UTC spp.sql")
        m.followUps.append("in control/smtpplugins, replace the plugin with: greylag qmail-spp --socket /run/greylag/policy.sock "
                           + "(add --legacy-text for the plugin's own reply texts)")
        return m
    }

    /// The daemon serves only the qmail helpers' socket.
    static func qmailListeners(_ m: inout Migration) {
        m.set("policy", "listen", .strings([]), comment: "qmail asks through the helpers' socket only")
        m.set("policy", "helper_listen", .strings(["unix:/run/greylag/policy.sock"]))
        m.set("milter", "listen", .strings([]))
        m.set("exemptions", "trusted_networks", .strings([]), comment: "RELAYCLIENT and SMTP AUTH pass in the helpers already")
        m.set("whitelist", "builtin", .bool(false), comment: "the old tool had no such list; true passes the big mail services")
    }

    static let jgreylistKnown: [String: String] = [
        "JGREYLIST": "read by greylag qmail-wrap from the tcpserver rules as before (\"\" passes, text refuses)",
        "JGREYLIST_NOREV": "read by greylag qmail-wrap as before",
        "JGREYLIST_BY_IP": "read by greylag qmail-wrap as before",
        "JGREYLIST_TIMEOUT": "read by greylag qmail-wrap as before",
        "JGREYLIST_LOG_SMTP": "read by greylag qmail-wrap as before",
        "JGREYLIST_HOLDTIME": "",
    ]

    /// jgreylist's variables, each with where it was set (`FILE:LINE` or `environment`).
    public struct Variable: Sendable, Hashable {
        public var name: String
        public var value: String
        public var file: String
        public var line: Int
        public init(name: String, value: String, file: String, line: Int) {
            self.name = name
            self.value = value
            self.file = file
            self.line = line
        }
    }

    /// Variables from a file of `NAME=value` lines (an env file, a run script's
    /// `export` lines): only `JGREYLIST_*` and `JGREYLIST` are taken.
    public static func variables(envFile bytes: [UInt8], file: String) throws(MigrationError) -> [Variable] {
        let text = try ValueForms.text(bytes, file: file)
        var out: [Variable] = []
        var number = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            var t = raw.blankTrimmed()
            if t.hasPrefix("export ") { t = String(t.dropFirst(7)).blankTrimmed() }
            guard t.hasPrefix("JGREYLIST"), let eq = t.firstIndex(of: "=") else { continue }
            let name = String(t[..<eq])
            guard name.allSatisfy({ $0.isASCII && ($0.isUppercase || $0.isNumber || $0 == "_") }) else { continue }
            let words = ShellWords.split(String(t[t.index(after: eq)...]))
            out.append(Variable(name: name, value: words.words.first ?? "", file: file, line: number))
        }
        return out
    }

    public static func migrate(jgreylist variables: [Variable], inputs: [String]) -> Migration {
        var m = Migration(source: .jgreylist, inputs: inputs)
        var hold: Int64 = 120
        var holdComment = "JGREYLIST_HOLDTIME: jgreylist's default 120"
        for v in variables {
            let shown = "\(v.name)=\(ValueForms.printable(v.value))"
            if v.name == "JGREYLIST_HOLDTIME" {
                if let s = ValueForms.seconds(v.value, unit: 1), s <= 30 * 86_400 {
                    hold = s
                    holdComment = shown
                } else {
                    m.note(v.file, v.line, "\(shown): not a number of seconds up to 30 days; 120 is used")
                }
            } else if let why = jgreylistKnown[v.name] {
                m.note(v.file, v.line, "\(shown): \(why)", kind: .differs)
            } else if v.name == "JGREYLIST_DIR" {
                m.note(v.file, v.line, "\(shown): jgreylist's files are not imported; clients it knew are greylisted once more")
            } else if v.name == "JGREYLIST_LOG" || v.name == "JGREYLIST_LOG_PID" {
                m.note(v.file, v.line, "\(shown): greylag logs every decision in its own log")
            } else {
                m.note(v.file, v.line, "\(ValueForms.printable(v.name)): unknown jgreylist variable")
            }
        }
        m.set("greylist", "delay", ValueForms.duration(hold), comment: holdComment)
        m.note(inputs.first ?? "environment", 0, "greylag qmail-wrap sends JGREYLIST_HOLDTIME with each question, "
               + "so keep it in the tcpserver environment; [greylist] delay is the same value for other clients", kind: .differs)
        m.set("greylist", "retry_window", ValueForms.duration(max(2 * 86_400, hold + 3600)),
              comment: "jgreylist keeps a client until its cleaner removes it; greylag forgets one that does not come back in time")
        m.set("greylist", "ipv4_prefix", .integer(24), comment: "jgreylist keys by /24 unless JGREYLIST_BY_IP")
        m.set("greylist", "client_autowhitelist", .integer(0), comment: "jgreylist greylists the connection, not triplets")
        qmailListeners(&m)
        m.followUps.append("in the SMTP service's run file, replace jgreylist with: greylag qmail-wrap --socket /run/greylag/policy.sock")
        return m
    }
}
