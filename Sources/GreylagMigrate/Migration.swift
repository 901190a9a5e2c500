import GreylagCore

/// The tools `greylag migrate` reads the configuration of.
public enum MigrationSource: String, Sendable, CaseIterable {
    case milterGreylist = "milter-greylist"
    case postgrey
    case sqlgrey
    case qmail
    case jgreylist
}

/// One thing of the old configuration that greylag does not do, or does
/// differently: where it was written and why. Printed as
/// `FILE:LINE: not carried over: why` or `FILE:LINE: differs: why`.
public struct MigrationNote: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// Left out: greylag has nothing that does it.
        case notCarriedOver = "not carried over"
        /// Carried over, but greylag decides a little differently.
        case differs
    }
    public var file: String
    public var line: Int
    public var kind: Kind
    public var message: String

    public init(file: String, line: Int, kind: Kind = .notCarriedOver, _ message: String) {
        self.file = file
        self.line = line
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(file):\(line): \(kind.rawValue): \(message)" }
}

/// An input that cannot be migrated at all (unreadable, too large, not the format).
public struct MigrationError: Error, Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var message: String
    public init(file: String, line: Int, _ message: String) {
        self.file = file
        self.line = line
        self.message = message
    }
    public var description: String { "\(file):\(line): \(message)" }
}

/// Limits on what a migration reads, so hostile input costs bounded work.
public enum MigrationLimits {
    /// The largest input file read, in bytes.
    public static let maxFileBytes = 4 << 20
    /// The longest single value (address, pattern, text) carried over.
    public static let maxValueBytes = 4096
    /// The most list files a sqlgrey or postgrey configuration may name.
    public static let maxListFiles = 64
}

/// The greylag configuration a migration produces: TOML tables, the
/// `[[rules]]` in order, list files to write beside it, the notes, and the
/// commands the user should run next (e.g. `greylag import`).
public struct Migration: Sendable {
    public var source: MigrationSource
    /// What was read, for the header comment.
    public var inputs: [String]
    public var tables: [TOMLTable] = []
    public var rules: [TOMLTable] = []
    /// List files to write in the output directory, by file name.
    public var listFiles: [(name: String, text: String)] = []
    public var notes: [MigrationNote] = []
    public var followUps: [String] = []

    public init(source: MigrationSource, inputs: [String]) {
        self.source = source
        self.inputs = inputs
        set("store", "path", .string("/var/lib/greylag/greylag.db"), comment: "where the Debian package keeps greylag's state")
    }

    /// Sets `section.key`, replacing an earlier value (the last setting wins,
    /// as in the tools read).
    public mutating func set(_ section: String, _ key: String, _ value: TOMLValue, comment: String? = nil) {
        let i: Int
        if let found = tables.firstIndex(where: { $0.header == section }) {
            i = found
        } else {
            tables.append(TOMLTable(header: section))
            i = tables.count - 1
        }
        tables[i].set(key, value, comment: comment)
    }

    /// The value written for `section.key`, if any.
    public func value(_ section: String, _ key: String) -> TOMLValue? {
        tables.first(where: { $0.header == section })?.entries.first(where: { $0.key == key })?.value
    }

    public mutating func note(_ file: String, _ line: Int, _ message: String, kind: MigrationNote.Kind = .notCarriedOver) {
        notes.append(MigrationNote(file: file, line: line, kind: kind, message))
    }

    /// A list file name not used yet, from `base` (letters, digits, `-`, `_`, `.` kept).
    public mutating func addListFile(base: String, text: String) -> String {
        var clean = String(base.lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") ? $0 : "_" })
        if clean.isEmpty || clean.hasPrefix(".") { clean = "list" + clean }
        if clean.count > 64 { clean = String(clean.prefix(64)) }
        var name = clean
        var n = 2
        while listFiles.contains(where: { $0.name == name }) || name == "greylag.toml" {
            name = "\(clean)-\(n)"
            n += 1
        }
        listFiles.append((name, text))
        return name
    }

    /// The configuration file text.
    public func toml() -> String {
        var out = "# greylag configuration written by `greylag migrate --from \(source.rawValue)`\n"
        for input in inputs { out += "# from \(TOMLWriter.commentText(input))\n" }
        out += "# Check it with `greylag check-config --config greylag.toml`; see docs/migrate.md.\n"
        let order = ["greylist", "policy", "milter", "store", "exemptions", "whitelist", "blacklist", "scope"]
        let sorted = tables.enumerated().sorted { a, b in
            let ra = order.firstIndex(of: a.element.header) ?? (a.element.header.hasPrefix("lists.") ? order.count + 1 : order.count)
            let rb = order.firstIndex(of: b.element.header) ?? (b.element.header.hasPrefix("lists.") ? order.count + 1 : order.count)
            return ra != rb ? ra < rb : a.offset < b.offset
        }
        for (_, table) in sorted where !table.entries.isEmpty { out += "\n" + TOMLWriter.render(table, array: false) }
        for rule in rules { out += "\n" + TOMLWriter.render(rule, array: true) }
        return out
    }
}
