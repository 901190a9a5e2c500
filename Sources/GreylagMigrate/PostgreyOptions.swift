import GreylagCore

/// postgrey's command line (postgrey(8)), or Debian's `/etc/default/postgrey`
/// (`POSTGREY_OPTS`, `POSTGREY_TEXT`), to greylag.
public enum PostgreyOptions {
    /// Reads list files named by the options; nil when a file cannot be read.
    public typealias ReadFile = @Sendable (String) -> [UInt8]?

    static let configDir = "/etc/postgrey"
    static let dbDir = "/var/lib/postgrey"

    /// Options postgrey takes that greylag has no use for, with the reason.
    static let ignored: [String: String] = [
        "user": "greylag's service runs as the greylag user",
        "group": "greylag's service runs as the greylag user",
        "pidfile": "systemd tracks greylag's process",
        "daemonize": "greylag runs in the foreground under systemd",
        "d": "greylag runs in the foreground under systemd",
        "verbose": "set [log] level = \"debug\" if wanted",
        "v": "set [log] level = \"debug\" if wanted",
        "quiet": "set [log] level = \"notice\" if wanted",
        "q": "set [log] level = \"notice\" if wanted",
        "syslogfacility": "greylag logs to standard error (the journal)",
        "syslog-facility": "greylag logs to standard error (the journal)",
        "facility": "greylag logs to standard error (the journal)",
        "listen-queue-size": "greylag accepts connections up to policy.max_connections",
        "privacy": "greylag stores addresses as they are (normalised senders), not hashed",
        "exim": "greylag's Exim recipe asks its policy listener as Postfix does (see the Exim docs)",
        "x-greylist-header": "greylag writes its own X-Greylist header (policy.add_header)",
        "lookup-by-subnet": "",
        "help": "", "h": "", "man": "", "version": "",
    ]
    /// Options that take a value.
    static let withValue: Set<String> = ["unix", "u", "inet", "i", "socketmode", "user", "group", "dbdir", "pidfile",
                                         "delay", "max-age", "ipv4cidr", "ipv6cidr", "whitelist-clients",
                                         "whitelist-recipients", "syslogfacility", "syslog-facility", "facility",
                                         "retry-window", "greylist-action", "greylist-text", "hostname",
                                         "listen-queue-size", "x-greylist-header"]

    /// Migrates a postgrey command line (the words after `postgrey`, or one string to split as sh does).
    public static func migrate(arguments text: String, origin: String = "--args", read: ReadFile) -> Migration {
        var m = Migration(source: .postgrey, inputs: ["postgrey \(text)"])
        let split = ShellWords.split(text)
        if let p = split.problem { m.note(origin, 1, "the command line: \(p)") }
        apply(split.words, origin: origin, line: 1, into: &m, read: read)
        return m
    }

    /// Migrates Debian's `/etc/default/postgrey`.
    public static func migrate(defaultsFile bytes: [UInt8], file: String, read: ReadFile) throws(MigrationError) -> Migration {
        let text = try ValueForms.text(bytes, file: file)
        var m = Migration(source: .postgrey, inputs: [file])
        var opts: (words: [String], line: Int) = ([], 0)
        var greylistText: (String, Int)? = nil
        var number = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            var line = raw.blankTrimmed()
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)).blankTrimmed() }
            guard let eq = line.firstIndex(of: "="), line[..<eq].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }),
                  !line[..<eq].isEmpty else {
                m.note(file, number, "\(ValueForms.printable(line)): not a shell assignment")
                continue
            }
            let name = String(line[..<eq])
            let split = ShellWords.split(String(line[line.index(after: eq)...]))
            if let p = split.problem { m.note(file, number, "\(name): \(p)") }
            if split.usesVariables { m.note(file, number, "\(name): shell variables are not expanded; read as written", kind: .differs) }
            let value = split.words.joined(separator: " ")
            switch name {
            case "POSTGREY_OPTS":
                opts = (ShellWords.split(value).words, number)
            case "POSTGREY_TEXT":
                greylistText = (value, number)
            default:
                m.note(file, number, "\(ValueForms.printable(name)): not read by postgrey's service")
            }
        }
        apply(opts.words, origin: file, line: opts.line, into: &m, read: read)
        if let (t, line) = greylistText, !t.isEmpty {
            setText(t, origin: file, line: line, into: &m)
        }
        return m
    }

    static func setText(_ t: String, origin: String, line: Int, into m: inout Migration) {
        var out = t.replacing("{", with: "(").replacing("}", with: ")")
        if out != t { m.note(origin, line, "greylist text: { and } became ( and ), as greylag reads {name} as a placeholder", kind: .differs) }
        if out.contains("%r") {
            m.note(origin, line, "greylist text: %r (the recipient's domain) became {recipient}, the whole address", kind: .differs)
        }
        out = out.replacing("%s", with: "{seconds}").replacing("%r", with: "{recipient}")
        m.set("policy", "defer_text", .string(out), comment: "--greylist-text")
    }

    static func apply(_ words: [String], origin: String, line: Int, into m: inout Migration, read: ReadFile) {
        var clients: [String]? = nil
        var recipients: [String]? = nil
        var listen: [String] = []
        var dbdir = dbDir
        var i = 0
        func note(_ s: String, _ kind: MigrationNote.Kind = .notCarriedOver) { m.note(origin, line, s, kind: kind) }
        while i < words.count {
            let word = words[i]
            i += 1
            guard word.hasPrefix("-"), word.count > 1 else {
                note("\(ValueForms.printable(word)): postgrey takes no arguments besides options")
                continue
            }
            var name = String(word.drop(while: { $0 == "-" }))
            var value: String? = nil
            if let eq = name.firstIndex(of: "=") {
                value = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            if name == "auto-whitelist-clients" {
                let n = value.map { $0.isEmpty ? 5 : Int($0) } ?? 5
                if let n, (0...1_000_000).contains(n) {
                    m.set("greylist", "client_autowhitelist", .integer(Int64(n)), comment: word)
                } else {
                    note("\(ValueForms.printable(word)): not a count from 0 to 1000000")
                }
                continue
            }
            if withValue.contains(name) && value == nil {
                guard i < words.count else { note("\(ValueForms.printable(word)): no value after it"); continue }
                value = words[i]
                i += 1
            }
            let v = value ?? ""
            let shown = ValueForms.printable("\(word)\(value != nil && !word.contains("=") ? " " + v : "")")
            switch name {
            case "delay":
                if let s = ValueForms.seconds(v, unit: 1) {
                    if s == 0 { note("\(shown): postgrey reads 0 as its default, 300 seconds", .differs) }
                    m.set("greylist", "delay", ValueForms.duration(s == 0 ? 300 : s), comment: shown)
                } else { note("\(shown): not a number of seconds") }
            case "max-age":
                if let s = ValueForms.seconds(v, unit: 86_400) {
                    m.set("greylist", "pass_ttl", ValueForms.duration(s == 0 ? 35 * 86_400 : s), comment: shown)
                } else { note("\(shown): not a number of days") }
            case "retry-window":
                let lower = v.lowercased()
                let s = lower.hasSuffix("h") ? ValueForms.seconds(String(lower.dropLast()), unit: 3600) : ValueForms.seconds(lower, unit: 86_400)
                if let s, s > 0 { m.set("greylist", "retry_window", ValueForms.duration(s), comment: shown) }
                else { note("\(shown): not a number of days or of hours followed by h") }
            case "lookup-by-host":
                m.set("greylist", "ipv4_prefix", .integer(32), comment: shown)
                m.set("greylist", "ipv6_prefix", .integer(128), comment: shown)
            case "ipv4cidr", "ipv6cidr":
                let max = name == "ipv4cidr" ? 32 : 128
                if let n = Int(v), (0...max).contains(n) {
                    if m.value("greylist", name == "ipv4cidr" ? "ipv4_prefix" : "ipv6_prefix") == nil || n != 0 {
                        m.set("greylist", name == "ipv4cidr" ? "ipv4_prefix" : "ipv6_prefix",
                              .integer(Int64(n == 0 ? (max == 32 ? 24 : 64) : n)), comment: shown)
                    }
                } else { note("\(shown): not a prefix length from 0 to \(max)") }
            case "whitelist-clients":
                clients = (clients ?? []) + [v]
            case "whitelist-recipients":
                recipients = (recipients ?? []) + [v]
            case "greylist-action":
                let upper = v.uppercased()
                if ["DEFER_IF_PERMIT", "DEFER", "DEFER_IF_REJECT"].contains(upper) || isDeferCode(v) {
                    m.set("policy", "defer_action", .string(isDeferCode(v) ? v : upper), comment: shown)
                } else { note("\(shown): greylag's defer_action is DEFER_IF_PERMIT, DEFER, DEFER_IF_REJECT or a 4xx code") }
            case "greylist-text":
                setText(v, origin: origin, line: line, into: &m)
            case "hostname":
                if !v.isEmpty, !v.contains(where: { $0.isWhitespace || $0 == ";" }) {
                    m.set("policy", "hostname", .string(v), comment: shown)
                } else { note("\(shown): not one host name") }
            case "inet", "i":
                if !v.isEmpty, v.allSatisfy(\.isNumber), let port = Int(v), (1...65535).contains(port) {
                    listen.append("127.0.0.1:\(port)")
                } else if let colon = v.lastIndex(of: ":"), let port = Int(v[v.index(after: colon)...]), (1...65535).contains(port) {
                    let host = String(v[..<colon])
                    listen.append(host == "localhost" ? "127.0.0.1:\(port)" : "\(host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host):\(port)")
                } else { note("\(shown): not [HOST:]PORT") }
            case "unix", "u":
                if v.hasPrefix("/") { listen.append("unix:" + v) } else { note("\(shown): not an absolute socket path") }
            case "socketmode":
                if v.count <= 4, !v.isEmpty, v.allSatisfy({ ("0"..."7").contains($0) }), let mode = Int(v, radix: 8), mode <= 0o777 {
                    m.set("policy", "socket_mode", .string("0" + String(mode, radix: 8)), comment: shown)
                } else { note("\(shown): not an octal mode") }
            case "dbdir":
                dbdir = v
            default:
                if let why = ignored[name] {
                    if !why.isEmpty { note("\(shown): \(why)") }
                } else {
                    note("\(shown): unknown postgrey option")
                }
            }
        }
        if listen.isEmpty {
            note("neither --inet nor --unix: postgrey would not start; greylag keeps its default listener 127.0.0.1:10023")
        } else {
            m.set("policy", "listen", .strings(listen))
        }
        func setDefault(_ key: String, _ v: TOMLValue, _ comment: String) {
            if m.value("greylist", key) == nil { m.set("greylist", key, v, comment: comment) }
        }
        setDefault("delay", ValueForms.duration(300), "postgrey's default")
        setDefault("retry_window", ValueForms.duration(2 * 86_400), "postgrey's default")
        setDefault("pass_ttl", ValueForms.duration(35 * 86_400), "--max-age: postgrey's default")
        setDefault("client_autowhitelist", .integer(5), "postgrey's default")
        setDefault("ipv4_prefix", .integer(24), "postgrey's default")
        setDefault("ipv6_prefix", .integer(64), "postgrey's default")
        m.set("milter", "listen", .strings([]), comment: "postgrey serves the policy protocol only")
        m.set("exemptions", "authenticated", .bool(false), comment: "postgrey greylists authenticated clients too (Postfix usually permits them before)")
        m.set("exemptions", "trusted_networks", .strings([]), comment: "postgrey trusts no network itself")
        m.set("whitelist", "builtin", .bool(false), comment: "the lists below are postgrey's own; true adds greylag's built-in list")

        let clientFiles = clients ?? ["\(configDir)/whitelist_clients", "\(configDir)/whitelist_clients.local"]
        let recipientFiles = recipients ?? ["\(configDir)/whitelist_recipients", "\(configDir)/whitelist_recipients.local"]
        for (files, key, format, defaulted) in [(clientFiles, "client_files", ListFileFormat.postgreyClients, clients == nil),
                                                (recipientFiles, "recipient_files", .postgreyRecipients, recipients == nil)] {
            var names: [String] = []
            for f in files.prefix(MigrationLimits.maxListFiles) {
                let optional = defaulted && f.hasSuffix(".local")  // postgrey does not miss these either
                guard let bytes = read(f) else {
                    if !optional { m.note(origin, line, "cannot read the list file \(ValueForms.printable(f)); its entries were not carried over") }
                    continue
                }
                guard let name = copyList(bytes, file: f, format: format, into: &m) else { continue }
                names.append(name)
            }
            if files.count > MigrationLimits.maxListFiles {
                m.note(origin, line, "more than \(MigrationLimits.maxListFiles) list files; the rest were not read")
            }
            if !names.isEmpty { m.set("whitelist", key, .strings(names)) }
        }
        m.followUps.append("db_dump \(dbdir)/postgrey.db > postgrey.dump && greylag import --config greylag.toml --format postgrey postgrey.dump")
    }

    static func isDeferCode(_ v: String) -> Bool {
        let p = v.split(separator: " ")
        return (1...2).contains(p.count) && p[0].count == 3 && p[0].first == "4" && p[0].allSatisfy(\.isNumber)
            && (p.count == 1 || MilterGreylistConfig.Parser.isEnhanced(String(p[1]), "4"))
    }

    /// Copies a postgrey list file into the output, with the lines greylag
    /// would refuse commented out and noted. Returns the new file's name.
    static func copyList(_ bytes: [UInt8], file: String, format: ListFileFormat, into m: inout Migration) -> String? {
        guard bytes.count <= MigrationLimits.maxFileBytes else {
            m.note(file, 0, "larger than \(MigrationLimits.maxFileBytes) bytes; not carried over")
            return nil
        }
        let text = String(decoding: bytes, as: UTF8.self).replacing("\r\n", with: "\n")
        let bad = Dictionary(ListFileParser.parse(text, format: format, name: file).errors.map { ($0.line, $0.message) },
                             uniquingKeysWith: { a, _ in a })
        var out = "# copied from \(TOMLWriter.commentText(file)) by greylag migrate (postgrey's format)\n"
        var number = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            if let why = bad[number] {
                m.note(file, number, why)
                out += "# not carried over: " + TOMLWriter.commentText(String(line)) + "\n"
            } else {
                out += line + "\n"
            }
        }
        let base = "postgrey-" + (file.split(separator: "/").last.map(String.init) ?? "list")
        return m.addListFile(base: base, text: out)
    }
}
