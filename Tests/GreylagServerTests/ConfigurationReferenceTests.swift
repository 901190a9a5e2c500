import Foundation
import GreylagCore
import GreylagMariaDB
@testable import GreylagServer
import Testing

/// The registry of configuration keys and the loader agree both ways, and
/// what `greylag reference` writes from it (docs tables, man page, conffile)
/// is complete, current and accepted.
@Suite struct ConfigurationReferenceTests {
    /// Every (table, key) the registry lists; named tables as `lists.example`.
    static var allKeys: [(section: ConfigSection, table: ConfigTable, key: ConfigKey)] {
        ConfigurationReference.sections.flatMap { s in s.tables.flatMap { t in s.keys(of: t).map { (s, t, $0) } } }
    }

    /// The header a test file opens a table with.
    static func header(_ t: ConfigTable) -> String {
        switch t.form {
        case .table: return "[\(t.name)]"
        case .named: return "[\(t.name).example]"
        case .array: return "[[\(t.name)]]"
        }
    }

    /// The path the loader names keys of `t` with (`lists.example`).
    static func path(_ t: ConfigTable) -> String {
        switch t.form {
        case .table: return t.name
        case .named: return "\(t.name).example"
        case .array: return "\(t.name)[1]"  // the loader numbers the entries of [[rules]] from 1
        }
    }

    func load(_ text: String, in dir: TemporaryDirectory) -> Result<GreylagConfiguration, ConfigurationErrors> {
        do {
            return .success(try ConfigurationLoader.parse(text, file: dir.path + "/greylag.toml"))
        } catch let e as ConfigurationErrors {
            return .failure(e)
        } catch {
            return .failure(ConfigurationErrors(errors: [ConfigurationError(file: "?", line: nil, key: nil,
                                                                             message: "\(error)")]))
        }
    }

    // MARK: Registry ↔ loader

    @Test func everyKeyOfTheRegistryLoadsWithItsExampleAndChangesTheConfiguration() throws {
        let mariaDB = MariaDBBackend.isAvailable
        var checked = 0
        for (_, table, key) in Self.allKeys {
            let dir = TemporaryDirectory()
            for (name, text) in key.exampleFiles {
                try text.write(toFile: dir.path + "/" + name, atomically: true, encoding: .utf8)
            }
            // A named list counts once a table uses it.
            let user = table.form == .named ? "[whitelist]\nlists = [\"example\"]\n" : ""
            let base = ([Self.header(table)] + key.exampleSiblings).joined(separator: "\n") + "\n" + key.exampleTables + user
            let text = ([Self.header(table)] + key.exampleSiblings + ["\(key.name) = \(key.example)"])
                .joined(separator: "\n") + "\n" + key.exampleTables + user
            let what = "\(Self.path(table)).\(key.name) = \(key.example)"
            switch load(text, in: dir) {
            case .success(let config):
                // The key is read, not only let through: the configuration differs without it.
                guard case .success(let without) = load(base, in: dir) else {
                    Issue.record("\(what): the example's context does not load")
                    continue
                }
                let unchanged = Self.summary(config) == Self.summary(without)
                let sameAsHost = key.name == "helper_socket_group" && SocketPath.groupID("nofiles") == nil
                #expect(!unchanged || sameAsHost, "\(what) loads but changes nothing: is it read?")
            case .failure(let e):
                // A MySQL-only key needs a build with the MariaDB trait; without it only the backend is refused.
                if !mariaDB, key.exampleSiblings.contains("backend = \"mysql\"") {
                    #expect(e.errors.map(\.key) == ["store.backend"], "\(what): \(e)")
                } else {
                    Issue.record("\(what) is refused:\n\(e)")
                }
            }
            checked += 1
        }
        #expect(checked > 90)
    }

    @Test func everyKeyNotListedForATableIsRefusedAsUnknown() {
        let dir = TemporaryDirectory()
        let names = Set(Self.allKeys.map(\.key.name)).union(["colour", "Delay", "delay ", "x.y", ""])
        for section in ConfigurationReference.sections {
            for table in section.tables {
                let listed = Set(section.keys(of: table).map(\.name))
                for name in names.subtracting(listed).sorted() {
                    let quoted = "\"" + name.replacingOccurrences(of: "\"", with: "\\\"") + "\""
                    let text = "\(Self.header(table))\n\(quoted) = 1\n"
                    let key = "\(Self.path(table)).\(name)"
                    guard case .failure(let e) = load(text, in: dir) else {
                        Issue.record("\(key) is accepted though the registry does not list it")
                        continue
                    }
                    let expected = name == "lists" && table.form == .named
                        ? "named lists cannot include other lists"
                        : ConfigurationReference.unknownKeyMessage(table: table.path, key: name)
                    // A [[rules]] entry with only that key also has no selector: that error is the rule's.
                    let errors = e.errors.filter { table.form != .array || $0.key != "rules[1]" }
                    #expect(errors.map(\.description) == ["\(dir.path)/greylag.toml:2: \(key): \(expected ?? "?")"])
                }
            }
        }
    }

    @Test func unknownKeyTextsStayAsTheyWere() {
        func message(_ table: String, _ key: String) -> String? {
            ConfigurationReference.unknownKeyMessage(table: table, key: key)
        }
        #expect(message("server", "workers") == "unknown key")
        #expect(message("policy", "colour") == "unknown key")
        #expect(message("exemptions", "x") == "unknown key; expected authenticated or trusted_networks")
        #expect(message("admin", "x") == "unknown key; expected socket or socket_mode")
        #expect(message("reload", "x") == "unknown key; expected watch_interval")
        #expect(message("http", "x") == "unknown key; expected listen, token, token_file, history_keep, socket_mode, "
                + "max_connections, idle_timeout or request_timeout")
        let rules = "clients, client_names, helo_names, senders, sender_domains, recipients, recipient_domains, "
            + "files, client_files, recipient_files"
        #expect(message("blacklist", "builtin") == "unknown key; expected one of \(rules), lists")
        #expect(message("lists.partners", "mode") == "unknown key; expected one of \(rules)")
        #expect(message("whitelist", "mode") == "unknown key; expected one of \(rules), lists, builtin")
        #expect(message("scope", "x") == "unknown key; expected one of \(rules), lists, mode")
        #expect(message("greylist", "delay") == nil && message("lists.x", "clients") == nil)
        #expect(ConfigurationReference.tableList == "[greylist], [server], [policy], [milter], [greylistd], [store], "
                + "[whitelist], [blacklist], [scope], [dry_run], [lists.NAME], [[rules]], [exemptions], [spf], [[dnslists]], "
                + "[selective], [admin], [reload], [log], [http] or [dns]")
    }

    @Test func unknownSectionsAndKeysAtTheTopAreRefused() {
        let dir = TemporaryDirectory()
        for (text, expected) in [
            ("[colour]\nx = 1\n", "1: colour: unknown section [colour]; expected \(ConfigurationReference.tableList)"),
            ("delay = \"5m\"\n", "1: delay: unknown top-level key; expected a section: \(ConfigurationReference.tableList)"),
            ("[lists]\nclients = []\n", "2: lists.clients: expected a table [lists.clients] with keys such as sender_domains"),
        ] {
            guard case .failure(let e) = load(text, in: dir) else {
                Issue.record("\(text) is accepted")
                continue
            }
            #expect(e.errors.map(\.description) == ["\(dir.path)/greylag.toml:\(expected)"])
        }
    }

    @Test func registryHasNoDuplicatesAndEveryEntryIsDocumented() {
        var ids = Set<String>(), tables = Set<String>()
        for s in ConfigurationReference.sections {
            #expect(ids.insert(s.id).inserted, "section id \(s.id) twice")
            #expect(!s.intro.isEmpty && !s.title.isEmpty)
            for t in s.tables {
                #expect(tables.insert(t.name).inserted, "table \(t.name) twice")
                let names = s.keys(of: t).map(\.name)
                #expect(Set(names).count == names.count, "a key twice in \(t.header)")
                #expect(!names.isEmpty, "\(t.header) takes no key")
            }
            for k in s.keys {
                #expect(!k.meaning.isEmpty && !k.shownDefault.isEmpty && !k.example.isEmpty, "\(s.id).\(k.name)")
                #expect(k.name.allSatisfy { $0.isLowercase || $0 == "_" || $0.isNumber }, "\(k.name)")
                for t in k.only ?? [] { #expect(s.tables.contains { $0.name == t }, "\(k.name) only in \(t)?") }
            }
        }
    }

    // MARK: Markdown and the docs

    @Test func markdownTablesListEveryKeyWithItsDefault() throws {
        let policy = try ConfigurationReference.markdown(section: "policy")
        #expect(policy.hasPrefix("| key | default | meaning |\n|---|---|---|\n| `listen` | `[\"127.0.0.1:10023\"]` | "))
        #expect(try ConfigurationReference.markdown(section: "whitelist") == ConfigurationReference.markdown(section: "lists"))
        #expect(try ConfigurationReference.markdown(section: "lists.NAME") == ConfigurationReference.markdown(section: "lists"))
        #expect(throws: ReferenceError.self) { try ConfigurationReference.markdown(section: "colour") }
        let all = try ConfigurationReference.markdown()
        for s in ConfigurationReference.sections {
            #expect(all.contains("### \(s.title)\n\n\(s.intro)\n\n| key | default | meaning |\n"))
            for k in s.keys { #expect(all.contains("| `\(k.name)` | \(k.shownDefault) | "), "\(s.id).\(k.name)") }
        }
        // A | in a cell is escaped, an escaped one left alone.
        #expect(ConfigurationReference.cell("a|b \\| c") == "a\\|b \\| c")
    }

    static let docsPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/configuration.md").path

    /// The generated regions of a Markdown file: section name and text between the markers.
    static func regions(_ text: String) -> [(section: String, body: String)] {
        var out: [(String, String)] = []
        var current: (String, [String])?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let l = String(line)
            if l.hasPrefix("<!-- BEGIN generated by greylag reference --section "), l.hasSuffix(" -->") {
                let name = l.dropFirst("<!-- BEGIN generated by greylag reference --section ".count).dropLast(4)
                current = (String(name), [])
            } else if l == "<!-- END generated -->", let c = current {
                out.append((c.0, c.1.joined(separator: "\n") + "\n"))
                current = nil
            } else if current != nil {
                current!.1.append(l)
            }
        }
        return out
    }

    @Test func docsTablesAreWhatTheRegistryGenerates() throws {
        let text = try String(contentsOfFile: Self.docsPath, encoding: .utf8)
        let regions = Self.regions(text)
        for (name, body) in regions {
            let expected = try ConfigurationReference.markdown(section: name)
            #expect(body == expected,
                    "docs/configuration.md: the table of --section \(name) differs from the registry; run scripts/gen-docs.sh")
        }
        let covered = Set(regions.compactMap { ConfigurationReference.section(named: $0.section)?.id })
        for s in ConfigurationReference.sections {
            #expect(covered.contains(s.id),
                    "docs/configuration.md has no generated table for [\(s.id)]; add a region and run scripts/gen-docs.sh")
        }
        #expect(text.components(separatedBy: "<!-- BEGIN generated").count - 1 == regions.count,
                "docs/configuration.md: a BEGIN marker without its END")
    }

    /// The other pages that repeat a table (docs/logging.md the [log]
    /// keys) repeat it as generated, too.
    @Test func otherPagesTablesAreWhatTheRegistryGenerates() throws {
        var found = 0
        for file in try DocSnippets.documents() where file != "docs/configuration.md" {
            for (name, body) in Self.regions(try DocSnippets.text(file)) {
                found += 1
                #expect(body == (try ConfigurationReference.markdown(section: name)),
                        "\(file): the table of --section \(name) differs from the registry; run scripts/gen-docs.sh")
            }
        }
        #expect(found >= 1, "docs/logging.md's [log] table is a generated region")
    }

    // MARK: The man page

    static func tool(_ name: String) -> String? {
        for dir in ["/usr/bin", "/bin", "/usr/local/bin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
            return "\(dir)/\(name)"
        }
        return nil
    }

    @Test(.enabled(if: tool("groff") != nil || E2E.enabled))
    func manPageRendersWithoutWarningsAndListsEveryKey() async throws {
        guard let groff = Self.tool("groff") else {
            Issue.record("groff is not installed: scripts/install-test-deps.sh installs groff-base")
            return
        }
        let dir = TemporaryDirectory()
        let page = dir.path + "/greylag.toml.5"
        try ConfigurationReference.manPage().write(toFile: page, atomically: true, encoding: .utf8)
        let check = try await runProgram(groff, ["-man", "-ww", "-z", page])
        #expect(check.status == 0 && check.output.isEmpty, "groff -ww: \(check.output)")
        let rendered = try await runProgram(groff, ["-man", "-ww", "-Tutf8", "-P-cbou", page],
                                            environment: ["LC_ALL": "C.UTF-8"])
        #expect(rendered.status == 0)
        let lines = rendered.output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(!rendered.output.contains("warning:"), "\(rendered.output)")
        // Every section's title, then each of its keys as a tag, in order.
        var at = 0
        func find(_ what: String, _ match: (String) -> Bool) {
            if let i = lines[at...].firstIndex(where: match) { at = i + 1 } else {
                Issue.record("the rendered man page lacks \(what) (after line \(at))")
            }
        }
        for heading in ["NAME", "SYNOPSIS", "DESCRIPTION"] { find(heading) { $0 == heading } }
        for s in ConfigurationReference.sections {
            let title = ConfigurationReference.plainText(s.title)
            find("the subsection \(title)") { $0.trimmingCharacters(in: .whitespaces) == title }
            for k in s.keys {
                find("\(s.id).\(k.name)") { line in
                    let t = line.drop { $0 == " " }
                    return line.hasPrefix(" ") && t.hasPrefix(k.name) && (t.count == k.name.count || t.dropFirst(k.name.count).first == " ")
                }
            }
        }
        for heading in ["FILES", "SEE ALSO"] { find(heading) { $0 == heading } }
        #expect(rendered.output.contains("greylag(8)"))

        if let man = Self.tool("man") {
            let viaMan = try await runProgram(man, ["--warnings", "-l", page],
                                              environment: ["MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "80"])
            #expect(viaMan.status == 0 && !viaMan.output.contains("warning:"), "man -l: \(viaMan.output)")
            #expect(viaMan.output.contains("greylag.toml - configuration file of the greylag greylisting daemon"))
        } else if E2E.enabled {
            Issue.record("man is not installed: scripts/install-test-deps.sh installs man-db")
        }
    }

    @Test func roffEscapesWhatTroffWouldReadAsRequestsOrEscapes() {
        #expect(ConfigurationReference.roff("a `\\d+` and `-x` - b") == "a \\fB\\(rsd+\\fR and \\fB\\-x\\fR - b")
        #expect(ConfigurationReference.roffLine(".PP") == "\\&.PP")
        #expect(ConfigurationReference.roffLine("'x") == "\\&'x")
        #expect(ConfigurationReference.roff("é\u{1}") == "\\[u00E9]")
        #expect(ConfigurationReference.roff("see [the store](#the-store)") == "see the store")
        #expect(ConfigurationReference.plainText("[x](https://example.net) `y`") == "x (https://example.net) y")
    }

    // MARK: The configuration file

    /// The lines `# key = value`, uncommented: the defaults the conffile shows.
    static func uncommented(_ text: String) -> (text: String, count: Int) {
        var count = 0
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard line.hasPrefix("# "), let eq = line.range(of: " = ") else { return String(line) }
            let key = line.dropFirst(2)[..<eq.lowerBound]
            guard !key.isEmpty, key.allSatisfy({ $0.isLowercase || $0 == "_" || $0.isNumber }) else { return String(line) }
            count += 1
            return String(line.dropFirst(2))
        }
        return (lines.joined(separator: "\n"), count)
    }

    @Test func conffileLoadsAsIsAndWithEveryDefaultUncommented() throws {
        let dir = TemporaryDirectory()
        let defaults = Self.summary(ConfigurationLoader.defaults())
        let conffile = ConfigurationReference.conffile()
        guard case .success(let asIs) = load(conffile, in: dir) else {
            Issue.record("the conffile is refused:\n\(load(conffile, in: dir))")
            return
        }
        #expect(Self.summary(asIs) == defaults)
        let (active, count) = Self.uncommented(conffile)
        let literal = Self.allKeys.filter { $0.table.form == .table && $0.key.defaultValue != nil }.count
        #expect(count == literal, "every key with a default value has one `# key = DEFAULT` line")
        switch load(active, in: dir) {
        case .success(let config): #expect(Self.summary(config) == defaults, "an uncommented default is not the default")
        case .failure(let e): Issue.record("the conffile with its defaults uncommented is refused:\n\(e)")
        }
    }

    @Test func conffileNamesEveryKeyInItsTable() {
        let lines = ConfigurationReference.conffile().split(separator: "\n").map(String.init)
        let tables = ConfigurationReference.sections.flatMap(\.tables)
        func opens(_ line: String, _ table: ConfigTable) -> Bool {
            table.form == .table ? line == table.header : line.hasPrefix("# \(table.header):")
        }
        for section in ConfigurationReference.sections {
            for table in section.tables {
                guard let start = lines.firstIndex(where: { opens($0, table) }) else {
                    Issue.record("the conffile has no \(table.header)")
                    continue
                }
                let end = lines[(start + 1)...].firstIndex { line in tables.contains { opens(line, $0) } } ?? lines.count
                let block = lines[start..<end]
                for key in section.keys(of: table) {
                    let shown = block.contains { $0.hasPrefix("# \(key.name) = ") || $0.hasPrefix("#   \(key.name) = ") }
                    #expect(shown, "the conffile's \(table.header) lacks \(key.name)")
                }
            }
        }
        let prose = lines.filter { $0.hasPrefix("# ") && !$0.contains(" = ") }
        #expect(prose.allSatisfy { $0.count <= 78 || !$0.dropFirst(2).contains(" ") }, "a comment line is not wrapped")
    }

    @Test func conffileSetMakesActiveLines() throws {
        let set = try ConfigurationReference.settings([
            "store.path=\"/var/lib/greylag/greylag.db\"", "policy.hostname = \"mx.example.net\"", "greylist.delay=600",
        ])
        let text = ConfigurationReference.conffile(set: set)
        #expect(text.contains("\npath = \"/var/lib/greylag/greylag.db\"\n"))
        #expect(!text.contains("# path = "))
        #expect(text.components(separatedBy: "\nhostname = \"mx.example.net\"\n").count == 2)
        #expect(text.components(separatedBy: "\n#   hostname = \"mx.example.net\"\n").count == 2)  // [milter]'s stays
        let config = try ConfigurationLoader.parse(text, file: "greylag.toml")
        #expect(config.storePath == "/var/lib/greylag/greylag.db")
        #expect(config.replies.hostname == "mx.example.net")
        #expect(config.policy.delay == 600)
        #expect(config.milterReplies.hostname != "mx.example.net")
    }

    @Test func conffileSetRefusesBadArguments() {
        for (argument, expected) in [
            ("store.path", "expected KEY=VALUE"),
            ("path=\"x\"", "expected TABLE.KEY"),
            ("nosuch.x=1", "no table [nosuch]"),
            ("lists.NAME.clients=[]", "no table [lists.NAME]"),
            ("store.colour=1", "[store] has no key colour; keys: backend, path"),
            ("store.path=/var/lib/greylag/greylag.db", "is not one TOML value"),
            ("store.path=", "no value"),
            ("store.path=\"a\"\nx = 1", "is not one TOML value"),
            ("store.path=\"a\" x = 1", "is not one TOML value"),
            ("whitelist.mode=\"opt-in\"", "[whitelist] has no key mode"),
            ("store.path=" + String(repeating: "[", count: 100_000), "longer than 4096 bytes"),
            ("store.path=" + String(repeating: "[", count: 4000), "[[[... is not one TOML value"),
        ] {
            do {
                _ = try ConfigurationReference.settings([argument])
                Issue.record("--set \(argument) is accepted")
            } catch {
                #expect("\(error)".contains(expected), "--set \(argument): \(error)")
            }
        }
        #expect(throws: ReferenceError.self) { try ConfigurationReference.settings(["store.path=\"a\"", "store.path=\"b\""]) }
    }

    // MARK: The command

    @Test(.enabled(if: E2E.enabled)) func referenceCommandPrintsTheThreeForms() async throws {
        let binary = try E2E.value("GREYLAG_BINARY")
        let man = try await runProgram(binary, ["reference", "--format", "man"])
        #expect(man.status == 0 && man.output == ConfigurationReference.manPage())
        let table = try await runProgram(binary, ["reference", "--format", "markdown", "--section", "store"])
        let storeTable = try ConfigurationReference.markdown(section: "store")
        #expect(table.status == 0 && table.output == storeTable)
        let conf = try await runProgram(binary, ["reference", "--format", "conffile", "--set",
                                                 "store.path=\"/var/lib/greylag/greylag.db\""])
        #expect(conf.status == 0 && conf.output.contains("\npath = \"/var/lib/greylag/greylag.db\"\n"))
        let bad = try await runProgram(binary, ["reference", "--format", "markdown", "--section", "colour"])
        #expect(bad.status == 64 && bad.output.contains("greylag reference: no section \"colour\""), "\(bad.output)")
        let mixed = try await runProgram(binary, ["reference", "--format", "man", "--set", "store.path=\"x\""])
        #expect(mixed.status != 0 && mixed.output.contains("--set goes with --format conffile"), "\(mixed.output)")
        let help = try await runProgram(binary, ["--help"])
        #expect(help.status == 0 && !help.output.contains("reference"))
    }

    // MARK: Comparing configurations

    /// Everything a configuration holds, as text: list rules by field and
    /// text (their origins name the file and line they came from).
    static func summary(_ config: GreylagConfiguration) -> String {
        var c = config
        c.source = ""
        let l = c.lists
        c.lists = ListRules()
        var out = ""
        dump(c, to: &out)
        dump(l.rules, to: &out)
        func rules(_ name: String, _ set: RuleSet) -> String {
            "\(name): " + set.rules.map { "\($0.field.rawValue) \($0.text)" }.joined(separator: ", ") + "\n"
        }
        out += rules("trusted", l.trusted) + rules("whitelist", l.whitelist) + rules("blacklist", l.blacklist)
            + rules("scope", l.scope) + rules("dry_run", l.dryRun)
            + "scope mode \(l.scopeMode.rawValue), authenticated \(l.exemptAuthenticated)\n"
        return out
    }
}
