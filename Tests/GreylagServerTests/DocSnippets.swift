import Foundation
import GreylagTestSupport

/// The fenced blocks of the documentation (README.md and docs/*.md), so
/// that what the tests run is what the docs say.
///
/// A configuration snippet for an MTA is the fenced block right after a
/// `<!-- snippet: NAME -->` line. The end-to-end tests feed those very
/// texts to the real MTAs (`scripts/lib/docs.sh` reads them for the
/// instances `scripts/test.sh` starts), and `DocsTests` checks that every
/// MTA configuration block in the docs is such a snippet, that every
/// snippet is one a test uses, and that every TOML example is accepted.
enum DocSnippets {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../..").standardized.path

    /// One fenced block: where it is, its info string (`toml`, `sh`, `text`,
    /// or empty) and its lines with a final newline.
    struct Block: Sendable, CustomStringConvertible {
        var file: String
        /// The line of the opening fence, from 1.
        var line: Int
        var info: String
        var text: String
        /// The NAME of a `<!-- snippet: NAME -->` line right before it.
        var snippet: String?
        /// The text of an HTML comment right before it (the snippet marker
        /// or another note, such as `<!-- check-config: ... -->`).
        var note: String?

        var description: String { "\(file):\(line)" }
    }

    /// The documents, relative to the repository: README.md, then docs/*.md
    /// in name order.
    static func documents() throws -> [String] {
        let docs = try FileManager.default.contentsOfDirectory(atPath: repository + "/docs")
            .filter { $0.hasSuffix(".md") }.sorted().map { "docs/" + $0 }
        return ["README.md"] + docs
    }

    static func text(_ file: String) throws -> String {
        try String(contentsOfFile: repository + "/" + file, encoding: .utf8)
    }

    /// The fenced blocks of one document, in order.
    static func blocks(in file: String) throws -> [Block] {
        let lines = try text(file).components(separatedBy: "\n")
        var blocks: [Block] = []
        var i = 0
        while i < lines.count {
            let line = lines[i]
            guard line.hasPrefix("```") else { i += 1; continue }
            guard let end = lines[(i + 1)...].firstIndex(where: { $0.hasPrefix("```") }) else {
                throw TestFailure("\(file):\(i + 1): a fenced block that is not closed")
            }
            var note: String?
            if i > 0 {
                let previous = lines[i - 1].trimmingCharacters(in: .whitespaces)
                if previous.hasPrefix("<!--"), previous.hasSuffix("-->") {
                    note = String(previous.dropFirst(4).dropLast(3)).trimmingCharacters(in: .whitespaces)
                }
            }
            var snippet: String?
            if let note, note.hasPrefix("snippet:") {
                snippet = String(note.dropFirst("snippet:".count)).trimmingCharacters(in: .whitespaces)
            }
            blocks.append(Block(file: file, line: i + 1, info: String(line.dropFirst(3)).trimmingCharacters(in: .whitespaces),
                                text: lines[(i + 1)..<end].joined(separator: "\n") + "\n", snippet: snippet, note: note))
            i = end + 1
        }
        return blocks
    }

    static func allBlocks() throws -> [Block] {
        try documents().flatMap { try blocks(in: $0) }
    }

    /// The snippet NAME. It may stand in several documents (the README's
    /// short path and the MTA's page), always with the same text.
    static func snippet(_ name: String) throws -> String {
        let found = try allBlocks().filter { $0.snippet == name }
        guard let first = found.first else {
            throw TestFailure("no <!-- snippet: \(name) --> block in README.md or docs/")
        }
        for other in found.dropFirst() where other.text != first.text {
            throw TestFailure("snippet \(name) differs between \(first) and \(other)")
        }
        return first.text
    }

    /// `text` with its one `old` replaced; anything but one is an error (a
    /// change of the docs the tests would otherwise silently stop covering).
    static func replacingOnce(_ text: String, _ old: String, _ new: String) throws -> String {
        let n = text.components(separatedBy: old).count - 1
        guard n == 1 else { throw TestFailure("expected one \(old) in the snippet, found \(n)") }
        return text.replacingOccurrences(of: old, with: new)
    }

    /// Every snippet name and the test that feeds it to the real program.
    /// `DocsTests` fails on a snippet in the docs that is not here, and on
    /// a name here that no document has.
    static let used: [String: String] = [
        "postfix-policy": "PostfixEndToEndTests (the instance scripts/test.sh starts)",
        "postfix-policy-data": "PostfixEndToEndTests (the instance scripts/test.sh starts, with postfix-policy)",
        "postfix-milter": "MilterEndToEndTests (the instance scripts/test.sh starts)",
        "sendmail-mc": "SendmailEndToEndTests",
        "sendmail-mc-macros": "SendmailEndToEndTests",
        "sendmail-cf": "SendmailEndToEndTests",
        "exim-inet": "EximEndToEndTests",
        "exim-greylistd": "EximEndToEndTests",
        "greylistd-toml": "EximEndToEndTests",
        "qmail-toml": "QmailDefaultsTests",
        "qmail-spp-plugin": "QmailDefaultsTests",
        "qmail-smtpplugins": "QmailDefaultsTests",
        "qmail-envelope-scanner": "QmailEndToEndTests",
        "qmail-tcpserver-run": "QmailEndToEndTests",
        "opensmtpd-toml": "OpenSMTPDEndToEndTests",
        "opensmtpd-conf": "OpenSMTPDEndToEndTests",
        "shared-stores-toml": "SharedStoreTests",
    ]
}
