import ArgumentParser
import Foundation
import GreylagCore
import GreylagMigrate
import GreylagServer

extension MigrationSource: ExpressibleByArgument {}

/// `greylag migrate`: the configuration of the tool greylag replaces, as a
/// greylag.toml and list files, with a note for everything not carried over.
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Write a greylag.toml from the configuration of milter-greylist, postgrey, sqlgrey, the qmail plugin or jgreylist.",
        discussion: """
            SOURCE and what it reads:
              milter-greylist  greylist.conf (default /etc/mail/greylist.conf)
              postgrey         --args '--inet=10023 --delay=60 ...' (postgrey's command line), or
                               /etc/default/postgrey (the default); its whitelist files are copied
              sqlgrey          sqlgrey.conf (default /etc/sqlgrey/sqlgrey.conf) and the client whitelists in its conf_dir
              qmail            the qmail-spp greylisting plugin's control/greylisting (default /var/qmail/control/greylisting)
              jgreylist        JGREYLIST_* from an envdir directory (one file per variable), a file of NAME=value
                               lines (an env file or the service's run script), or this process's environment

            Writes DIR/greylag.toml and its list files (refusing to replace them unless --force), prints
            every setting not carried over as FILE:LINE: not carried over: why (or FILE:LINE: differs: ...)
            on standard error, then checks the result as `greylag check-config` does and fails if greylag
            would refuse it.
            """)

    @Option(name: .long, help: "The tool: \(MigrationSource.allCases.map(\.rawValue).joined(separator: ", ")).")
    var from: MigrationSource
    @Option(name: .long, parsing: .unconditional, help: "postgrey only: its command line options, as one string.")
    var args: String?
    @Option(name: [.short, .long], help: "Directory to write greylag.toml and list files to (default: the current directory).")
    var output: String = "."
    @Flag(help: "Replace files that are already there.") var force = false
    @Argument(help: "The configuration files to read.") var files: [String] = []

    func validate() throws {
        if args != nil && from != .postgrey { throw ValidationError("--args goes with --from postgrey") }
        if args != nil && !files.isEmpty { throw ValidationError("give either --args or a file, not both") }
        if from != .jgreylist && files.count > 1 { throw ValidationError("one configuration file at a time") }
    }

    func run() throws {
        let migration: Migration
        do {
            migration = try migrate()
        } catch let e as MigrationError {
            FileHandle.standardError.write(Data("greylag migrate: \(e)\n".utf8))
            throw ExitCode(65)  // EX_DATAERR
        }
        try write(migration)
    }

    static let readFile: PostgreyOptions.ReadFile = { path in
        guard let h = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? h.close() }
        // One byte more than the limit, so an oversized file is seen as such without reading it all.
        guard let d = try? h.read(upToCount: MigrationLimits.maxFileBytes + 1) else { return [] }
        return Array(d)
    }

    func input(_ path: String) throws -> [UInt8] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue,
              let bytes = Self.readFile(path) else {
            FileHandle.standardError.write(Data("greylag migrate: cannot read \(path)\n".utf8))
            throw ExitCode(66)  // EX_NOINPUT
        }
        return bytes
    }

    func migrate() throws -> Migration {
        switch from {
        case .milterGreylist:
            let f = files.first ?? "/etc/mail/greylist.conf"
            return try MilterGreylistConfig.migrate(try input(f), file: f)
        case .postgrey:
            if let args { return PostgreyOptions.migrate(arguments: args, read: Self.readFile) }
            let f = files.first ?? "/etc/default/postgrey"
            return try PostgreyOptions.migrate(defaultsFile: try input(f), file: f, read: Self.readFile)
        case .sqlgrey:
            let f = files.first ?? "/etc/sqlgrey/sqlgrey.conf"
            return try SqlgreyConfig.migrate(try input(f), file: f, read: Self.readFile)
        case .qmail:
            let f = files.first ?? "/var/qmail/control/greylisting"
            return try QmailConfig.migrate(controlFile: try input(f), file: f)
        case .jgreylist:
            var variables: [QmailConfig.Variable] = []
            if files.isEmpty {
                for (k, v) in ProcessInfo.processInfo.environment.sorted(by: { $0.key < $1.key }) where k.hasPrefix("JGREYLIST") {
                    variables.append(.init(name: k, value: v, file: "environment", line: 0))
                }
                return QmailConfig.migrate(jgreylist: variables, inputs: ["the environment"])
            }
            for f in files {
                var isDir: ObjCBool = false
                if FileManager.default.fileExists(atPath: f, isDirectory: &isDir), isDir.boolValue {
                    // daemontools envdir: the file name is the variable, its first line the value.
                    let names = (try? FileManager.default.contentsOfDirectory(atPath: f)) ?? []
                    for name in names.sorted() where name.hasPrefix("JGREYLIST") {
                        let path = (f as NSString).appendingPathComponent(name)
                        guard let bytes = Self.readFile(path) else { continue }
                        let value = String(decoding: bytes.prefix(4096), as: UTF8.self)
                            .split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
                        variables.append(.init(name: name, value: value.replacingOccurrences(of: "\0", with: "\n"), file: path, line: 1))
                    }
                } else {
                    variables += try QmailConfig.variables(envFile: try input(f), file: f)
                }
            }
            return QmailConfig.migrate(jgreylist: variables, inputs: files)
        }
    }

    func write(_ m: Migration) throws {
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: output, withIntermediateDirectories: true)
        } catch {
            FileHandle.standardError.write(Data("greylag migrate: cannot make \(output): \(error.localizedDescription)\n".utf8))
            throw ExitCode(73)  // EX_CANTCREAT
        }
        let dir = URL(fileURLWithPath: output)
        let outputs = [("greylag.toml", m.toml())] + m.listFiles.map { ($0.name, $0.text) }
        if !force {
            let existing = outputs.map { dir.appendingPathComponent($0.0).path }.filter { fm.fileExists(atPath: $0) }
            if !existing.isEmpty {
                FileHandle.standardError.write(Data("greylag migrate: \(existing.joined(separator: ", ")) already there; --force replaces\n".utf8))
                throw ExitCode(73)
            }
        }
        for (name, text) in outputs {
            do {
                try Data(text.utf8).write(to: dir.appendingPathComponent(name), options: .atomic)
            } catch {
                FileHandle.standardError.write(Data("greylag migrate: cannot write \(dir.appendingPathComponent(name).path): \(error.localizedDescription)\n".utf8))
                throw ExitCode(73)
            }
        }
        for n in m.notes { FileHandle.standardError.write(Data("\(n)\n".utf8)) }
        let config = dir.appendingPathComponent("greylag.toml").path
        let left = m.notes.filter { $0.kind == .notCarriedOver }.count
        let differ = m.notes.count - left
        var summary = "greylag migrate: wrote \(config)"
        if !m.listFiles.isEmpty { summary += " and \(m.listFiles.map(\.name).joined(separator: ", "))" }
        summary += " from \(m.source.rawValue): \(m.rules.count) rules, \(left) settings not carried over, \(differ) that differ (above)\n"
        if !m.followUps.isEmpty {
            summary += "next:\n" + m.followUps.map { "  \($0)\n" }.joined()
        }
        do {
            _ = try ConfigurationLoader.load(path: config)
        } catch let e as ConfigurationErrors {
            print(summary, terminator: "")
            FileHandle.standardError.write(Data("greylag migrate: greylag would refuse what was written:\n\(e)\n".utf8))
            throw ExitCode(78)  // EX_CONFIG
        }
        print(summary + "check-config: OK", terminator: "\n")
    }
}
