import Foundation
@testable import GreylagCore
import Testing

/// The linear-time list regex engine: syntax, agreement with Swift's
/// `Regex` where both apply, refusal of what it cannot do, and answers on
/// patterns that stall a backtracking engine.
@Suite struct BoundedRegexTests {
    /// As the list engine calls it: on the lower-cased subject.
    static func matches(_ pattern: String, _ subject: String) throws -> Bool {
        try RegexPattern(pattern).matches(subject.lowercased())
    }

    @Test(arguments: [
        // literals and escapes
        (#"abc"#, "xxabcxx", true), (#"abc"#, "abx", false), (#"a\.b"#, "a.b", true), (#"a\.b"#, "axb", false),
        (#"a\\b"#, #"a\b"#, true), (#"a\/b"#, "a/b", true), (#"a\-b"#, "a-b", true), (#"a\tb"#, "a\tb", true),
        (#"a\nb"#, "a\nb", true), (#"\x41\x{42}"#, "ab", true), (#"\x2e"#, "a.b", true), (#"\x2e"#, "ab", false),
        (#"a{"#, "a{", true), (#"x{a}"#, "x{a}", true),
        // dot
        (#"a.c"#, "abc", true), (#"a.c"#, "a\nc", false), (#"^.$"#, "é", true),
        // classes
        (#"[abc]"#, "xbx", true), (#"[abc]"#, "xyz", false), (#"[^abc]"#, "abc", false), (#"[^abc]"#, "abd", true),
        (#"^[a-f0-9]+$"#, "dead99", true), (#"^[a-f0-9]+$"#, "deadg", false), (#"[\d]"#, "x5", true),
        (#"^[\w.-]+$"#, "a.b-c_d", true), (#"^[\w.-]+$"#, "a b", false), (#"[\s]"#, "a b", true),
        (#"^[^\d]+$"#, "abc", true), (#"^[^\d]+$"#, "ab1", false), (#"[]a]"#, "]", true), (#"[a-]"#, "-", true),
        (#"[\]]"#, "]", true), (#"[.]"#, "x", false), (#"^[A-Z]+$"#, "abc", true),
        // shorthands outside classes
        (#"^\d+$"#, "123", true), (#"^\d+$"#, "12a", false), (#"^\D+$"#, "abc", true), (#"^\w+$"#, "a_1", true),
        (#"^\W$"#, "-", true), (#"a\sb"#, "a b", true), (#"a\Sb"#, "a b", false), (#"a\Sb"#, "axb", true),
        // anchors
        (#"^ab"#, "abc", true), (#"^ab"#, "cab", false), (#"bc$"#, "abc", true), (#"bc$"#, "bca", false),
        (#"bc\z"#, "abc\n", false), (#"bc\Z"#, "abc\n", true), (#"\Aab"#, "abc", true),
        (#"\Aab"#, "cab", false), (#"\bfoo\b"#, "a foo b", true), (#"\bfoo\b"#, "afoob", false),
        (#"\Boo\B"#, "foob", true), (#"\Boo\B"#, "oo", false), (#"^$"#, "", true), (#"^$"#, "a", false),
        // groups and alternation
        (#"^(ab)+$"#, "ababab", true), (#"^(ab)+$"#, "ababa", false), (#"^(?:mail|mx)\d+$"#, "mx12", true),
        (#"^(?:mail|mx)\d+$"#, "smtp1", false), (#"^(?<name>ab)c"#, "abc", true), (#"a|b|c"#, "xxc", true),
        (#"^(a|)$"#, "", true), (#"^()$"#, "", true), (#"^(?#comment)a$"#, "a", true),
        // quantifiers
        (#"^ab*c$"#, "ac", true), (#"^ab+c$"#, "ac", false), (#"^ab?c$"#, "abbc", false), (#"^a{3}$"#, "aaa", true),
        (#"^a{3}$"#, "aaaa", false), (#"^a{2,}$"#, "aaaaa", true), (#"^a{2,}$"#, "a", false),
        (#"^a{2,3}$"#, "aaaa", false), (#"^a{2,3}$"#, "aa", true), (#"^a{,2}$"#, "aa", true), (#"^a{0}b$"#, "b", true),
        (#"^a*?b$"#, "aab", true), (#"^a+?$"#, "aaa", true), (#"^a??b$"#, "ab", true), (#"^a{1,2}?b$"#, "aab", true),
        // case and inline option
        (#"^MX\d"#, "mx1", true), (#"^mx\d"#, "MX1", true), (#"(?i)^x\.org$"#, "X.ORG", true),
        (#"(?i:ab)c"#, "ABC", true), (#"^[É]$"#, "é", true),
    ])
    func eachSyntaxForm(pattern: String, subject: String, expected: Bool) throws {
        #expect(try Self.matches(pattern, subject) == expected, "/\(pattern)/ on \(subject.debugDescription)")
    }

    @Test(arguments: [
        (#"(a)\1"#, "backreferences"), (#"(?<n>a)\k<n>"#, "backreferences"), (#"(?P<n>a)(?P=n)"#, "backreferences"),
        (#"a(?=b)"#, "lookahead"), (#"a(?!b)"#, "lookahead"), (#"(?<=a)b"#, "lookbehind"), (#"(?<!a)b"#, "lookbehind"),
        (#"a++"#, "possessive"), (#"a*+"#, "possessive"), (#"(?>a+)"#, "atomic"), (#"(a|b(?R))"#, "recursion"),
        (#"(a(?1))"#, "recursion"), (#"(?(1)a|b)"#, "conditionals"), (#"(?s)a.b"#, "inline option"),
        (#"(?x) a"#, "inline option"), (#"(?-i)a"#, "inline option"), (#"\p{L}"#, "Unicode property"),
        (#"[[:alpha:]]"#, "POSIX"), (#"a{1001}"#, "limit"), (#"a{3,2}"#, "maximum below"),
        (#"(?:a{1000}){1000}"#, "too large"), (#"[z-a]"#, "out of order"), (#"(unclosed"#, "missing )"),
        (#"a)"#, "unmatched )"), (#"[abc"#, "unterminated"), (#"*a"#, "nothing to repeat"), (#"a**"#, "nested"),
        (#"\q"#, "unknown escape"), (#"a\"#, "trailing backslash"), (#"\xZZ"#, "\\x"),
        (String(repeating: "(", count: 200) + String(repeating: ")", count: 200), "nested deeper"),
    ])
    func unsupportedOrBadSyntaxIsRefusedByName(pattern: String, fragment: String) {
        do {
            _ = try RegexPattern(pattern)
            Issue.record("/\(pattern)/ was accepted")
        } catch {
            #expect(error.message.contains(fragment), "/\(pattern)/: \(error.message)")
        }
    }

    @Test func hostileSubjectsAgainstPathologicalPatternsAnswerCorrectly() throws {
        let runs = String(repeating: "a", count: 10_000)
        let cases: [(String, String, Bool)] = [
            (#"^(a+)+$"#, runs + "!@x.example", false), (#"^(a+)+$"#, runs, true),
            (#"(a|aa)*b"#, runs, false), (#"(a|aa)*b"#, runs + "b", true),
            (#"(x+x+)+y"#, String(repeating: "x", count: 10_000), false),
            (#"(x+x+)+y"#, String(repeating: "x", count: 10_000) + "y", true),
            (#"(.*a){20}"#, String(repeating: "a", count: 19) + String(repeating: "b", count: 9_981), false),
            (#"(.*a){20}"#, String(repeating: "ab", count: 5_000), true),
            (#"^(\w+\s?)*$"#, String(repeating: "word ", count: 2_000) + "!", false),
        ]
        for (pattern, subject, expected) in cases {
            let regex = try RegexPattern(pattern)
            let start = ContinuousClock.now
            #expect(regex.matches(subject) == expected, "/\(pattern)/")
            print("BoundedRegexTests: /\(pattern)/ on \(subject.count) characters: \(ContinuousClock.now - start)")
        }
    }

    @Test func everyRegexOfTheBuiltinWhitelistCompilesAndMatchesAsBefore() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/GreylagServer/Resources/builtin-whitelist-clients")
        let text = try String(contentsOf: file, encoding: .utf8)
        let names = ["mailout12.t-online.de", "smtp12-g21.free.fr", "resomta-po-01v.sys.comcast.net",
                     "resimta-ch2-18v.sys.comcast.net", "mailout.t-online.de", "smtp1.free.fr.evil.example",
                     "unrelated.example.net", "MAILOUT3.T-ONLINE.DE"]
        var count = 0
        for line in text.split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("/"), t.hasSuffix("/"), t.count > 2 else { continue }
            let source = String(t.dropFirst().dropLast())
            let pattern = try RegexPattern(source)
            let swift = try Regex(source).ignoresCase()
            for name in names {
                #expect(pattern.matches(name.lowercased()) == ((try? swift.firstMatch(in: name.lowercased())) != nil),
                        "\(source) vs \(name)")
            }
            count += 1
        }
        #expect(count >= 3)
    }

    /// Random patterns of the supported subset, matched by both engines
    /// against random subjects; they must agree.
    @Test func agreesWithSwiftRegexOnGeneratedPatterns() throws {
        var rng = SplitMix(seed: 0x5EED)
        var compared = 0
        for _ in 0..<400 {
            let source = Self.randomPattern(&rng, depth: 0)
            guard let swift = try? Regex(source).ignoresCase().wordBoundaryKind(.simple) else { continue }
            let ours: RegexPattern
            do { ours = try RegexPattern(source) } catch {
                Issue.record("/\(source)/ refused: \(error)")
                continue
            }
            for _ in 0..<25 {
                let length = Int(rng.next() % 9)
                let alphabet = Array("abcAB1 _-.")
                // Lower-cased, as the list engine hands subjects over.
                let subject = String((0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
                    .lowercased()
                let expected = (try? swift.firstMatch(in: subject)) != nil
                #expect(ours.matches(subject) == expected, "/\(source)/ on \(subject.debugDescription)")
                compared += 1
            }
        }
        #expect(compared > 5_000)
    }

    static func randomPattern(_ rng: inout SplitMix, depth: Int) -> String {
        let atoms = ["a", "b", "c", "A", ".", "[ab]", "[^a]", "[a-c]", #"\d"#, #"\w"#, #"\s"#, #"\W"#, #"\."#,
                     "[-_]", #"[\d\s]"#]
        let anchors = ["^", "$", #"\b"#, #"\B"#, #"\A"#, #"\z"#]
        let quantifiers = ["", "", "", "*", "+", "?", "{2}", "{1,2}", "{0,}", "*?", "+?", "??"]
        var out = ""
        let parts = 1 + Int(rng.next() % 4)
        for _ in 0..<parts {
            let roll = rng.next() % 10
            var atom: String
            if roll < 1 {
                out += anchors[Int(rng.next() % UInt64(anchors.count))]
                continue
            } else if roll < 3 && depth < 2 {
                let alternatives = 1 + Int(rng.next() % 3)
                atom = (rng.next() % 2 == 0 ? "(" : "(?:")
                    + (0..<alternatives).map { _ in randomPattern(&rng, depth: depth + 1) }.joined(separator: "|") + ")"
            } else {
                atom = atoms[Int(rng.next() % UInt64(atoms.count))]
            }
            out += atom + quantifiers[Int(rng.next() % UInt64(quantifiers.count))]
        }
        return out
    }
}

/// A small deterministic generator, so a failure can be replayed.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
