/// A regular expression from a list (`/^mx\d+\.example\.com$/`), matched
/// case-insensitively anywhere in the subject, as postgrey and
/// milter-greylist do. Syntax is Swift's, which covers the Perl forms lists
/// use (`\d`, classes, groups, anchors).
///
/// Matching a regex costs far more than a hash lookup, so a pattern that
/// ends in `$` after literal text (`\.example\.com$`) keeps that text as a
/// required suffix and is only run on subjects that end with it.
public struct RegexPattern: Hashable, Sendable, CustomStringConvertible {
    /// The expression as written, without the slashes.
    public let source: String
    /// Lower-cased literal text every match must end with, if known.
    public let requiredSuffix: String?
    private let box: Box

    /// `Regex` is not `Sendable`; the box holds one that is compiled at
    /// creation and only read afterwards.
    private final class Box: @unchecked Sendable {
        let regex: Regex<AnyRegexOutput>
        init(_ regex: Regex<AnyRegexOutput>) { self.regex = regex }
    }

    /// Compiles `source`; throws with the compiler's message if it is not a
    /// valid expression.
    public init(_ source: String) throws(ListSyntaxError) {
        guard !source.isEmpty else { throw ListSyntaxError("empty regular expression") }
        let regex: Regex<AnyRegexOutput>
        do {
            regex = try Regex(source).ignoresCase()
        } catch {
            throw ListSyntaxError("bad regular expression /\(source)/: \(error)")
        }
        _ = try? regex.firstMatch(in: "")  // compile now, before the value is shared
        self.source = source
        self.requiredSuffix = Self.literalSuffix(of: source)
        self.box = Box(regex)
    }

    /// Whether the expression matches somewhere in `subject`, which the
    /// caller has lower-cased.
    public func matches(_ subject: String) -> Bool {
        if let suffix = requiredSuffix, !subject.hasSuffix(suffix) { return false }
        return (try? box.regex.firstMatch(in: subject)) != nil
    }

    public static func == (a: RegexPattern, b: RegexPattern) -> Bool { a.source == b.source }
    public func hash(into hasher: inout Hasher) { hasher.combine(source) }
    public var description: String { "/\(source)/" }

    /// The literal text before a final unescaped `$`, lower-cased, or nil
    /// when the expression has no such tail or could match otherwise
    /// (alternation, inline options, escapes other than `\.` `\-`).
    static func literalSuffix(of source: String) -> String? {
        let chars = Array(source)
        guard chars.count >= 2, chars.last == "$", !chars.contains("|"),
              !source.contains("(?") else { return nil }
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
