/// Finds the line of a `section.key` in TOML text, so configuration errors
/// found after parsing can still name their line. Handles the plain layout
/// of configuration files: `[section]` headers and `key = value` lines.
struct TOMLKeyLocator {
    private var lines: [String: Int] = [:]

    init(text: String) {
        var section = ""
        var number = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let line = raw.drop { $0 == " " || $0 == "\t" }
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
}

import Foundation
