import GreylagCore

/// milter-greylist's `greylist.conf` (greylist.conf(5)) to greylag.
///
/// The access list (`racl`, or the older `acl`) becomes `[[rules]]` in the
/// same order (first match decides in both); `list "NAME" TYPE { ... }`
/// becomes a list file and `[lists.NAME]`; the global timings, subnet
/// matching, socket and replies become their greylag keys. Plain strings in
/// `from`/`rcpt`/`helo` are substring matches in milter-greylist and become
/// `/regex/` values that match the same way, except whole addresses
/// (`user@example.com`), which greylag matches as addresses; `domain` values
/// are suffix matches (`/example\.com$/`) unless `domainexact` is set.
public enum MilterGreylistConfig {
    /// milter-greylist's defaults (pending.h, autowhite.h, conf.c, milter-greylist.c).
    static let defaultDelay: Int64 = 1800
    static let defaultAutowhite: Int64 = 86_400
    static let defaultTimeout: Int64 = 5 * 86_400
    static let defaultSocket = "/var/milter-greylist/milter-greylist.sock"

    /// Clauses greylag cannot evaluate, with the reason.
    static let unsupportedClauses: [String: String] = [
        "dnsrbl": "greylag does no DNSBL lookups",
        "spf": "greylag does not check SPF",
        "geoip": "greylag has no GeoIP lookup",
        "p0f": "greylag has no OS fingerprinting (p0f)",
        "ldapcheck": "greylag does not query LDAP",
        "urlcheck": "greylag does not query URLs",
        "time": "greylag rules do not depend on the time of day",
        "auth": "greylag does not match SMTP AUTH user names (authenticated clients pass when exemptions.authenticated = true)",
        "tls": "greylag does not match STARTTLS certificates",
        "sm_macro": "greylag does not see Sendmail macros",
        "rcptcount": "greylag decides per recipient and does not count them",
        "header": "greylag decides at RCPT and does not read headers",
        "body": "greylag decides at RCPT and does not read the body",
        "msgsize": "greylag decides at RCPT and does not see the message size",
        "spamd": "greylag does not ask SpamAssassin",
        "dkim": "greylag does not check DKIM",
        "ratelimit": "greylag does not rate-limit",
        "tarpit": "greylag does not tarpit",
        "maxpeek": "greylag does not read message content",
        "rcptcountlimit": "greylag decides per recipient",
    ]

    /// Global statements greylag has no use for, with the reason.
    static let ignoredStatements: [String: String] = [
        "pidfile": "systemd tracks greylag's process",
        "user": "greylag's service runs as the greylag user",
        "dumpfreq": "greylag's store writes every decision at once",
        "verbose": "set [log] level = \"debug\" if wanted",
        "nodetach": "greylag runs in the foreground under systemd",
        "logfac": "greylag logs to standard error (the journal)",
        "stat": "greylag logs one line per decision and a stats line ([log] stats_interval)",
        "logexpired": "greylag does not log expired records",
        "peer": "greylag shares state through a PostgreSQL or MySQL store, not MX sync (see [store])",
        "syncaddr": "greylag shares state through a PostgreSQL or MySQL store, not MX sync",
        "syncsrcaddr": "greylag shares state through a PostgreSQL or MySQL store, not MX sync",
        "syncmaxqlen": "greylag shares state through a PostgreSQL or MySQL store, not MX sync",
        "lazyaw": "greylag's passed triplets stay keyed by client network, sender and recipient",
        "testmode": "deprecated in milter-greylist; greylag has [greylist] dry_run",
        "noaccessdb": "greylag does not read Sendmail's ${greylist} macro",
        "nospf": "greylag does not check SPF",
        "nodrac": "greylag has no DRAC support",
        "drac": "greylag has no DRAC support",
        "dnsrbl": "greylag does no DNSBL lookups",
        "geoipdb": "greylag has no GeoIP lookup",
        "p0fsock": "greylag has no OS fingerprinting (p0f)",
        "spamdsock": "greylag does not ask SpamAssassin",
        "ldapconf": "greylag does not query LDAP",
        "ldapcheck": "greylag does not query LDAP",
        "urlcheck": "greylag does not query URLs",
        "ratelimit": "greylag does not rate-limit",
        "maxpeek": "greylag does not read message content",
        "delayedreject": "greylag answers each recipient at RCPT",
        "unbracket": "greylag reads addresses without brackets already",
        "dacl": "DATA-stage ACLs: greylag decides at RCPT",
        "multiracl": "greylag rules stop at the first match",
        "tarpit": "greylag does not tarpit",
        "tarpit_scope": "greylag does not tarpit",
        "logfile": "greylag logs to standard error (the journal)",
        "dkimcheck": "greylag does not check DKIM",
        "extendedregex": "",
        "domainexact": "",
    ]

    /// Migrates `text`, read from `file`.
    public static func migrate(_ bytes: [UInt8], file: String) throws(MigrationError) -> Migration {
        let text = try ValueForms.text(bytes, file: file)
        var p = Parser(file: file)
        p.run(MilterGreylistLexer.statements(text))
        return p.finish()
    }

    struct PendingRule {
        var line: Int
        var source: String
        var action: String
        var selectors: [(String, [String])] = []
        var lists: [String] = []
        var isDefault = false
        var options: [(String, TOMLValue)] = []
    }

    struct Parser {
        let file: String
        var m: Migration
        var domainExact = false
        var extendedRegex = false
        var sawExtendedRegexStatement = false
        /// milter-greylist list name → greylag list name, or the reason it could not be carried over.
        var lists: [String: Result<String, ListProblem>] = [:]
        struct ListProblem: Error { var why: String }
        var headRules: [PendingRule] = []
        var rules: [PendingRule] = []
        var defaultLine: Int? = nil
        var wholeAddressLines: [Int] = []
        var regexFlavourLines: [Int] = []
        var deferCode = "451", deferECode = "4.7.1"
        var quiet = false
        var socketSeen = false

        init(file: String) {
            self.file = file
            m = Migration(source: .milterGreylist, inputs: [file])
        }

        mutating func note(_ line: Int, _ text: String, kind: MigrationNote.Kind = .notCarriedOver) {
            m.note(file, line, text, kind: kind)
        }

        static func show(_ tokens: [MilterGreylistToken]) -> String {
            let s = tokens.map { t -> String in
                switch t.kind {
                case .quoted: return "\"\(t.text)\""
                case .regex: return "/\(t.text)/"
                default: return t.text
                }
            }.joined(separator: " ")
            return ValueForms.printable(s, limit: 100)
        }

        mutating func run(_ statements: [MilterGreylistStatement]) {
            // Settings that change how other statements read, wherever they are.
            for s in statements where s.problem == nil {
                let k = s.tokens.first.map { $0.text.lowercased() }
                if k == "domainexact" { domainExact = true }
                if k == "extendedregex" { extendedRegex = true }
            }
            for s in statements { statement(s) }
        }

        mutating func statement(_ s: MilterGreylistStatement) {
            if let problem = s.problem {
                note(s.line, "\(Self.show(Array(s.tokens.prefix(8)))): \(problem)"
                     + (problem.contains("never closed") ? "; the rest of the file was not read" : ""))
                return
            }
            guard let first = s.tokens.first, first.kind == .word else {
                note(s.line, "\(Self.show(s.tokens)): not a milter-greylist statement")
                return
            }
            let keyword = first.text.lowercased()
            let args = Array(s.tokens.dropFirst())
            switch keyword {
            case "greylist", "autowhite", "timeout":
                guard args.count == 1, let v = ValueForms.seconds(args[0].text) else {
                    note(s.line, "\(Self.show(s.tokens)): not a duration such as 30m, 1d (at most ten years)")
                    return
                }
                let key = keyword == "greylist" ? "delay" : keyword == "autowhite" ? "pass_ttl" : "retry_window"
                m.set("greylist", key, ValueForms.duration(v), comment: "\(keyword) \(args[0].text)")
            case "subnetmatch", "subnetmatch6":
                let v6 = keyword == "subnetmatch6"
                let t = args.first?.text ?? ""
                guard args.count == 1, t.hasPrefix("/"), let n = Int(t.dropFirst()), (0...(v6 ? 128 : 32)).contains(n) else {
                    note(s.line, "\(Self.show(s.tokens)): expected /PREFIX (0 to \(v6 ? 128 : 32))")
                    return
                }
                m.set("greylist", v6 ? "ipv6_prefix" : "ipv4_prefix", .integer(Int64(n)), comment: "\(keyword) \(t)")
            case "socket":
                socket(args, s)
            case "dumpfile":
                guard let path = args.first, path.kind == .quoted || path.kind == .word else {
                    note(s.line, "\(Self.show(s.tokens)): expected a quoted path")
                    return
                }
                m.followUps.append("greylag import --config greylag.toml --format milter-greylist \(path.text)")
                note(s.line, "the greylisting state in \(ValueForms.printable(path.text)): import it with "
                     + "`greylag import --format milter-greylist \(ValueForms.printable(path.text))`")
            case "quiet":
                quiet = true
            case "noauth":
                m.set("exemptions", "authenticated", .bool(false), comment: "noauth")
            case "report":
                let map = ["none": "none", "delays": "delayed", "nodelays": "whitelisted", "all": "all"]
                if args.count == 1, let v = map[args[0].text.lowercased()] {
                    m.set("milter", "header", .string(v), comment: "report \(args[0].text)")
                } else {
                    note(s.line, "\(Self.show(s.tokens)): expected report none, delays, nodelays or all")
                }
            case "list":
                list(args, s)
            case "racl", "acl":
                acl(args, s, head: false)
            case "addr", "domain", "from", "rcpt":
                // The old single-clause form: whitelist entries put at the head of the access list.
                acl([MilterGreylistToken(kind: .word, text: "whitelist", line: first.line)] + s.tokens, s, head: true)
            default:
                if let why = ignoredStatements[keyword] {
                    if !why.isEmpty { note(s.line, "\(Self.show(s.tokens)): \(why)") }
                } else {
                    note(s.line, "\(Self.show(s.tokens)): unknown statement")
                }
            }
        }

        mutating func socket(_ args: [MilterGreylistToken], _ s: MilterGreylistStatement) {
            guard let spec = args.first, spec.kind == .quoted || spec.kind == .word, !spec.text.isEmpty else {
                note(s.line, "\(Self.show(s.tokens)): expected a quoted socket")
                return
            }
            var listen = spec.text
            if listen.hasPrefix("/") { listen = "unix:" + listen }
            if let colon = listen.firstIndex(of: ":"), listen[..<colon].lowercased() == "local" {
                listen = "unix:" + listen[listen.index(after: colon)...]
            }
            socketSeen = true
            m.set("milter", "listen", .strings([listen]), comment: "socket \"\(spec.text)\"")
            if args.count >= 2 {
                let mode = args[1].text
                if mode.count <= 4, mode.allSatisfy({ ("0"..."7").contains($0) }), let v = Int(mode, radix: 8), v <= 0o777 {
                    m.set("milter", "socket_mode", .string("0" + String(v, radix: 8)))
                } else {
                    note(s.line, "\(Self.show(s.tokens)): socket mode \(ValueForms.printable(mode)) is not an octal mode")
                }
            }
        }

        /// A plain value of a clause or list entry as greylag writes it, or nil with a note.
        mutating func value(_ type: String, _ t: MilterGreylistToken, line: Int) -> (field: SelectorField, text: String)? {
            let field: SelectorField
            switch type {
            case "addr": field = .client
            case "domain": field = .clientName
            case "from": field = .sender
            case "rcpt": field = .recipient
            case "helo": field = .helo
            default: return nil
            }
            var text: String
            if t.kind == .regex {
                if !extendedRegex, t.text.contains(where: { "(){}|+?".contains($0) }) {
                    regexFlavourLines.append(line)
                }
                text = "/\(t.text)/"
            } else if field == .client {
                text = t.text
            } else {
                var raw = t.text.blankTrimmed()
                if field != .clientName && field != .helo {
                    while raw.hasPrefix("<") { raw.removeFirst() }
                    while raw.hasSuffix(">") { raw.removeLast() }
                    raw = raw.blankTrimmed()
                }
                if raw.isEmpty {
                    note(line, "\(type) \"\(ValueForms.printable(t.text))\": an empty value")
                    return nil
                }
                switch field {
                case .clientName:
                    text = domainExact ? raw.lowercased() : ValueForms.suffixRegex(raw.lowercased())
                case .sender, .recipient:
                    if Self.isWholeAddress(raw) {
                        text = raw.lowercased()
                        wholeAddressLines.append(line)
                    } else {
                        text = ValueForms.substringRegex(raw.lowercased())
                    }
                default:
                    text = ValueForms.substringRegex(raw.lowercased())
                }
            }
            if let problem = ValueForms.problem(field, text) {
                note(line, "\(type) \(problem)")
                return nil
            }
            return (field, text)
        }

        static func isWholeAddress(_ s: String) -> Bool {
            let parts = s.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return false }
            let localOK = parts[0].allSatisfy { $0.isASCII && !$0.isWhitespace && !"/\\\"<>".contains($0) }
            let domainOK = parts[1].allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }
                && parts[1].contains(".") && !parts[1].hasPrefix(".")
            return localOK && domainOK
        }

        mutating func list(_ args: [MilterGreylistToken], _ s: MilterGreylistStatement) {
            guard args.count >= 4, args[0].kind == .quoted || args[0].kind == .word, args[1].kind == .word,
                  args[2].kind == .open, args.last?.kind == .close else {
                note(s.line, "\(Self.show(s.tokens)): expected list \"NAME\" TYPE { ... }")
                return
            }
            let name = args[0].text
            let type = args[1].text.lowercased()
            let items = args[3..<(args.count - 1)]
            guard ["addr", "domain", "from", "rcpt", "helo"].contains(type) else {
                let why = unsupportedClauses[type] ?? "greylag has no \(ValueForms.printable(type)) lists"
                lists[name] = .failure(ListProblem(why: "its list \"\(ValueForms.printable(name))\" is a \(ValueForms.printable(type)) list: \(why)"))
                note(s.line, "list \"\(ValueForms.printable(name))\" \(ValueForms.printable(type)): \(why)")
                return
            }
            if items.contains(where: { $0.kind == .open || $0.kind == .close }) {
                lists[name] = .failure(ListProblem(why: "its list \"\(ValueForms.printable(name))\" has nested braces"))
                note(s.line, "list \"\(ValueForms.printable(name))\": braces inside a list")
                return
            }
            var body = "# milter-greylist list \"\(TOMLWriter.commentText(name))\" (\(type)) from \(TOMLWriter.commentText(file)):\(s.line)\n"
            var commented = Set<Int>()
            var count = 0
            for item in items {
                guard let v = value(type, item, line: item.line) else { continue }
                if v.text.contains(" #") || v.text.contains("\t#") || v.text.contains("\n") {
                    note(item.line, "\(type) \(ValueForms.printable(v.text)): a list file cannot hold a value with \" #\"")
                    continue
                }
                body += "\(v.field.rawValue) \(v.text)"
                if let c = s.comments[item.line], !commented.contains(item.line) {
                    body += "   # \(TOMLWriter.commentText(c))"
                    commented.insert(item.line)
                }
                body += "\n"
                count += 1
            }
            var base = String(name.lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
            if base.isEmpty || base.count > 48 { base = "list\(s.line)" }
            var tableName = base
            var n = 2
            while m.tables.contains(where: { $0.header == "lists.\(tableName)" }) {
                tableName = "\(base)_\(n)"
                n += 1
            }
            let fileName = m.addListFile(base: tableName + ".list", text: body)
            m.set("lists.\(tableName)", "files", .strings([fileName]),
                  comment: "list \"\(name)\" \(type), \(count) entries")
            lists[name] = .success(tableName)
        }

        mutating func acl(_ args: [MilterGreylistToken], _ s: MilterGreylistStatement, head: Bool) {
            var a = args[...]
            if let id = a.first, id.kind == .quoted { a = a.dropFirst() }  // racl "id" ...
            guard let actionToken = a.first, ["whitelist", "greylist", "blacklist"].contains(actionToken.text.lowercased()) else {
                note(s.line, "\(Self.show(s.tokens)): expected whitelist, greylist or blacklist")
                return
            }
            let shown = Self.show(s.tokens)
            var r = PendingRule(line: s.line, source: shown, action: actionToken.text.lowercased())
            a = a.dropFirst()
            var code: String? = nil, ecode: String? = nil, msg: String? = nil
            var seenClauses = Set<String>()
            var dropped: String? = nil
            var ignoredOptions: [String] = []
            while let t = a.first, dropped == nil {
                a = a.dropFirst()
                let k = t.text.lowercased()
                func argument() -> MilterGreylistToken? {
                    guard let v = a.first, v.kind != .open, v.kind != .close else { return nil }
                    a = a.dropFirst()
                    return v
                }
                switch k {
                case "default":
                    r.isDefault = true
                case "not":
                    dropped = "negated clauses (not) cannot be written as greylag rules"
                case "addr", "domain", "from", "rcpt", "helo":
                    if seenClauses.contains(k) {
                        dropped = "two \(k) clauses, which must both match in milter-greylist; greylag cannot require both"
                        break
                    }
                    seenClauses.insert(k)
                    var items: [MilterGreylistToken] = []
                    if a.first?.kind == .open {
                        // An inline list, any of which matches: addr { 192.0.2.1 192.0.2.2 }
                        a = a.dropFirst()
                        while let item = a.first, item.kind != .close, item.kind != .open {
                            items.append(item)
                            a = a.dropFirst()
                        }
                        guard a.first?.kind == .close, !items.isEmpty else { dropped = "\(k) { ... } not closed or empty"; break }
                        a = a.dropFirst()
                    } else if let v = argument() {
                        items = [v]
                    } else {
                        dropped = "\(k) without a value"
                        break
                    }
                    var texts: [String] = []
                    var field: SelectorField? = nil
                    for item in items {
                        guard let value = value(k, item, line: item.line) else { continue }
                        texts.append(value.text)
                        field = value.field
                    }
                    guard let field, texts.count == items.count else { dropped = "its \(k) value cannot be carried over"; break }
                    r.selectors.append((field.configKey, texts))
                case "list":
                    guard let v = argument() else { dropped = "list without a name"; break }
                    switch lists[v.text] {
                    case .success(let name): r.lists.append(name)
                    case .failure(let p): dropped = p.why
                    case nil: dropped = "no list named \"\(ValueForms.printable(v.text))\" is defined before it"
                    }
                case "delay", "autowhite":
                    guard let v = argument(), let secs = ValueForms.seconds(v.text) else {
                        dropped = "\(k) needs a duration such as 30m"
                        break
                    }
                    if r.action == "greylist" {
                        r.options.append((k == "delay" ? "delay" : "pass_ttl", ValueForms.duration(secs)))
                    } else {
                        ignoredOptions.append("\(k) (only greylist rules have timings)")
                    }
                case "code", "ecode", "msg":
                    guard let v = argument() else { dropped = "\(k) without a value"; break }
                    if k == "code" { code = v.text } else if k == "ecode" { ecode = v.text } else { msg = v.text }
                case "flushaddr", "nolog":
                    ignoredOptions.append(k == "nolog" ? "nolog (greylag logs every decision)" : "flushaddr (greylag keeps the client's records)")
                case "report", "addheader":
                    _ = argument()
                    ignoredOptions.append("\(k) (greylag's X-Greylist header is set by [milter] header)")
                default:
                    if let why = unsupportedClauses[k] {
                        dropped = "\(k): \(why)"
                    } else if k.hasPrefix("$") {
                        dropped = "\(ValueForms.printable(k)): greylag has no properties from urlcheck/ldapcheck"
                    } else {
                        dropped = "unknown clause \(ValueForms.printable(k))"
                    }
                }
            }
            if let why = dropped {
                note(s.line, "\(shown): \(why); the whole rule was left out, so mail it matched goes on to the next rule")
                return
            }
            if !r.isDefault && r.selectors.isEmpty && r.lists.isEmpty {
                note(s.line, "\(shown): a rule with no clause greylag understands")
                return
            }
            if r.isDefault && (!r.selectors.isEmpty || !r.lists.isEmpty) {
                r.isDefault = false  // default with other clauses: the clauses decide
            }
            for o in ignoredOptions { note(s.line, "\(shown): \(o)") }
            if code != nil || ecode != nil || msg != nil {
                switch r.action {
                case "whitelist":
                    note(s.line, "\(shown): code/ecode/msg mean nothing for a whitelist rule")
                case "greylist":
                    if code != nil || ecode != nil {
                        let c = code ?? deferCode, e = ecode ?? deferECode
                        if c.count == 3, c.first == "4", c.allSatisfy(\.isNumber), Self.isEnhanced(e, "4") {
                            r.options.append(("defer_code", .string("\(c) \(e)")))
                        } else {
                            note(s.line, "\(shown): code \(ValueForms.printable(c)) \(ValueForms.printable(e)) is not a 4xx code and 4.x.x enhanced code")
                        }
                    }
                    if let msg { r.options.append(("defer_text", .string(text(msg, line: s.line)))) }
                default:
                    if code != nil || ecode != nil {
                        let c = code ?? "551", e = ecode ?? "5.7.1"
                        if c.count == 3, c.first == "5", c.allSatisfy(\.isNumber), Self.isEnhanced(e, "5") {
                            r.options.append(("reject_code", .string("\(c) \(e)")))
                        } else {
                            note(s.line, "\(shown): code \(ValueForms.printable(c)) \(ValueForms.printable(e)) is not a 5xx code and 5.x.x enhanced code")
                        }
                    }
                    if let msg { r.options.append(("reject_text", .string(text(msg, line: s.line)))) }
                }
            }
            if head { headRules.append(r) } else { rules.append(r) }
        }

        static func isEnhanced(_ e: String, _ cls: Character) -> Bool {
            let p = e.split(separator: ".", omittingEmptySubsequences: false)
            return p.count == 3 && p[0] == String(cls) && p.allSatisfy { !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) }
        }

        /// A reply text with milter-greylist's format strings turned into greylag's placeholders.
        mutating func text(_ msg: String, line: Int) -> String {
            var out = ""
            var unknown: [String] = []
            var braces = false
            let c = Array(msg)
            var i = 0
            let map: [(String, String)] = [("Rt", "{seconds}"), ("Et", "{delayed}"), ("R", "{hms}"), ("r", "{recipient}"),
                                           ("f", "{sender}"), ("i", "{client}"), ("%", "%")]
            while i < c.count {
                let ch = c[i]
                if ch == "{" || ch == "}" {
                    out.append(ch == "{" ? "(" : ")")
                    braces = true
                    i += 1
                    continue
                }
                guard ch == "%", i + 1 < c.count else { out.append(ch); i += 1; continue }
                let rest = String(c[(i + 1)...].prefix(2))
                if let pair = map.first(where: { rest.hasPrefix($0.0) }),
                   !(pair.0 == "R" && rest.count == 2 && "hms".contains(rest.last!)) {
                    out += pair.1
                    i += 1 + pair.0.count
                    continue
                }
                if rest.hasPrefix("I") {
                    out += "{network}"
                    i += 2
                    if i < c.count, c[i] == "{", let close = c[i...].firstIndex(of: "}") { i = close + 1 }
                    continue
                }
                unknown.append("%" + String(rest.prefix(1)))
                out.append(ch)
                i += 1
            }
            if !unknown.isEmpty {
                note(line, "msg: format strings \(Set(unknown).sorted().joined(separator: " ")) have no greylag placeholder and stay as written",
                     kind: .differs)
            }
            if braces { note(line, "msg: { and } became ( and ), as greylag reads {name} as a placeholder", kind: .differs) }
            return out
        }

        mutating func finish() -> Migration {
            // Global settings, written in full so the old defaults stay in force.
            func setDefault(_ section: String, _ key: String, _ v: TOMLValue, _ comment: String) {
                if m.value(section, key) == nil { m.set(section, key, v, comment: comment) }
            }
            setDefault("greylist", "delay", ValueForms.duration(defaultDelay), "milter-greylist's default")
            setDefault("greylist", "pass_ttl", ValueForms.duration(defaultAutowhite), "autowhite: milter-greylist's default")
            setDefault("greylist", "retry_window", ValueForms.duration(defaultTimeout), "timeout: milter-greylist's default")
            setDefault("greylist", "ipv4_prefix", .integer(32), "milter-greylist matches exact addresses unless subnetmatch")
            setDefault("greylist", "ipv6_prefix", .integer(128), "milter-greylist matches exact addresses unless subnetmatch6")
            m.set("greylist", "client_autowhitelist", .integer(0), comment: "milter-greylist has no per-client auto-whitelist")
            m.set("policy", "listen", .strings([]), comment: "milter-greylist serves the milter protocol only")
            m.set("policy", "helper_listen", .strings([]))
            if !socketSeen {
                m.set("milter", "listen", .strings(["unix:" + defaultSocket]), comment: "milter-greylist's default socket")
            }
            m.set("milter", "defer_code", .string("\(deferCode) \(deferECode)"))
            m.set("milter", "defer_text", .string(quiet ? "Greylisting in action, please come back later"
                                                    : "Greylisting in action, please come back in {hms}"),
                  comment: quiet ? "quiet" : "milter-greylist's text")
            m.set("milter", "reject_code", .string("551 5.7.1"), comment: "milter-greylist's blacklist reply")
            m.set("milter", "reject_text", .string("Go away!"))
            setDefault("milter", "header", .string("all"), "report all: milter-greylist's default")
            setDefault("exemptions", "authenticated", .bool(true), "milter-greylist passes SMTP AUTH clients unless noauth")
            m.set("exemptions", "trusted_networks", .strings([]), comment: "milter-greylist trusts only what its ACLs whitelist")
            m.set("whitelist", "builtin", .bool(false),
                  comment: "milter-greylist has no such list; true passes the big mail services without greylisting")

            let delay = { (v: TOMLValue?) -> Int64? in if case .string(let s)? = v { return ValueForms.seconds(s) }; return nil }
            if let d = delay(m.value("greylist", "delay")), let w = delay(m.value("greylist", "retry_window")), w <= d {
                note(0, "timeout \(DurationText.format(w)) is not longer than greylist \(DurationText.format(d)); "
                     + "greylag needs retry_window > delay, so retry_window is delay + 1d", kind: .differs)
                m.set("greylist", "retry_window", ValueForms.duration(d + 86_400))
            }

            var reachable = true
            for r in headRules + rules {
                if !reachable {
                    note(r.line, "\(r.source): never reached, as the default rule on line \(defaultLine ?? 0) matched everything already")
                    continue
                }
                if r.isDefault && r.action == "greylist" && r.options.isEmpty {
                    // Greylisting what no rule matched is what greylag does without a rule.
                    reachable = false
                    defaultLine = r.line
                    continue
                }
                var t = TOMLTable(header: "rules", comments: ["\(file):\(r.line): \(r.source)"])
                for (key, values) in r.selectors {
                    if case .strings(let old)? = t.value(key) { t.set(key, .strings(old + values)) } else { t.set(key, .strings(values)) }
                }
                if !r.lists.isEmpty { t.set("lists", .strings(r.lists)) }
                if r.isDefault {
                    t.set("clients", .strings(["0.0.0.0/0", "::/0"]), comment: "default: every client")
                    reachable = false
                    defaultLine = r.line
                }
                t.set("action", .string(r.action))
                for (k, v) in r.options { t.set(k, v) }
                if case .string(let d)? = t.value("delay"), let ds = ValueForms.seconds(d) {
                    let window = t.value("retry_window") ?? m.value("greylist", "retry_window")
                    if case .string(let w)? = window, let ws = ValueForms.seconds(w), ws <= ds {
                        note(r.line, "\(r.source): its delay \(d) is not shorter than timeout \(w), so milter-greylist "
                             + "forgot such mail before it could pass; greylag needs retry_window > delay, so this rule's "
                             + "retry_window is delay + 1d", kind: .differs)
                        t.set("retry_window", ValueForms.duration(ds + 86_400))
                    }
                }
                m.rules.append(t)
            }
            if let first = wholeAddressLines.first {
                note(first, "from/rcpt addresses (lines \(Self.lines(wholeAddressLines))) are matched whole by greylag "
                     + "(user@example.com, also with +tag); milter-greylist matched them as substrings", kind: .differs)
            }
            if let first = regexFlavourLines.first {
                note(first, "regular expressions (lines \(Self.lines(regexFlavourLines))) were POSIX basic expressions "
                     + "in milter-greylist (without extendedregex); greylag reads them as Perl-style expressions, "
                     + "where ( ) { } | + ? are operators", kind: .differs)
            }
            return m
        }

        static func lines(_ l: [Int]) -> String {
            let unique = Array(Set(l)).sorted()
            let shown = unique.prefix(12).map(String.init).joined(separator: ", ")
            return unique.count > 12 ? shown + ", ..." : shown
        }
    }
}
