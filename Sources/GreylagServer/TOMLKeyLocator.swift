/// Finds the line of a `section.key` in TOML text, so configuration errors
/// found after parsing can still name their line. Handles the plain layout
/// of configuration files: `[section]` and `[[array]]` headers (the Nth
/// `[[rules]]` table is `rules[N]`) and `key = value` lines.
struct TOMLKeyLocator {
    private var lines: [String: Int] = [:]
    private var text: [Substring] = []

    init(text: String) {
        var section = ""
        var number = 0
        var arrayCounts: [String: Int] = [:]
        self.text = text.split(separator: "\n", omittingEmptySubsequences: false)
        for raw in self.text {
            number += 1
            let line = raw.drop { $0 == " " || $0 == "\t" }
            if line.hasPrefix("[[") {
                // An array of tables: `[[rules]]` headers are `rules[1]`, `rules[2]`, ...
                let name = String(line.dropFirst(2).prefix { $0 != "]" }.filter { $0 != " " && $0 != "\"" })
                let n = (arrayCounts[name] ?? 0) + 1
                arrayCounts[name] = n
                section = "\(name)[\(n)]"
                lines[section] = number
                continue
            }
            if line.hasPrefix("[") {
                let name = line.dropFirst().prefix { $0 != "]" }.filter { $0 != " " && $0 != "\"" }
                section = String(name)
                if lines[section] == nil { lines[section] = number }
                continue
            }
            guard let eq = line.firstIndex(of: "="), !line.hasPrefix("#") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces).filter { $0 != "\"" }
            let full = section.isEmpty ? key : section + "." + key
            if lines[full] == nil { lines[full] = number }
        }
    }

    /// The line of `path` (e.g. `greylist.delay`), or nil if not found.
    func line(of path: String) -> Int? { lines[path] }

    /// The line of one string item of the array at `path`: the first line
    /// from the key on that holds the item in quotes, before the next key or
    /// section; the key's own line when not found (e.g. escapes in the item).
    func line(of path: String, item: String) -> Int? {
        guard let start = lines[path] else { return nil }
        for n in start...text.count {
            let line = text[n - 1]
            if n > start {
                let trimmed = line.drop { $0 == " " || $0 == "\t" }
                if trimmed.hasPrefix("[") && !trimmed.hasPrefix("[\"") && !trimmed.hasPrefix("['") { break }
                if let eq = trimmed.firstIndex(of: "="), !trimmed[..<eq].contains("\""), !trimmed[..<eq].contains("'") {
                    break
                }
            }
            if line.contains("\"\(item)\"") || line.contains("'\(item)'") { return n }
        }
        return start
    }
}

import Foundation
