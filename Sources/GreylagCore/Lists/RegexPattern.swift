/// A regular expression from a list (`/^mx\d+\.example\.com$/`), matched
/// case-insensitively anywhere in the subject, as postgrey and
/// milter-greylist do. Syntax is the Perl subset lists use (literals and
/// escapes, `.`, classes with ranges and `\d \w \s`, anchors `^ $ \A \z \Z
/// \b \B`, groups, alternation, greedy and lazy quantifiers, `(?i)`); see
/// `BoundedRegex`. Matching takes time linear in pattern size times subject
/// length, whatever the subject, so a peer cannot stall the daemon with text
/// built against the pattern. Backreferences, lookaround and other features
/// that cannot run in linear time are refused when the list is read.
///
/// Matching a regex costs far more than a hash lookup, so a pattern that
/// ends in `$` after literal text (`\.example\.com$`) keeps that text as a
/// required suffix, one that starts with `^` and literal text (`^mx\d+`)
/// keeps a required prefix, and it is only run on subjects that have them.
public struct RegexPattern: Hashable, Sendable, CustomStringConvertible {
    /// One reference, so lists of patterns are cheap to walk.
    private let box: Box

    /// The expression as written, without the slashes.
    public var source: String { box.source }
    /// Lower-cased literal text every match must end with, if known.
    public var requiredSuffix: String? { box.suffix.isEmpty ? nil : String(decoding: box.suffix, as: UTF8.self) }
    /// Lower-cased literal text every match must start with, if known.
    public var requiredPrefix: String? { box.prefix.isEmpty ? nil : String(decoding: box.prefix, as: UTF8.self) }

    /// The compiled program is immutable, shared by every copy.
    private final class Box: Sendable {
        let source: String
        let regex: BoundedRegex
        let suffix: [UInt8]
        let prefix: [UInt8]

        init(source: String, regex: BoundedRegex, suffix: String?, prefix: String?) {
            self.source = source
            self.regex = regex
            self.suffix = Array((suffix ?? "").utf8)
            self.prefix = Array((prefix ?? "").utf8)
        }

        func matches(_ subject: String) -> Bool {
            let u = subject.utf8
            if !suffix.isEmpty {
                guard u.count >= suffix.count, u.reversed().starts(with: suffix.reversed()) else { return false }
            }
            if !prefix.isEmpty && !u.starts(with: prefix) { return false }
            return regex.matches(subject)
        }
    }

    /// Compiles `source`; throws naming the problem (or the unsupported
    /// feature) if it is not a valid expression.
    public init(_ source: String) throws(ListSyntaxError) {
        guard !source.isEmpty else { throw ListSyntaxError("empty regular expression") }
        let regex = try BoundedRegex(source)
        box = Box(source: source, regex: regex, suffix: Self.literalSuffix(of: source),
                  prefix: Self.literalPrefix(of: source))
    }

    /// Whether the expression matches somewhere in `subject`, which the
    /// caller has lower-cased.
    public func matches(_ subject: String) -> Bool { box.matches(subject) }

    public static func == (a: RegexPattern, b: RegexPattern) -> Bool { a.source == b.source }
    public func hash(into hasher: inout Hasher) { hasher.combine(source) }
    public var description: String { "/\(source)/" }

    /// The literal text after a leading `^`, lower-cased, or nil. A literal
    /// followed by a quantifier (`?`, `*`, `+`, `{`) is left out with all
    /// that follows, as it may be absent or repeated.
    static func literalPrefix(of source: String) -> String? {
        let chars = Array(source)
        guard chars.count >= 2, chars[0] == "^", !chars.contains("|"), !hasInlineOptions(source) else { return nil }
        var out: [Character] = []
        var i = 1
        while i < chars.count {
            let c = chars[i]
            if c == "?" || c == "*" || c == "+" || c == "{" {
                if !out.isEmpty { out.removeLast() }
                break
            }
            if c == "\\" {
                guard i + 1 < chars.count, ".-_@".contains(chars[i + 1]) else { break }
                out.append(chars[i + 1])
                i += 2
                continue
            }
            guard c.isLetter || c.isNumber || c == "-" || c == "_" || c == "@" else { break }
            out.append(c)
            i += 1
        }
        // An escaped literal or plain one directly before a quantifier was
        // removed above; the last kept one is followed by a non-quantifier.
        guard !out.isEmpty else { return nil }
        return String(out).lowercased()
    }

    /// Inline options such as `(?x)` or `(?i-s:...)` can change what text
    /// means; groups `(?:`, `(?=`, `(?!`, `(?<` do not.
    static func hasInlineOptions(_ source: String) -> Bool {
        let c = Array(source)
        for i in c.indices.dropLast(2) where c[i] == "(" && c[i + 1] == "?" {
            let next = c[i + 2]
            if next.isLetter || next == "-" || next == "^" { return true }
        }
        return false
    }

    /// The literal text before a final unescaped `$`, lower-cased, or nil
    /// when the expression has no such tail or could match otherwise
    /// (alternation, inline options, escapes other than `\.` `\-`).
    static func literalSuffix(of source: String) -> String? {
        let chars = Array(source)
        guard chars.count >= 2, chars.last == "$", !chars.contains("|"), !hasInlineOptions(source) else { return nil }
        // The `$` itself must not be escaped.
        var slashes = 0
        var j = chars.count - 2
        while j >= 0 && chars[j] == "\\" { slashes += 1; j -= 1 }
        guard slashes % 2 == 0 else { return nil }
        var out: [Character] = []
        var i = chars.count - 2
        while i >= 0 {
            let c = chars[i]
            // Count the backslashes before c to know whether c is escaped.
            var n = 0
            var k = i - 1
            while k >= 0 && chars[k] == "\\" { n += 1; k -= 1 }
            let escaped = n % 2 == 1
            if escaped {
                guard c == "." || c == "-" || c == "_" || c == "@" else { break }
                out.append(c)
                i -= 2
                continue
            }
            if c.isLetter || c.isNumber || c == "-" || c == "_" || c == "@" {
                // A literal followed by a quantifier is optional; the walk
                // stops before quantifiers, so reaching here means it is not.
                out.append(c)
                i -= 1
                continue
            }
            break
        }
        // A character just before the collected text that is a quantifier
        // target would make the first collected character optional, e.g.
        // `ab?c$`: the walk stopped at `?`, so "c" is still required. Safe.
        guard !out.isEmpty else { return nil }
        return String(out.reversed()).lowercased()
    }
}
