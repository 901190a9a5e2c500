/// The words of a shell command line or of the value of a shell
/// assignment, as sh splits and unquotes them: blanks separate words,
/// `'...'` is literal, `"..."` and unquoted text take backslash escapes.
/// Variables are not expanded; the words that hold a `$` are reported so
/// the caller can say so.
enum ShellWords {
    struct Result {
        var words: [String] = []
        var problem: String? = nil
        var usesVariables = false
    }

    static func split(_ text: String) -> Result {
        var r = Result()
        var word = ""
        var inWord = false
        var chars = text.makeIterator()
        var quote: Character? = nil
        while let c = chars.next() {
            if let q = quote {
                if c == q { quote = nil; continue }
                if q == "\"" && c == "\\" {
                    if let n = chars.next() {
                        if n == "\"" || n == "\\" || n == "$" || n == "`" { word.append(n) }
                        else if n != "\n" { word.append("\\"); word.append(n) }
                    }
                    continue
                }
                if q == "\"" && (c == "$" || c == "`") { r.usesVariables = true }
                word.append(c)
                continue
            }
            switch c {
            case " ", "\t", "\n", "\r":
                if inWord { r.words.append(word); word = ""; inWord = false }
            case "'", "\"":
                quote = c
                inWord = true
            case "\\":
                if let n = chars.next(), n != "\n" { word.append(n); inWord = true }
            default:
                if c == "$" || c == "`" { r.usesVariables = true }
                word.append(c)
                inWord = true
            }
        }
        if quote != nil { r.problem = "a quote that is never closed" }
        if inWord { r.words.append(word) }
        return r
    }
}
