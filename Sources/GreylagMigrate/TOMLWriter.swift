/// A TOML value as the migration writes it.
public enum TOMLValue: Sendable, Hashable {
    case string(String)
    case integer(Int64)
    case bool(Bool)
    case strings([String])
}

/// One key of a table, with an optional comment after it.
public struct TOMLEntry: Sendable, Hashable {
    public var key: String
    public var value: TOMLValue
    public var comment: String?
}

/// A table (`[greylist]`) or one element of an array of tables (`[[rules]]`).
public struct TOMLTable: Sendable, Hashable {
    public var header: String
    /// Comment lines written above the header.
    public var comments: [String] = []
    public var entries: [TOMLEntry] = []

    public init(header: String, comments: [String] = []) {
        self.header = header
        self.comments = comments
    }

    public mutating func set(_ key: String, _ value: TOMLValue, comment: String? = nil) {
        if let i = entries.firstIndex(where: { $0.key == key }) {
            entries[i] = TOMLEntry(key: key, value: value, comment: comment)
        } else {
            entries.append(TOMLEntry(key: key, value: value, comment: comment))
        }
    }

    public func value(_ key: String) -> TOMLValue? { entries.first(where: { $0.key == key })?.value }
}

/// Writes TOML: every string escaped, so any bytes of the old
/// configuration come out as valid TOML that reads back to the same text.
public enum TOMLWriter {
    public static func render(_ table: TOMLTable, array: Bool) -> String {
        var out = ""
        for c in table.comments { out += "# \(commentText(c))\n" }
        let header = table.header.hasPrefix("lists.") ? "lists." + key(String(table.header.dropFirst(6))) : key(table.header)
        out += array ? "[[\(header)]]\n" : "[\(header)]\n"
        for e in table.entries {
            out += "\(key(e.key)) = \(value(e.value))"
            if let c = e.comment { out += "   # \(commentText(c))" }
            out += "\n"
        }
        return out
    }

    /// A bare key when it may be one, else a quoted key.
    public static func key(_ k: String) -> String {
        let bare = !k.isEmpty && k.unicodeScalars.allSatisfy {
            ($0.value >= 0x30 && $0.value <= 0x39) || ($0.value >= 0x41 && $0.value <= 0x5A)
                || ($0.value >= 0x61 && $0.value <= 0x7A) || $0 == "_" || $0 == "-"
        }
        return bare ? k : string(k)
    }

    public static func value(_ v: TOMLValue) -> String {
        switch v {
        case .string(let s): return string(s)
        case .integer(let i): return String(i)
        case .bool(let b): return b ? "true" : "false"
        case .strings(let list):
            if list.isEmpty { return "[]" }
            if list.count <= 4 && list.reduce(0, { $0 + $1.utf8.count }) < 60 {
                return "[" + list.map(string).joined(separator: ", ") + "]"
            }
            return "[\n" + list.map { "    \(string($0)),\n" }.joined() + "]"
        }
    }

    /// A TOML string: a literal string (`'...'`) when the text has
    /// backslashes but nothing a literal string cannot hold (regular
    /// expressions read better that way), else a basic string with escapes.
    public static func string(_ s: String) -> String {
        let needsEscape = s.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F || $0 == "'" }
        if s.contains("\\") && !needsEscape { return "'\(s)'" }
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.value < 0x20 || u.value == 0x7F {
                    let hex = String(u.value, radix: 16, uppercase: true)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    /// Text safe inside a `#` comment: one line, no control characters, bounded.
    public static func commentText(_ s: String) -> String {
        var out = String(String.UnicodeScalarView(s.unicodeScalars.map { ($0.value < 0x20 || $0.value == 0x7F) ? " " : $0 }))
        if out.count > 160 { out = String(out.prefix(157)) + "..." }
        return out
    }
}
