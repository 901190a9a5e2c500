/// Tokens of milter-greylist's `greylist.conf`.
///
/// Grammar, as greylist.conf(5) describes it: a statement is a line of
/// blank-separated tokens; a backslash continues the statement on the next
/// line and everything after it on its line is ignored; `#` at the start of
/// a token starts a comment to the end of the line; newlines inside `{ }`
/// separate nothing. Tokens are words, `"quoted strings"` (no escapes, on
/// one line), `/regular expressions/` (no escaped slash, on one line),
/// `{` and `}`.
struct MilterGreylistToken: Sendable, Hashable {
    enum Kind: Sendable, Hashable { case word, quoted, regex, open, close }
    var kind: Kind
    var text: String
    var line: Int
}

/// One statement: its tokens and the line it starts on, or why it could not be read.
struct MilterGreylistStatement: Sendable {
    var line: Int
    var tokens: [MilterGreylistToken]
    var problem: String?
    /// The comment written after each line's tokens (the shipped lists name each entry that way).
    var comments: [Int: String]
}

enum MilterGreylistLexer {
    /// Splits `text` into statements. Work is linear in the input.
    static func statements(_ text: String) -> [MilterGreylistStatement] {
        let b = Array(text.utf8)
        var out: [MilterGreylistStatement] = []
        var tokens: [MilterGreylistToken] = []
        var comments: [Int: String] = [:]
        var problem: String? = nil
        var depth = 0
        var line = 1
        var start = 1
        var i = 0

        func flush() {
            if !tokens.isEmpty || problem != nil {
                var p = problem
                if p == nil && depth > 0 { p = "a { that is never closed" }
                out.append(MilterGreylistStatement(line: start, tokens: tokens, problem: p, comments: comments))
            }
            tokens = []
            comments = [:]
            problem = nil
            depth = 0
        }
        func string(_ from: Int, _ to: Int) -> String { String(decoding: b[from..<to], as: UTF8.self) }
        func endOfLine(_ from: Int) -> Int {
            var j = from
            while j < b.count && b[j] != 0x0A { j += 1 }
            return j
        }
        func add(_ kind: MilterGreylistToken.Kind, _ text: String) {
            if tokens.isEmpty && problem == nil { start = line }
            tokens.append(MilterGreylistToken(kind: kind, text: text, line: line))
        }

        while i < b.count {
            let c = b[i]
            switch c {
            case 0x0A:  // newline
                if depth == 0 { flush() }
                line += 1
                i += 1
            case 0x20, 0x09, 0x0D, 0x0C, 0x0B:
                i += 1
            case 0x23:  // # comment
                let e = endOfLine(i)
                let text = string(i + 1, e).blankTrimmed()
                if !text.isEmpty { comments[line] = text }
                i = e
            case 0x5C:  // \ continuation: the rest of the line is ignored, the newline too
                let e = endOfLine(i)
                let rest = string(i + 1, e).blankTrimmed()
                if rest.hasPrefix("#") { comments[line] = rest.dropFirst().blankTrimmed() }
                i = e < b.count ? e + 1 : e
                line += 1
            case 0x22:  // "quoted"
                var j = i + 1
                while j < b.count && b[j] != 0x22 && b[j] != 0x0A { j += 1 }
                if j < b.count && b[j] == 0x22 {
                    add(.quoted, string(i + 1, j))
                    i = j + 1
                } else {
                    if problem == nil { problem = "a quoted string that is not closed on its line" }
                    if tokens.isEmpty { start = line }
                    i = j
                }
            case 0x7B:  // {
                add(.open, "{")
                depth += 1
                i += 1
            case 0x7D:  // }
                add(.close, "}")
                if depth > 0 { depth -= 1 } else if problem == nil { problem = "a } without its {" }
                i += 1
            default:
                if c == 0x2F {  // /regex/ when the slash closes on this line
                    var j = i + 1
                    while j < b.count && b[j] != 0x2F && b[j] != 0x0A { j += 1 }
                    if j < b.count && b[j] == 0x2F && j > i + 1 {
                        add(.regex, string(i + 1, j))
                        i = j + 1
                        continue
                    }
                }
                var j = i
                while j < b.count, ![0x20, 0x09, 0x0D, 0x0A, 0x0C, 0x0B, 0x22, 0x7B, 0x7D].contains(b[j]) { j += 1 }
                add(.word, string(i, j))
                i = j
            }
        }
        flush()
        return out
    }
}
