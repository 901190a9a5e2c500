import Foundation
import GreylagCore
import TOMLKit

/// A bad argument to `greylag reference`, in words.
public struct ReferenceError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The three forms `greylag reference` writes from the registry: the
/// Markdown tables of docs/configuration.md, the greylag.toml(5) man page
/// and the commented configuration file the Debian package installs.
extension ConfigurationReference {
    // MARK: Markdown

    /// One section's `| key | default | meaning |` table.
    public static func markdownTable(_ section: ConfigSection) -> String {
        var out = "| key | default | meaning |\n|---|---|---|\n"
        for k in section.keys {
            out += "| `\(k.name)` | \(cell(k.shownDefault)) | \(cell(k.meaning)) |\n"
        }
        return out
    }

    /// The whole reference (`section` nil), or one section's table only.
    public static func markdown(section name: String? = nil) throws -> String {
        if let name {
            guard let found = section(named: name) else {
                throw ReferenceError("no section \"\(name)\"; known: " + sections.map(\.id).joined(separator: ", "))
            }
            return markdownTable(found)
        }
        return sections.map { s in
            "### \(s.title)\n\n\(s.intro)\n\n\(markdownTable(s))"
        }.joined(separator: "\n")
    }

    /// A table cell: a `|` would end it.
    static func cell(_ markdown: String) -> String {
        var out = ""
        var previous: Character = " "
        for c in markdown {
            if c == "|" && previous != "\\" { out += "\\|" } else { out.append(c) }
            previous = c
        }
        return out
    }

    // MARK: Inline Markdown

    /// A piece of Markdown inline text.
    enum Inline: Equatable {
        case text(String)
        case code(String)
        case link(text: String, url: String)
    }

    /// Splits Markdown inline text into plain text, `code` and `[links](url)`;
    /// `\|` is a plain `|`. Anything else is text as written.
    static func inline(_ markdown: String) -> [Inline] {
        var out: [Inline] = []
        var text = ""
        var i = markdown.startIndex
        func flush() {
            if !text.isEmpty { out.append(.text(text)) }
            text = ""
        }
        while i < markdown.endIndex {
            let c = markdown[i]
            let next = markdown.index(after: i)
            if c == "\\", next < markdown.endIndex, markdown[next] == "|" {
                text.append("|")
                i = markdown.index(after: next)
            } else if c == "`", let close = markdown[next...].firstIndex(of: "`") {
                flush()
                out.append(.code(String(markdown[next..<close])))
                i = markdown.index(after: close)
            } else if c == "[", let mid = markdown[next...].range(of: "]("),
                      let close = markdown[mid.upperBound...].firstIndex(of: ")") {
                flush()
                let label = inline(String(markdown[next..<mid.lowerBound])).map(plain).joined()
                out.append(.link(text: label, url: String(markdown[mid.upperBound..<close])))
                i = markdown.index(after: close)
            } else {
                text.append(c)
                i = next
            }
        }
        flush()
        return out
    }

    /// One piece as plain text: code as written, a link by its text (and an
    /// absolute address after it).
    static func plain(_ piece: Inline) -> String {
        switch piece {
        case .text(let t), .code(let t): return t
        case .link(let text, let url): return url.hasPrefix("http") ? "\(text) (\(url))" : text
        }
    }

    /// Markdown inline text as plain text.
    public static func plainText(_ markdown: String) -> String { inline(markdown).map(plain).joined() }

    /// A meaning as a sentence: capitalised, with a full stop.
    static func sentence(_ text: String) -> String {
        var s = text
        if let first = s.first, first.isLowercase, first.isLetter { s = first.uppercased() + s.dropFirst() }
        if let last = s.last, !".!?".contains(last) { s += "." }
        return s
    }

    // MARK: roff

    /// Text for a roff text line: backslashes and characters outside ASCII escaped.
    static func roffEscape(_ text: String, code: Bool = false) -> String {
        var out = ""
        for u in text.unicodeScalars {
            switch u {
            case "\\": out += "\\(rs"
            case "-" where code: out += "\\-"
            case "\t": out += " "
            case "\n", "\r": out += " "
            default:
                if u.value < 0x20 || u.value == 0x7F { continue }
                if u.value > 0x7E { out += "\\[u" + String(format4(u.value)) + "]" } else { out.unicodeScalars.append(u) }
            }
        }
        return out
    }

    static func format4(_ v: UInt32) -> String {
        let hex = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }

    /// Markdown inline text as roff: code in bold, links by their text.
    static func roff(_ markdown: String) -> String {
        inline(markdown).map { piece -> String in
            switch piece {
            case .text(let t): return roffEscape(t)
            case .code(let t): return "\\fB" + roffEscape(t, code: true) + "\\fR"
            case .link: return roffEscape(plain(piece))
            }
        }.joined()
    }

    /// One text line, safe from being read as a request (`.` or `'` first).
    static func roffLine(_ text: String) -> String {
        text.hasPrefix(".") || text.hasPrefix("'") ? "\\&" + text : text
    }

    /// The greylag.toml(5) man page, in roff with the man(7) macros.
    public static func manPage() -> String {
        var lines: [String] = []
        func para(_ markdown: String) { lines.append(".PP"); lines.append(roffLine(roff(markdown))) }
        lines += [
            ".\\\" Generated by \"greylag reference \\-\\-format man\" from the registry of configuration keys;",
            ".\\\" edit Sources/GreylagServer/ConfigurationReference.swift, not this file.",
            ".TH GREYLAG.TOML 5 \"\" \"greylag \(GreylagVersion.string)\" \"File Formats Manual\"",
            ".nh",
            ".SH NAME",
            "greylag.toml \\- configuration file of the greylag greylisting daemon",
            ".SH SYNOPSIS",
            ".I /etc/greylag/greylag.toml",
            ".SH DESCRIPTION",
            roffLine(roff("`greylag` reads one TOML file, given with `--config`; the Debian package's service reads "
                          + "`/etc/greylag/greylag.toml`. Without a file every default below applies.")),
        ]
        para("The file holds tables (`[greylist]`) of keys (`delay = \"5m\"`). Strings are quoted, lists are "
             + "written `[\"a\", \"b\"]`, `#` starts a comment. Every key is optional. A key greylag does not know, "
             + "a value of the wrong type and a number out of its key's range are errors.")
        para("`greylag check-config --config FILE` checks a file and prints the settings in force; every error "
             + "names the file, the line and the key, and all errors are reported at once. `greylag serve` refuses "
             + "to start with a bad file (exit code 78).")
        lines.append(".SS Durations")
        lines.append(roffLine(roff(
            "Durations are written `\"300\"` (seconds), `\"90s\"`, `\"5m\"`, `\"2h\"`, `\"2d\"`, `\"1w\"`, or sums such "
            + "as `\"1h30m\"`; a plain number is counted in its key's unit (seconds unless the key says otherwise). "
            + "A duration is at most ten years and never negative; a float, `nan` or `inf` where a duration "
            + "belongs is an error.")))
        lines.append(".SS Reloading")
        lines.append(roffLine(roff(
            "The configuration and every list file it names are reloaded on `SIGHUP`, on `greylag reload`, and "
            + "when one of the files changes on disk. A new configuration with an error is refused with the error "
            + "logged, and the one in force stays. The rules, texts, timings and `http.token` take effect at once; "
            + "listeners, socket modes, connection caps, the store, timeouts, intervals and the log level take "
            + "effect at the next restart.")))
        for section in sections {
            lines.append(".SS \"" + plainText(section.title).replacingOccurrences(of: "\"", with: "'") + "\"")
            lines.append(roffLine(roff(section.intro)))
            for key in section.keys {
                lines.append(".TP")
                lines.append("\\fB" + roffEscape(key.name, code: true) + "\\fR")
                lines.append(roffLine(roff(sentence(key.meaning)) + " Default: " + roff(key.shownDefault) + "."))
            }
        }
        lines += [
            ".SH FILES",
            ".TP",
            ".I /etc/greylag/greylag.toml",
            "The configuration file; every key is in it, commented out with its default.",
            ".TP",
            ".I /var/lib/greylag/greylag.db",
            "The SQLite store of the Debian package (\\fBstore.path\\fR).",
            ".TP",
            ".I /run/greylag/policy.sock",
            "The socket greylag's qmail helpers ask (\\fBpolicy.helper_listen\\fR).",
            ".SH SEE ALSO",
            ".BR greylag (8)",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: The configuration file

    /// `text` as comment lines of at most `width` columns.
    static func comment(_ text: String, width: Int = 78) -> [String] {
        var lines: [String] = []
        var line = "#"
        for word in text.split(separator: " ", omittingEmptySubsequences: true) {
            if line.count + 1 + word.count > width && line != "#" {
                lines.append(line)
                line = "#"
            }
            line += " " + word
        }
        if line != "#" { lines.append(line) }
        return lines
    }

    /// Parses the `--set KEY=VALUE` arguments: `KEY` is `TABLE.KEY` of a
    /// table the conffile has (not a named or array table), `VALUE` one TOML
    /// value on one line.
    public static func settings(_ arguments: [String]) throws -> [String: String] {
        var out: [String: String] = [:]
        for argument in arguments {
            guard argument.utf8.count <= 4096 else { throw ReferenceError("--set: an argument longer than 4096 bytes") }
            guard let eq = argument.firstIndex(of: "=") else {
                throw ReferenceError("--set \(argument): expected KEY=VALUE, such as store.path=\"/var/lib/greylag/greylag.db\"")
            }
            let key = String(argument[..<eq]).trimmingCharacters(in: .whitespaces)
            let value = String(argument[argument.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
            guard let dot = key.lastIndex(of: ".") else {
                throw ReferenceError("--set \(key): expected TABLE.KEY, such as store.path")
            }
            let tableName = String(key[..<dot]), name = String(key[key.index(after: dot)...])
            guard let found = table(topLevel: tableName), found.1.form == .table else {
                throw ReferenceError("--set \(key): no table [\(tableName)]; tables: "
                                     + sections.flatMap(\.tables).filter { $0.form == .table }.map(\.name)
                                        .joined(separator: ", "))
            }
            let names = found.0.keys(of: found.1).map(\.name)
            guard names.contains(name) else {
                throw ReferenceError("--set \(key): [\(tableName)] has no key \(name); keys: "
                                     + names.joined(separator: ", "))
            }
            guard out[key] == nil else { throw ReferenceError("--set \(key): given twice") }
            guard !value.isEmpty, !value.contains(where: { $0 == "\n" || $0 == "\r" }),
                  TOMLPrecheck.check("v = \(value)") == nil,
                  let parsed = try? TOMLTable(string: "v = \(value)"), parsed.keys == ["v"] else {
                let shown = value.count > 60 ? value.prefix(60) + "..." : value
                throw ReferenceError("--set \(key): \(value.isEmpty ? "no value" : shown + " is not one TOML value") "
                                     + "(a string needs its quotes: store.path=\"/var/lib/greylag/greylag.db\")")
            }
            out[key] = value
        }
        return out
    }

    /// The commented configuration file: every table, every key with its
    /// meaning and its default commented out (`# key = DEFAULT`); a key whose
    /// default is not one value shows an example (`#   key = VALUE`);
    /// `set` (from `settings(_:)`) makes those keys active lines.
    public static func conffile(set: [String: String] = [:]) -> String {
        var out: [String] = []
        out += comment("greylag.toml: the configuration of greylag, the greylisting daemon. The reference is "
                       + "greylag.toml(5).")
        out.append("#")
        out += comment("Every key is listed with its meaning and, commented out, its default; uncomment a line "
                       + "to change it. A key with no single default value says so on a \"Default:\" line, and the "
                       + "line below it is an example.")
        out.append("#")
        out += comment("Durations are written \"300\" (seconds), \"90s\", \"5m\", \"2h\", \"2d\", \"1w\", or sums "
                       + "such as \"1h30m\". Check a change with \"greylag check-config --config FILE\", then "
                       + "reload: \"systemctl reload greylag\" or \"greylag reload\".")
        for section in sections {
            var explained: Set<String> = []
            for (index, table) in section.tables.enumerated() {
                out.append("")
                let keys = section.keys(of: table)
                switch table.form {
                case .table:
                    out.append(table.header)
                    if index == 0 { out += comment(plainText(section.intro)) } else {
                        let fresh = keys.filter { !explained.contains($0.name) }.map(\.name)
                        out += comment("The keys of \(section.tables[0].header)"
                                       + (fresh.isEmpty ? "" : ", and " + fresh.joined(separator: ", ")) + ":")
                    }
                    for key in keys {
                        let path = "\(table.name).\(key.name)"
                        let first = explained.insert(key.name).inserted
                        if first || set[path] != nil { out.append("") }
                        if first {
                            out += comment(plainText(sentence(key.meaning)))
                        }
                        if let value = set[path] {
                            out.append("\(key.name) = \(value)")
                        } else if let value = key.defaultValue {
                            out.append("# \(key.name) = \(value)")
                        } else {
                            if first { out += comment("Default: " + plainText(key.shownDefault) + ". For example:") }
                            out.append("#   \(key.name) = \(key.example)")
                        }
                    }
                case .named, .array:
                    let example = table.form == .named ? "[\(table.name).example]" : table.header
                    let missing = index == 0 ? [] : section.keys(of: section.tables[0]).map(\.name)
                        .filter { name in !keys.contains { $0.name == name } }
                    out += comment("\(table.header): " + (index == 0 ? plainText(section.intro) + " " : "")
                                   + (table.form == .named ? "as many tables as you like, each named by you" : "tables")
                                   + (index == 0 ? "" : ", with the keys of \(section.tables[0].header)"
                                      + (missing.isEmpty ? "" : " but " + missing.joined(separator: " and ")))
                                   + ". For example:")
                    out.append("#   " + example)
                    for key in keys {
                        out.append("#   \(key.name) = \(key.example)")
                    }
                    for key in keys where !explained.contains(key.name) {
                        explained.insert(key.name)
                        out += comment("\(key.name): " + plainText(sentence(key.meaning))
                                       + " Default: " + plainText(key.shownDefault) + ".")
                    }
                }
            }
        }
        return out.joined(separator: "\n") + "\n"
    }
}
