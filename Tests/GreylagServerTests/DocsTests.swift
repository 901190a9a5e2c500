import Foundation
import GreylagServer
import GreylagTestSupport
import Testing

/// The documentation cannot rot: its TOML examples are configurations
/// greylag accepts, and its MTA configuration blocks are snippets that the
/// end-to-end tests feed to the real MTAs (see `DocSnippets`).
@Suite struct DocsTests {
    /// Every fenced block says what it is: a language or `text` (output,
    /// logs), or a `<!-- snippet: NAME -->` that a test runs. An MTA
    /// configuration block without a marker would be untested.
    @Test func everyBlockIsTypedOrATestedSnippet() throws {
        var untyped: [String] = []
        var names: Set<String> = []
        for block in try DocSnippets.allBlocks() {
            if let name = block.snippet {
                names.insert(name)
                #expect(DocSnippets.used[name] != nil, "\(block): snippet \(name) is not run by any test (DocSnippets.used)")
            } else if block.info.isEmpty {
                untyped.append(block.description)
            }
        }
        #expect(untyped.isEmpty, "fenced blocks with neither a language nor a snippet marker: \(untyped)")
        for name in DocSnippets.used.keys.sorted() {
            #expect(names.contains(name), "no document has the snippet \(name) that \(DocSnippets.used[name]!) runs")
            // The same name in several documents: the same text.
            _ = try DocSnippets.snippet(name)
        }
    }

    /// Every TOML example in README.md and docs/ is a configuration that
    /// `greylag check-config` accepts (the same loader, from a file, so
    /// relative paths and list files are read as the daemon reads them).
    /// Examples that name host things (a group, a list file of another
    /// package) need what `scripts/test.sh` installs; outside it, such an
    /// error is reported but does not fail.
    @Test func everyTomlExampleIsAccepted() throws {
        let dir = TemporaryDirectory()
        var found = 0
        for block in try DocSnippets.allBlocks() where block.info == "toml" {
            found += 1
            let file = dir.path + "/\(block.file.replacingOccurrences(of: "/", with: "_"))-\(block.line).toml"
            try block.text.write(toFile: file, atomically: true, encoding: .utf8)
            do {
                _ = try ConfigurationLoader.load(path: file)
            } catch let errors as ConfigurationErrors {
                let hostOnly = errors.errors.allSatisfy {
                    $0.message.contains("on this host") || $0.message.contains("No such file")
                        || $0.message.contains("cannot read")
                }
                if hostOnly && !TestGate.e2e {
                    print("DocsTests: \(block) needs what scripts/test.sh installs: \(errors)")
                } else {
                    Issue.record("\(block): the TOML example is refused:\n\(errors)")
                }
            }
        }
        #expect(found >= 7, "only \(found) TOML examples were found: has the reader stopped finding them?")
    }

    /// The snippet reader itself: markers, languages and the error for a
    /// name no document has.
    @Test func snippetReader() throws {
        #expect(try DocSnippets.snippet("postfix-milter").contains("smtpd_milters = inet:127.0.0.1:10029"))
        #expect(throws: TestFailure.self) { try DocSnippets.snippet("no-such-snippet") }
        #expect(throws: TestFailure.self) { try DocSnippets.replacingOnce("a a", "a", "b") }
    }
}
