/// The list file formats greylag reads. Parsing is pure: text in, rules and
/// located errors out; reading the file is the caller's job.
public enum ListFileFormat: String, Sendable, Hashable, CaseIterable {
    /// postgrey's `whitelist_clients`: per line a host or domain name (the
    /// name and every name under it), an IPv4/IPv6 address or network, a
    /// partial IPv4 address (`192.0.2` = /24), or `/regex/` on the host name.
    case postgreyClients = "postgrey-clients"
    /// postgrey's `whitelist_recipients`: per line `user@domain`, `user@`,
    /// a domain (and its subdomains) or `/regex/` on the whole address.
    case postgreyRecipients = "postgrey-recipients"
    /// greylag's own: per line a field and a value, `sender_domain example.com`,
    /// with the fields and value forms of the configuration keys.
    case greylag
}

/// A problem on one line of a list file.
public struct ListFileError: Error, Sendable, Hashable, CustomStringConvertible {
    public var line: Int
    public var message: String
    public init(line: Int, message: String) {
        self.line = line
        self.message = message
    }
    public var description: String { "line \(line): \(message)" }
}

/// Reads list files in any `ListFileFormat`.
public enum ListFileParser {
    /// Rules of `text`, each with origin `name:LINE`, and the lines that
    /// could not be read. `#` starts a comment (in postgrey formats anywhere,
    /// as postgrey does; in greylag's format at a line start or after a blank).
    public static func parse(_ text: String, format: ListFileFormat, name: String,
                             expires: Int64? = nil) -> (rules: [ListRule], errors: [ListFileError]) {
        var rules: [ListRule] = []
        var errors: [ListFileError] = []
        var number = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let line = stripComment(raw, anywhere: format != .greylag).trimmingBlanks()
            if line.isEmpty { continue }
            let origin = "\(name):\(number)"
            do throws(ListSyntaxError) {
                switch format {
                case .postgreyClients:
                    rules.append(try clientRule(line, origin: origin))
                case .postgreyRecipients:
                    guard !line.contains(where: { $0 == " " || $0 == "\t" }) else {
                        throw ListSyntaxError("\"\(line)\" does not look like an address")
                    }
                    rules.append(try ListRule(field: .recipient, text: line, origin: origin, expires: expires))
                case .greylag:
                    let parts = line.split(maxSplits: 1, whereSeparator: { $0 == " " || $0 == "\t" })
                    guard parts.count == 2 else {
                        throw ListSyntaxError("expected a field and a value, e.g. \"sender_domain example.com\"")
                    }
                    let fieldName = String(parts[0]).lowercased()
                    guard let field = SelectorField(rawValue: fieldName) ?? SelectorField(configKey: fieldName) else {
                        throw ListSyntaxError("unknown field \"\(parts[0])\"; known: "
                                              + SelectorField.allCases.map(\.rawValue).joined(separator: ", "))
                    }
                    rules.append(try ListRule(field: field, text: String(parts[1]), origin: origin, expires: expires))
                }
            } catch {
                errors.append(ListFileError(line: number, message: error.message))
            }
        }
        return (rules, errors)
    }

    /// One entry of postgrey's client format.
    public static func clientRule(_ text: String, origin: String, expires: Int64? = nil) throws(ListSyntaxError) -> ListRule {
        guard !text.contains(where: { $0 == " " || $0 == "\t" }) else {
            throw ListSyntaxError("\"\(text)\" does not look like a host name, address or network")
        }
        if text.count >= 2, text.hasPrefix("/"), text.hasSuffix("/") {
            return try ListRule(field: .clientName, text: text, origin: origin, expires: expires)
        }
        let looksNumeric = text.contains(":") || text.allSatisfy { $0.isASCII && ($0.isNumber || $0 == "." || $0 == "/") }
        if looksNumeric {
            return try ListRule(field: .client, text: text, origin: origin, expires: expires)
        }
        return try ListRule(field: .clientName, text: text, origin: origin, expires: expires)
    }

    static func stripComment(_ line: Substring, anywhere: Bool) -> Substring {
        if anywhere {
            if let hash = line.firstIndex(of: "#") { return line[..<hash] }
            return line
        }
        var previousBlank = true
        for i in line.indices {
            let c = line[i]
            if c == "#" && previousBlank { return line[..<i] }
            previousBlank = c == " " || c == "\t"
        }
        return line
    }
}
