/// A pass over configuration text before the TOML parser sees it, for the
/// mistakes on which that parser (toml++, inside TOMLKit) stops the process
/// with an assertion instead of reporting an error: raw control characters,
/// a table header or inline-table key that starts with a character no key
/// can start with, and a value that starts with `]`, `}` or `,`. The config
/// fuzzer found each of these. Anything else is left to the TOML parser.
enum TOMLPrecheck {
    struct Problem: Equatable {
        var line: Int
        var message: String
    }

    private enum Context { case array, inlineTable }
    private enum Expect { case lineStart, key, value, other }

    static func isBare(_ c: Unicode.Scalar) -> Bool {
        (c >= "A" && c <= "Z") || (c >= "a" && c <= "z") || (c >= "0" && c <= "9") || c == "_" || c == "-"
    }

    /// The first problem, or nil.
    static func check(_ text: String) -> Problem? {
        let s = Array(text.unicodeScalars)
        var i = 0
        var line = 1
        var stack: [Context] = []
        var expect = Expect.lineStart
        func peek(_ k: Int = 0) -> Unicode.Scalar? { i + k < s.count ? s[i + k] : nil }
        func starts(_ d: String) -> Bool {
            let d = Array(d.unicodeScalars)
            return i + d.count <= s.count && Array(s[i..<(i + d.count)]) == d
        }
        /// Skips a string starting at `i`; false if it does not end.
        func skipString() -> Problem? {
            let quote = s[i]
            let multi = starts(String(repeating: Character(quote), count: 3))
            let delimiter = multi ? String(repeating: Character(quote), count: 3) : String(Character(quote))
            i += delimiter.unicodeScalars.count
            while i < s.count {
                if starts(delimiter) {
                    i += delimiter.unicodeScalars.count
                    // A multi-line string may end with up to two more quotes.
                    while multi, peek() == quote { i += 1 }
                    return nil
                }
                let c = s[i]
                if c == "\n" {
                    if !multi { return nil }  // the TOML parser reports an unterminated string
                    line += 1
                }
                if c == "\\" && quote == "\"" {
                    if peek(1) == "\n" { line += 1 }
                    i += 2
                    continue
                }
                i += 1
            }
            return nil
        }
        while i < s.count {
            let c = s[i]
            if (c.value < 0x20 && c != "\t" && c != "\r" && c != "\n") || c.value == 0x7F {
                let code = String(c.value, radix: 16, uppercase: true)
                return Problem(line: line, message: "control character U+\(String(repeating: "0", count: 4 - code.count))\(code) "
                               + "is not allowed (TOML permits only tab; write it as an escape inside a string)")
            }
            if c == " " || c == "\t" || c == "\r" {
                i += 1
                continue
            }
            if c == "\n" {
                line += 1
                i += 1
                if stack.isEmpty { expect = .lineStart }
                continue
            }
            if c == "#" {
                while i < s.count && s[i] != "\n" { i += 1 }
                continue
            }
            switch expect {
            case .lineStart where c == "[":
                // A table header: [key] or [[key]].
                i += 1
                if peek() == "[" { i += 1 }
                while peek() == " " || peek() == "\t" { i += 1 }
                // (A control character is reported as such by the next round.)
                guard let k = peek(), isBare(k) || k == "\"" || k == "'" || k == "]"
                    || ((k.value < 0x20 && k != "\n" && k != "\r") || k.value == 0x7F)
                else {
                    return Problem(line: line, message: "a table header must be [name] or [[name]] with a bare or quoted key")
                }
                expect = .other
                continue
            case .lineStart where !(isBare(c) || c == "\"" || c == "'"),
                 .key where !(isBare(c) || c == "\"" || c == "'" || (c == "}" && stack.last == .inlineTable)):
                return Problem(line: line, message: "a key must be bare (A-Z a-z 0-9 _ -) or quoted")
            case .value where c == "]" || c == "}" || c == ",":
                // "[]" and a trailing comma in an array are fine.
                if c == "]" && stack.last == .array { break }
                return Problem(line: line, message: "a value is missing before \"\(Character(c))\"")
            default:
                break
            }
            if c == "\"" || c == "'" {
                if let p = skipString() { return p }
                expect = .other
                continue
            }
            switch c {
            case "=":
                expect = .value
            case "[":
                stack.append(.array)
                expect = .value
            case "{":
                stack.append(.inlineTable)
                expect = .key
            case "]", "}":
                if !stack.isEmpty { stack.removeLast() }
                expect = .other
            case ",":
                expect = stack.last == .inlineTable ? .key : stack.last == .array ? .value : .other
            default:
                expect = .other
            }
            i += 1
        }
        return nil
    }
}
